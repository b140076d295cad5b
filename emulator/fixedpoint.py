"""Integer helpers that mirror the gateware's shifting, rounding and saturation.

All functions take and return ``int64`` arrays (or Python ints) and never wrap silently.
"""

from __future__ import annotations

import numpy as np

__all__ = ["round_shift", "saturate", "floor_shift"]


def round_shift(value, shift: int):
    """``value / 2**shift`` rounded half away from zero.

    Hardware form: ``(value + 2**(shift-1) - (value < 0)) >> shift`` with an arithmetic
    shift; ``shift = 0`` returns ``value`` unchanged.
    """
    if shift == 0:
        return value
    half = 1 << (shift - 1)
    if isinstance(value, (int, np.integer)):
        return (int(value) + half - (value < 0)) >> shift
    value = np.asarray(value, dtype=np.int64)
    return (value + (half - (value < 0))) >> shift


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
