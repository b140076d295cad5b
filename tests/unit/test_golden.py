"""The golden model against the arithmetic contract and the plain-Python reference.

Random stimuli come from ``np.random.default_rng(seed)``; every assertion message carries the
seed (and hypothesis prints the drawn configuration when a property fails).
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molxbar.emulator import Crossbar, CrossbarConfig, preset
from molxbar.emulator.config import NOISE_FRAC_BITS, SIGMA_SEGMENTS
from molxbar.emulator.noise import axis_words, cell_deviates
from tests.support import reference as ref

u32 = st.integers(0, 2**32 - 1)


# Helpers ---------------------------------------------------------------------------------------


def small_config(**changes) -> CrossbarConfig:
    changes.setdefault("lanes", 1)
    return CrossbarConfig(**changes)


def random_levels(rng: np.random.Generator, c: CrossbarConfig, shape=None) -> np.ndarray:
    """Uniform levels with a sprinkling of the extremes 0 and g_max."""
    shape = (c.rows, c.cols) if shape is None else shape
    levels = rng.integers(0, c.levels, size=shape)
    extremes = rng.random(shape)
    levels[extremes < 0.1] = 0
    levels[extremes > 0.9] = c.g_max
    return levels


def random_codes(rng: np.random.Generator, c: CrossbarConfig, shape) -> np.ndarray:
    """Uniform input codes with a sprinkling of x_min, x_max, 0 and -1."""
    codes = rng.integers(c.x_min, c.x_max + 1, size=shape)
    pick = rng.random(shape)
    codes[pick < 0.1] = c.x_min
    codes[(pick >= 0.1) & (pick < 0.2)] = c.x_max
    codes[(pick >= 0.2) & (pick < 0.25)] = 0
    codes[(pick >= 0.25) & (pick < 0.3)] = -1
    return codes


def random_table(rng: np.random.Generator, high: int = 4095) -> list[int]:
    table = rng.integers(0, high + 1, size=SIGMA_SEGMENTS)
    table[rng.random(SIGMA_SEGMENTS) < 0.1] = high
    return table.tolist()


def pair(c: CrossbarConfig) -> tuple[Crossbar, ref.RefCrossbar]:
    return Crossbar(c), ref.RefCrossbar(c)


def snapshot(xb: Crossbar) -> tuple:
    return (
        xb.levels.copy(),
        xb.noise_counter,
        xb.noise_seed,
        xb.adc_bits,
        xb.adc_shift,
        xb.rect_shift,
        xb.update_shift,
        xb.read_noise,
        xb.write_noise,
        tuple(xb.read_sigma_table),
        tuple(xb.write_sigma_table),
    )


def assert_same_snapshot(before: tuple, after: tuple, message: str = "") -> None:
    np.testing.assert_array_equal(before[0], after[0], err_msg=f"levels changed {message}")
    assert before[1:] == after[1:], f"registers or counter changed {message}"


def assert_same_state(xb: Crossbar, model: ref.RefCrossbar, message: str) -> None:
    assert xb.levels.tolist() == model.g, f"levels differ: {message}"
    assert xb.noise_counter == model.noise_counter, f"noise counter differs: {message}"


@st.composite
def small_configs(draw, *, noise: bool = True):
    """Small crossbars with every register setting the contract mentions."""
    g_bits = draw(st.integers(4, 16))
    read_noise = draw(st.booleans()) if noise else False
    return CrossbarConfig(
        rows=draw(st.integers(1, 10)),
        cols=draw(st.integers(1, 10)),
        lanes=1,
        g_bits=g_bits,
        levels=draw(st.one_of(st.none(), st.integers(2, 2**g_bits))),
        x_bits=draw(st.integers(2, 16)),
        rect_shift=draw(st.one_of(st.none(), st.integers(0, 20), st.just(63))),
        adc_bits=draw(st.one_of(st.none(), st.integers(2, 40))),
        adc_shift=draw(st.one_of(st.integers(0, 12), st.integers(0, 63))),
        update_shift=draw(st.integers(0, 24)),
        read_sigma=draw(st.floats(0, 8)) if noise else 0.0,
        write_sigma=draw(st.floats(0, 8)) if noise else 0.0,
        read_noise=read_noise,
        write_noise=draw(st.booleans()) if noise else False,
        seed=draw(u32),
    )


# State and direct access -----------------------------------------------------------------------


def test_initial_state():
    c = preset("ru_azo_2024", rect_shift=5, adc_bits=20, adc_shift=3, update_shift=2)
    xb = Crossbar(c)
    assert xb.config is c
    assert xb.levels.shape == (64, 64) and not xb.levels.any()
    assert (xb.adc_bits, xb.adc_shift, xb.rect_shift, xb.update_shift) == (20, 3, 5, 2)
    assert xb.read_noise and xb.write_noise
    assert xb.read_sigma_table == c.read_sigma_table
    assert xb.write_sigma_table == c.write_sigma_table
    assert (xb.noise_seed, xb.noise_counter) == (0x2024, 0)
    assert Crossbar().config == CrossbarConfig()


def test_constructor_rejects_other_objects():
    with pytest.raises(TypeError, match=r"config must be a CrossbarConfig, not 'ideal14'"):
        Crossbar("ideal14")  # type: ignore[arg-type]


def test_direct_write_and_read():
    seed = 1
    rng = np.random.default_rng(seed)
    c = small_config(rows=8, cols=5, g_bits=10, levels=1000)
    xb = Crossbar(c)
    want = np.zeros((8, 5), dtype=np.int64)
    for _ in range(100):
        i, j, level = int(rng.integers(8)), int(rng.integers(5)), int(rng.integers(1000))
        xb.write_cell(i, j, level)
        want[i, j] = level
        assert xb.read_cell(i, j) == level, f"seed={seed}"
    np.testing.assert_array_equal(xb.levels, want, err_msg=f"seed={seed}")
    row = random_levels(rng, c, (5,))
    xb.write_row(3, row)
    want[3] = row
    assert xb.read_row(3).tolist() == row.tolist()
    everything = random_levels(rng, c)
    xb.write_levels(everything)
    np.testing.assert_array_equal(xb.levels, everything, err_msg=f"seed={seed}")
    for i in range(8):
        assert xb.read_row(i).tolist() == everything[i].tolist()
        for j in range(5):
            assert xb.read_cell(i, j) == everything[i, j]
    # Extremes, numpy integer indices, whole-number floats (as from a .npy)
    xb.write_cell(np.int64(7), np.uint8(4), c.g_max)
    assert xb.read_cell(7, 4) == 999
    xb.write_cell(0, 0, 0)
    assert xb.read_cell(0, 0) == 0
    xb.write_row(1, np.arange(5, dtype=np.float64) * 100)
    assert xb.read_row(1).tolist() == [0, 100, 200, 300, 400]
    assert isinstance(xb.read_cell(1, 1), int)


def test_levels_view_is_read_only_and_read_row_is_a_copy():
    xb = Crossbar(small_config(rows=2, cols=2))
    with pytest.raises(ValueError, match="read-only"):
        xb.levels[0, 0] = 5
    row = xb.read_row(0)
    row[0] = 5
    assert xb.read_cell(0, 0) == 0


def test_writes_without_noise_draw_no_counter():
    c = small_config(rows=3, cols=3, read_noise=True, read_sigma=1.0)
    xb = Crossbar(c)
    xb.write_cell(0, 0, 1)
    xb.write_row(1, [1, 2, 3])
    xb.write_levels(np.ones((3, 3), dtype=int))
    xb.pulse_cell(0, 0, 1)
    xb.pulse(np.ones((3, 3), dtype=int))
    xb.update_rank1([1, 1, 1], [1, 1, 1])
    xb.accumulate([1, 2, 3])
    assert xb.noise_counter == 0


# Pulses ----------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.integers(4, 16), st.data())
def test_pulses_are_linear_and_symmetric(g_bits, data):
    levels = data.draw(st.integers(2, 2**g_bits), label="levels")
    c = small_config(rows=1, cols=1, g_bits=g_bits, levels=levels)
    start = data.draw(st.integers(0, c.g_max), label="start")
    n = data.draw(st.integers(0, c.g_max - start), label="n")  # no saturation going up
    xb = Crossbar(c)
    xb.write_cell(0, 0, start)
    xb.pulse_cell(0, 0, n)
    assert xb.read_cell(0, 0) == start + n
    xb.pulse_cell(0, 0, -n)
    assert xb.read_cell(0, 0) == start
    # n single pulses are one train of n pulses
    steps = min(n, 40)
    for _ in range(steps):
        xb.pulse_cell(0, 0, 1)
    assert xb.read_cell(0, 0) == start + steps
    for _ in range(steps):
        xb.pulse_cell(0, 0, -1)
    assert xb.read_cell(0, 0) == start
    # and the same by the matrix form
    xb.pulse(np.array([[n]]))
    xb.pulse(np.array([[-n]]))
    assert xb.read_cell(0, 0) == start


@pytest.mark.parametrize("levels", [2, 1000, 2**14, 16520])
def test_pulse_saturation(levels):
    c = small_config(rows=1, cols=2, g_bits=15 if levels > 2**14 else 14, levels=levels)
    g_max = levels - 1
    xb = Crossbar(c)
    xb.pulse_cell(0, 0, -1)  # at 0, depressing stays at 0
    assert xb.read_cell(0, 0) == 0
    xb.pulse_cell(0, 0, c.pulse_min)
    assert xb.read_cell(0, 0) == 0
    xb.pulse_cell(0, 0, c.pulse_max)  # saturates at the top
    assert xb.read_cell(0, 0) == g_max
    xb.pulse_cell(0, 0, 1)
    assert xb.read_cell(0, 0) == g_max
    xb.write_cell(0, 1, max(0, g_max - 2))
    xb.pulse_cell(0, 1, 5)
    assert xb.read_cell(0, 1) == g_max
    xb.pulse_cell(0, 1, -5)  # saturation loses the excess: not back to g_max - 2
    assert xb.read_cell(0, 1) == max(0, g_max - 5)
    xb.pulse_cell(0, 1, c.pulse_min)
    assert xb.read_cell(0, 1) == 0
    xb.pulse(np.array([[c.pulse_max, 1]]))
    assert xb.read_row(0).tolist() == [g_max, 1]
    xb.pulse(np.array([[-1, c.pulse_min]]))
    assert xb.read_row(0).tolist() == [g_max - 1, 0]


@settings(max_examples=60, deadline=None)
@given(small_configs(), u32)
def test_pulse_matrix_against_reference(c, seed):
    rng = np.random.default_rng(seed)
    xb, model = pair(c)
    start = random_levels(rng, c)
    xb.write_levels(start)
    model.write_levels(start.tolist())
    for _ in range(3):
        counts = rng.integers(c.pulse_min, c.pulse_max + 1, size=(c.rows, c.cols))
        counts >>= rng.integers(0, c.g_bits, size=counts.shape)  # mostly small counts
        counts[rng.random(counts.shape) < 0.05] = c.pulse_min
        counts[rng.random(counts.shape) < 0.05] = c.pulse_max
        xb.pulse(counts)
        model.pulse(counts.tolist())
        assert_same_state(xb, model, f"seed={seed}")


# Rank-1 updates --------------------------------------------------------------------------------


def test_rank1_rounds_half_away_from_zero():
    xb = Crossbar(small_config(rows=1, cols=6, x_bits=4))
    xb.write_row(0, [10] * 6)
    xb.update_rank1([1], [1, -1, 3, -3, 2, -2], shift=1)  # 0.5, -0.5, 1.5, -1.5, 1, -1
    assert xb.read_row(0).tolist() == [11, 9, 12, 8, 11, 9]
    xb.set_update_shift(2)
    xb.update_rank1([1], [1, -1, 2, -2, 3, -3])  # 0.25, -0.25, 0.5, -0.5, 0.75, -0.75
    assert xb.read_row(0).tolist() == [11, 9, 13, 7, 12, 8]


@settings(max_examples=60, deadline=None)
@given(small_configs(noise=False), u32, st.one_of(st.none(), st.integers(0, 63)))
def test_rank1_update_against_reference(c, seed, shift):
    rng = np.random.default_rng(seed)
    xb, model = pair(c)
    start = random_levels(rng, c)
    xb.write_levels(start)
    model.write_levels(start.tolist())
    for _ in range(3):
        a = random_codes(rng, c, c.rows)
        b = random_codes(rng, c, c.cols)
        xb.update_rank1(a, b, shift)
        model.update_rank1(a.tolist(), b.tolist(), shift)
        assert_same_state(xb, model, f"seed={seed} shift={shift}")


# VMM -------------------------------------------------------------------------------------------


def test_ideal_rectification_negative_inputs_contribute_nothing():
    seed = 7
    rng = np.random.default_rng(seed)
    c = small_config(rows=16, cols=48, lanes=8)
    xb = Crossbar(c)
    xb.write_levels(random_levels(rng, c))
    for _ in range(20):
        x = random_codes(rng, c, c.rows)
        np.testing.assert_array_equal(xb.vmm(x), xb.vmm(np.maximum(x, 0)), err_msg=f"{seed=}")
    assert not xb.vmm(np.full(c.rows, c.x_min)).any()


def test_leaky_rectification_is_a_floor_shift_per_cell():
    c = small_config(rows=2, cols=1, rect_shift=1)
    xb = Crossbar(c)
    xb.write_levels([[1], [1]])
    # Per cell: floor(-1/2) + floor(-1/2) = -2; shifting the sum would give -1 and
    # truncating toward zero 0.
    assert xb.vmm([-1, -1]).tolist() == [-2]
    assert xb.vmm([-3, 0]).tolist() == [-2]  # floor(-1.5)
    assert xb.vmm([-3, 3]).tolist() == [1]  # negative and positive rows mix
    xb.set_rectification(0)
    assert xb.vmm([-3, -4]).tolist() == [-7]
    xb.set_rectification(None)
    assert xb.vmm([-3, 5]).tolist() == [5]


@pytest.mark.parametrize(("rows", "cols"), [(4, 3), (8, 8), (16, 48), (1, 1)])
@pytest.mark.parametrize("rect_shift", [None, 0, 3, 17, 63])
def test_vmm_fixed_shapes_against_reference(rows, cols, rect_shift):
    seed = rows * 1000 + cols + (rect_shift or 0) * 7
    rng = np.random.default_rng(seed)
    c = small_config(rows=rows, cols=cols, rect_shift=rect_shift, g_bits=14, x_bits=16)
    xb, model = pair(c)
    levels = random_levels(rng, c)
    xb.write_levels(levels)
    model.write_levels(levels.tolist())
    inputs = random_codes(rng, c, (6, rows))
    inputs[0] = c.x_min
    inputs[1] = c.x_max
    for x in inputs:
        assert xb.vmm(x).tolist() == model.vmm(x.tolist()), f"seed={seed} x={x.tolist()}"
        assert xb.accumulate(x).tolist() == [model.accumulate(x.tolist())], f"seed={seed}"


@settings(max_examples=120, deadline=None)
@given(small_configs(), u32)
def test_vmm_against_reference(c, seed):
    """Noise-free and noisy VMMs, every rectification and ADC setting, exact."""
    rng = np.random.default_rng(seed)
    xb, model = pair(c)
    levels = random_levels(rng, c)
    xb.write_levels(levels)
    model.write_levels(levels.tolist())
    assert_same_state(xb, model, f"seed={seed} after write_levels")
    inputs = random_codes(rng, c, (4, c.rows))
    for x in inputs:
        assert xb.vmm(x).tolist() == model.vmm(x.tolist()), f"seed={seed} x={x.tolist()}"
        assert_same_state(xb, model, f"seed={seed}")
    assert xb.vmm_batch(inputs).tolist() == model.vmm_batch(inputs.tolist()), f"seed={seed}"
    assert_same_state(xb, model, f"seed={seed} after vmm_batch")


@settings(max_examples=40, deadline=None)
@given(small_configs(), u32)
def test_noisy_vmm_with_random_amplitude_tables_against_reference(c, seed):
    rng = np.random.default_rng(seed)
    xb, model = pair(c)
    levels = random_levels(rng, c)
    xb.write_levels(levels)
    model.write_levels(levels.tolist())
    table = random_table(rng)
    xb.set_noise(read=True, read_table=table)
    model.set_noise(read=True, read_table=table)
    inputs = random_codes(rng, c, (3, c.rows))
    assert xb.vmm_batch(inputs).tolist() == model.vmm_batch(inputs.tolist()), f"seed={seed}"
    assert_same_state(xb, model, f"seed={seed}")


def test_vmm_64x64_extremes_exact():
    """Default 64x64 config, all cells at g_max, inputs at the extremes: exact Python ints."""
    c = CrossbarConfig()
    xb = Crossbar(c)
    xb.write_levels(np.full((64, 64), c.g_max))
    top = 64 * 32767 * 16383
    assert xb.vmm(np.full(64, c.x_max)).tolist() == [top] * 64
    assert xb.accumulate(np.full(64, c.x_max)).tolist() == [[top] * 64]
    assert not xb.vmm(np.full(64, c.x_min)).any()  # ideal cells
    mixed = np.array([c.x_max, c.x_min] * 32)
    assert xb.vmm(mixed).tolist() == [32 * 32767 * 16383] * 64
    for k in (0, 1, 5, 14, 30, 63):
        xb.set_rectification(k)
        leak = (-32768 * 16383) // 2**k
        assert xb.vmm(np.full(64, c.x_min)).tolist() == [64 * leak] * 64, k
        assert xb.vmm(mixed).tolist() == [32 * (32767 * 16383 + leak)] * 64, k
    xb.set_rectification(0)
    bottom = 64 * -32768 * 16383
    assert -(2 ** (c.acc_bits - 1)) <= bottom and top < 2 ** (c.acc_bits - 1)
    # Distinct column values: column j holds g_max - j, rows alternate x_max and x_min.
    xb.write_levels(np.tile(c.g_max - np.arange(64), (64, 1)))
    want = [32 * (32767 - 32768) * (16383 - j) for j in range(64)]
    assert xb.vmm(mixed).tolist() == want
    # The ADC then rounds and saturates those exact sums.
    xb.set_adc(12, 20)
    xb.set_rectification(None)
    want = [ref.saturate(ref.round_half_away(top, 20), 12)] * 64
    xb.write_levels(np.full((64, 64), c.g_max))
    assert xb.vmm(np.full(64, c.x_max)).tolist() == want == [2047] * 64


def test_adc_rounds_half_away_from_zero_and_saturates():
    """A 1x1 crossbar with g = 1 and leaky cells (rect_shift 0) passes acc = x through: the ADC
    output is then ``saturate(round(x / 2**shift), bits)``, compared with Fractions."""
    c = small_config(rows=1, cols=1, x_bits=8, rect_shift=0)
    xb = Crossbar(c)
    xb.write_cell(0, 0, 1)
    for bits in (None, 2, 3, 4, 8):
        for shift in range(0, 6):
            xb.set_adc(bits, shift)
            for x in range(c.x_min, c.x_max + 1):
                want = ref.round_half_away_fraction(Fraction(x, 2**shift))
                if bits is not None:
                    want = min(max(want, -(2 ** (bits - 1))), 2 ** (bits - 1) - 1)
                assert want == ref.saturate(ref.round_half_away(x, shift), bits)
                assert xb.vmm([x]).tolist() == [want], (bits, shift, x)


@settings(max_examples=60, deadline=None)
@given(small_configs(noise=False), u32, st.one_of(st.none(), st.integers(2, 63)), st.data())
def test_adc_against_reference(c, seed, bits, data):
    shift = data.draw(st.integers(0, 63), label="adc_shift")
    rng = np.random.default_rng(seed)
    xb, model = pair(c)
    levels = random_levels(rng, c)
    xb.write_levels(levels)
    model.write_levels(levels.tolist())
    xb.set_adc(bits, shift)
    model.set_adc(bits, shift)
    for x in random_codes(rng, c, (3, c.rows)):
        got = xb.vmm(x).tolist()
        assert got == model.vmm(x.tolist()), f"seed={seed} x={x.tolist()}"
        if bits is not None:
            assert all(-(2 ** (bits - 1)) <= v < 2 ** (bits - 1) for v in got)


def test_accumulate_changes_nothing_and_matches_reference():
    seed = 11
    rng = np.random.default_rng(seed)
    c = small_config(rows=8, cols=8, read_noise=True, read_sigma=2.0, rect_shift=4)
    xb, model = pair(c)
    levels = random_levels(rng, c)
    xb.write_levels(levels)
    model.write_levels(levels.tolist())
    before = snapshot(xb)
    inputs = random_codes(rng, c, (5, 8))
    got = xb.accumulate(inputs)
    assert got.shape == (5, 8)
    assert got.tolist() == [model.accumulate(x) for x in inputs.tolist()], f"seed={seed}"
    assert xb.accumulate(inputs[0]).tolist() == [model.accumulate(inputs[0].tolist())]
    assert_same_snapshot(before, snapshot(xb), f"seed={seed}")


@settings(max_examples=50, deadline=None)
@given(small_configs(), u32, st.integers(0, 9))
def test_batched_vmm_equals_one_by_one(c, seed, batch):
    rng = np.random.default_rng(seed)
    levels = random_levels(rng, c)
    one, many = Crossbar(c), Crossbar(c)
    one.write_levels(levels)
    many.write_levels(levels)
    start = one.noise_counter
    inputs = random_codes(rng, c, (batch, c.rows))
    want = np.array([one.vmm(x) for x in inputs], dtype=np.int64).reshape(batch, c.cols)
    got = many.vmm_batch(inputs)
    assert got.shape == (batch, c.cols)
    np.testing.assert_array_equal(got, want, err_msg=f"seed={seed}")
    advance = batch if c.read_noise else 0
    assert many.noise_counter == one.noise_counter == start + advance


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("ru_azo_2024", dict(write_noise=False, rect_shift=6, adc_bits=30, adc_shift=4)),
        ("ideal14", dict(read_noise=True, read_sigma=0.3)),
    ],
)
def test_64x64_noisy_vmm_against_reference(name, changes):
    """Read noise on a full-size array: once per vector, per cell from the definition."""
    seed = 2024
    rng = np.random.default_rng(seed)
    c = preset(name, **changes)
    xb, model = pair(c)
    levels = random_levels(rng, c)
    xb.write_levels(levels)
    model.write_levels(levels.tolist())
    inputs = random_codes(rng, c, (3, 64))
    inputs[0] = c.x_max
    got = xb.vmm_batch(inputs)
    want = model.vmm_batch(inputs.tolist())
    assert got.tolist() == want, f"seed={seed}"
    assert xb.noise_counter == model.noise_counter == 3
    # The noise is really there: the result differs from the noise-free one.
    quiet = Crossbar(c.replace(read_noise=False))
    quiet.write_levels(levels)
    assert not np.array_equal(quiet.vmm_batch(inputs), got)


def test_noisy_vmm_does_not_depend_on_lanes():
    seed = 5
    rng = np.random.default_rng(seed)
    base = preset("ru_azo_2024", write_noise=False, rect_shift=3)
    levels = random_levels(rng, base)
    inputs = random_codes(rng, base, (4, 64))
    results = []
    for lanes in (1, 8, 64):
        xb = Crossbar(base.replace(lanes=lanes))
        xb.write_levels(levels)
        results.append(xb.vmm_batch(inputs))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0], err_msg=f"seed={seed}")


def test_noise_counter_wraps_modulo_2_32():
    seed = 3
    rng = np.random.default_rng(seed)
    c = small_config(rows=3, cols=4, read_noise=True, read_sigma=4.0, seed=77)
    xb, model = pair(c)
    levels = random_levels(rng, c)
    xb.write_levels(levels)
    model.write_levels(levels.tolist())
    xb.noise_counter = model.noise_counter = 2**32 - 2
    inputs = random_codes(rng, c, (4, 3))
    assert xb.vmm_batch(inputs).tolist() == model.vmm_batch(inputs.tolist())
    assert xb.noise_counter == model.noise_counter == 2
    # operation 2**32 + k is operation k
    fresh = Crossbar(c)
    fresh.write_levels(levels)
    wrapped = Crossbar(c)
    wrapped.write_levels(levels)
    wrapped.noise_counter = 2**32 - 1
    wrapped.vmm(inputs[0])
    assert wrapped.noise_counter == 0
    np.testing.assert_array_equal(wrapped.vmm(inputs[1]), fresh.vmm(inputs[1]))


def test_empty_batch():
    c = small_config(rows=3, cols=4, read_noise=True, read_sigma=1.0)
    xb = Crossbar(c)
    out = xb.vmm_batch(np.zeros((0, 3), dtype=np.int64))
    assert out.shape == (0, 4)
    assert xb.noise_counter == 0


@settings(max_examples=80, deadline=None)
@given(small_configs(noise=False), u32)
def test_vmm_is_linear_in_non_negative_inputs(c, seed):
    c = c.replace(adc_bits=None, adc_shift=0)
    rng = np.random.default_rng(seed)
    xb = Crossbar(c)
    xb.write_levels(random_levels(rng, c))
    x1 = rng.integers(0, c.x_max + 1, size=c.rows)
    x2 = rng.integers(0, c.x_max - x1 + 1)  # x1 + x2 <= x_max
    total = xb.vmm(x1 + x2)
    np.testing.assert_array_equal(total, xb.vmm(x1) + xb.vmm(x2), err_msg=f"seed={seed}")
    np.testing.assert_array_equal(2 * xb.vmm(x1 // 2), xb.vmm(x1 // 2 * 2), err_msg=f"{seed=}")


# Write noise -----------------------------------------------------------------------------------


def _expected_write(xb: Crossbar, counter: int, row: int, cols, requested) -> list[int]:
    """requested + round_half_away(z * s[seg] / 2**10), clipped, with z from noise.py."""
    c = xb.config
    row_words, col_words = axis_words(xb.noise_seed, counter, c.rows, c.cols)
    z = cell_deviates(row_words, col_words)
    out = []
    for col, level in zip(cols, requested, strict=True):
        scale = xb.write_sigma_table[level >> c.segment_shift]
        error = ref.round_half_away(int(z[row, col]) * scale, NOISE_FRAC_BITS)
        assert int(z[row, col]) == ref.cell_deviate(xb.noise_seed, counter, row, col)
        out.append(min(max(level + error, 0), c.g_max))
    return out


def test_write_noise_on_cells_rows_and_arrays():
    seed = 17
    rng = np.random.default_rng(seed)
    c = small_config(rows=6, cols=8, g_bits=12, write_noise=True, write_sigma=3.0, seed=99)
    xb = Crossbar(c)
    xb.set_noise(write_table=random_table(rng, 2000))
    errors = 0
    for _ in range(30):
        k = xb.noise_counter
        i, j, level = int(rng.integers(6)), int(rng.integers(8)), int(rng.integers(c.levels))
        want = _expected_write(xb, k, i, [j], [level])
        xb.write_cell(i, j, level)
        assert xb.read_cell(i, j) == want[0], f"seed={seed}"
        assert xb.noise_counter == k + 1
        errors += want[0] != level
    assert errors > 10  # the error really is applied
    for _ in range(5):
        k = xb.noise_counter
        i = int(rng.integers(6))
        levels = random_levels(rng, c, (8,))
        want = _expected_write(xb, k, i, range(8), levels.tolist())
        xb.write_row(i, levels)
        assert xb.read_row(i).tolist() == want, f"seed={seed}"
        assert xb.noise_counter == k + 1  # one operation for the whole row
    k = xb.noise_counter
    everything = random_levels(rng, c)
    want = [_expected_write(xb, k + i, i, range(8), everything[i].tolist()) for i in range(6)]
    xb.write_levels(everything)
    assert xb.levels.tolist() == want, f"seed={seed}"
    assert xb.noise_counter == k + 6  # one write-row operation per row


def test_write_noise_clips_at_both_ends():
    seed = 23
    rng = np.random.default_rng(seed)
    c = small_config(rows=16, cols=16, g_bits=8, write_noise=True)
    xb, model = pair(c)
    table = [4095] * 16  # errors up to 32 * 4095 / 1024 = 128 levels
    xb.set_noise(write_table=table)
    model.set_noise(write_table=table)
    for level in (0, c.g_max):
        requested = np.full((16, 16), level)
        xb.write_levels(requested)
        model.write_levels(requested.tolist())
        assert_same_state(xb, model, f"seed={seed} level={level}")
        stored = xb.levels
        assert stored.min() >= 0 and stored.max() <= c.g_max
        assert (stored == level).sum() > 16  # clipped (or zero error) cells
        assert (stored != level).sum() > 16  # moved cells
    levels = random_levels(rng, c)
    xb.write_levels(levels)
    model.write_levels(levels.tolist())
    assert_same_state(xb, model, f"seed={seed}")


@settings(max_examples=40, deadline=None)
@given(small_configs(), u32)
def test_write_noise_against_reference(c, seed):
    rng = np.random.default_rng(seed)
    xb, model = pair(c)
    table = random_table(rng)
    xb.set_noise(write=True, write_table=table)
    model.set_noise(write=True, write_table=table)
    levels = random_levels(rng, c)
    xb.write_levels(levels)
    model.write_levels(levels.tolist())
    assert_same_state(xb, model, f"seed={seed}")
    row = random_levels(rng, c, (c.cols,))
    xb.write_row(c.rows - 1, row)
    model.write_row(c.rows - 1, row.tolist())
    xb.write_cell(0, c.cols - 1, c.g_max)
    model.write_cell(0, c.cols - 1, c.g_max)
    assert_same_state(xb, model, f"seed={seed}")


def test_seed_resets_the_counter_and_replays_the_noise():
    seed = 31
    rng = np.random.default_rng(seed)
    # A write error of 1.5 levels (the preset's 0.05-0.13 level almost always rounds to 0).
    c = preset("ru_azo_2024", write_sigma=1.5, write_sigma_slope=0.0)
    xb = Crossbar(c)
    levels = random_levels(rng, c)
    inputs = random_codes(rng, c, (3, 64))
    xb.write_levels(levels)
    stored = xb.levels.copy()
    assert not np.array_equal(stored, levels)
    first = xb.vmm_batch(inputs)
    assert xb.noise_counter == 64 + 3
    xb.seed(c.seed)
    assert (xb.noise_seed, xb.noise_counter) == (c.seed, 0)
    xb.write_levels(levels)
    np.testing.assert_array_equal(xb.levels, stored, err_msg=f"seed={seed}")
    np.testing.assert_array_equal(xb.vmm_batch(inputs), first, err_msg=f"seed={seed}")
    xb.seed(c.seed + 1)
    xb.write_levels(levels)
    assert not np.array_equal(xb.levels, stored)
    # reset_registers restores the configured registers and seed, keeps the levels
    xb.set_adc(8, 3)
    xb.set_rectification(2)
    xb.set_update_shift(5)
    xb.set_noise(read=False, write=False, read_table=[1] * 16, write_table=[2] * 16)
    kept = xb.levels.copy()
    xb.reset_registers()
    fresh = Crossbar(c)
    assert snapshot(xb)[1:] == snapshot(fresh)[1:]
    np.testing.assert_array_equal(xb.levels, kept)


# Random operation sequences --------------------------------------------------------------------


OPERATIONS = (
    "write_cell",
    "write_row",
    "write_levels",
    "pulse_cell",
    "pulse",
    "update_rank1",
    "vmm",
    "vmm_batch",
    "accumulate",
    "seed",
    "set_adc",
    "set_rectification",
    "set_update_shift",
    "set_noise",
)


def _random_arguments(rng: np.random.Generator, c: CrossbarConfig, kind: str):
    """Random valid arguments of one operation: a tuple, or a dict of keywords."""
    i, j = int(rng.integers(c.rows)), int(rng.integers(c.cols))
    if kind == "write_cell":
        return (i, j, int(random_levels(rng, c, (1,))[0]))
    if kind == "write_row":
        return (i, random_levels(rng, c, (c.cols,)))
    if kind == "write_levels":
        return (random_levels(rng, c),)
    if kind == "pulse_cell":
        return (i, j, int(rng.integers(c.pulse_min, c.pulse_max + 1)) >> int(rng.integers(12)))
    if kind == "pulse":
        return (rng.integers(c.pulse_min, c.pulse_max + 1, (c.rows, c.cols)) >> 3,)
    if kind == "update_rank1":
        shift = None if rng.random() < 0.5 else int(rng.integers(0, 40))
        return (random_codes(rng, c, c.rows), random_codes(rng, c, c.cols), shift)
    if kind == "vmm":
        return (random_codes(rng, c, c.rows),)
    if kind in ("vmm_batch", "accumulate"):
        batch = int(rng.integers(0 if kind == "vmm_batch" else 1, 5))
        return (random_codes(rng, c, (batch, c.rows)),)
    if kind == "seed":
        return (int(rng.integers(2**32)),)
    if kind == "set_adc":
        bits = None if rng.random() < 0.4 else int(rng.integers(2, 64))
        return (bits, int(rng.integers(0, 64)) >> int(rng.integers(4)))
    if kind == "set_rectification":
        return (None if rng.random() < 0.4 else int(rng.integers(0, 64)) >> int(rng.integers(4)),)
    if kind == "set_update_shift":
        return (int(rng.integers(0, 30)),)
    assert kind == "set_noise"
    options = {}
    for name in ("read", "write"):
        if rng.random() < 0.6:
            options[name] = bool(rng.random() < 0.5)
        if rng.random() < 0.4:
            options[f"{name}_table"] = random_table(rng)
    return options


def _apply(target, kind: str, args):
    call = getattr(target, kind)
    return call(**args) if isinstance(args, dict) else call(*args)


def _plain(args):
    """The same arguments as Python lists, for the reference."""
    if isinstance(args, dict):
        return args
    return tuple(a.tolist() if isinstance(a, np.ndarray) else a for a in args)


@settings(max_examples=40, deadline=None)
@given(small_configs(), u32)
def test_random_operation_sequences_against_reference(c, seed):
    rng = np.random.default_rng(seed)
    xb, model = pair(c)
    for step in range(25):
        kind = str(rng.choice(OPERATIONS))
        args = _random_arguments(rng, c, kind)
        got = _apply(xb, kind, args)
        where = f"seed={seed} step {step}: {kind}{_plain(args)}"
        if kind == "accumulate":  # the reference takes one vector at a time
            assert got.tolist() == [model.accumulate(x) for x in _plain(args)[0]], where
        else:
            want = _apply(model, kind, _plain(args))
            if kind in ("vmm", "vmm_batch"):
                assert np.asarray(got).tolist() == want, where
        assert_same_state(xb, model, where)


# Errors: a ValueError/TypeError naming the value and its limit, and nothing changes -------------

# rows 4, cols 6, 256 levels (0..255), 6-bit inputs (-32..31), pulse counts -256..255.
ERROR_CONFIG = dict(
    rows=4,
    cols=6,
    lanes=1,
    g_bits=8,
    x_bits=6,
    read_noise=True,
    write_noise=True,
    read_sigma=1.0,
    write_sigma=1.0,
    seed=5,
)


def _out(name: str, value, low: int, high: int) -> str:
    """The message of a scalar out of range."""
    return re.escape(f"{name} = {value} is out of range: must be in [{low}, {high}]")


def _bad(name: str, value, index, low: int, high: int) -> str:
    """The message of an array element out of range."""
    return re.escape(f"{name} value {value} at index {index} is out of range: ") + re.escape(
        f"must be in [{low}, {high}]"
    )


def _shape(name: str, shape, expected) -> str:
    return re.escape(f"{name} has shape {shape}, expected {expected}")


def _type(name: str, value) -> str:
    return re.escape(f"{name} must be an int, not {value!r}")


def _dtype(name: str, dtype: str) -> str:
    return re.escape(f"{name} must hold integers, not {dtype} values")


def _fraction(name: str, text: str, index) -> str:
    return re.escape(f"{name} value {text} at index {index} is not a whole number")


def _with(shape: tuple, index: tuple, value, dtype=np.int64) -> np.ndarray:
    array = np.zeros(shape, dtype=dtype)
    array[index] = value
    return array


_T = [7] * 16  # a valid amplitude table
U32_MAX = 2**32 - 1
# fmt: off
# (method, positional args or keyword dict, exception, message regex)
_ERRORS = [
    ("seed", (-1,), ValueError, _out("seed", -1, 0, U32_MAX)),
    ("seed", (2**32,), ValueError, _out("seed", 2**32, 0, U32_MAX)),
    ("seed", (1.0,), TypeError, _type("seed", 1.0)),
    ("set_adc", (1, 0), ValueError, _out("adc_bits", 1, 2, 63)),
    ("set_adc", (64, 0), ValueError, _out("adc_bits", 64, 2, 63)),
    ("set_adc", (8, -1), ValueError, _out("adc_shift", -1, 0, 63)),
    ("set_adc", (8, 64), ValueError, _out("adc_shift", 64, 0, 63)),
    ("set_adc", (None, 64), ValueError, _out("adc_shift", 64, 0, 63)),
    ("set_adc", (8.0, 0), TypeError, _type("adc_bits", 8.0)),
    ("set_adc", (8, "1"), TypeError, _type("adc_shift", "1")),
    ("set_rectification", (-1,), ValueError, _out("rect_shift", -1, 0, 63)),
    ("set_rectification", (64,), ValueError, _out("rect_shift", 64, 0, 63)),
    ("set_rectification", (1.5,), TypeError, _type("rect_shift", 1.5)),
    ("set_update_shift", (-1,), ValueError, _out("update_shift", -1, 0, 63)),
    ("set_update_shift", (64,), ValueError, _out("update_shift", 64, 0, 63)),
    ("set_update_shift", (None,), TypeError, _type("update_shift", None)),
    ("set_noise", {"read_table": [1] * 15}, ValueError, _shape("read_table", (15,), (16,))),
    ("set_noise", {"read_table": [[1] * 16]}, ValueError, _shape("read_table", (1, 16), (16,))),
    ("set_noise", {"read_table": [1, 2, 3, 4096] + [0] * 12}, ValueError,
     _bad("read_table", 4096, 3, 0, 4095)),
    ("set_noise", {"write_table": [-1] + [0] * 15}, ValueError,
     _bad("write_table", -1, 0, 0, 4095)),
    ("set_noise", {"write_table": [0.5] * 16}, ValueError,
     re.escape("write_table value 0.5 at index 0 is not a whole number")),
    ("set_noise", {"write_table": ["a"] * 16}, ValueError, _dtype("write_table", "<U1")),
    ("set_noise", {"read": "yes"}, TypeError, re.escape("read must be a bool, not 'yes'")),
    ("set_noise", {"write": 1}, TypeError, re.escape("write must be a bool, not 1")),
    # A valid part must not be applied when another part is bad.
    ("set_noise", {"read": False, "read_table": _T, "write": 0}, TypeError,
     re.escape("write must be a bool, not 0")),
    ("set_noise", {"read": False, "read_table": _T, "write_table": [9] * 17}, ValueError,
     _shape("write_table", (17,), (16,))),
    ("write_cell", (4, 0, 1), ValueError, _out("row", 4, 0, 3)),
    ("write_cell", (-1, 0, 1), ValueError, _out("row", -1, 0, 3)),
    ("write_cell", (0, 6, 1), ValueError, _out("col", 6, 0, 5)),
    ("write_cell", (0, 0, 256), ValueError, _out("level", 256, 0, 255)),
    ("write_cell", (0, 0, -1), ValueError, _out("level", -1, 0, 255)),
    ("write_cell", (1.0, 0, 1), TypeError, _type("row", 1.0)),
    ("write_cell", (0, True, 1), TypeError, _type("col", True)),
    ("write_cell", (0, 0, 2.5), TypeError, _type("level", 2.5)),
    ("write_row", (4, [0] * 6), ValueError, _out("row", 4, 0, 3)),
    ("write_row", (0, [0] * 5), ValueError, _shape("levels", (5,), (6,))),
    ("write_row", (0, [[0] * 6]), ValueError, _shape("levels", (1, 6), (6,))),
    ("write_row", (0, [0, 0, 256, 0, 0, 0]), ValueError, _bad("levels", 256, 2, 0, 255)),
    ("write_row", (0, [0, 0, 0, 0, 0, -7]), ValueError, _bad("levels", -7, 5, 0, 255)),
    ("write_row", (0, [0.5] * 6), ValueError, _fraction("levels", "0.5", 0)),
    ("write_row", (0, [np.nan] * 6), ValueError, _fraction("levels", "NaN", 0)),
    ("write_row", (0, ["1"] * 6), ValueError, _dtype("levels", "<U1")),
    ("write_row", (0, [True] * 6), ValueError, _dtype("levels", "bool")),
    ("write_levels", (np.zeros((4, 5), dtype=int),), ValueError,
     _shape("levels", (4, 5), (4, 6))),
    ("write_levels", (np.zeros(24, dtype=int),), ValueError, _shape("levels", (24,), (4, 6))),
    ("write_levels", (_with((4, 6), (2, 3), -1),), ValueError,
     _bad("levels", -1, (2, 3), 0, 255)),
    ("write_levels", (_with((4, 6), (3, 5), 256),), ValueError,
     _bad("levels", 256, (3, 5), 0, 255)),
    ("write_levels", (np.full((4, 6), 1.25),), ValueError, _fraction("levels", "1.25", (0, 0))),
    ("pulse_cell", (4, 0, 1), ValueError, _out("row", 4, 0, 3)),
    ("pulse_cell", (0, -1, 1), ValueError, _out("col", -1, 0, 5)),
    ("pulse_cell", (0, 0, 256), ValueError, _out("count", 256, -256, 255)),
    ("pulse_cell", (0, 0, -257), ValueError, _out("count", -257, -256, 255)),
    ("pulse_cell", (0, 0, 1.5), TypeError, _type("count", 1.5)),
    ("pulse", (np.zeros((4, 7), dtype=int),), ValueError, _shape("counts", (4, 7), (4, 6))),
    ("pulse", (_with((4, 6), (0, 1), 256),), ValueError,
     _bad("counts", 256, (0, 1), -256, 255)),
    ("pulse", (_with((4, 6), (3, 0), -257),), ValueError,
     _bad("counts", -257, (3, 0), -256, 255)),
    ("pulse", (np.full((4, 6), 0.5),), ValueError, _fraction("counts", "0.5", (0, 0))),
    ("update_rank1", ([1] * 3, [1] * 6), ValueError, _shape("a", (3,), (4,))),
    ("update_rank1", ([1] * 4, [1] * 7), ValueError, _shape("b", (7,), (6,))),
    ("update_rank1", ([1, 1, -33, 1], [1] * 6), ValueError, _bad("a", -33, 2, -32, 31)),
    ("update_rank1", ([1] * 4, [32] + [1] * 5), ValueError, _bad("b", 32, 0, -32, 31)),
    ("update_rank1", ([1] * 4, [1] * 6, 64), ValueError, _out("shift", 64, 0, 63)),
    ("update_rank1", ([1] * 4, [1] * 6, -1), ValueError, _out("shift", -1, 0, 63)),
    ("update_rank1", ([1] * 4, [1] * 6, 1.0), TypeError, _type("shift", 1.0)),
    ("update_rank1", ([0.5] * 4, [1] * 6), ValueError, _fraction("a", "0.5", 0)),
    ("read_cell", (4, 0), ValueError, _out("row", 4, 0, 3)),
    ("read_cell", (0, 6), ValueError, _out("col", 6, 0, 5)),
    ("read_cell", ("0", 0), TypeError, _type("row", "0")),
    ("read_row", (-1,), ValueError, _out("row", -1, 0, 3)),
    ("read_row", (None,), TypeError, _type("row", None)),
    ("vmm", ([1] * 5,), ValueError, _shape("x", (5,), (4,))),
    ("vmm", ([[1] * 4],), ValueError, _shape("x", (1, 4), (4,))),
    ("vmm", ([0, 32, 0, 0],), ValueError, _bad("x", 32, 1, -32, 31)),
    ("vmm", ([0, 0, 0, -33],), ValueError, _bad("x", -33, 3, -32, 31)),
    ("vmm", ([0.5, 0, 0, 0],), ValueError, _fraction("x", "0.5", 0)),
    ("vmm", ([1j, 0, 0, 0],), ValueError, _dtype("x", "complex128")),
    ("vmm_batch", ([1] * 4,), ValueError, _shape("inputs", (4,), "(batch, 4)")),
    ("vmm_batch", (np.zeros((2, 5), dtype=int),), ValueError,
     _shape("inputs", (2, 5), "(batch, 4)")),
    ("vmm_batch", (np.zeros((2, 4, 1), dtype=int),), ValueError,
     _shape("inputs", (2, 4, 1), "(batch, 4)")),
    ("vmm_batch", (_with((3, 4), (1, 2), 32),), ValueError,
     _bad("inputs", 32, (1, 2), -32, 31)),
    ("vmm_batch", (np.full((2, 4), 0.25),), ValueError, _fraction("inputs", "0.25", (0, 0))),
    ("accumulate", (np.zeros((2, 5), dtype=int),), ValueError,
     _shape("inputs", (2, 5), "(batch, 4)")),
    ("accumulate", ([0, 0, -33, 0],), ValueError, _bad("inputs", -33, (0, 2), -32, 31)),
    ("accumulate", ([0.5] * 4,), ValueError, _fraction("inputs", "0.5", (0, 0))),
]
# fmt: on


@pytest.fixture
def busy_crossbar() -> Crossbar:
    """A crossbar with non-trivial levels, registers and noise counter."""
    seed = 41
    rng = np.random.default_rng(seed)
    xb = Crossbar(CrossbarConfig(**ERROR_CONFIG))
    xb.write_levels(random_levels(rng, xb.config))
    xb.vmm_batch(random_codes(rng, xb.config, (3, 4)))
    xb.set_adc(20, 2)
    xb.set_rectification(3)
    xb.set_update_shift(1)
    assert xb.noise_counter == 4 + 3
    return xb


@pytest.mark.parametrize(
    ("method", "args", "error", "match"),
    _ERRORS,
    ids=[f"{e[0]}-{n}" for n, e in enumerate(_ERRORS)],
)
def test_errors_name_value_and_limit_and_change_nothing(busy_crossbar, method, args, error, match):
    xb = busy_crossbar
    before = snapshot(xb)
    call = getattr(xb, method)
    with pytest.raises(error, match=match):
        if isinstance(args, dict):
            call(**args)
        else:
            call(*args)
    assert_same_snapshot(before, snapshot(xb), f"after a failed {method}")


def test_every_public_method_has_error_cases():
    public = {
        name
        for name in dir(Crossbar)
        if not name.startswith("_") and callable(getattr(Crossbar, name))
    }
    covered = {e[0] for e in _ERRORS}
    # reset_registers takes no arguments and cannot fail.
    assert public - covered == {"reset_registers"}


# Edge cases: the largest shifts, batches past a hash block, malformed shapes ------------------


@pytest.mark.parametrize("adc_shift", [54, 63])
def test_noisy_vmm_with_a_large_adc_shift(adc_shift):
    c = small_config(rows=4, cols=4, read_noise=True, read_sigma=1.0, seed=1)
    xb, model = pair(c)
    levels = [[1, 2, 3, 4]] * 4
    xb.write_levels(levels)
    model.write_levels(levels)
    xb.set_adc(None, adc_shift)
    model.set_adc(None, adc_shift)
    want = model.vmm([1, 2, 3, 4])
    assert want == [0, 0, 0, 0]
    assert xb.vmm([1, 2, 3, 4]).tolist() == want


@pytest.mark.parametrize(("rows", "cols"), [(16, 48), (4, 3)])
def test_noisy_batch_longer_than_a_hash_block(rows, cols):
    seed = 4097
    rng = np.random.default_rng(seed)
    c = small_config(rows=rows, cols=cols, read_noise=True, read_sigma=1.0)
    levels = random_levels(rng, c)
    inputs = random_codes(rng, c, (4097, rows))
    whole, split = Crossbar(c), Crossbar(c)
    whole.write_levels(levels)
    split.write_levels(levels)
    got = whole.vmm_batch(inputs)
    want = np.concatenate([split.vmm_batch(inputs[:4096]), split.vmm_batch(inputs[4096:])])
    np.testing.assert_array_equal(got, want, err_msg=f"seed={seed}")


def test_noisy_batch_longer_than_a_hash_block_64x64():
    """The same batch length works at 64x64 (131072 // 4096 = 32 divides 4096)."""
    seed = 4098
    rng = np.random.default_rng(seed)
    c = preset("ru_azo_2024", write_noise=False)
    levels = random_levels(rng, c)
    inputs = random_codes(rng, c, (4097, 64))
    whole, split = Crossbar(c), Crossbar(c)
    whole.write_levels(levels)
    split.write_levels(levels)
    got = whole.vmm_batch(inputs)
    want = np.concatenate([split.vmm_batch(inputs[:4096]), split.vmm_batch(inputs[4096:])])
    np.testing.assert_array_equal(got, want, err_msg=f"seed={seed}")
    one = Crossbar(c)
    one.write_levels(levels)
    one.noise_counter = 4096
    np.testing.assert_array_equal(one.vmm(inputs[4096]), got[4096], err_msg=f"seed={seed}")


@pytest.mark.parametrize("rect_shift", [None, 1])
def test_accumulate_rejects_three_dimensional_inputs(rect_shift):
    c = small_config(rows=4, cols=6, rect_shift=rect_shift)
    xb = Crossbar(c)
    with pytest.raises(ValueError, match=r"inputs has shape \(2, 4, 4\), expected \(batch, 4\)"):
        xb.accumulate(-np.ones((2, 4, 4), dtype=np.int64))
