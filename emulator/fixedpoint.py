"""Integer helpers that mirror the gateware's shifting, rounding and saturation.

All functions take and return ``int64`` arrays (or Python ints) and never wrap silently.
"""

from __future__ import annotations

import numpy as np

__all__ = ["round_shift", "saturate", "floor_shift"]


def round_shift(value, shift: int):
    """``value / 2**shift`` rounded half away from zero, for ``-2**63 < value < 2**63``.

    The definition is ``(value + 2**(shift-1) - (value < 0)) >> shift`` (arithmetic shift;
    ``shift = 0`` returns ``value``). It is computed without a wider intermediate, so it
    never wraps: with ``t = (value - (value < 0)) >> (shift - 1)`` (inner shift capped at 63),
    the result is ``floor((t + 1) / 2) = (t >> 1) + (t & 1)``.
    """
    if shift == 0:
        return value
    inner = min(shift - 1, 63)
    if isinstance(value, (int, np.integer)):
        value = int(value)
        t = (value - (value < 0)) >> inner
        return (t >> 1) + (t & 1)
    value = np.asarray(value, dtype=np.int64)
    t = (value - (value < 0)) >> inner
    return (t >> 1) + (t & 1)


def floor_shift(value, shift: int):
    """Arithmetic right shift (rounds toward minus infinity)."""
    if isinstance(value, (int, np.integer)):
        return int(value) >> shift
    return np.asarray(value, dtype=np.int64) >> shift


def saturate(value, bits: int | None):
    """Clamp to the signed range of ``bits``; ``None`` leaves the value as it is."""
    if bits is None:
        return value
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if isinstance(value, (int, np.integer)):
        return min(max(int(value), low), high)
    return np.clip(np.asarray(value, dtype=np.int64), low, high)
