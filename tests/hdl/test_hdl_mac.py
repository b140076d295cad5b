"""The MAC lane and the ADC stage in the Amaranth simulator, against the arithmetic contract.

Three levels: :class:`MacLane` cycle by cycle against a Python-int model of
``acc += contrib(x, g)``, ``noise_acc += contrib(x, n)`` with
``n = (popcount(word) - 32) * table[g >> segment_shift]`` (latency included); :class:`AdcStage`
against :func:`round_shift` and :func:`saturate` under random backpressure; and the two
together against :class:`molxbar.emulator.golden.Crossbar` on whole VMMs, with read noise
off and on. Random stimuli come from ``np.random.default_rng(seed)``; every assertion message
carries the seed.
"""

from __future__ import annotations

import copy
import gc
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, UnusedElaboratable
from amaranth.sim import Simulator

from molxbar.emulator import Crossbar, CrossbarConfig, preset
from molxbar.emulator.config import NOISE_FRAC_BITS, SIGMA_SCALE_BITS, SIGMA_SEGMENTS, Z_MAX
from molxbar.emulator.fixedpoint import round_shift, saturate
from molxbar.emulator.noise import axis_words
from molxbar.hdl.mac import AdcStage, MacLane, leak_shift, noise_product_bits

WORD_ONES = (1 << 64) - 1

CONFIGS = {
    "ideal14": CrossbarConfig(),
    "ru_azo_2024": preset("ru_azo_2024"),
    "small8": CrossbarConfig(rows=8, cols=8, g_bits=8, x_bits=8, lanes=8),
    # Odd row count (ceil(log2 5) = 3) and the widest operands CrossbarConfig allows here.
    "odd_wide": CrossbarConfig(rows=5, cols=1, g_bits=24, x_bits=24, lanes=1),
    # No noise hardware: the ADC is only as wide as a sum.
    "quiet14": CrossbarConfig(noise_hardware=False),
}


# Python-int model of the contract ------------------------------------------------------------


def contrib(x: int, v: int, rect_ideal: bool, rect_shift: int) -> int:
    """``x*v`` for ``x >= 0``; for ``x < 0``: 0 (ideal) or ``(x*v) >> rect_shift``."""
    if x >= 0:
        return x * v
    return 0 if rect_ideal else (x * v) >> rect_shift


def adc(acc: int, noise_acc: int, noise_en: bool, adc_shift: int, adc_bits: int) -> int:
    """The ADC of the contract; ``adc_bits = 0`` is full precision."""
    if noise_en:
        value, shift = (acc << NOISE_FRAC_BITS) + noise_acc, adc_shift + NOISE_FRAC_BITS
    else:
        value, shift = acc, adc_shift
    return saturate(round_shift(value, shift), adc_bits or None)


# Stimuli ---------------------------------------------------------------------------------------


@dataclass
class Term:
    """One cycle at the lane's input (``valid = False``: an idle cycle)."""

    valid: bool = False
    x: int = 0
    g: int = 0
    word: int = 0  # the cell's noise word R_i XOR C_j
    clear: bool = False
    last: bool = False
    noise_en: bool = False
    rect_ideal: bool = True
    rect_shift: int = 0


def random_x(rng: np.random.Generator, c: CrossbarConfig) -> int:
    pick = rng.random()
    if pick < 0.1:
        return c.x_min
    if pick < 0.2:
        return c.x_max
    if pick < 0.25:
        return -1
    if pick < 0.3:
        return 0
    return int(rng.integers(c.x_min, c.x_max + 1))


def random_g(rng: np.random.Generator, c: CrossbarConfig) -> int:
    pick = rng.random()
    if pick < 0.15:
        return c.g_max
    if pick < 0.25:
        return 0
    return int(rng.integers(0, c.levels))


def random_word(rng: np.random.Generator) -> int:
    """A noise word: all ones or zeros (the extreme deviates +-32) or random bits."""
    pick = rng.random()
    if pick < 0.1:
        return WORD_ONES
    if pick < 0.2:
        return 0
    return int(rng.integers(0, 1 << 63)) << 1 | int(rng.integers(0, 2))


def lane_table(rng: np.random.Generator) -> list[int]:
    """A read-noise table with the largest amplitude in the top segment and a zero."""
    table = rng.integers(0, 1 << SIGMA_SCALE_BITS, size=SIGMA_SEGMENTS).tolist()
    table[-1], table[int(rng.integers(0, SIGMA_SEGMENTS - 1))] = (1 << SIGMA_SCALE_BITS) - 1, 0
    return [int(v) for v in table]


def read_noise(c: CrossbarConfig, t: Term, table: list[int]) -> int:
    """The cell's read noise ``n`` from its word and level."""
    return (t.word.bit_count() - Z_MAX) * table[t.g >> c.segment_shift]


def random_rect(rng: np.random.Generator) -> tuple[bool, int]:
    pick = rng.random()
    if pick < 0.3:
        return True, int(rng.integers(0, 64))  # ideal: the shift must not matter
    if pick < 0.45:
        return False, 0
    if pick < 0.6:
        return False, 63
    return False, int(rng.integers(0, 64))


#: Idle cycles that empty any lane (more than the longest latency).
LANE_EMPTY_CYCLES = 16


def lane_stimulus(rng: np.random.Generator, c: CrossbarConfig) -> list[Term]:
    """Extreme full-length sums, then random sums with gaps and per-term control changes."""
    terms: list[Term] = []

    def add_sum(items: list[Term]) -> None:
        """Mark the first and last valid terms; idle cycles inside stay as they are. The
        shift is the sum's (its first term's) on every cycle; a new shift waits until the
        lane is empty, as the engine changes it only while its datapath is drained."""
        valid = [item for item in items if item.valid]
        valid[0].clear = True
        valid[-1].last = True
        shift = valid[0].rect_shift
        for item in items:
            item.rect_shift = shift
        if terms and terms[-1].rect_shift != shift:
            terms.extend(Term(rect_shift=terms[-1].rect_shift) for _ in range(LANE_EMPTY_CYCLES))
        terms.extend(items)

    # Largest |acc| and |noise_acc| of each sign (all-ones and all-zeros words at the top
    # level, whose amplitude is the largest): overflow would show here.
    for x, word, ideal in (
        (c.x_max, WORD_ONES, True),
        (c.x_max, 0, True),
        (c.x_min, WORD_ONES, False),
        (c.x_min, 0, False),
    ):
        add_sum(
            [
                Term(True, x=x, g=c.g_max, word=word, noise_en=True, rect_ideal=ideal)
                for _ in range(c.rows)
            ]
        )
    for _ in range(12):
        length = int(rng.choice([1, 2, c.rows, int(rng.integers(1, c.rows + 1))]))
        per_term = rng.random() < 0.3  # control changes on every term, else once per sum
        noise_en = bool(rng.random() < 0.6)
        rect_ideal, rect_shift = random_rect(rng)
        items = []
        for _ in range(length):
            if per_term:  # (the shift stays: the ADC shifts the leak sums by it)
                noise_en = bool(rng.random() < 0.6)
                rect_ideal = bool(rng.random() < 0.3)
            items.append(
                Term(
                    True,
                    x=random_x(rng, c),
                    g=random_g(rng, c),
                    word=random_word(rng),
                    noise_en=noise_en,
                    rect_ideal=rect_ideal,
                    rect_shift=rect_shift,
                )
            )
        # Idle cycles inside a sum (with random data: it must be ignored); the sums hold.
        for _ in range(int(rng.integers(0, 3))):
            idle = Term(False, x=random_x(rng, c), g=random_g(rng, c), word=random_word(rng))
            items.insert(int(rng.integers(1, len(items) + 1)), idle)
        add_sum(items)
        terms.extend(Term(rect_shift=terms[-1].rect_shift) for _ in range(int(rng.integers(0, 3))))
    # An idle cycle with clear and last set must change nothing.
    terms.append(
        Term(
            False,
            clear=True,
            last=True,
            x=c.x_max,
            g=c.g_max,
            noise_en=True,
            rect_shift=terms[-1].rect_shift,
        )
    )
    return terms


def lane_expectation(
    c: CrossbarConfig, terms: list[Term], table: list[int]
) -> list[tuple[int, int, bool, int]]:
    """``(acc, noise_acc, done, rect_shift)`` after each input cycle's term has been added (no
    noise without noise hardware): the sums of the contributions, and the shift of the sum."""
    acc = noise_acc = shift = 0
    states = []
    for t in terms:
        done = False
        if t.valid:
            a = contrib(t.x, t.g, t.rect_ideal, t.rect_shift)
            noisy = t.noise_en and c.noise_hardware
            b = contrib(t.x, read_noise(c, t, table), t.rect_ideal, t.rect_shift) if noisy else 0
            acc, noise_acc = (a, b) if t.clear else (acc + a, noise_acc + b)
            done, shift = t.last, t.rect_shift
        states.append((acc, noise_acc, done, shift))
    return states


def lane_sums(c: CrossbarConfig, lane: MacLane, ctx, rect_shift: int) -> tuple[int, int]:
    """The lane's sums of contributions: each sum plus its leak sum shifted right (as the ADC
    adds them; the leak sums are 0 without leakage hardware)."""
    acc = ctx.get(lane.acc) + (ctx.get(lane.leak_acc) >> leak_shift(rect_shift, c.product_bits))
    noise_width = noise_product_bits(c)
    noise = ctx.get(lane.noise_acc) + (
        ctx.get(lane.leak_noise_acc) >> leak_shift(rect_shift, noise_width)
    )
    return acc, noise


def run(dut, testbench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


# MacLane ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize(
    ("seed", "product_stages", "noise_multiplier"),
    [(1, 1, False), (2, 1, False), (3, 1, True), (4, 2, False)],
)
def test_mac_lane_matches_contract(
    name: str, seed: int, product_stages: int, noise_multiplier: bool
) -> None:
    c = CONFIGS[name]
    rng = np.random.default_rng(seed)
    terms = lane_stimulus(rng, c)
    lane = MacLane(c, product_stages=product_stages, noise_multiplier=noise_multiplier)
    noise_stages = MacLane.NOISE_STAGES if c.noise_hardware else 0
    assert lane.latency == MacLane.LATENCY + product_stages - 1 + noise_stages
    terms.extend(Term(rect_shift=terms[-1].rect_shift) for _ in range(lane.latency + 2))
    table = lane_table(rng)
    expected = lane_expectation(c, terms, table)
    seen = {"done": 0, "checked": 0}

    async def testbench(ctx):
        ctx.set(lane.read_table, table)
        for cycle, t in enumerate(terms):
            ctx.set(lane.i.valid, t.valid)
            payload = {"x": t.x, "g": t.g, "clear": t.clear, "last": t.last}
            ctx.set(lane.i.payload, {**payload, "word": t.word} if c.noise_hardware else payload)
            ctx.set(lane.noise_en, t.noise_en)
            ctx.set(lane.rect_ideal, t.rect_ideal)
            ctx.set(lane.rect_shift, t.rect_shift)
            assert ctx.get(lane.i.ready) == 1, f"seed {seed}: the lane never stalls"
            await ctx.tick()
            # Now in cycle + 1: the sums include the terms of cycles <= cycle + 1 - latency.
            source = cycle + 1 - lane.latency
            *want, shift = expected[source] if source >= 0 else (0, 0, False, 0)
            got = (*lane_sums(c, lane, ctx, shift), bool(ctx.get(lane.done)))
            assert got == tuple(want), f"{name} seed {seed}: cycle {cycle + 1}: {got} != {want}"
            if not c.leakage_hardware:
                assert ctx.get(lane.leak_acc) == ctx.get(lane.leak_noise_acc) == 0
            seen["done"] += got[2]
            seen["checked"] += 1

    run(lane, testbench)
    assert seen["checked"] == len(terms)
    assert seen["done"] == sum(t.valid and t.last for t in terms) >= 16, f"seed {seed}"


def test_mac_lane_widths() -> None:
    for c in CONFIGS.values():
        lane = MacLane(c)
        assert len(lane.acc) == c.acc_bits and lane.acc.shape().signed
        assert len(lane.noise_acc) == c.noise_acc_bits and lane.noise_acc.shape().signed
        assert len(lane.i.payload.x) == c.x_bits and len(lane.i.payload.g) == c.g_bits
        assert len(lane.rect_shift) == c.max_shift.bit_length()
        # Silence UnusedElaboratable: these were only built to look at their ports.
        Simulator(lane)


def test_components_reject_bad_config() -> None:
    # The rejected objects exist (Amaranth's __new__ ran) but are never elaborated; Amaranth
    # warns about that when they are collected, which is expected here and only here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        for cls in (MacLane, AdcStage):
            with pytest.raises(TypeError, match="CrossbarConfig"):
                cls({"rows": 64})
        gc.collect()


# AdcStage --------------------------------------------------------------------------------------


def sum_bounds(c: CrossbarConfig) -> tuple[tuple[int, int], tuple[int, int]]:
    """Reachable ranges of ``acc`` and ``noise_acc`` (sums of at most ``rows`` terms).

    ``acc_bits`` rounds ``log2 rows`` up, so its register can hold values no VMM produces; the
    ADC's ``acc_fine_bits`` is sized for the reachable range only.
    """
    x_mag = 1 << (c.x_bits - 1)
    acc = (-c.rows * x_mag * c.g_max, c.rows * (x_mag - 1) * c.g_max)
    noise = c.rows * x_mag * c.noise_max
    return acc, (-noise, noise)


def random_sum(rng: np.random.Generator, low: int, high: int) -> int:
    """A value in ``[low, high]``: the extremes, small values or any magnitude in between."""
    pick = rng.random()
    if pick < 0.05:
        return low
    if pick < 0.1:
        return high
    if pick < 0.2:
        return int(rng.integers(-8, 9))
    width = int(rng.integers(1, max(-low, high).bit_length() + 1))
    return min(max(int(rng.integers(-(1 << width), 1 << width)), low), high)


def random_adc_input(rng: np.random.Generator, c: CrossbarConfig) -> tuple[int, ...]:
    acc_range, noise_range = sum_bounds(c)
    acc = random_sum(rng, *acc_range)
    noise_en = c.noise_hardware and bool(rng.random() < 0.5)
    noise = random_sum(rng, *noise_range)  # ignored when noise is off
    shift = int(rng.integers(0, 64)) if rng.random() < 0.5 else int(rng.integers(0, 12))
    total = shift + (NOISE_FRAC_BITS if noise_en else 0)
    if rng.random() < 0.3 and 0 < total < acc_range[1].bit_length() - 2:
        # Exactly half way (or one off it), to exercise rounding ties of either sign.
        if noise_en and shift == 0:
            noise = (1 << (NOISE_FRAC_BITS - 1)) + int(rng.integers(-1, 2))
            noise = -noise if rng.random() < 0.5 else noise
        elif noise_en:
            acc = (acc >> shift << shift) + (1 << (shift - 1))
            noise = int(rng.integers(-1, 2))
        else:
            acc = (acc >> total << total) + (1 << (total - 1)) + int(rng.integers(-1, 2))
        acc = min(max(acc, acc_range[0]), acc_range[1])
    bits = 0 if rng.random() < 0.3 else int(rng.integers(2, 64))
    return acc, noise, noise_en, shift, bits


def split_leak(
    rng: np.random.Generator, c: CrossbarConfig, acc: int, noise: int
) -> tuple[dict[str, int], int]:
    """An ADC input whose sums are ``acc`` and ``noise``: with leakage hardware, part of each
    comes as a leak sum (a random multiple of ``2**t``, ``t`` the leak shift of a random
    ``rect_shift``); returns the payload and ``rect_shift``."""
    if not c.leakage_hardware:
        return {"acc": acc, "noise_acc": noise}, 0
    rect_shift = int(rng.choice([0, 1, 63, int(rng.integers(0, 64))]))
    (acc_low, acc_high), (noise_low, noise_high) = sum_bounds(c)
    payload = {}
    for name, value, low, high, width in (
        ("acc", acc, acc_low, acc_high, c.product_bits),
        ("noise_acc", noise, noise_low, noise_high, noise_product_bits(c)),
    ):
        t = leak_shift(rect_shift, width)
        cap = c.rows << (width - 1 - t)  # leak sums of rows masked products reach cap * 2**t
        leak = int(rng.integers(max(-cap, value - high), min(cap, value - low) + 1))
        payload[name], payload[f"leak_{name}"] = value - leak, leak << t
    return payload, rect_shift


@pytest.mark.parametrize("name", ["ideal14", "small8", "odd_wide", "quiet14"])
@pytest.mark.parametrize("seed", [3, 4])
def test_adc_stage_matches_round_shift_and_saturate(name: str, seed: int) -> None:
    c = CONFIGS[name]
    noisy = c.noise_hardware  # (the ADC ignores noise_en without it)
    rng = np.random.default_rng(seed)
    inputs = [random_adc_input(rng, c) for _ in range(600)]
    # Every shift and width at least once, on the extreme values.
    (acc_low, acc_high), (noise_low, noise_high) = sum_bounds(c)
    for shift in range(64):
        for acc in (acc_low, acc_high):
            inputs.append((acc, 0, False, shift, int(rng.choice([0, *range(2, 64)]))))
        inputs.append((acc_low, noise_low, noisy, shift, 0))
        inputs.append((acc_high, noise_high, noisy, shift, 0))
    # Ties and their neighbours at every shift: negative multiples of 2**(shift - 1), where
    # the rounding needs the low bits to be exactly zero.
    for shift in range(1, 64):
        for odd in (1, 3, 5):
            tie = -odd << (shift - 1)
            for acc in (tie - 1, tie, tie + 1):
                if acc_low <= acc <= acc_high:
                    inputs.append((acc, 0, False, shift, 0))
    for bits in [0, *range(2, 64)]:
        inputs.append((acc_high, noise_high, noisy, 0, bits))
        inputs.append((acc_low, noise_low, noisy, 0, bits))
        inputs.append((acc_high, 0, False, 0, bits))
        acc = int(rng.integers(-(1 << bits), 1 << bits))
        inputs.append((min(max(acc, acc_low), acc_high), 0, False, 0, bits))
    expected = [adc(*item) for item in inputs]
    stage = AdcStage(c)
    payloads = [split_leak(rng, c, acc, noise) for acc, noise, *_ in inputs]
    received: list[int] = []

    async def testbench(ctx):
        sent = 0
        held = None  # an output offered but not taken must stay until it is
        for cycle in range(20 * len(inputs)):
            if len(received) == len(inputs):
                break
            valid = sent < len(inputs) and rng.random() < 0.8
            ready = rng.random() < 0.7
            if sent < len(inputs):
                _, _, noise_en, shift, bits = inputs[sent]
                payload, rect_shift = payloads[sent]
                ctx.set(stage.i.payload, payload)
                ctx.set(stage.rect_shift, rect_shift)
                ctx.set(stage.noise_en, noise_en)
                ctx.set(stage.adc_shift, shift)
                ctx.set(stage.adc_bits, bits)
            ctx.set(stage.i.valid, valid)
            ctx.set(stage.o.ready, ready)
            out_valid, out = ctx.get(stage.o.valid), ctx.get(stage.o.payload)
            if held is not None:
                assert (out_valid, out) == (1, held), f"seed {seed}: cycle {cycle}: dropped"
            held = out if out_valid and not ready else None
            if out_valid and ready:
                received.append(out)
            if valid and ctx.get(stage.i.ready):
                sent += 1
            await ctx.tick()

    run(stage, testbench)
    assert len(received) == len(inputs), f"{name} seed {seed}: {len(received)} results"
    for k, (got, want) in enumerate(zip(received, expected, strict=True)):
        assert got == want, f"{name} seed {seed}: input {k} {inputs[k]}: got {got}, want {want}"


def test_adc_stage_latency_and_throughput() -> None:
    c = CONFIGS["small8"]
    stage = AdcStage(c)
    values = list(range(-20, 21))

    async def testbench(ctx):
        ctx.set(stage.o.ready, 1)
        ctx.set(stage.adc_shift, 1)
        outputs = []
        for cycle in range(len(values) + stage.latency + 1):
            if cycle < len(values):
                ctx.set(stage.i.valid, 1)
                ctx.set(stage.i.payload, {"acc": values[cycle], "noise_acc": 0})
            else:
                ctx.set(stage.i.valid, 0)
            assert ctx.get(stage.i.ready) == 1
            await ctx.tick()
            source = cycle + 1 - stage.latency
            valid = 0 <= source < len(values)
            assert ctx.get(stage.o.valid) == valid, f"cycle {cycle + 1}"
            if valid:
                outputs.append(ctx.get(stage.o.payload))
        assert outputs == [round_shift(v, 1) for v in values]

    run(stage, testbench)


# Lane and ADC against the golden model ---------------------------------------------------------


def build_column_pipeline(c: CrossbarConfig) -> tuple[Module, MacLane, AdcStage]:
    """A lane feeding an ADC stage: each finished sum (``done``) is one ADC input."""
    m = Module()
    m.submodules.lane = lane = MacLane(c)
    m.submodules.adc = stage = AdcStage(c)
    m.d.comb += [
        stage.i.valid.eq(lane.done),
        stage.i.payload.acc.eq(lane.acc),
        stage.i.payload.noise_acc.eq(lane.noise_acc),
        stage.rect_shift.eq(lane.rect_shift),
        stage.o.ready.eq(1),
    ]
    if c.leakage_hardware:
        m.d.comb += [
            stage.i.payload.leak_acc.eq(lane.leak_acc),
            stage.i.payload.leak_noise_acc.eq(lane.leak_noise_acc),
        ]
    return m, lane, stage


GOLDEN_CASES = {
    "ideal14": (CrossbarConfig(cols=2, lanes=1), False),
    "ru_azo_2024": (preset("ru_azo_2024", cols=2, lanes=1), True),
    "small8_noise": (CrossbarConfig(rows=8, cols=8, g_bits=8, x_bits=8, lanes=8), True),
    "small8": (CrossbarConfig(rows=8, cols=8, g_bits=8, x_bits=8, lanes=8), False),
}


@pytest.mark.parametrize("case", GOLDEN_CASES)
@pytest.mark.parametrize("seed", [5, 6])
def test_lane_and_adc_match_golden_vmm(case: str, seed: int) -> None:
    c, read_noise = GOLDEN_CASES[case]
    rng = np.random.default_rng(seed)
    xbar = Crossbar(c)
    levels = rng.integers(0, c.levels, size=(c.rows, c.cols))
    levels[rng.random(levels.shape) < 0.1] = c.g_max
    xbar.write_levels(levels)  # with write noise in ru_azo_2024: the stored levels are used
    table = rng.integers(0, 1 << SIGMA_SCALE_BITS, size=SIGMA_SEGMENTS)
    table[rng.random(SIGMA_SEGMENTS) < 0.2] = (1 << SIGMA_SCALE_BITS) - 1
    xbar.set_noise(read=read_noise, read_table=table.tolist())
    xbar.seed(int(rng.integers(0, 1 << 32)))

    # Per block of vectors: rectification and ADC settings (None = ideal / full precision).
    settings = [(None, None, 0), (0, None, 0), (63, None, 3), (None, 12, 20)]
    settings += [
        (
            None if rng.random() < 0.3 else int(rng.choice([0, 1, 5, 63, rng.integers(0, 64)])),
            None if rng.random() < 0.4 else int(rng.integers(2, 64)),
            int(rng.integers(0, c.acc_bits + 4)),
        )
        for _ in range(4)
    ]
    vectors_per_block = 2
    blocks = []  # (settings, x, noise word of every cell, golden outputs)
    clean = copy.deepcopy(xbar)  # the same crossbar without read noise
    clean.set_noise(read=False)
    clean_outputs = []
    for rect_shift, adc_bits, adc_shift in settings:
        for model in (xbar, clean):
            model.set_rectification(rect_shift)
            model.set_adc(adc_bits, adc_shift)
        for _ in range(vectors_per_block):
            x = rng.integers(c.x_min, c.x_max + 1, size=c.rows)
            x[rng.random(c.rows) < 0.15] = c.x_min
            x[rng.random(c.rows) < 0.15] = c.x_max
            words = np.zeros((c.rows, c.cols), dtype=np.uint64)
            if read_noise:
                row_words, col_words = axis_words(
                    xbar.noise_seed, xbar.noise_counter, c.rows, c.cols
                )
                words = row_words[:, None] ^ col_words[None, :]
            y = xbar.vmm(x)
            clean_outputs.append(clean.vmm(x))
            blocks.append(((rect_shift, adc_bits, adc_shift), x, words, y))
    g = xbar.levels
    m, lane, stage = build_column_pipeline(c)
    received: list[int] = []

    async def testbench(ctx):
        ctx.set(lane.noise_en, read_noise)
        ctx.set(lane.read_table, table.tolist())
        ctx.set(stage.noise_en, read_noise)

        async def tick() -> None:
            await ctx.tick()
            if ctx.get(stage.o.valid):
                received.append(ctx.get(stage.o.payload))

        for (rect_shift, adc_bits, adc_shift), x, words, _ in blocks:
            ctx.set(lane.rect_ideal, rect_shift is None)
            ctx.set(lane.rect_shift, rect_shift or 0)
            ctx.set(stage.adc_bits, adc_bits or 0)
            ctx.set(stage.adc_shift, adc_shift)
            for j in range(c.cols):
                for i in range(c.rows):
                    term = {"x": int(x[i]), "g": int(g[i, j]), "word": int(words[i, j])}
                    ctx.set(lane.i.payload, {**term, "clear": i == 0, "last": i == c.rows - 1})
                    ctx.set(lane.i.valid, 1)
                    await tick()
            # Drain the pipeline before the ADC settings change.
            ctx.set(lane.i.valid, 0)
            for _ in range(lane.latency + stage.latency):
                await tick()

    run(m, testbench)
    want = [int(v) for *_, y in blocks for v in y]
    assert len(received) == len(want), f"{case} seed {seed}"
    for k, (got, exp) in enumerate(zip(received, want, strict=True)):
        block = blocks[k // (c.cols * vectors_per_block)][0]
        assert got == exp, f"{case} seed {seed}: output {k} (settings {block}): {got} != {exp}"
    # The case must be able to fail: varied outputs, and noise that changes some of them.
    assert len(set(want)) > len(want) // 2, f"{case} seed {seed}: outputs too uniform"
    if read_noise:
        moved = sum(int(v) != w for v, w in zip(np.concatenate(clean_outputs), want, strict=True))
        assert moved >= len(want) // 4, f"{case} seed {seed}: noise changed only {moved} outputs"


# Conversion ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ideal14", "ru_azo_2024"])
def test_verilog_conversion(name: str) -> None:
    c = CONFIGS[name]
    text = verilog.convert(MacLane(c), emit_src=False)
    assert "module top" in text and "i__payload" in text
    text = verilog.convert(AdcStage(c), emit_src=False)
    assert "o__payload" in text
