"""Transports: how command bytes reach an engine and its response bytes come back.

Every transport has the same two methods, so a :class:`~molxbar.host.driver.CrossbarDriver`
runs unchanged on any of them:

* ``send(data)`` queues command bytes for the engine;
* ``receive(n)`` returns exactly the next ``n`` response bytes, or raises ``TimeoutError``
  when the engine has given fewer and will give no more (or, on a serial port, not in time).

The bytes are the protocol's byte stream as it is, with no framing of their own: what a UART
carries, 8 data bits, no parity, one stop bit.

* :class:`GoldenTransport` -- the golden engine (NumPy), state kept between calls;
* :class:`SerialTransport` -- a serial port (pyserial): a board's UART bridge, with no more
  command bytes unanswered than its command FIFO holds;
* :class:`CheckedTransport` -- a transport under test next to a reference (the golden
  engine), comparing every response byte;
* :class:`ReplayTransport` -- answers from the golden engine and records the command stream,
  to be run afterwards, in one pass, on a backend that cannot be driven call by call.

The engine gateware in the Amaranth simulator is
:class:`molxbar.sim.transport.AmaranthTransport`, in the simulation layer.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.difference import first_difference
from molxbar.protocol.errors import ProtocolError
from molxbar.protocol.framing import ANY_LAYOUT, CommandFramer, Unit, fixed_width, response_length
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.link import BOARD_BAUD, BOARD_FIFO_DEPTH
from molxbar.protocol.spec import (
    COMMANDS,
    HARDWARE_LEAKAGE,
    HARDWARE_NOISE,
    Layout,
    Opcode,
    decode_response,
)

__all__ = [
    "longest_command",
    "config_from_status",
    "Transport",
    "GoldenTransport",
    "ResponseBuffer",
    "check_count",
    "SerialTransport",
    "CheckedTransport",
    "ReplayTransport",
    "Mismatch",
]


def longest_command(config: CrossbarConfig | None) -> tuple[int, Opcode]:
    """The most command bytes one response answers, and their command: the smallest window
    of a :class:`SerialTransport`. For RUN_BATCH that is its header and first vector.

    With ``config`` ``None``: the longest command whose length is the same in every
    configuration (``SET_SIGMA``, 34 bytes), which no configuration's longest is below.
    """
    if config is None:
        fixed = [op for op in Opcode if fixed_width(COMMANDS[op].fields)]
        opcode = max(fixed, key=ANY_LAYOUT.command_length)
        return ANY_LAYOUT.command_length(opcode), opcode
    layout = Layout(config)
    opcode = max(Opcode, key=layout.command_length)
    return layout.command_length(opcode), opcode


def _check_window(window: int | None, config: CrossbarConfig | None) -> int | None:
    if window is None:
        return None
    longest, opcode = longest_command(config)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < longest:
        of = (
            f"the {config.rows}x{config.cols} crossbar's {opcode.name}"
            if config is not None
            else f"{opcode.name}, the same on every crossbar,"
        )
        raise ValueError(
            f"window = {window!r} must be None or an int >= {longest}: {of} is {longest} "
            f"bytes, and a command is answered only once all of it is sent"
        )
    return int(window)


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


class SerialTransport:
    """A serial port: the board's UART bridge, bytes as they are, within a command window.

    The bridge has no hardware flow control: a command byte that finds its command FIFO full
    is lost (:mod:`molxbar.boards.bridge`). So the transport keeps at most ``window`` command
    bytes *unanswered* -- written, but not yet answered -- and queues the rest: ``send``
    writes what the window allows, and ``receive`` writes more as responses come back. Queued
    bytes are written only while ``receive`` waits, so a program sends and then receives the
    responses, as :class:`~molxbar.host.driver.CrossbarDriver` does.

    **When a byte is answered.** Commands are answered in order, one response each, and a
    RUN_BATCH one response per vector. A command byte is answered once the *first* byte of
    the response to its command (for RUN_BATCH: to its vector) has been read. The engine
    answers nothing before it has taken the whole command out of the FIFO: its receiver
    reads and checks every field first and only then hands the command to the executor,
    which queues the response (``hdl/receiver.py``, ``hdl/engine.py``; a VMM's header is
    queued when its computation starts). So every byte in the FIFO is unanswered, and a
    window no deeper than the FIFO cannot overrun it. In particular:

    * an error response (2 bytes) answers the whole command: a command with a bad field is
      still read to its end; an unknown opcode is one byte;
    * a RUN_BATCH header (opcode, count) is answered with its first vector; each vector by
      its own response, OK or ``BAD_INPUT``, so a bad vector answers itself and the batch
      goes on; count 0 is answered ``BAD_COUNT`` and no vectors follow;
    * the bytes of an incomplete command at the end of a ``send`` stay unanswered (and count
      against the window) until a later ``send`` completes it and its response arrives.

    The window must hold the longest command (:func:`longest_command`; for RUN_BATCH, its
    header and first vector): its last byte can only be written while its first bytes are
    unanswered, so a shorter window would stall for good.

    **Where the responses are.** The transport splits its own command stream into commands
    (their lengths follow from the opcodes and the :class:`~.protocol.Layout`) and reads the
    header of each response as it passes through ``receive``: an error response is 2 bytes,
    an OK one ``Layout.response_length(opcode)``. It does not predict the responses with a
    shadow golden engine: that would start fresh while the board may not (a setting from an
    earlier session, an engine without noise hardware, which ``STATUS`` does not report),
    would compute every VMM a second time, and would not notice a broken stream. A response
    that is not to the command due (another opcode, or before the command is complete)
    means the streams are out of step -- bytes lost, or stale bytes from before the
    transport: the transport then writes nothing more, and a timeout says why.

    Without ``config`` the field widths are unknown until the engine reports them: commands
    of fixed-width fields (``STATUS``, ``SYNC``, the settings) are understood at once, and
    the first ``STATUS`` response read back (the driver asks for one) gives the rest. Until
    then other commands are written within the window but not counted as answered.

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
    window
        Most command bytes unanswered: at least :func:`longest_command` of the configuration
        (checked again when a ``STATUS`` response reports it: ``receive`` raises
        ``ValueError`` then); by default the boards' command FIFO, :data:`BOARD_FIFO_DEPTH`.
        ``None`` writes everything at once: no flow control.
    """

    def __init__(
        self,
        port,
        baudrate: int = BOARD_BAUD,
        *,
        timeout: float = 2.0,
        config: CrossbarConfig | None = None,
        window: int | None = BOARD_FIFO_DEPTH,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout = {timeout} must be > 0 seconds")
        # Checked before the port is opened or touched: a refused window changes nothing.
        self._window = _check_window(window, config)
        if isinstance(port, str):
            import serial

            port = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
        elif getattr(port, "timeout", 0) is None:
            port.timeout = 0.05  # reads must return for the deadline to be checked
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self._config = config
        self._layout = Layout(config) if config is not None else None
        # Commands: the queue, and the stream split into units answered by one response.
        self._queue = bytearray()
        self._sent = 0  # command bytes written
        self._answered = 0  # of those, answered (a prefix of the stream)
        self._framer = CommandFramer(self._layout)  # the stream, cut into units
        self._units: deque[Unit] = deque()  # framed and unanswered
        self._early: deque[int] = deque()  # opcodes of responses to units not yet split
        # Responses: the bytes read, from the next response header on.
        self._rsp_buf = bytearray()
        self._rsp_skip = 0  # bytes of the current response still to pass over
        self._rsp_counted = False  # the response at _rsp_buf[0] has answered its unit
        self._fault: str | None = None

    @property
    def window(self) -> int | None:
        """Most command bytes unanswered (``None``: no flow control)."""
        return self._window

    @property
    def config(self) -> CrossbarConfig | None:
        """The crossbar behind the port, if given; setting it checks the window first."""
        return self._config

    @config.setter
    def config(self, config: CrossbarConfig | None) -> None:
        _check_window(self._window, config)
        self._config = config
        if config is not None:
            self._layout = self._framer.layout = Layout(config)
            if self._window is not None:
                self._split(b"")
                self._track(b"")

    @property
    def unsent(self) -> int:
        """Command bytes queued, not yet written."""
        return len(self._queue)

    @property
    def unanswered(self) -> int:
        """Command bytes written and not yet answered."""
        return self._sent - self._answered

    def line_time(self, n: int) -> float:
        """Seconds ``n`` bytes take on the line (ten bits each)."""
        return 10 * n / self.baudrate

    def send(self, data: bytes) -> None:
        """Queue ``data`` and write as much of it as the window allows."""
        data = bytes(data)
        if self._window is None:
            self._write(data)
            return
        self._queue += data
        self._split(data)
        self._pump()

    def receive(self, n: int) -> bytes:
        """The next ``n`` response bytes, writing queued command bytes as the window moves."""
        n = check_count(n)
        limit = self.timeout + 2 * self.line_time(n)
        deadline = time.monotonic() + limit
        data = bytearray()
        while len(data) < n:
            self._pump()
            chunk = self.port.read(min(n - len(data), self._read_ahead()))
            data += chunk
            if chunk and self._window is not None:
                self._track(chunk)
            if len(data) < n and time.monotonic() > deadline:
                name = getattr(self.port, "name", None) or "serial port"
                raise TimeoutError(
                    f"{name}: {len(data)} of {n} response byte(s) within {limit:.3g} s"
                    + self._held()
                )
        self._pump()
        return bytes(data)

    def close(self) -> None:
        """Close the port; command bytes still queued are dropped."""
        self.port.close()

    # Flow control -------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def _pump(self) -> None:
        """Write the queued bytes the window allows."""
        if not self._queue or self._fault is not None:
            return
        room = self._answered + self._window - self._sent
        if room > 0:
            data = bytes(self._queue[:room])
            del self._queue[:room]
            self._sent += len(data)
            self._write(data)

    def _read_ahead(self) -> int:
        """Bytes to read before the window can move, while bytes wait to be written: up to
        the status byte of the next response, which answers a unit and gives its length."""
        if not self._queue or self._fault is not None or len(self._rsp_buf) >= 2:
            return 1 << 62  # nothing waits, or a header waits for the field widths
        return self._rsp_skip + 2 - len(self._rsp_buf)

    def _held(self) -> str:
        """Why command bytes are still queued, for a timeout message."""
        if not self._queue:
            return ""
        why = (
            f"; {len(self._queue)} command byte(s) still unsent "
            f"({self.unanswered} written and unanswered, window {self._window})"
        )
        if self._fault is not None:
            return f"{why}: flow control stopped, {self._fault}"
        if self._layout is None and (self._framer.needs_layout or len(self._rsp_buf) >= 2):
            why += ": the field widths are unknown (give config=, or send STATUS first)"
        return why

    def _split(self, data: bytes) -> None:
        """Frame the command stream into units, each answered by one response."""
        for unit in self._framer.feed(data):
            if self._early:
                self._answer(unit.end, unit.opcode, self._early.popleft())
            else:
                self._units.append(unit)

    def _answer(self, end: int, opcode: int, got: int) -> None:
        """A response starting with opcode byte ``got`` answers the unit up to ``end``."""
        if got != opcode:
            self._fault = (
                f"a response to opcode {got:#04x} came where one to {opcode:#04x} was due "
                f"(the streams are out of step)"
            )
        elif end > self._sent:
            self._fault = "a response came before its command was complete (out of step)"
        else:
            self._answered = end

    def _track(self, data: bytes) -> None:
        """Follow the response stream: the first byte of each response answers a unit, the
        status byte gives the response's length."""
        buf = self._rsp_buf
        buf += data
        while self._fault is None:
            if self._rsp_skip:
                skip = min(self._rsp_skip, len(buf))
                del buf[:skip]
                self._rsp_skip -= skip
                if self._rsp_skip:
                    return
            if not buf:
                return
            if not self._rsp_counted:
                self._rsp_counted = True
                if self._units:
                    unit = self._units.popleft()
                    self._answer(unit.end, unit.opcode, buf[0])
                elif self._framer.needs_layout:
                    self._early.append(buf[0])  # to a command not split yet
                else:
                    self._fault = f"a response ({buf[0]:#04x} ...) came to no command"
                continue
            if len(buf) < 2:
                return
            try:
                length = response_length(self._layout, buf[0], buf[1])
            except ValueError as error:
                self._fault = str(error)
                return
            if length is None:
                return  # an OK response whose length needs the field widths
            if self._layout is None and buf[0] == Opcode.STATUS:
                if len(buf) < length:
                    return
                self._learn(bytes(buf[:length]))
            self._rsp_skip = length
            self._rsp_counted = False

    def _learn(self, response: bytes) -> None:
        """The field widths from a STATUS response; the units that waited for them."""
        fields = decode_response(ANY_LAYOUT, response)[0].fields
        try:
            config = config_from_status(fields)
            _check_window(self._window, config)
        except ValueError as error:
            self._fault = f"the engine's STATUS does not fit: {error}"
            raise
        self._layout = self._framer.layout = Layout(config)
        self._split(b"")


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
