"""Transports: how command bytes reach an engine and its response bytes come back.

Every transport has the same two methods, so a :class:`~molxbar.host.driver.CrossbarDriver`
runs unchanged on any of them:

* ``send(data)`` queues command bytes for the engine;
* ``receive(n)`` returns exactly the next ``n`` response bytes, or raises ``TimeoutError``
  when the engine has given fewer and will give no more (or, on a serial port, not in time).

* :class:`GoldenTransport` -- the golden engine (NumPy), state kept between calls;
* :class:`~molxbar.host.link.SerialTransport` (in :mod:`molxbar.host.link`) -- a serial port
  (pyserial): a board's UART bridge, the commands in checked frames (docs/link.md);
* :class:`CheckedTransport` -- a transport under test next to a reference (the golden
  engine), comparing every response byte;
* :class:`ReplayTransport` -- answers from the golden engine and records the command stream,
  to be run afterwards, in one pass, on a backend that cannot be driven call by call.

The engine gateware in the Amaranth simulator is
:class:`molxbar.sim.transport.AmaranthTransport`, in the simulation layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.difference import first_difference
from molxbar.protocol.errors import ProtocolError
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import (
    HARDWARE_LEAKAGE,
    HARDWARE_NOISE,
    Layout,
)

__all__ = [
    "config_from_status",
    "Transport",
    "GoldenTransport",
    "ResponseBuffer",
    "check_count",
    "CheckedTransport",
    "ReplayTransport",
    "Mismatch",
]


def config_from_status(fields: dict) -> CrossbarConfig:
    """A configuration with the shape, widths and hardware of a STATUS response's ``fields``:
    what the protocol's field widths depend on, and what the engine can do (registers and
    noise amplitudes are left at their defaults). ``ProtocolError`` if the output width the
    engine reports is not the one its shape gives."""
    config = CrossbarConfig(
        rows=fields["rows"],
        cols=fields["cols"],
        lanes=fields["lanes"],
        g_bits=fields["g_bits"],
        x_bits=fields["x_bits"],
        levels=fields["levels"],
        noise_hardware=bool(fields["hardware"] & HARDWARE_NOISE),
        leakage_hardware=bool(fields["hardware"] & HARDWARE_LEAKAGE),
    )
    expected = Layout(config).output_bytes
    if fields["output_bytes"] != expected:
        raise ProtocolError(
            f"the engine reports {fields['output_bytes']} bytes per output; its shape gives "
            f"{expected}"
        )
    return config


@runtime_checkable
class Transport(Protocol):
    """Command bytes out, response bytes in."""

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the engine."""

    def receive(self, n: int) -> bytes:
        """The next ``n`` response bytes; ``TimeoutError`` if they do not come."""


def check_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n = {n!r} must be an int >= 0")
    return int(n)


class ResponseBuffer:
    """Response bytes out of an engine, waiting for ``receive``."""

    def __init__(self) -> None:
        self._out = bytearray()

    def _take(self, n: int) -> bytes:
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    @property
    def pending(self) -> int:
        """Response bytes out of the engine but not yet received."""
        return len(self._out)


class GoldenTransport(ResponseBuffer):
    """The golden engine: each ``send`` executes at once, ``receive`` takes from its output.

    Parameters
    ----------
    config
        The crossbar (default ``ideal14``); registers start at its values, levels at 0.
    """

    def __init__(self, config: CrossbarConfig | None = None) -> None:
        super().__init__()
        self.engine = GoldenEngine(config)
        self.config = self.engine.config

    def send(self, data: bytes) -> None:
        self._out += self.engine.execute(bytes(data))

    def receive(self, n: int) -> bytes:
        n = check_count(n)
        if len(self._out) < n:
            raise TimeoutError(
                f"the golden engine answered {len(self._out)} byte(s), {n} were expected"
            )
        return self._take(n)

    def close(self) -> None:
        pass


class Mismatch(AssertionError):
    """A response byte of the transport under test differs from the reference."""


class CheckedTransport:
    """A transport under test beside a reference; every response byte is compared.

    Commands go to both. ``receive`` returns the tested transport's bytes; a difference is
    counted (``mismatches``, ``first_mismatch`` as a byte offset) and raises :class:`Mismatch`
    when ``strict``.
    """

    def __init__(self, tested: Transport, reference: Transport, *, strict: bool = True) -> None:
        self.tested = tested
        self.reference = reference
        self.strict = strict
        self.config = getattr(tested, "config", None) or getattr(reference, "config", None)
        self.bytes_compared = 0
        self.mismatches = 0
        self.first_mismatch: int | None = None

    def send(self, data: bytes) -> None:
        self.reference.send(data)
        self.tested.send(data)

    def receive(self, n: int) -> bytes:
        want = self.reference.receive(n)
        got = self.tested.receive(n)
        if got != want:
            diff = np.frombuffer(got, np.uint8) != np.frombuffer(want, np.uint8)
            first = int(np.flatnonzero(diff)[0])
            if self.first_mismatch is None:
                self.first_mismatch = self.bytes_compared + first
            self.mismatches += int(diff.sum())
            if self.strict:
                self.bytes_compared += n
                raise Mismatch(
                    f"response byte {self.bytes_compared - n + first}: got {got[first]:#04x}, "
                    f"reference {want[first]:#04x} ({int(diff.sum())} of {n} bytes differ)"
                )
        self.bytes_compared += n
        return got

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0

    def close(self) -> None:
        for transport in (self.tested, self.reference):
            close = getattr(transport, "close", None)
            if close is not None:
                close()


class ReplayTransport(GoldenTransport):
    """Answers from the golden engine and records the whole session for a one-pass check.

    For backends that run a complete command stream on a fresh engine (a Verilator or
    Icarus build, say) rather than call by call: the programs run against the golden
    engine, then :meth:`check` runs the recorded stream once on ``runner`` and compares the
    response bytes. A backend that matches byte for byte would have given the programs the
    same answers, so their results are the backend's.

    Parameters
    ----------
    config
        The crossbar.
    runner
        ``runner(commands) -> responses`` on a fresh engine of the backend under test.
    """

    def __init__(self, config: CrossbarConfig | None, runner: Callable[[bytes], bytes]) -> None:
        super().__init__(config)
        self.runner = runner
        self.commands = bytearray()
        self.responses = bytearray()
        self.bytes_compared = 0
        self.mismatches = 0
        self.first_mismatch: int | None = None
        #: After :meth:`check`: the first command whose responses differ, named
        #: (:func:`~molxbar.protocol.difference.first_difference`), or ``None``.
        self.difference: str | None = None

    def send(self, data: bytes) -> None:
        self.commands += bytes(data)
        before = len(self._out)
        super().send(data)
        self.responses += self._out[before:]

    def check(self) -> bool:
        """Run the recorded commands on the backend and compare; True when bit-exact."""
        got = bytes(self.runner(bytes(self.commands)))
        want = bytes(self.responses)
        size = min(len(got), len(want))
        diff = np.frombuffer(got[:size], np.uint8) != np.frombuffer(want[:size], np.uint8)
        self.mismatches = int(diff.sum()) + abs(len(got) - len(want))
        self.bytes_compared = len(want)
        differs = np.flatnonzero(diff)
        if differs.size:
            self.first_mismatch = int(differs[0])
        elif len(got) != len(want):
            self.first_mismatch = size
        if self.mismatches:
            self.difference = first_difference(self.engine.config, bytes(self.commands), got)
        return self.mismatches == 0

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0
