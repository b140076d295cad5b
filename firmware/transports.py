"""Transports: how command bytes reach an engine and its response bytes come back.

Every transport has the same two methods, so a :class:`~molxbar.firmware.driver.CrossbarDriver`
runs unchanged on any of them:

* ``send(data)`` queues command bytes for the engine;
* ``receive(n)`` returns exactly the next ``n`` response bytes, or raises ``TimeoutError``
  when the engine has given fewer and will give no more (or, on a serial port, not in time).

The bytes are the protocol's byte stream as it is, with no framing of their own: what a UART
carries, 8 data bits, no parity, one stop bit.

* :class:`GoldenTransport` -- the golden engine (NumPy), state kept between calls;
* :class:`AmaranthTransport` -- the engine gateware in the Amaranth simulator, one simulation
  advanced cycle by cycle across calls (Amaranth is imported when one is made);
* :class:`SerialTransport` -- a serial port (pyserial): a board's UART bridge;
* :class:`CheckedTransport` -- a transport under test next to a reference (the golden
  engine), comparing every response byte;
* :class:`ReplayTransport` -- answers from the golden engine and records the command stream,
  to be run afterwards, in one pass, on a backend that cannot be driven call by call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from molxbar.emulator.config import CrossbarConfig

from .golden_engine import GoldenEngine

__all__ = [
    "BOARD_BAUD",
    "Transport",
    "GoldenTransport",
    "AmaranthTransport",
    "SerialTransport",
    "CheckedTransport",
    "ReplayTransport",
    "Mismatch",
]


#: UART bit rate of the boards' bridge (``molxbar build``): exact on the FTDI bridges of both
#: boards (3 MHz / 3), and a whole number of cycles per bit at their engine clocks.
BOARD_BAUD = 1_000_000


@runtime_checkable
class Transport(Protocol):
    """Command bytes out, response bytes in."""

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the engine."""

    def receive(self, n: int) -> bytes:
        """The next ``n`` response bytes; ``TimeoutError`` if they do not come."""


def _check_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n = {n!r} must be an int >= 0")
    return int(n)


class _ResponseBuffer:
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


class GoldenTransport(_ResponseBuffer):
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
        n = _check_count(n)
        if len(self._out) < n:
            raise TimeoutError(
                f"the golden engine answered {len(self._out)} byte(s), {n} were expected"
            )
        return self._take(n)

    def close(self) -> None:
        pass


class AmaranthTransport(_ResponseBuffer):
    """The :class:`~molxbar.hdl.engine.Engine` gateware in the Amaranth simulator.

    One simulation lives as long as the transport: ``send`` queues command bytes, and
    ``receive`` advances the clock until enough response bytes have come out, so the
    engine's state (levels, registers, noise counter) is kept between calls. Bytes travel in
    beats of ``engine.stream_bytes`` bytes (:mod:`molxbar.firmware.beats`) when the engine
    has such streams, else one byte per transfer.

    Parameters
    ----------
    config
        The crossbar; ``lanes`` must be a power of two.
    engine
        A ready-made engine (its keyword options, such as ``stream_bytes``); by default
        ``Engine(config)``.
    idle_in, stall_out, seed
        Probabilities of an idle cycle on the command stream and of a stall on the response
        stream, drawn from ``np.random.default_rng(seed)``: back-pressure for tests.
    vcd
        Write a waveform of the whole session to this file (closed by :meth:`close`).

    Attributes
    ----------
    cycles
        Clock cycles simulated so far.
    vmm_cycles
        The engine's count for its last VMM (rows issued and sums awaited).
    """

    def __init__(
        self,
        config: CrossbarConfig | None = None,
        *,
        engine=None,
        idle_in: float = 0.0,
        stall_out: float = 0.0,
        seed: int = 0,
        vcd: str | None = None,
    ) -> None:
        from amaranth.hdl import Value
        from amaranth.sim import Simulator

        from molxbar.hdl.engine import Engine

        for name, p in (("idle_in", idle_in), ("stall_out", stall_out)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} = {p} must be in [0, 1)")
        self.config = config if config is not None else CrossbarConfig()
        self.engine = engine if engine is not None else Engine(self.config)
        self.stream_bytes: int | None = getattr(self.engine, "stream_bytes", None)
        self.cycles = 0
        self.vmm_cycles = 0
        self._rng = np.random.default_rng(seed)
        self._idle_in, self._stall_out = idle_in, stall_out
        self._queue = bytearray()
        super().__init__()
        self._idle = True
        self._cmd_payload = Value.cast(self.engine.cmd.payload)
        self._rsp_payload = Value.cast(self.engine.rsp.payload)
        self._sim = Simulator(self.engine)
        self._sim.add_clock(1e-8)
        self._sim.add_testbench(self._testbench)
        self._vcd = None
        if vcd is not None:
            self._vcd = self._sim.write_vcd(str(vcd))
            self._vcd.__enter__()

    def _next_beat(self) -> tuple[int, int]:
        """The payload of the next command beat and the bytes it carries."""
        if self.stream_bytes is None:
            return self._queue[0], 1
        size = min(self.stream_bytes, len(self._queue))
        payload = int.from_bytes(self._queue[:size], "little") | (size << 8 * self.stream_bytes)
        return payload, size

    def _take_beat(self, payload: int) -> None:
        if self.stream_bytes is None:
            self._out.append(payload)
            return
        from .beats import unpack_beat

        self._out += unpack_beat(payload, self.stream_bytes)

    async def _testbench(self, ctx) -> None:
        dut = self.engine
        while True:
            offer = bool(self._queue) and (
                self._idle_in == 0.0 or self._rng.random() >= self._idle_in
            )
            ready = self._stall_out == 0.0 or self._rng.random() >= self._stall_out
            ctx.set(dut.cmd.valid, offer)
            size = 0
            if offer:
                payload, size = self._next_beat()
                ctx.set(self._cmd_payload, payload)
            ctx.set(dut.rsp.ready, ready)
            took, valid, beat, idle, vmm_cycles = (
                await ctx.tick().sample(
                    dut.cmd.ready, dut.rsp.valid, self._rsp_payload, dut.idle, dut.vmm_cycles
                )
            )[2:]
            if offer and took:
                del self._queue[:size]
            if ready and valid:
                self._take_beat(beat)
            self._idle = bool(idle) and not valid
            self.vmm_cycles = vmm_cycles
            self.cycles += 1

    def send(self, data: bytes) -> None:
        self._queue += bytes(data)

    def run(self, cycles: int) -> None:
        """Advance the simulation by ``cycles`` clock cycles."""
        stop = self.cycles + cycles
        while self.cycles < stop:
            self._sim.advance()

    def receive(self, n: int, *, max_cycles: int | None = None) -> bytes:
        """Advance the clock until ``n`` response bytes are out and return them.

        Raises ``TimeoutError`` when every command byte is taken and the engine is idle with
        fewer bytes out (none will follow), or after ``max_cycles`` cycles (default: plenty
        for a whole-array VMM per byte still expected).
        """
        n = _check_count(n)
        c = self.config
        if max_cycles is None:
            per_byte = 100 + c.rows * c.cols // c.lanes
            max_cycles = 10_000 + per_byte * max(n - len(self._out), 0) + 4 * len(self._queue)
        start = self.cycles
        quiet = 0
        while len(self._out) < n:
            before = self.cycles
            self._sim.advance()
            if self.cycles == before:
                continue
            quiet = quiet + 1 if not self._queue and self._idle else 0
            if quiet >= 3 or self.cycles - start > max_cycles:
                why = "the engine is idle" if quiet >= 3 else f"after {max_cycles} cycles"
                raise TimeoutError(
                    f"{why} with {len(self._out)} response byte(s) out, {n} were expected"
                )
        return self._take(n)

    def close(self) -> None:
        """Finish the waveform file, if one is written."""
        if self._vcd is not None:
            self._vcd.__exit__(None, None, None)
            self._vcd = None


class SerialTransport:
    """A serial port: the board's UART bridge, bytes as they are.

    Parameters
    ----------
    port
        A device name or pyserial URL (``"/dev/ttyUSB1"``, ``"loop://"``), or an open
        ``serial.Serial``-like object (a blocking one gets a short read timeout).
    baudrate
        Line rate, bits per second (8N1: ten bits per byte); by default the boards' rate.
    timeout
        Seconds to wait for a response beyond the time its bytes need on the line.
    config
        The crossbar behind the port, if known; otherwise the driver asks the engine.
    """

    def __init__(
        self,
        port,
        baudrate: int = BOARD_BAUD,
        *,
        timeout: float = 2.0,
        config: CrossbarConfig | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout = {timeout} must be > 0 seconds")
        if isinstance(port, str):
            import serial

            port = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
        elif getattr(port, "timeout", 0) is None:
            port.timeout = 0.05  # reads must return for the deadline to be checked
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.config = config

    def line_time(self, n: int) -> float:
        """Seconds ``n`` bytes take on the line (ten bits each)."""
        return 10 * n / self.baudrate

    def send(self, data: bytes) -> None:
        self.port.write(bytes(data))
        self.port.flush()

    def receive(self, n: int) -> bytes:
        n = _check_count(n)
        deadline = time.monotonic() + self.timeout + 2 * self.line_time(n)
        data = bytearray()
        while len(data) < n:
            data += self.port.read(n - len(data))
            if len(data) < n and time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.port.name if hasattr(self.port, 'name') else 'serial port'}: "
                    f"{len(data)} of {n} response byte(s) within "
                    f"{self.timeout + 2 * self.line_time(n):.3g} s"
                )
        return bytes(data)

    def close(self) -> None:
        self.port.close()


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
        return self.mismatches == 0

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0
