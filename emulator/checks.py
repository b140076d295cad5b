"""Argument checks shared by the golden model and the device view.

Each raises :class:`ValueError` (or :class:`TypeError` for a wrong type) whose message names
the offending value and its limit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["check_index", "check_range", "check_codes"]


def check_range(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an ``int`` after checking ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} = {value} is out of range: must be in [{low}, {high}]")
    return int(value)


def check_index(name: str, value: object, size: int) -> int:
    """An index into ``size`` elements."""
    return check_range(name, value, 0, size - 1)


def check_codes(
    name: str,
    values: npt.ArrayLike,
    low: int,
    high: int | None,
    shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """An ``int64`` copy of integer codes after checking shape and ``low <= v <= high``.

    Whole numbers stored as floats (a common ``.npy``) are accepted; ``high=None`` sets no
    upper limit.
    """
    array = np.asarray(values)
    integral = np.issubdtype(array.dtype, np.integer) and array.dtype != bool
    if not integral and array.size:
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"{name} must hold integers, not {array.dtype} values")
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(array) & (array == np.round(array))
        if not whole.all():
            index = tuple(int(i) for i in np.argwhere(~whole)[0])
            where = index[0] if len(index) == 1 else index
            value = array[index]
            text = "NaN" if np.isnan(value) else repr(float(value))
            raise ValueError(
                f"{name} value {text} at index {where} is not a whole number: codes are "
                f"integers (floats that hold whole numbers are accepted)"
            )
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}, expected {shape}")
    if array.size:
        bad = array < low
        if high is not None:
            bad |= array > high
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            where = index[0] if len(index) == 1 else index
            limit = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ValueError(
                f"{name} value {array[index]} at index {where} is out of range: must be {limit}"
            )
    return array.astype(np.int64)
