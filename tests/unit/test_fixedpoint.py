"""fixedpoint: rounding half away from zero, floor shift and saturation, scalar and array."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molxbar.emulator.fixedpoint import floor_shift, round_shift, saturate
from tests.support import reference as ref

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Every value the golden model rounds is below 2**62 in magnitude (acc_fine_bits <= 63).
GOLDEN_LIMIT = 2**62

shifts = st.integers(0, 63)
golden_values = st.integers(-GOLDEN_LIMIT + 1, GOLDEN_LIMIT - 1)
int64_values = st.integers(INT64_MIN, INT64_MAX)


def _fraction_round(value: int, shift: int) -> int:
    return ref.round_half_away_fraction(Fraction(value, 2**shift))


def test_reference_rounding_agrees_with_fractions():
    for value in range(-70, 71):
        for shift in range(0, 7):
            assert ref.round_half_away(value, shift) == _fraction_round(value, shift)


@pytest.mark.parametrize(
    ("value", "shift", "want"),
    [
        (1, 1, 1),  # +0.5 -> 1
        (-1, 1, -1),  # -0.5 -> -1
        (3, 1, 2),  # +1.5 -> 2
        (-3, 1, -2),  # -1.5 -> -2
        (5, 1, 3),  # +2.5 -> 3 (not 2: no banker's rounding)
        (-5, 1, -3),
        (-2, 2, -1),  # -0.5
        (-1, 2, 0),  # -0.25
        (-3, 2, -1),  # -0.75
        (2, 2, 1),
        (1, 2, 0),
        (6, 2, 2),  # 1.5
        (-6, 2, -2),
        (0, 5, 0),
        (7, 0, 7),
        (-7, 0, -7),
        (2**61, 62, 1),  # 0.5
        (-(2**61), 62, -1),
        (2**61 - 1, 62, 0),
        (-(2**61) + 1, 62, 0),
        (2**62 - 1, 63, 0),  # just below 0.5
        (-(2**62) + 1, 63, 0),
        (-(2**62), 63, -1),  # -0.5
    ],
)
def test_round_shift_examples(value, shift, want):
    assert want == _fraction_round(value, shift)
    assert round_shift(value, shift) == want
    assert round_shift(np.int64(value), shift) == want
    assert round_shift(np.array([value], dtype=np.int64), shift).tolist() == [want]


@settings(max_examples=500, deadline=None)
@given(golden_values, shifts)
def test_round_shift_is_half_away_from_zero(value, shift):
    want = _fraction_round(value, shift)
    assert ref.round_half_away(value, shift) == want
    got = round_shift(value, shift)
    assert isinstance(got, int) and got == want
    assert round_shift(np.int64(value), shift) == want
    assert round_shift(np.array([value, -value], dtype=np.int64), shift).tolist() == [
        want,
        -want,
    ]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), shifts)
def test_round_shift_array_path_agrees_with_scalar_path(seed, shift):
    rng = np.random.default_rng(seed)
    magnitude_bits = rng.integers(0, 62, size=64)
    values = rng.integers(0, 2**62, size=64, dtype=np.int64) >> magnitude_bits
    values *= rng.choice([-1, 1], size=64)
    values = values.reshape(8, 8)
    got = round_shift(values, shift)
    assert got.dtype == np.int64 and got.shape == (8, 8)
    want = [[ref.round_half_away(int(v), shift) for v in row] for row in values.tolist()]
    assert got.tolist() == want, f"seed={seed} shift={shift}"
    assert [[round_shift(int(v), shift) for v in row] for row in values.tolist()] == want


def test_round_shift_of_ties_is_symmetric():
    """Exact halves go away from zero on both sides: round(-v) == -round(v)."""
    for shift in range(1, 63):
        for odd in (1, 3, 5, 2**10 + 1):
            tie = odd << (shift - 1)
            if tie >= GOLDEN_LIMIT:
                continue
            up = (odd + 1) // 2
            assert round_shift(tie, shift) == up, (tie, shift)
            assert round_shift(-tie, shift) == -up, (tie, shift)
            assert round_shift(np.array([tie, -tie]), shift).tolist() == [up, -up]


@settings(max_examples=300, deadline=None)
@given(int64_values, shifts)
def test_floor_shift(value, shift):
    want = ref.floor_shift(value, shift)
    assert want == (Fraction(value, 2**shift)).__floor__()
    assert floor_shift(value, shift) == want
    assert floor_shift(np.int64(value), shift) == want
    got = floor_shift(np.array([value, 0], dtype=np.int64), shift)
    assert got.dtype == np.int64 and got.tolist() == [want, 0]


@settings(max_examples=300, deadline=None)
@given(int64_values, st.one_of(st.none(), st.integers(2, 63)))
def test_saturate(value, bits):
    want = ref.saturate(value, bits)
    if bits is not None:
        assert -(2 ** (bits - 1)) <= want <= 2 ** (bits - 1) - 1
        if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            assert want == value
    assert saturate(value, bits) == want
    assert saturate(np.int64(value), bits) == want
    got = saturate(np.array([value, 0], dtype=np.int64), bits)
    assert np.asarray(got).tolist() == [want, 0]


def test_saturate_limits():
    for bits in range(2, 64):
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        values = np.array([INT64_MIN, low - 1, low, 0, high, high + 1, INT64_MAX], dtype=np.int64)
        want = [low, low, low, 0, high, high, high]
        got = saturate(values, bits)
        assert got.dtype == np.int64
        assert got.tolist() == want, bits
        assert [saturate(int(v), bits) for v in values.tolist()] == want


# The full int64 domain: no wrap-around ---------------------------------------------------------


@pytest.mark.parametrize(("value", "shift"), [(2**62, 63), (INT64_MAX, 1), (INT64_MAX, 40)])
def test_round_shift_array_full_int64_range(value, shift):
    want = _fraction_round(value, shift)
    assert round_shift(np.array([value], dtype=np.int64), shift).tolist() == [want]


@pytest.mark.parametrize(("value", "shift"), [(2**62, 63), (INT64_MAX, 1)])
def test_round_shift_numpy_scalar_full_int64_range(value, shift):
    assert round_shift(value, shift) == _fraction_round(value, shift)
    assert round_shift(np.int64(value), shift) == _fraction_round(value, shift)
