"""CrossbarConfig: presets, derived widths (overflow impossible), validation, immutability."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from molxbar.emulator import PRESETS, Crossbar, CrossbarConfig, preset
from molxbar.emulator import config as config_module
from tests.support import reference as ref

# Presets ---------------------------------------------------------------------------------------


def test_ideal14_defaults():
    c = preset("ideal14")
    assert c == CrossbarConfig()
    assert (c.rows, c.cols) == (64, 64)
    assert c.g_bits == 14
    assert c.levels == 2**14
    assert c.g_max == 2**14 - 1
    assert c.x_bits == 16
    assert (c.x_min, c.x_max) == (-32768, 32767)
    assert c.read_noise is False and c.write_noise is False
    assert c.read_sigma == c.read_sigma_slope == c.write_sigma == c.write_sigma_slope == 0
    assert c.read_sigma_table == c.write_sigma_table == (0,) * 16
    assert c.adc_bits is None and c.adc_shift == 0
    assert c.rect_shift is None
    assert c.update_shift == 0
    assert c.seed == 0
    assert c.acc_bits == 14 + 16 + 6
    assert c.out_bits == c.acc_fine_bits  # full precision


def test_ru_azo_2024_defaults():
    c = preset("ru_azo_2024")
    assert (c.rows, c.cols) == (64, 64)
    assert c.g_bits == 15
    assert c.levels == 16520
    assert c.g_max == 16519
    assert c.x_bits == 16
    assert c.read_noise is True and c.write_noise is True
    assert c.read_sigma > 0 and c.read_sigma_slope > 0
    assert c.write_sigma > 0 and c.write_sigma_slope > 0
    assert c.acc_bits == 15 + 16 + 6
    # The segments that hold usable levels have a non-zero, non-decreasing amplitude.
    top_segment = c.g_max >> c.segment_shift
    used = c.read_sigma_table[: top_segment + 1]
    assert all(v > 0 for v in used)
    assert list(used) == sorted(used)
    # DESIGN §1: sigma_G = 27 nS + 1.87e-5 G, G = 200 nS + g * 0.357 uS, so sigma at g = 0 is
    # about 0.076 level; write error 5.1 % of a level at the bottom, 12.6 % at the top.
    assert c.read_sigma == pytest.approx((27e-9 + 1.87e-5 * 200e-9) / 0.357e-6, rel=1e-12)
    assert c.read_sigma_slope == pytest.approx(1.87e-5, rel=1e-12)
    assert c.write_sigma == pytest.approx(0.051)
    assert c.write_sigma + c.write_sigma_slope * c.g_max == pytest.approx(0.126)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_sigma_tables_hold_sigma_at_segment_midpoints(name):
    """``z * s[m] / 2**F`` has std ``4 * s[m] / 2**F``: that is sigma at the segment midpoint,
    to within half a table step (``0.5 * 4 / 2**F`` level)."""
    c = PRESETS[name]
    for table, sigma, slope in (
        (c.read_sigma_table, c.read_sigma, c.read_sigma_slope),
        (c.write_sigma_table, c.write_sigma, c.write_sigma_slope),
    ):
        assert len(table) == ref.SIGMA_SEGMENTS
        for m, entry in enumerate(table):
            g_mid = (m + 0.5) * 2**c.segment_shift
            wanted = sigma + slope * g_mid
            got = entry * 4 / 2**ref.NOISE_FRAC_BITS  # the deviate z has std 4
            assert 0 <= entry < 2**config_module.SIGMA_SCALE_BITS
            assert abs(got - wanted) <= 0.5 * 4 / 2**ref.NOISE_FRAC_BITS + 1e-12, (name, m)


def test_documented_constants():
    assert config_module.NOISE_FRAC_BITS == ref.NOISE_FRAC_BITS == 10
    assert config_module.SIGMA_SEGMENTS == ref.SIGMA_SEGMENTS == 16
    assert config_module.Z_MAX == ref.Z_MAX == 32
    assert config_module.Z_SIGMA == 4.0  # sqrt(64 / 4): a binomial(64, 1/2) minus 32


def test_presets_are_distinct_objects_and_preset_returns_them():
    assert set(PRESETS) >= {"ideal14", "ru_azo_2024"}
    for name, c in PRESETS.items():
        assert preset(name) is c


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"unknown preset 'ideal15'.*ideal14.*ru_azo_2024"):
        preset("ideal15")


def test_preset_with_changes_is_a_validated_copy():
    c = preset("ideal14", rows=8, cols=16, adc_bits=12)
    assert (c.rows, c.cols, c.adc_bits) == (8, 16, 12)
    assert c.g_bits == 14 and c.levels == 2**14
    assert PRESETS["ideal14"].rows == 64  # the preset itself is untouched
    with pytest.raises(ValueError, match=r"lanes = 8 is out of range: must be in \[1, 4\]"):
        preset("ideal14", cols=4)


# Derived widths --------------------------------------------------------------------------------


def test_derived_ranges_and_widths():
    c = CrossbarConfig(rows=48, cols=24, g_bits=12, levels=3000, x_bits=10, lanes=6)
    assert c.g_max == 2999
    assert (c.x_min, c.x_max) == (-512, 511)
    assert c.pulse_bits == 13 and (c.pulse_min, c.pulse_max) == (-4096, 4095)
    assert c.row_bits == 6 and c.col_bits == 5
    assert c.product_bits == 22
    assert c.acc_bits == 12 + 10 + 6
    assert c.segment_shift == 8
    assert c.noise_max == 32 * 4095
    assert c.max_shift == 63
    assert c.sigma_max == pytest.approx(4095 * 4 / 1024)
    assert CrossbarConfig(rows=1, cols=1, lanes=1).row_bits == 1
    assert CrossbarConfig(rows=64).row_bits == 6 and CrossbarConfig(rows=65, lanes=8).row_bits == 7


def _ceil_log2(n: int) -> int:
    return (n - 1).bit_length()


def _fits(value: int, bits: int) -> bool:
    return -(2 ** (bits - 1)) <= value <= 2 ** (bits - 1) - 1


@st.composite
def wide_configs(draw):
    """Any valid shape and widths (only the fields the widths depend on)."""
    rows = draw(st.integers(1, 4096))
    g_bits = draw(st.integers(4, 24))
    x_bits = draw(st.integers(2, 24))
    full = draw(st.booleans())
    levels = None if full else draw(st.integers(2, 2**g_bits))
    kwargs = dict(rows=rows, cols=1, lanes=1, g_bits=g_bits, x_bits=x_bits, levels=levels)
    try:
        return CrossbarConfig(**kwargs)
    except ValueError as error:  # the noisy accumulator would not fit 63 bits
        assert "more than 63" in str(error)
        big = rows * 2 ** (x_bits - 1) * (((2**g_bits - 1) << 10) + 32 * 4095)
        # Only rejected when it really does not fit (levels only makes it smaller).
        assert big.bit_length() + 1 > 63
        assume(False)


@settings(max_examples=300, deadline=None)
@given(wide_configs())
def test_acc_bits_formula_and_worst_cases_fit(c):
    assert c.acc_bits == c.g_bits + c.x_bits + _ceil_log2(c.rows)
    assert c.product_bits == c.g_bits + c.x_bits
    rows, g_max = c.rows, c.levels - 1
    # Worst cases of the noise-free accumulator: every cell at g_max and every input at x_min
    # (leaky cells with rect_shift = 0 pass x*g unchanged) or at x_max.
    for x in (c.x_min, c.x_max):
        assert _fits(x * g_max, c.product_bits)
        total = rows * ref.contrib(x, g_max, 0)
        assert _fits(total, c.acc_bits), (c, x, total)
    # Worst cases of the noisy accumulator acc * 2**F + sum contrib(x, n) with |n| <= 32*4095.
    n_max = ref.Z_MAX * (2**12 - 1)
    assert c.noise_max == n_max
    for x in (c.x_min, c.x_max):
        for n in (-n_max, n_max):
            total = rows * (x * g_max * 2**ref.NOISE_FRAC_BITS + x * n)
            assert _fits(total, c.acc_fine_bits), (c, x, n, total)
    assert c.acc_fine_bits <= 63
    assert c.out_bits == c.acc_fine_bits


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 12), st.integers(4, 20), st.integers(2, 20))
def test_acc_bits_is_tight_for_full_levels_and_power_of_two_rows(log_rows, g_bits, x_bits):
    """With ``levels = 2**g_bits`` and ``rows = 2**r`` one bit fewer would overflow."""
    rows = 2**log_rows
    try:
        c = CrossbarConfig(rows=rows, cols=1, lanes=1, g_bits=g_bits, x_bits=x_bits)
    except ValueError:
        return
    worst = rows * c.x_min * c.g_max
    assert _fits(worst, c.acc_bits)
    assert not _fits(worst, c.acc_bits - 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(g_bits=15, levels=16520),
        dict(rows=16, cols=48, g_bits=20, x_bits=20),
        dict(rows=64, cols=8, g_bits=24, x_bits=20),
        dict(rows=64, cols=8, g_bits=24, x_bits=22),  # acc_fine_bits = 63
        dict(rows=17, cols=8, g_bits=24, x_bits=24),  # acc_bits = 53, the widest possible
    ],
)
def test_golden_accumulator_reaches_the_worst_case_exactly(kwargs):
    """The golden model gives the exact worst-case sums (no float rounding, no wrap)."""
    c = CrossbarConfig(lanes=1, **kwargs)
    assert c.acc_bits <= 53  # so the model may use exact float64 products
    xb = Crossbar(c)
    xb.write_levels(np.full((c.rows, c.cols), c.g_max))
    xb.set_rectification(0)
    for x in (c.x_min, c.x_max):
        want = c.rows * x * c.g_max
        got = xb.accumulate(np.full(c.rows, x))
        assert got.tolist() == [[want] * c.cols], (c, x)
        assert _fits(want, c.acc_bits)
        assert xb.vmm(np.full(c.rows, x)).tolist() == [want] * c.cols


# Validation ------------------------------------------------------------------------------------

_BAD_FIELDS = [
    ("rows", 0, ValueError, r"rows = 0 is out of range: must be in \[1, 4096\]"),
    ("rows", 4097, ValueError, r"rows = 4097 is out of range: must be in \[1, 4096\]"),
    ("rows", 1.5, TypeError, r"rows must be an int, not 1\.5"),
    ("rows", True, TypeError, r"rows must be an int, not True"),
    ("cols", 0, ValueError, r"cols = 0 is out of range: must be in \[1, 4096\]"),
    ("cols", "64", TypeError, r"cols must be an int, not '64'"),
    ("g_bits", 3, ValueError, r"g_bits = 3 is out of range: must be in \[4, 24\]"),
    ("g_bits", 25, ValueError, r"g_bits = 25 is out of range: must be in \[4, 24\]"),
    ("levels", 1, ValueError, r"levels = 1 is out of range: must be in \[2, 16384\]"),
    ("levels", 16385, ValueError, r"levels = 16385 is out of range: must be in \[2, 16384\]"),
    ("levels", 100.0, TypeError, r"levels must be an int, not 100\.0"),
    ("x_bits", 1, ValueError, r"x_bits = 1 is out of range: must be in \[2, 24\]"),
    ("x_bits", 25, ValueError, r"x_bits = 25 is out of range: must be in \[2, 24\]"),
    ("lanes", 0, ValueError, r"lanes = 0 is out of range: must be in \[1, 64\]"),
    ("lanes", 65, ValueError, r"lanes = 65 is out of range: must be in \[1, 64\]"),
    ("lanes", 3, ValueError, r"lanes = 3 must divide cols = 64"),
    ("adc_bits", 1, ValueError, r"adc_bits = 1 is out of range: must be in \[2, 63\]"),
    ("adc_bits", 64, ValueError, r"adc_bits = 64 is out of range: must be in \[2, 63\]"),
    ("adc_shift", -1, ValueError, r"adc_shift = -1 is out of range: must be in \[0, 63\]"),
    ("adc_shift", 64, ValueError, r"adc_shift = 64 is out of range: must be in \[0, 63\]"),
    ("rect_shift", -1, ValueError, r"rect_shift = -1 is out of range: must be in \[0, 63\]"),
    ("rect_shift", 64, ValueError, r"rect_shift = 64 is out of range: must be in \[0, 63\]"),
    ("update_shift", -1, ValueError, r"update_shift = -1 is out of range: must be in \[0, 63"),
    ("update_shift", 64, ValueError, r"update_shift = 64 is out of range: must be in \[0, 63"),
    ("read_sigma", -0.1, ValueError, r"read_sigma = -0\.1 must be finite and >= 0"),
    ("read_sigma", math.nan, ValueError, r"read_sigma = nan must be finite and >= 0"),
    ("read_sigma_slope", math.inf, ValueError, r"read_sigma_slope = inf must be finite"),
    ("write_sigma", -1, ValueError, r"write_sigma = -1 must be finite and >= 0"),
    ("write_sigma_slope", "0", TypeError, r"write_sigma_slope must be a number, not '0'"),
    ("read_sigma", True, TypeError, r"read_sigma must be a number, not True"),
    ("read_noise", 1, TypeError, r"read_noise must be a bool, not 1"),
    ("write_noise", None, TypeError, r"write_noise must be a bool, not None"),
    ("seed", -1, ValueError, r"seed = -1 is out of range: must be in \[0, 4294967295\]"),
    ("seed", 2**32, ValueError, r"seed = 4294967296 is out of range: must be in \[0, 4294967295"),
    (
        "read_sigma",
        16.0,
        ValueError,
        r"read noise sigma reaches 16 levels at the top level, above the limit of 16",
    ),
    (
        "write_sigma_slope",
        0.001,
        ValueError,
        r"write noise sigma reaches 16\.4 levels at the top level, above the limit of 16",
    ),
]


@pytest.mark.parametrize(
    ("field", "value", "error", "match"),
    _BAD_FIELDS,
    ids=[f"{f}={v!r}" for f, v, *_ in _BAD_FIELDS],
)
def test_validation_names_value_and_limit(field, value, error, match):
    with pytest.raises(error, match=match):
        CrossbarConfig(**{field: value})
    with pytest.raises(error, match=match):
        CrossbarConfig().replace(**{field: value})


def test_validation_of_the_noisy_accumulator_width():
    # 4096 * 2**23 * ((2**24 - 1) * 2**10 + 32 * 4095) needs 70 magnitude bits, plus a sign.
    assert (4096 * 2**23 * ((2**24 - 1) * 2**10 + 32 * 4095)).bit_length() == 70
    with pytest.raises(
        ValueError, match=r"needs 71 bits, more than 63: reduce rows \(4096\), x_bits \(24\)"
    ):
        CrossbarConfig(rows=4096, cols=8, x_bits=24, g_bits=24)
    # The largest width still accepted.
    c = CrossbarConfig(rows=64, cols=8, x_bits=22, g_bits=24)
    assert c.acc_fine_bits == 63


def test_sigma_limit_is_inclusive():
    c = CrossbarConfig(read_sigma=4095 * 4 / 1024)
    assert c.read_sigma_table[0] == 4095


def test_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        CrossbarConfig(64)  # type: ignore[misc]
    c = CrossbarConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.rows = 8  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.levels = 4  # type: ignore[misc]
    assert c.rows == 64 and c.levels == 2**14
    assert hash(c) == hash(CrossbarConfig())


def test_replace():
    c = CrossbarConfig()
    d = c.replace(rows=8, adc_bits=10)
    assert (d.rows, d.adc_bits) == (8, 10) and (c.rows, c.adc_bits) == (64, None)
    # A default level count follows g_bits; an explicit one is kept.
    assert c.replace(g_bits=12).levels == 4096
    assert c.replace(g_bits=12, levels=100).levels == 100
    ru = preset("ru_azo_2024")
    assert ru.replace(g_bits=16).levels == 16520
    with pytest.raises(ValueError, match=r"levels = 16520 is out of range: must be in \[2, 16384"):
        ru.replace(g_bits=14)
    assert c.replace() == c


def test_as_dict_round_trips():
    for c in PRESETS.values():
        d = c.as_dict()
        assert list(d) == [f.name for f in dataclasses.fields(CrossbarConfig)]
        assert CrossbarConfig(**d) == c
