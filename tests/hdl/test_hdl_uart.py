"""The UART receiver and transmitter in the Amaranth simulator, against bit-serial waveforms."""

import gc

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from molxbar.hdl.uart import MIN_DIVISOR, UARTReceiver, UARTTransmitter, uart_divisor


def frame_bits(byte: int, stop: int = 1) -> list[int]:
    """Line levels of one frame: start bit, 8 data bits LSB first, stop bit."""
    return [0, *((byte >> k) & 1 for k in range(8)), stop]


async def drive_line(ctx, line, frames, divisor, *, rate=1.0, gap=0):
    """Put ``frames`` (lists of bit levels) on ``line``, each bit ``divisor / rate`` cycles
    long (rounded at each edge, so a fractional bit time accumulates like a real clock), with
    ``gap`` idle cycles between frames."""
    period = divisor / rate
    for bits in frames:
        start = 0.0
        elapsed = 0
        for k, level in enumerate(bits):
            ctx.set(line, level)
            end = round(start + (k + 1) * period)
            await ctx.tick().repeat(end - elapsed)
            elapsed = end
        ctx.set(line, 1)
        if gap:
            await ctx.tick().repeat(gap)


def run(dut, *testbenches, background=()):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in background:
        sim.add_testbench(getattr(bench, "count", bench), background=True)
    for bench in testbenches:
        sim.add_testbench(bench)
    sim.run()


class PulseCounter:
    """Counts one-cycle pulses of a receiver's ``frame_error`` and ``overrun``."""

    def __init__(self, rx: UARTReceiver) -> None:
        self.rx = rx
        self.frame_errors = 0
        self.overruns = 0

    async def count(self, ctx):
        async for _, _, fe, ov in ctx.tick().sample(self.rx.frame_error, self.rx.overrun):
            self.frame_errors += fe
            self.overruns += ov


async def collect(ctx, port, count, *, max_stall=0, rng=None, limit=200_000):
    """Take ``count`` payloads from a stream; before each, hold ``ready`` low for a random
    number of cycles below ``max_stall``."""
    out = []
    for _ in range(count):
        stall = int(rng.integers(0, max_stall)) if max_stall else 0
        ctx.set(port.ready, 0)
        if stall:
            await ctx.tick().repeat(stall)
        ctx.set(port.ready, 1)
        for _ in range(limit):
            _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
            if valid:
                out.append(payload)
                break
        else:
            raise TimeoutError(f"{len(out)} of {count} payloads, then none for {limit} cycles")
    ctx.set(port.ready, 0)
    return out


async def offer(ctx, port, items, *, valid_p=1.0, rng=None):
    """Offer ``items`` on a stream, each for as long as it takes, with idle cycles between."""
    for item in items:
        while rng is not None and rng.random() >= valid_p:
            await ctx.tick()
        ctx.set(port.valid, 1)
        ctx.set(port.payload, item)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


# Receiver ------------------------------------------------------------------------------------


@pytest.mark.parametrize("divisor", [4, 5, 12, 31])
@pytest.mark.parametrize("rate", [1.0, 0.97, 1.03])
def test_receiver_decodes_frames_within_baud_tolerance(divisor, rate):
    seed = divisor * 100 + int(rate * 100)
    rng = np.random.default_rng(seed)
    data = bytes([0x00, 0xFF, 0x55, 0xAA]) + rng.integers(0, 256, 20, dtype=np.uint8).tobytes()
    dut = UARTReceiver(divisor)
    pulses = PulseCounter(dut)
    got = []

    async def sender(ctx):
        await ctx.tick().repeat(3)
        await drive_line(ctx, dut.rx, [frame_bits(b) for b in data], divisor, rate=rate)

    async def receiver(ctx):
        got.extend(await collect(ctx, dut.data, len(data)))

    run(dut, sender, receiver, background=[pulses])
    assert bytes(got) == data, f"seed {seed}"
    assert (pulses.frame_errors, pulses.overruns) == (0, 0)


def test_receiver_drops_a_frame_with_a_low_stop_bit_and_reports_it():
    divisor = 8
    dut = UARTReceiver(divisor)
    pulses = PulseCounter(dut)
    got = []
    frames = [frame_bits(0x12), frame_bits(0x34, stop=0), [1] * 3, frame_bits(0x56)]

    async def sender(ctx):
        await drive_line(ctx, dut.rx, frames, divisor)
        await ctx.tick().repeat(4 * divisor)

    async def receiver(ctx):
        got.extend(await collect(ctx, dut.data, 2))

    run(dut, sender, receiver, background=[pulses])
    assert bytes(got) == b"\x12\x56"
    assert (pulses.frame_errors, pulses.overruns) == (1, 0)


def test_receiver_waits_out_a_break_and_ignores_glitches():
    divisor = 8
    dut = UARTReceiver(divisor)
    pulses = PulseCounter(dut)
    got = []
    # A 30-bit break (one framing error), idle, a 2-cycle glitch (nothing), a good byte.
    frames = [[0] * 30 + [1], [1] * 2, [0] * 1, [1] * 4, frame_bits(0xC3)]

    async def sender(ctx):
        await drive_line(ctx, dut.rx, frames[:2], divisor)
        ctx.set(dut.rx, 0)
        await ctx.tick().repeat(2)  # shorter than half a bit
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(4 * divisor)
        await drive_line(ctx, dut.rx, frames[4:], divisor)
        await ctx.tick().repeat(4 * divisor)

    async def receiver(ctx):
        got.extend(await collect(ctx, dut.data, 1))

    run(dut, sender, receiver, background=[pulses])
    assert bytes(got) == b"\xc3"
    assert (pulses.frame_errors, pulses.overruns) == (1, 0)


def test_receiver_overrun_keeps_the_older_byte_and_reports_it():
    divisor = 6
    dut = UARTReceiver(divisor)
    pulses = PulseCounter(dut)
    got = []

    async def sender(ctx):
        await drive_line(ctx, dut.rx, [frame_bits(b) for b in b"\x01\x02\x03"], divisor)
        await ctx.tick().repeat(5 * divisor)
        ctx.set(dut.data.ready, 1)  # take the held byte, then everything that follows
        await drive_line(ctx, dut.rx, [frame_bits(0x04)], divisor)

    async def receiver(ctx):
        seen = []
        while len(seen) < 2:
            _, _, valid, ready, payload = await ctx.tick().sample(
                dut.data.valid, dut.data.ready, dut.data.payload
            )
            if valid and ready:
                seen.append(payload)
        got.extend(seen)

    run(dut, sender, receiver, background=[pulses])
    assert bytes(got) == b"\x01\x04"
    assert (pulses.frame_errors, pulses.overruns) == (0, 2)


def test_receiver_loses_nothing_when_stalls_are_shorter_than_a_frame():
    divisor = 5
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 60, dtype=np.uint8).tobytes()
    dut = UARTReceiver(divisor)
    pulses = PulseCounter(dut)
    got = []

    async def sender(ctx):
        await drive_line(ctx, dut.rx, [frame_bits(b) for b in data], divisor)

    async def receiver(ctx):
        # ready low for up to 8 bit times: each byte still leaves before the next one ends
        got.extend(await collect(ctx, dut.data, len(data), max_stall=8 * divisor, rng=rng))

    run(dut, sender, receiver, background=[pulses])
    assert bytes(got) == data, "seed 7"
    assert (pulses.frame_errors, pulses.overruns) == (0, 0)


# Transmitter ---------------------------------------------------------------------------------


@pytest.mark.parametrize("divisor", [4, 9, 16])
def test_transmitter_frames_back_to_back(divisor):
    rng = np.random.default_rng(divisor)
    data = rng.integers(0, 256, 12, dtype=np.uint8).tobytes()
    dut = UARTTransmitter(divisor)
    levels = []

    async def source(ctx):
        await offer(ctx, dut.data, data)

    async def line(ctx):
        for _ in range(10 * divisor * len(data) + 2 * divisor):
            _, _, tx, busy = await ctx.tick().sample(dut.tx, dut.busy)
            levels.append((tx, busy))

    run(dut, source, line)
    tx = [t for t, _ in levels]
    first = tx.index(0)
    assert first == 1, "the start bit follows the accepted byte by one cycle"
    for n, byte in enumerate(data):
        # Every bit lasts exactly `divisor` cycles: sample the first and last cycle of each.
        base = first + 10 * divisor * n
        for k, level in enumerate(frame_bits(byte)):
            span = tx[base + k * divisor : base + (k + 1) * divisor]
            assert span == [level] * divisor, f"byte {n} bit {k}"
    end = first + 10 * divisor * len(data)
    assert set(tx[end:]) == {1}
    assert [b for _, b in levels[end:]] == [0] * (len(levels) - end)


@pytest.mark.parametrize("divisor", [4, 7, 13])
def test_loopback_with_back_pressure_loses_nothing(divisor):
    rng = np.random.default_rng(100 + divisor)
    data = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(divisor)
    m.submodules.rx = rx = UARTReceiver(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    pulses = PulseCounter(rx)
    got = []

    async def source(ctx):
        await offer(ctx, tx.data, data, valid_p=0.3, rng=rng)

    async def sink(ctx):
        got.extend(await collect(ctx, rx.data, len(data), max_stall=8 * divisor, rng=rng))

    run(m, source, sink, background=[pulses])
    assert bytes(got) == data, f"seed {100 + divisor}"
    assert (pulses.frame_errors, pulses.overruns) == (0, 0)


# Parameters ----------------------------------------------------------------------------------


def test_divisor_from_clock_and_baud():
    assert uart_divisor(12e6, 115_200) == 104
    assert uart_divisor(12e6, 1_000_000) == 12
    assert uart_divisor(12e6, 3_000_000) == MIN_DIVISOR
    assert uart_divisor(100e6, 1_000_000) == 100
    with pytest.raises(ValueError, match="too fast"):
        uart_divisor(12e6, 6_000_000)
    with pytest.raises(ValueError, match="off by"):
        uart_divisor(12e6, 2_500_000)  # 4.8 cycles per bit
    with pytest.raises(ValueError, match="positive"):
        uart_divisor(12e6, 0)


@pytest.mark.parametrize("cls", [UARTReceiver, UARTTransmitter])
def test_bad_divisor_is_rejected(cls):
    with pytest.raises(ValueError, match="divisor = 3"):
        cls(3)
    with pytest.raises(TypeError, match="divisor must be an int"):
        cls(4.0)
    with pytest.raises(TypeError, match="divisor must be an int"):
        cls(True)
    gc.collect()  # a rejected component must not warn later that it was never used
