"""Speck64/128 gateware (hdl/speck.py) against the golden noise generator (emulator/noise.py)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from molxbar.emulator import noise
from molxbar.hdl.speck import SpeckEncrypt, SpeckKeySchedule, SpeckWords
from tests.support.construction import assert_construction_fails

# Beaulieu et al. 2013, appendix C: Speck64/128 test vector.
KEY = (0x1B1A1918, 0x13121110, 0x0B0A0908, 0x03020100)  # (l2, l1, l0, k0)
PLAINTEXT = (0x3B726574, 0x7475432D)
CIPHERTEXT = (0x8C6FA548, 0x454E028B)
U32_MAX = 2**32 - 1


def simulate(dut, testbench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


class CipherHarness(wiring.Component):
    """A key schedule feeding an encryption core: Speck64/128 with an arbitrary key."""

    def __init__(self, unroll: int) -> None:
        self.key_schedule = SpeckKeySchedule(unroll=unroll)
        self.encrypt = SpeckEncrypt(unroll=unroll)
        super().__init__({})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.key_schedule = self.key_schedule
        m.submodules.encrypt = self.encrypt
        wiring.connect(m, self.key_schedule.round_keys, self.encrypt.round_keys)
        return m


async def expand_key(ctx, schedule: SpeckKeySchedule, key: tuple[int, int, int, int]) -> None:
    """Start the key schedule and wait for it; checks the documented busy time."""
    for name, value in zip(("l2", "l1", "l0", "k0"), key, strict=True):
        ctx.set(getattr(schedule.key, name), value)
    ctx.set(schedule.start, 1)
    await ctx.tick()
    # A start while busy must be ignored, whatever the key.
    for name in ("l2", "l1", "l0", "k0"):
        ctx.set(getattr(schedule.key, name), 0xDEADBEEF)
    busy_cycles = 0
    while ctx.get(schedule.busy) and busy_cycles <= schedule.iterations:
        busy_cycles += 1
        await ctx.tick()
    ctx.set(schedule.start, 0)
    assert busy_cycles == schedule.iterations


@pytest.mark.parametrize("unroll", [1, 2, 3, 5, 27])
def test_key_schedule_matches_golden(unroll):
    rng = np.random.default_rng(0x5EED)
    keys = [
        KEY,
        (noise.NOISE_KEY_DOMAIN, 0, 0, 0),
        (noise.NOISE_KEY_DOMAIN, 0, U32_MAX, U32_MAX),
        tuple(int(w) for w in rng.integers(0, 2**32, 4)),
    ]
    dut = SpeckKeySchedule(unroll=unroll)

    async def testbench(ctx):
        for key in keys:
            await expand_key(ctx, dut, key)
            got = []
            ctx.set(dut.round_keys.addr, 0)
            for row in range(dut.iterations):
                await ctx.tick()
                ctx.set(dut.round_keys.addr, (row + 1) % dut.iterations)
                got.extend(int(w) for w in ctx.get(dut.round_keys.data))
            expected = [int(k) for k in noise.speck64_round_keys(*key)]
            assert got[: noise.SPECK64_ROUNDS] == expected, f"key {key}"

    simulate(dut, testbench)


@pytest.mark.parametrize("unroll", [1, 3, 4, 27])
def test_encrypt_published_vector(unroll):
    dut = CipherHarness(unroll)
    encrypt = dut.encrypt

    async def testbench(ctx):
        await expand_key(ctx, dut.key_schedule, KEY)
        ctx.set(encrypt.i.payload, {"x": PLAINTEXT[0], "y": PLAINTEXT[1]})
        ctx.set(encrypt.i.valid, 1)
        assert ctx.get(encrypt.i.ready)
        await ctx.tick()
        ctx.set(encrypt.i.valid, 0)
        ctx.set(encrypt.o.ready, 1)
        latency = 1
        while not ctx.get(encrypt.o.valid) and latency <= encrypt.iterations:
            latency += 1
            await ctx.tick()
        result = ctx.get(encrypt.o.payload)
        assert (result.ciphertext.x, result.ciphertext.y) == CIPHERTEXT
        assert (result.plaintext.x, result.plaintext.y) == PLAINTEXT
        assert latency == encrypt.iterations
        await ctx.tick()
        assert not ctx.get(encrypt.o.valid) and not ctx.get(encrypt.busy)

    simulate(dut, testbench)


@pytest.mark.parametrize("unroll", [1, 4, 27])
def test_encrypt_random_blocks_with_stalls(unroll):
    """Arbitrary 64-bit blocks, random gaps on the input and back-pressure on the output."""
    seed = 1000 + unroll
    rng = np.random.default_rng(seed)
    key = tuple(int(w) for w in rng.integers(0, 2**32, 4))
    blocks = rng.integers(0, 2**32, (24, 2), dtype=np.uint32)
    xs, ys = noise.speck64_encrypt(noise.speck64_round_keys(*key), blocks[:, 0], blocks[:, 1])
    expected = [
        ((int(p[0]), int(p[1])), (int(x), int(y))) for p, x, y in zip(blocks, xs, ys, strict=True)
    ]
    dut = CipherHarness(unroll)
    encrypt = dut.encrypt

    async def testbench(ctx):
        await expand_key(ctx, dut.key_schedule, key)
        sent, got = 0, []
        for _ in range(20 * len(blocks) * encrypt.iterations):
            if len(got) == len(expected):
                break
            offer = sent < len(blocks) and rng.random() < 0.7
            if offer:
                ctx.set(encrypt.i.payload, {"x": int(blocks[sent, 0]), "y": int(blocks[sent, 1])})
            ctx.set(encrypt.i.valid, offer)
            ctx.set(encrypt.o.ready, rng.random() < 0.5)
            if offer and ctx.get(encrypt.i.ready):
                sent += 1
            if ctx.get(encrypt.o.valid) and ctx.get(encrypt.o.ready):
                r = ctx.get(encrypt.o.payload)
                got.append(((r.plaintext.x, r.plaintext.y), (r.ciphertext.x, r.ciphertext.y)))
            await ctx.tick()
        assert got == expected, f"rng seed {seed}"

    simulate(dut, testbench)


def run_operations(dut: SpeckWords, operations, *, rng, p_ready: float, p_gap: float) -> list:
    """Run ``operations`` ((seed, counter) pairs) on ``dut``, back to back unless a random gap
    is drawn, with random back-pressure and spurious starts while busy. Checks the stream
    rules on every cycle and returns the transferred words as (axis, index, word) tuples."""
    received = []
    words = dut.rows + dut.cols
    max_cycles = 10 * len(operations) * ((words + 1) * dut.iterations + 2) + 100

    async def testbench(ctx):
        pending = deque(operations)
        stalled = None  # payload offered but not taken in the previous cycle
        cycles = 0
        while pending or ctx.get(dut.busy):
            cycles += 1
            assert cycles < max_cycles, "timed out"
            busy = ctx.get(dut.busy)
            if busy:
                start = rng.random() < 0.1  # must be ignored
            else:
                start = bool(pending) and rng.random() >= p_gap
            junk = tuple(int(v) for v in rng.integers(0, 2**32, 2))
            seed, counter = pending.popleft() if start and not busy else junk
            ctx.set(dut.seed, seed)
            ctx.set(dut.counter, counter)
            ctx.set(dut.start, start)
            ctx.set(dut.words.ready, 0)
            valid = ctx.get(dut.words.valid)
            ready = rng.random() < p_ready
            ctx.set(dut.words.ready, ready)
            assert ctx.get(dut.words.valid) == valid, "valid depends on ready"
            payload = ctx.get(dut.words.payload.as_value()) if valid else None
            if stalled is not None:
                assert valid and payload == stalled, "payload changed while stalled"
            if valid and ready:
                word = ctx.get(dut.words.payload)
                received.append((word.axis, word.index, word.word))
            stalled = payload if valid and not ready else None
            await ctx.tick()

    simulate(dut, testbench)
    return received


def golden_words(operations, rows: int, cols: int) -> list:
    expected = []
    for seed, counter in operations:
        row_words, col_words = noise.axis_words(seed, counter, rows, cols)
        expected += [(noise.AXIS_ROW, i, int(w)) for i, w in enumerate(row_words)]
        expected += [(noise.AXIS_COL, j, int(w)) for j, w in enumerate(col_words)]
    return expected


@pytest.mark.parametrize(
    ("rows", "cols", "unroll", "n_random"),
    [
        (4, 3, 1, 3),
        (4, 3, 3, 3),
        (4, 3, 27, 3),
        (8, 8, 1, 2),
        (8, 8, 3, 2),
        (8, 8, 27, 2),
        (4, 3, 5, 2),
        (8, 8, 10, 2),
        (64, 64, 1, 1),
        (64, 64, 3, 1),
        (64, 64, 27, 2),
    ],
)
def test_words_match_golden(rows, cols, unroll, n_random):
    seed = rows * 1000 + cols * 100 + unroll
    rng = np.random.default_rng(seed)
    operations = [(0, 0), (U32_MAX, U32_MAX), (1, 0)]
    operations += [tuple(int(v) for v in rng.integers(0, 2**32, 2)) for _ in range(n_random)]
    dut = SpeckWords(rows=rows, cols=cols, unroll=unroll)
    got = run_operations(dut, operations, rng=rng, p_ready=0.6, p_gap=0.2)
    expected = golden_words(operations, rows, cols)
    assert len(got) == len(expected), f"rng seed {seed}"
    for n, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"rng seed {seed}: word {n} of {operations}: got {g}, expected {e}"


@pytest.mark.parametrize("unroll", [1, 3, 27])
def test_words_timing(unroll):
    """With ``ready`` high: word ``w`` valid in cycle ``(w + 2) * n + 1`` after ``start``, and
    the next ``start`` accepted ``(rows + cols + 1) * n + 2`` cycles after the first."""
    rows, cols = 4, 3
    dut = SpeckWords(rows=rows, cols=cols, unroll=unroll)
    n = dut.iterations

    async def testbench(ctx):
        ctx.set(dut.words.ready, 1)
        ctx.set(dut.start, 1)
        valid_cycles, cycle = [], 0
        await ctx.tick()
        cycle += 1
        while ctx.get(dut.busy) and cycle < 10 * (rows + cols + 2) * n:
            ctx.set(dut.start, 1)  # ignored while busy
            if ctx.get(dut.words.valid):
                valid_cycles.append(cycle)
            await ctx.tick()
            cycle += 1
        assert valid_cycles == [(w + 2) * n + 1 for w in range(rows + cols)]
        assert cycle == (rows + cols + 1) * n + 2

    simulate(dut, testbench)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: SpeckWords(rows=4, cols=4, unroll=0), ValueError, r"unroll = 0 is out of range"),
        (lambda: SpeckEncrypt(unroll=28), ValueError, r"unroll = 28 is out of range"),
        (lambda: SpeckWords(rows=0, cols=4), ValueError, r"rows = 0 is out of range"),
        (lambda: SpeckWords(rows=4, cols=65537), ValueError, r"cols = 65537 is out of range"),
        (lambda: SpeckKeySchedule(unroll=1.5), TypeError, r"unroll must be an int, not 1.5"),
        (lambda: SpeckWords(rows=True, cols=4), TypeError, r"rows must be an int, not True"),
    ],
)
def test_parameter_errors(build, error, match):
    assert_construction_fails(build, error, match)


def test_converts_to_verilog():
    text = verilog.convert(SpeckWords(rows=64, cols=64, unroll=1), emit_src=False)
    for port in ("start", "seed", "counter", "busy", "words__valid", "words__ready"):
        assert port in text
