"""The board logic in the Amaranth simulator, bit-serial on both serial lines.

A host model sends the command bytes as UART frames on the bridge's ``rx`` line and decodes
the frames on ``tx``, exactly as a serial port would; nothing enters or leaves the design
except through those two lines. The host keeps at most ``window`` command bytes unanswered
(the bridge's flow-control rule, see :mod:`molxbar.boards.bridge`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from amaranth.sim import Simulator

from molxbar.boards.bridge import UARTBridge
from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.options import EngineOptions
from molxbar.protocol.framing import CommandFramer, Unit
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import Layout

__all__ = ["BridgeResult", "answer_points", "simulate_bridge"]


@dataclass(frozen=True)
class BridgeResult:
    """What came back on ``tx``, the cycle its last expected byte was complete, and the
    bridge's error flags at the end."""

    responses: bytes
    cycles: int
    frame_error: bool
    overrun: bool


def answer_points(config: CrossbarConfig, commands: bytes) -> list[int]:
    """For each command byte, how many response bytes must have arrived before the byte
    counts as answered: the golden engine's response total once the unit of the byte (its
    command, or batch vector: :mod:`molxbar.protocol.framing`) has been answered. Bytes of
    an unfinished command at the end are never answered (a very large number)."""
    return _answered(config, commands)[1]


def _answered(config: CrossbarConfig, commands: bytes) -> tuple[list[Unit], list[int], bytes]:
    """The units of ``commands``, their :func:`answer_points` and the golden responses, from
    one pass of the framer and the golden engine."""
    golden = GoldenEngine(config)
    units = CommandFramer(Layout(config)).feed(commands)
    need = [1 << 62] * len(commands)
    responses = bytearray()
    for unit in units:
        responses += golden.execute(commands[unit.start : unit.end])
        need[unit.start : unit.end] = [len(responses)] * (unit.end - unit.start)
    return units, need, bytes(responses)


def simulate_bridge(
    config: CrossbarConfig,
    commands: bytes,
    *,
    divisor: int = 4,
    fifo_depth: int = 64,
    window: int | None = None,
    host_rate: float = 1.0,
    max_cycles: int | None = None,
    stop_on_error: bool = False,
    vcd: str | Path | None = None,
    options: EngineOptions | None = None,
) -> BridgeResult:
    """Send ``commands`` to a fresh :class:`~molxbar.boards.bridge.UARTBridge` over its
    ``rx`` line and decode every response byte from its ``tx`` line.

    Parameters
    ----------
    divisor
        Clock cycles per bit of the bridge's UART.
    fifo_depth
        The bridge's command FIFO depth.
    window
        Most command bytes the host leaves unanswered; ``fifo_depth`` by default. A larger
        window lets the host overrun the bridge (the result shows it).
    host_rate
        The host's baud rate relative to the bridge's (``1.03``: 3 % fast).
    max_cycles
        Give up (``TimeoutError``) after this many cycles; by default twice what the line
        needs for every command and response byte, plus a margin.
    stop_on_error
        End the run (and return what came back so far) as soon as the bridge reports a
        framing error or an overrun.
    options
        How the bridge's engine is built (:class:`~molxbar.hdl.options.EngineOptions`).
    """
    window = fifo_depth if window is None else window
    units, need, expected = _answered(config, commands)
    longest = max((unit.end - unit.start for unit in units), default=0)
    if longest > window:
        raise ValueError(
            f"a command of {longest} bytes does not fit the window of {window} bytes: "
            f"the host could not send it without overrunning the bridge"
        )
    dut = UARTBridge(config, divisor=divisor, fifo_depth=fifo_depth, options=options)
    frame_cycles = 10 * divisor
    limit = (
        max_cycles
        if max_cycles is not None
        else 2 * frame_cycles * (len(commands) + len(expected)) + 200 * frame_cycles + 10_000
    )
    received = bytearray()
    state = {"cycles": 0, "last": 0, "frame_error": 0, "overrun": 0, "finished": False}
    bit_time = divisor / host_rate

    async def host_tx(ctx):
        elapsed, clock = 0, 0.0  # whole cycles waited, ideal time in cycles
        for j, byte in enumerate(commands):
            # Wait until fewer than `window` bytes are unanswered.
            while j - bisect.bisect_right(need, len(received)) >= window:
                await _ticks(ctx, divisor)
                elapsed += divisor
                clock = float(elapsed)
            for level in (0, *((byte >> k) & 1 for k in range(8)), 1):
                ctx.set(dut.rx, level)
                clock += bit_time
                step = max(1, round(clock) - elapsed)
                await _ticks(ctx, step)
                elapsed += step

    async def host_rx(ctx):
        while True:
            if len(received) >= len(expected):
                # Ten quiet frame times: a start bit now is a surplus byte.
                for _ in range(10 * frame_cycles):
                    await ctx.tick()
                    if not ctx.get(dut.tx):
                        break
                else:
                    state["finished"] = True
                    return
            else:
                await ctx.changed(dut.tx)
                if ctx.get(dut.tx):
                    continue
            # The line fell: sample the middle of each bit, the stop bit last.
            bits = []
            for k in range(10):
                await _ticks(ctx, divisor // 2 if k == 0 else divisor)
                bits.append(ctx.get(dut.tx))
            if bits[0] != 0 or bits[9] != 1:
                raise AssertionError(f"malformed frame {bits} after {len(received)} response bytes")
            received.append(sum(b << k for k, b in enumerate(bits[1:9])))
            if len(received) == len(expected):
                state["last"] = state["cycles"]

    async def monitor(ctx):
        # Counts cycles, keeps the error flags, and ends the run: when the host has every
        # response (and a quiet line after it), on an error if asked, or at the cycle limit.
        while not state["finished"]:
            _, _, fe, ov = await ctx.tick().sample(dut.frame_error, dut.overrun)
            state["frame_error"], state["overrun"] = fe, ov
            state["cycles"] += 1
            if stop_on_error and (fe or ov):
                return
            if state["cycles"] > limit:
                raise TimeoutError(
                    f"the bridge did not finish within {limit} cycles ({len(received)} of "
                    f"{len(expected)} response bytes)"
                )

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host_tx, background=True)
    sim.add_testbench(host_rx, background=True)
    sim.add_testbench(monitor)
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    return BridgeResult(
        bytes(received), state["last"], bool(state["frame_error"]), bool(state["overrun"])
    )


async def _ticks(ctx, count: int) -> None:
    """Wait ``count`` cycles, one await per cycle: a background testbench may be abandoned
    at any await, which ``ctx.tick().repeat()`` does not survive cleanly."""
    for _ in range(count):
        await ctx.tick()
