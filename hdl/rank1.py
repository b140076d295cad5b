"""The rank-1 update's arithmetic: one cell's change ``round(a_i * b_j / 2**update_shift)``."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from molxbar.emulator.config import CrossbarConfig

from .mac import shift_bits
from .rounding import floor_bias, halve_rounding

__all__ = ["Rank1Unit", "rank1_port_signature"]


def rank1_port_signature(config: CrossbarConfig) -> wiring.Signature:
    """The executor's port on the unit (members from the executor's side): ``start`` the
    change of the factors now read; ``done`` when it is being registered; ``delta`` the
    change, from the cycle after ``done`` until the next ``start``."""
    return wiring.Signature(
        {"start": Out(1), "done": In(1), "delta": In(signed(2 * config.x_bits + 1))}
    )


class Rank1Unit(wiring.Component):
    """A cell's change in a rank-1 update, bit-exact with the golden model's
    ``round_shift(a * b, update_shift)`` (half away from zero).

    A shift-and-add multiplier takes one bit of ``a`` per cycle, so that the MAC lanes keep
    every DSP block; then the rounding takes four stages of one carry chain or shifter each.

    Members
    -------
    port : ``In(rank1_port_signature(config))``
        The executor's port: ``done`` is high ``x_bits + 4`` cycles after ``start``.
    a, b : ``In(signed(x_bits))``
        The factors, taken in the cycle of ``start``.
    shift : ``In(shift_bits)``
        The update shift register; it holds still while the unit works.
    """

    def __init__(self, config: CrossbarConfig) -> None:
        self.config = config
        x_bits = config.x_bits
        super().__init__(
            {
                "port": In(rank1_port_signature(config)),
                "a": In(signed(x_bits)),
                "b": In(signed(x_bits)),
                "shift": In(shift_bits(config)),
            }
        )

    def elaborate(self, platform) -> Module:
        x_bits = self.config.x_bits
        m = Module()
        mul_hi = Signal(signed(x_bits + 1))
        mul_lo = Signal(x_bits)
        mul_b = Signal(signed(x_bits + 1))
        mul_minus_b = Signal(signed(x_bits + 1))
        mul_step = Signal(range(x_bits))
        product = Cat(mul_lo, mul_hi).as_signed()
        t = Signal(signed(2 * x_bits + 1))
        t_low = Signal.like(t)  # (shifted by the low bits: each step has its register)
        inner_shift = Signal.like(self.shift)

        with m.FSM(name="rank1"):
            with m.State("IDLE"):
                with m.If(self.port.start):
                    m.d.sync += [
                        mul_hi.eq(0),
                        mul_lo.eq(self.a),
                        mul_b.eq(self.b),
                        mul_minus_b.eq(-self.b),
                        mul_step.eq(0),
                    ]
                    m.next = "MULTIPLY"
            with m.State("MULTIPLY"):
                # Bit k of a adds b * 2**k (the sign bit subtracts it); the sum shifts right.
                last_bit = mul_step == x_bits - 1
                addend = Mux(mul_lo[0], Mux(last_bit, mul_minus_b, mul_b), 0)
                total = mul_hi + addend
                m.d.sync += [
                    mul_hi.eq(total >> 1),
                    mul_lo.eq(Cat(mul_lo[1:], total[0])),
                    mul_step.eq(mul_step + 1),
                ]
                with m.If(last_bit):
                    m.next = "DECREMENT"
            # The shift by s - 1 in two steps, by its low three bits and then by the rest (two
            # arithmetic shifts compose), each a few levels of logic from a register.
            with m.State("DECREMENT"):
                m.d.sync += [t.eq(floor_bias(product)), inner_shift.eq(self.shift - 1)]
                m.next = "SHIFT"
            with m.State("SHIFT"):
                m.d.sync += t_low.eq(t >> inner_shift[:3])
                m.next = "SHIFT_HIGH"
            with m.State("SHIFT_HIGH"):
                m.d.sync += t.eq(t_low >> Cat(Const(0, 3), inner_shift[3:]))
                m.next = "ROUND"
            with m.State("ROUND"):
                m.d.comb += self.port.done.eq(1)
                m.d.sync += self.port.delta.eq(Mux(self.shift == 0, product, halve_rounding(t)))
                m.next = "IDLE"
        return m
