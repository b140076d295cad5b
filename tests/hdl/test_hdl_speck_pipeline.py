"""The pipelined Speck64/128 gateware (hdl/speck_pipeline.py) against the golden noise
generator (emulator/noise.py), cycle by cycle.

:class:`SpeckPipeline` on the published test vector and on a new random key every cycle;
:class:`PipelinedSpeckWords` on whole operations, each word checked for its value and for
the exact cycle it is valid in (``27 + t`` after its start), back to back and with gaps.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from molxbar.emulator import noise
from molxbar.hdl.speck_pipeline import PipelinedSpeckWords, SpeckPipeline
from tests.support.construction import assert_construction_fails

# Beaulieu et al. 2013, appendix C: Speck64/128 test vector.
KEY = (0x1B1A1918, 0x13121110, 0x0B0A0908, 0x03020100)  # (l2, l1, l0, k0)
PLAINTEXT = (0x3B726574, 0x7475432D)
CIPHERTEXT = (0x8C6FA548, 0x454E028B)
U32_MAX = 2**32 - 1
LATENCY = 27


def simulate(dut, testbench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def golden_encrypt(keys: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Ciphertexts of ``blocks`` (``(n, lanes, 2)``: x, y) under ``keys`` (``(n, 4)``:
    l2, l1, l0, k0), block ``(c, lane)`` under key ``c``; same shape as ``blocks``."""
    round_keys = noise.speck64_round_keys(*keys.T)  # (27, n)
    x, y = noise.speck64_encrypt(round_keys, blocks[:, :, 0].T, blocks[:, :, 1].T)
    return np.stack([x.T, y.T], axis=-1)


def set_pipeline_input(ctx, dut: SpeckPipeline, valid: bool, key, blocks) -> None:
    ctx.set(dut.i.valid, bool(valid))
    for name, value in zip(("l2", "l1", "l0", "k0"), key, strict=True):
        ctx.set(getattr(dut.i.payload.key, name), int(value))
    for lane, (x, y) in enumerate(blocks):
        ctx.set(dut.i.payload.plaintexts[lane], {"x": int(x), "y": int(y)})


def test_latency_attributes():
    assert SpeckPipeline.LATENCY == PipelinedSpeckWords.LATENCY == LATENCY


@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_pipeline_published_vector(lanes):
    """Lane 0 encrypts the published block, the others other blocks under the same key; the
    result is valid in exactly one cycle, 27 cycles after the input."""
    others = [(lane, 0x01234567 * lane & U32_MAX) for lane in range(1, lanes)]
    blocks = [PLAINTEXT, *others]
    expected = golden_encrypt(np.array([KEY], dtype=np.uint32), np.array([blocks], np.uint32))[0]
    dut = SpeckPipeline(lanes)

    async def testbench(ctx):
        assert ctx.get(dut.i.ready)
        set_pipeline_input(ctx, dut, True, KEY, blocks)
        valid_cycles = []
        for cycle in range(LATENCY + 4):
            if ctx.get(dut.o.valid):
                valid_cycles.append(cycle)
                results = ctx.get(dut.o.payload)
                got = [(r.ciphertext.x, r.ciphertext.y) for r in results]
                assert got[0] == CIPHERTEXT
                assert got == [tuple(int(v) for v in block) for block in expected]
                assert [(r.plaintext.x, r.plaintext.y) for r in results] == blocks
            await ctx.tick()
            set_pipeline_input(ctx, dut, False, (U32_MAX,) * 4, [(U32_MAX, U32_MAX)] * lanes)
        assert valid_cycles == [LATENCY]

    simulate(dut, testbench)


@pytest.mark.parametrize("lanes", [1, 2])
def test_pipeline_new_key_every_cycle(lanes, rng):
    """A random key, random blocks and a random ``valid`` in every cycle: the output of
    cycle ``c`` is the input of cycle ``c - 27``, exactly."""
    cycles = 80
    valids = rng.random(cycles) < 0.8
    keys = rng.integers(0, 2**32, (cycles, 4), dtype=np.uint32)
    blocks = rng.integers(0, 2**32, (cycles, lanes, 2), dtype=np.uint32)
    ciphertexts = golden_encrypt(keys, blocks)
    dut = SpeckPipeline(lanes)

    async def testbench(ctx):
        for cycle in range(cycles + LATENCY):
            if cycle < cycles:
                set_pipeline_input(ctx, dut, valids[cycle], keys[cycle], blocks[cycle])
            else:
                ctx.set(dut.i.valid, 0)
            source = cycle - LATENCY
            expect_valid = source >= 0 and bool(valids[source])
            assert ctx.get(dut.o.valid) == expect_valid, f"cycle {cycle}"
            if expect_valid:
                results = ctx.get(dut.o.payload)
                got = [
                    ((r.plaintext.x, r.plaintext.y), (r.ciphertext.x, r.ciphertext.y))
                    for r in results
                ]
                want = [
                    (tuple(int(v) for v in p), tuple(int(v) for v in c))
                    for p, c in zip(blocks[source], ciphertexts[source], strict=True)
                ]
                assert got == want, f"cycle {cycle}, input of cycle {source}"
            await ctx.tick()

    simulate(dut, testbench)


def run_operations(dut: PipelinedSpeckWords, operations, gaps, rng) -> dict:
    """Start ``operations`` ((seed, counter) pairs), each ``gaps[n]`` cycles after the first
    cycle it could be accepted, with spurious starts and junk keys while ``feeding`` and
    random ``ready``, and watch until ``busy`` has been low for a few cycles. Returns, cycle
    by cycle, what the outputs showed (``row[w]``/``col[w]``: the words valid on way ``w``,
    by cycle), and the accepted starts."""
    trace = {
        "accepted": [],
        "row": [{} for _ in range(dut.ways)],
        "col": [{} for _ in range(dut.ways)],
        "feeding": [],
        "busy": [],
    }
    max_cycles = len(operations) * (dut.cycles + max(gaps, default=0) + 1) + 3 * LATENCY
    idle_cycles = 3  # watched after the last `busy`, to see that nothing more comes out

    async def testbench(ctx):
        pending = list(zip(operations, gaps, strict=True))
        waited = 0
        cycle = 0
        idle = 0
        while pending or idle < idle_cycles or cycle <= LATENCY:
            assert cycle < max_cycles, "timed out"
            feeding = ctx.get(dut.feeding)
            seed, counter = (int(v) for v in rng.integers(0, 2**32, 2))
            start = bool(rng.random() < 0.5)  # ignored while feeding, or with nothing pending
            if pending and not feeding:
                (seed, counter), gap = pending[0]
                start = waited == gap
                waited += 1
                if start:
                    pending.pop(0)
                    waited = 0
                    trace["accepted"].append((cycle, seed, counter))
            elif not pending:
                start = False
            ctx.set(dut.start, start)
            ctx.set(dut.seed, seed)
            ctx.set(dut.counter, counter)
            for axis in ("row", "col"):
                for way, port in enumerate(getattr(dut, axis)):
                    ctx.set(port.ready, bool(rng.random() < 0.5))  # ignored
                    if ctx.get(port.valid):
                        word = ctx.get(port.payload)
                        trace[axis][way][cycle] = (word.axis, word.index, word.word)
            if feeding:
                trace["feeding"].append(cycle)
            busy = ctx.get(dut.busy)
            if busy:
                trace["busy"].append(cycle)
            idle = 0 if busy or pending else idle + 1
            await ctx.tick()
            cycle += 1

    simulate(dut, testbench)
    return trace


def expected_trace(accepted, rows: int, cols: int, ways: int = 1) -> dict:
    """Words by way and cycle, and the cycles of ``feeding`` and ``busy``, from the accepted
    starts: word ``i`` of an operation started in cycle ``a`` is valid on way ``i % ways`` in
    cycle ``a + 27 + i // ways``; an operation feeds ``ceil(max(rows, cols) / ways)``
    cycles."""
    cycles = -(-max(rows, cols) // ways)
    trace = {
        "row": [{} for _ in range(ways)],
        "col": [{} for _ in range(ways)],
        "feeding": set(),
        "busy": set(),
    }
    for cycle, seed, counter in accepted:
        row_words, col_words = noise.axis_words(seed, counter, rows, cols)
        for axis, name, words in (
            (noise.AXIS_ROW, "row", row_words),
            (noise.AXIS_COL, "col", col_words),
        ):
            for i, word in enumerate(words):
                trace[name][i % ways][cycle + LATENCY + i // ways] = (axis, i, int(word))
        trace["feeding"] |= set(range(cycle + 1, cycle + cycles))
        trace["busy"] |= set(range(cycle + 1, cycle + cycles + LATENCY))
    return trace


def check_trace(got: dict, rows: int, cols: int, ways: int = 1) -> None:
    want = expected_trace(got["accepted"], rows, cols, ways)
    for axis in ("row", "col"):
        for way in range(ways):
            got_way, want_way = got[axis][way], want[axis][way]
            assert got_way.keys() == want_way.keys(), f"{axis}[{way}] valid in the wrong cycles"
            for cycle, word in want_way.items():
                assert got_way[cycle] == word, f"{axis}[{way}], cycle {cycle}: {got['accepted']}"
    assert got["feeding"] == sorted(want["feeding"])
    assert got["busy"] == sorted(want["busy"])


OPERATIONS = [(0, 0), (U32_MAX, U32_MAX), (0, U32_MAX), (U32_MAX, 0), (0x12345678, 7)]


@pytest.mark.parametrize(("rows", "cols"), [(64, 64), (3, 5), (5, 3), (1, 1), (1, 4), (4, 1)])
def test_words_match_golden(rows, cols, rng):
    """Every word bit-exact and in its documented cycle, with random gaps between starts
    (0: back to back), spurious starts while feeding and random ``ready``."""
    operations = OPERATIONS[:3] if rows * cols > 100 else OPERATIONS
    operations = [*operations, tuple(int(v) for v in rng.integers(0, 2**32, 2))]
    gaps = [int(g) for g in rng.choice([0, 0, 1, 5], len(operations))]
    dut = PipelinedSpeckWords(rows, cols)
    got = run_operations(dut, operations, gaps, rng)
    assert [(seed, counter) for _, seed, counter in got["accepted"]] == operations
    check_trace(got, rows, cols)


@pytest.mark.parametrize(("rows", "cols"), [(64, 64), (3, 5), (1, 1)])
def test_words_back_to_back(rows, cols, rng):
    """Each start in the first cycle it is accepted: starts every ``max(rows, cols)`` cycles
    from cycle 0, and the longer axis's words fill every cycle from cycle 27 on."""
    operations = [(0x5EED, 1), (0x5EED, 2), (U32_MAX, 0)]
    dut = PipelinedSpeckWords(rows, cols)
    length = max(rows, cols)
    got = run_operations(dut, operations, [0] * len(operations), rng)
    assert [cycle for cycle, _, _ in got["accepted"]] == [n * length for n in range(3)]
    longer = got["row"][0] if rows >= cols else got["col"][0]
    assert sorted(longer) == list(range(LATENCY, LATENCY + 3 * length))
    check_trace(got, rows, cols)


def test_words_first_word_cycle():
    """From a start in cycle 0: ``R_0`` and ``C_0`` are valid in cycle 27 and not before."""
    dut = PipelinedSpeckWords(2, 2)
    row_words, col_words = noise.axis_words(1, 2, 2, 2)

    async def testbench(ctx):
        ctx.set(dut.seed, 1)
        ctx.set(dut.counter, 2)
        ctx.set(dut.start, 1)
        assert not ctx.get(dut.feeding)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for cycle in range(1, LATENCY):
            assert not ctx.get(dut.row[0].valid) and not ctx.get(dut.col[0].valid), f"cycle {cycle}"
            assert ctx.get(dut.busy)
            await ctx.tick()
        assert ctx.get(dut.row[0].valid) and ctx.get(dut.col[0].valid)
        assert ctx.get(dut.row[0].payload.word) == int(row_words[0])
        assert ctx.get(dut.col[0].payload.word) == int(col_words[0])

    simulate(dut, testbench)


def test_ways_default_is_one():
    """Without ``ways``: one way, a cycle per index of the longer axis."""
    dut = PipelinedSpeckWords(5, 3)
    assert (dut.ways, dut.cycles, len(dut.row), len(dut.col)) == (1, 5, 1, 1)
    Fragment.get(dut, platform=None)  # elaborated, as every component built must be


@pytest.mark.parametrize(
    ("rows", "cols"), [(64, 64), (3, 5), (5, 3), (1, 1), (4, 1), (1, 4), (2, 7)]
)
def test_two_ways_match_golden(rows, cols, rng):
    """``ways = 2``: every word bit-exact, on way ``i % 2``, in cycle ``27 + i // 2``, with
    random gaps between starts (0: back to back), spurious starts while feeding and random
    ``ready``; ``valid`` low in every other cycle, ``feeding`` and ``busy`` as documented."""
    operations = OPERATIONS[:3] if rows * cols > 100 else OPERATIONS
    operations = [*operations, tuple(int(v) for v in rng.integers(0, 2**32, 2))]
    gaps = [int(g) for g in rng.choice([0, 0, 1, 5], len(operations))]
    dut = PipelinedSpeckWords(rows, cols, ways=2)
    assert (len(dut.row), len(dut.col)) == (2, 2)
    got = run_operations(dut, operations, gaps, rng)
    assert [(seed, counter) for _, seed, counter in got["accepted"]] == operations
    check_trace(got, rows, cols, ways=2)


@pytest.mark.parametrize(
    ("rows", "cols", "cycles"), [(64, 64, 32), (3, 5, 3), (5, 3, 3), (1, 1, 1), (4, 1, 2)]
)
def test_two_ways_back_to_back(rows, cols, cycles, rng):
    """``ways = 2``, each start in the first cycle it is accepted: starts every ``cycles``
    cycles from cycle 0, under a different key each; way 0 of the longer axis is valid in
    every cycle from 27 on, way 1 too but in an operation's last cycle if its length is odd."""
    operations = [(0x5EED, 1), (0x5EED, 2), (U32_MAX, 0), (0, U32_MAX)]
    dut = PipelinedSpeckWords(rows, cols, ways=2)
    assert dut.cycles == cycles
    got = run_operations(dut, operations, [0] * len(operations), rng)
    starts = [n * cycles for n in range(len(operations))]
    assert [cycle for cycle, _, _ in got["accepted"]] == starts
    longer = got["row"] if rows >= cols else got["col"]
    every_cycle = list(range(LATENCY, LATENCY + len(operations) * cycles))
    assert sorted(longer[0]) == every_cycle
    odd_ends = {start + LATENCY + cycles - 1 for start in starts} if max(rows, cols) % 2 else set()
    assert sorted(longer[1]) == [c for c in every_cycle if c not in odd_ends]
    check_trace(got, rows, cols, ways=2)


def test_two_ways_timing():
    """``ways = 2``, 5 rows and 3 columns from a start in cycle 0, cycle by cycle as
    documented: ``feeding`` in cycles 1 and 2, ``busy`` in 1 .. 29; in cycle 27 the words 0
    and 1 of both axes, in 28 the words 2 and 3, in 29 row word 4 (on way 0) alone."""
    dut = PipelinedSpeckWords(5, 3, ways=2)
    seed, counter = 0x0BADCAFE, U32_MAX
    got = run_operations(dut, [(seed, counter)], [0], np.random.default_rng(0))
    row_words, col_words = (list(map(int, w)) for w in noise.axis_words(seed, counter, 5, 3))
    r, c = noise.AXIS_ROW, noise.AXIS_COL
    assert got["accepted"] == [(0, seed, counter)]
    assert got["feeding"] == [1, 2]
    assert got["busy"] == list(range(1, 30))
    assert got["row"][0] == {
        27: (r, 0, row_words[0]),
        28: (r, 2, row_words[2]),
        29: (r, 4, row_words[4]),
    }
    assert got["row"][1] == {27: (r, 1, row_words[1]), 28: (r, 3, row_words[3])}
    assert got["col"][0] == {27: (c, 0, col_words[0]), 28: (c, 2, col_words[2])}
    assert got["col"][1] == {27: (c, 1, col_words[1])}


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: SpeckPipeline(0), ValueError, r"lanes = 0 is out of range"),
        (lambda: SpeckPipeline(1.5), TypeError, r"lanes must be an int, not 1.5"),
        (lambda: PipelinedSpeckWords(0, 4), ValueError, r"rows = 0 is out of range"),
        (lambda: PipelinedSpeckWords(4, 65537), ValueError, r"cols = 65537 is out of range"),
        (lambda: PipelinedSpeckWords(True, 4), TypeError, r"rows must be an int, not True"),
        (lambda: PipelinedSpeckWords(4, 4, ways=0), ValueError, r"ways = 0 is out of range"),
        (lambda: PipelinedSpeckWords(4, 4, ways=3), ValueError, r"ways = 3 is out of range"),
        (lambda: PipelinedSpeckWords(4, 4, ways=2.0), TypeError, r"ways must be an int, not 2.0"),
    ],
)
def test_parameter_errors(build, error, match):
    assert_construction_fails(build, error, match)


def test_converts_to_verilog():
    text = verilog.convert(PipelinedSpeckWords(64, 64), emit_src=False)
    for port in ("start", "seed", "counter", "feeding", "busy", "row__0__valid", "col__0__payload"):
        assert port in text
    assert "stage26_valid" in text


def test_two_ways_convert_to_verilog():
    text = verilog.convert(PipelinedSpeckWords(64, 64, ways=2), emit_src=False)
    for way in range(2):
        for axis in ("row", "col"):
            assert f"{axis}__{way}__valid" in text and f"{axis}__{way}__payload" in text
    assert "stage26_valid" in text
