"""The board logic in the Amaranth simulator, bit-serial on both serial lines, driven by the
host's own :class:`~molxbar.host.link.SerialTransport`.

:class:`BridgePort` is a serial port whose far end is a :class:`~molxbar.boards.bridge.
UARTBridge` in the simulator: written bytes go out as UART frames on the bridge's ``rx``
line (at ``host_rate`` times the bridge's rate), frames on ``tx`` are decoded as a serial
port would, and reading runs the simulation on. Nothing enters or leaves the design except
through those two lines. Faults (:class:`~molxbar.sim.link_faults.FaultyLine`) may be put on
either line.

The port records the command line as the bridge received it (bytes, and the idle gaps past
the bridge's timeout) and the bridge's response line before any fault: feeding the same
record to the host-level model (:class:`~molxbar.protocol.link_model.BoardLinkModel`) must
give the same response line, byte for byte (:attr:`BridgeResult.model_difference`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from molxbar.boards.bridge import UARTBridge
from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.options import EngineOptions
from molxbar.host.link import LinkStats, SerialTransport, check_frames
from molxbar.protocol.difference import first_difference
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.link import max_payload, replay_slot
from molxbar.protocol.link_frames import Counters
from molxbar.protocol.link_model import BoardLinkModel
from molxbar.protocol.spec import Layout

from .link_faults import FAULT_KINDS, FaultyLine

__all__ = ["BridgePort", "BridgeResult", "model_difference", "simulate_bridge"]

CLOCK_PERIOD = 1e-8  # seconds: the simulation's engine clock, 100 MHz
#: A gap in the command line past the bridge's idle timeout, in :attr:`BridgePort.line`.
IDLE = None


class BridgePort:
    """A serial port to a :class:`UARTBridge` in the Amaranth simulator, in simulated time.

    Parameters
    ----------
    dut
        The bridge.
    host_rate
        The host's baud rate relative to the bridge's (``1.03``: 3 % fast).
    command_line, response_line
        Faults on either line, or ``None``.
    line_flips
        The chance that a command byte has one of its ten bit times (start and stop bits
        included) inverted on the line: UART frame errors and lost start bits, which the
        record cannot show (:attr:`line` then holds the bytes as sent).

    Attributes
    ----------
    line : list
        The command line as sent: byte values, and :data:`IDLE` for each gap the bridge
        timed out a partial frame in.
    answered : bytearray
        The bridge's response line, before any fault.
    cycles : int
        Cycles simulated.
    """

    def __init__(
        self,
        dut: UARTBridge,
        *,
        host_rate: float = 1.0,
        command_line: FaultyLine | None = None,
        response_line: FaultyLine | None = None,
        line_flips: float = 0.0,
        rng: np.random.Generator | None = None,
        vcd: str | Path | None = None,
    ) -> None:
        self.dut = dut
        self.line_flips = line_flips
        self.flipped = 0
        rng = np.random.default_rng(0) if rng is None else rng
        self.command_line = command_line
        self.response_line = response_line
        self.name = "bridge simulation"
        self.line: list[int | None] = []
        self.answered = bytearray()
        self._queue: deque[int | None] = deque()
        self._rx = bytearray()
        self._flags = {"frame_error": 0, "overrun": 0}
        self.now = 0.0
        self.divisor = dut.divisor
        # The UART's clock: the engine's, or a multiple of it (``dut.uart_domain``).
        uart = dut.uart_domain
        self.uart_period = CLOCK_PERIOD / dut.uart_clock_ratio
        self.byte_time = 10 * dut.divisor * self.uart_period
        self.timeout_time = dut.timeout_bytes * self.byte_time
        self._last_end = 0.0  # when the last command byte's stop bit ended
        self._sending = False
        bit_cycles = dut.divisor / host_rate

        async def host_tx(ctx):
            elapsed, clock = 0, 0.0
            while True:
                if not self._queue:
                    self._sending = False
                    await ctx.tick(uart)
                    elapsed += 1
                    clock = float(elapsed)
                    continue
                self._sending = True
                byte = self._queue.popleft()
                if byte is IDLE:  # the host stalls past the bridge's timeout
                    wait = round((self.timeout_time + 4 * self.byte_time) / self.uart_period)
                    await _ticks(ctx, wait, uart)
                    elapsed += wait
                    clock = float(elapsed)
                    self.line.append(IDLE)
                    continue
                self.line.append(byte)
                levels = [0, *((byte >> k) & 1 for k in range(8)), 1]
                if self.line_flips and rng.random() < self.line_flips:
                    levels[int(rng.integers(10))] ^= 1  # start and stop bits too
                    self.flipped += 1
                for level in levels:
                    ctx.set(dut.rx, level)
                    clock += bit_cycles
                    step = max(1, round(clock) - elapsed)
                    await _ticks(ctx, step, uart)
                    elapsed += step
                self._last_end = elapsed * self.uart_period

        async def host_rx(ctx):
            while True:
                await ctx.changed(dut.tx)
                if ctx.get(dut.tx):
                    continue
                bits = []
                for k in range(10):
                    await _ticks(ctx, dut.divisor // 2 if k == 0 else dut.divisor, uart)
                    bits.append(ctx.get(dut.tx))
                if bits[0] != 0 or bits[9] != 1:
                    raise AssertionError(f"malformed frame {bits} on tx")
                byte = sum(b << k for k, b in enumerate(bits[1:9]))
                self.answered.append(byte)
                pieces = [bytes([byte])]
                if self.response_line is not None:
                    pieces = self.response_line.corrupt(bytes([byte]))
                self._rx += b"".join(p for p in pieces if p)

        async def monitor(ctx):
            async for _, _, fe, ov in ctx.tick().sample(dut.frame_error, dut.overrun):
                self._flags["frame_error"] |= fe
                self._flags["overrun"] |= ov

        self.sim = Simulator(dut)
        self.sim.add_clock(CLOCK_PERIOD)
        if uart != "sync":
            self.sim.add_clock(self.uart_period, domain=uart)
        self.sim.add_testbench(host_tx, background=True)
        self.sim.add_testbench(host_rx, background=True)
        self.sim.add_testbench(monitor, background=True)
        self._vcd = None
        if vcd is not None:
            self._vcd = self.sim.write_vcd(str(vcd))
            self._vcd.__enter__()

    @property
    def cycles(self) -> int:
        return round(self.now / CLOCK_PERIOD)

    @property
    def frame_error(self) -> bool:
        return bool(self._flags["frame_error"])

    @property
    def overrun(self) -> bool:
        return bool(self._flags["overrun"])

    def clock(self) -> float:
        return self.now

    @property
    def sending(self) -> bool:
        """Command bytes are queued or on the line."""
        return bool(self._queue) or self._sending

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def write(self, data: bytes) -> int:
        pieces = [data] if self.command_line is None else self.command_line.corrupt(data)
        for piece in pieces:
            self._queue.extend([IDLE] if piece is None else piece)
        return len(data)

    def flush(self) -> None:
        pass

    def _run(self, seconds: float) -> None:
        """Run on by ``seconds``, in whole cycles (the simulator may stop half a cycle
        past a deadline, so each run is at least one cycle)."""
        cycles = round(seconds / self.uart_period)
        if cycles < 1:
            return
        self.now += cycles * self.uart_period
        self.sim.run_until(self.now)

    def read(self, n: int = 1) -> bytes:
        if not self._rx:
            self._run(4 * self.byte_time)
            idle_since = self.now - self._last_end
            if not self._queue and not self._sending and idle_since > self.timeout_time / 2:
                # Past the bridge's timeout for sure, so that the record says where it fired.
                self._run(
                    max(0.0, self._last_end + self.timeout_time + 4 * self.byte_time - self.now)
                )
                if self.line and self.line[-1] is not IDLE:
                    self.line.append(IDLE)
        data = bytes(self._rx[:n])
        del self._rx[:n]
        return data

    def drain(self) -> None:
        """Run on until the command line is sent and no byte comes back for 8 reads in a
        row: the bridge has answered every frame it took, whole, in :attr:`answered`."""
        quiet = 0
        while quiet < 8 or self.sending:
            quiet = 0 if self.read(1 << 16) else quiet + 1

    def close(self) -> None:
        if self._vcd is not None:
            self._vcd.__exit__(None, None, None)
            self._vcd = None


def model_difference(
    config: CrossbarConfig,
    line: list[int | None],
    answered: bytes,
    *,
    buffer_bytes: int,
    replay_bytes: int,
) -> str | None:
    """``None`` if the host-level model answers the recorded command ``line`` with the same
    bytes the gateware sent; otherwise where they first differ."""
    model = BoardLinkModel(config, buffer_bytes=buffer_bytes, replay_bytes=replay_bytes)
    out = bytearray()
    for event in line:
        if event is IDLE:
            model.timeout()
        else:
            out += model.feed(bytes([event]))
    if bytes(out) == bytes(answered):
        return None
    at = next(
        (k for k, (a, b) in enumerate(zip(out, answered, strict=False)) if a != b),
        min(len(out), len(answered)),
    )
    return (
        f"response line byte {at}: gateware {bytes(answered[at : at + 12]).hex(' ')}, "
        f"model {bytes(out[at : at + 12]).hex(' ')} ({len(answered)} and {len(out)} bytes)"
    )


@dataclass
class BridgeResult:
    """What came back: the engine's responses (through the host's transport), the cycles
    simulated, the bridge's sticky UART flags, the board's counters read at the end, the
    first difference from the golden engine and from the host-level model (``None``: none)."""

    responses: bytes
    cycles: int
    frame_error: bool
    overrun: bool
    counters: Counters | None = None
    difference: str | None = None
    model_difference: str | None = None
    #: The response line was compared with the model (not with bit flips on the line).
    model_compared: bool = True
    stats: LinkStats = field(default_factory=LinkStats)
    faults: dict = field(default_factory=dict)


def simulate_bridge(
    config: CrossbarConfig,
    commands: bytes,
    *,
    divisor: int = 4,
    uart_clock_ratio: int = 1,
    buffer_bytes: int = 128,
    replay_bytes: int = 512,
    timeout_bytes: int = 24,
    host_rate: float = 1.0,
    fault_rate: float = 0.0,
    fault_kinds: tuple[str, ...] = FAULT_KINDS,
    line_flips: float = 0.0,
    seed: int = 0,
    retries: int = 12,
    read_counters: bool = True,
    vcd: str | Path | None = None,
    options: EngineOptions | None = None,
) -> BridgeResult:
    """Send ``commands`` through a fresh :class:`~molxbar.boards.bridge.UARTBridge` with the
    host's :class:`~molxbar.host.link.SerialTransport`, bit-serial on both lines, and
    compare with the golden engine and the host-level model.

    Parameters
    ----------
    divisor, uart_clock_ratio
        UART clock cycles per bit, and UART clock cycles per engine cycle
        (:class:`~molxbar.boards.bridge.UARTBridge`).
    buffer_bytes, replay_bytes, timeout_bytes
        The bridge's link (:class:`~molxbar.boards.bridge.UARTBridge`).
    host_rate
        The host's baud rate relative to the bridge's (``1.03``: 3 % fast).
    fault_rate, fault_kinds, seed
        Faults on both lines (:class:`~molxbar.sim.link_faults.FaultyLine`): the chance
        that a frame written, or a response byte, meets one.
    line_flips
        The chance that a command byte has one of its ten bit times inverted on the line
        (:class:`BridgePort`); the response line is then not compared with the model.
    read_counters
        Read the board's counters at the end (over a fault-free line).
    options
        How the bridge's engine is built (:class:`~molxbar.hdl.options.EngineOptions`).
    """
    check_frames(
        Layout(config),
        max_payload=max_payload(buffer_bytes),
        slot_bytes=replay_slot(replay_bytes),
    )
    rng = np.random.default_rng(seed)
    dut = UARTBridge(
        config,
        divisor=divisor,
        uart_clock_ratio=uart_clock_ratio,
        buffer_bytes=buffer_bytes,
        replay_bytes=replay_bytes,
        timeout_bytes=timeout_bytes,
        options=options,
    )
    command_line = response_line = None
    if fault_rate:
        command_line = FaultyLine(rng, fault_rate, fault_kinds)
        # Per response byte: a frame of ~100 bytes meets about as many faults as a command.
        response_kinds = tuple(k for k in fault_kinds if k != "stall") or ("flip",)
        response_line = FaultyLine(rng, fault_rate / 50, response_kinds)
    port = BridgePort(
        dut,
        host_rate=host_rate,
        command_line=command_line,
        response_line=response_line,
        line_flips=line_flips,
        rng=rng,
        vcd=vcd,
    )
    serial = SerialTransport(
        port,
        baudrate=round(1 / (divisor * port.uart_period)),
        timeout=200 * port.byte_time,
        config=config,
        retries=retries,
        buffer_bytes=buffer_bytes,
        replay_bytes=replay_bytes,
        clock=port.clock,
    )
    expected = GoldenEngine(config).execute(commands)
    try:
        serial.send(commands)
        responses = serial.receive(len(expected))
        counters = None
        if read_counters:
            for line in (command_line, response_line):
                if line is not None:
                    line.rate = 0.0
            port.line_flips = 0.0
            counters = serial.read_counters()
        port.drain()  # answers to frames sent again that the host no longer waited for
    finally:
        port.close()
    faults = {}
    for line in (command_line, response_line):
        if line is not None:
            for kind, count in line.injected.items():
                faults[kind] = faults.get(kind, 0) + count
    if port.flipped:
        faults["line_bit"] = port.flipped
    return BridgeResult(
        responses=responses,
        cycles=port.cycles,
        frame_error=port.frame_error,
        overrun=port.overrun,
        counters=counters,
        difference=first_difference(config, commands, responses),
        model_difference=None
        if line_flips
        else model_difference(
            config,
            port.line,
            bytes(port.answered),
            buffer_bytes=buffer_bytes,
            replay_bytes=replay_bytes,
        ),
        model_compared=not line_flips,
        stats=serial.stats,
        faults=faults,
    )


async def _ticks(ctx, count: int, domain: str = "sync") -> None:
    """Wait ``count`` cycles of ``domain``, one await per cycle: a background testbench may
    be abandoned at any await, which ``ctx.tick().repeat()`` does not survive cleanly."""
    for _ in range(count):
        await ctx.tick(domain)
