"""Rounding half away from zero in gateware: ``round(v / 2**s)`` as the golden model's
:func:`molxbar.emulator.fixedpoint.round_shift` computes it, without an overflow.

For ``s >= 1``, with ``t = (v - (v < 0)) >> (s - 1)`` (an arithmetic shift, which floors)::

    round(v / 2**s) = (t >> 1) + (t & 1) = (t + 1) >> 1

and ``s = 0`` gives ``v``. The ADC (:class:`~molxbar.hdl.mac.AdcStage`) and the rank-1 unit
(:class:`~molxbar.hdl.rank1.Rank1Unit`) compute ``t`` in pipeline stages and finish with
:func:`halve_rounding`; the direct write's error
(:class:`~molxbar.hdl.write_error.WriteError`) takes :func:`round_shift` in one stage.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Value

__all__ = ["floor_bias", "halve_rounding", "round_shift"]


def floor_bias(value: Value) -> Value:
    """``v - (v < 0)``: what is shifted right by ``s - 1``."""
    return value - (value < 0)


def halve_rounding(t: Value, borrow: Value | None = None) -> Value:
    """The last step, ``(t + 1) >> 1``; with ``borrow`` (one bit), of ``t - borrow``:
    ``(t + 1 - borrow) >> 1``, for a ``t`` computed without its decrement."""
    increment = Const(1, 1) if borrow is None else ~borrow[0]
    return (t + increment).shift_right(1)


def round_shift(value: Value, shift: Value | int, shift_is_zero: Value) -> Value:
    """``round(value / 2**shift)`` half away from zero, in one combinational step;
    ``shift_is_zero`` says ``shift == 0`` (``value`` itself)."""
    inner = shift - 1 if isinstance(shift, int) else (shift - 1)[: len(shift)]
    return Mux(shift_is_zero, value, halve_rounding(floor_bias(value) >> inner))
