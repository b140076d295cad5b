"""A cell's noise in gateware: its deviate ``z = popcount(R_i XOR C_j) - 32`` and the product
``z * s`` with a 12-bit noise amplitude ``s`` (``docs/arithmetic.md``, "Noise").

The product is small (a 7-bit deviate by a 12-bit amplitude), so it is built from shifts and
adds in logic rather than left to synthesis, which would spend a multiplier block on it: a
noisy MAC lane then needs two multipliers (``x*g`` and ``x*n``), not three. Where logic runs
out before multipliers (the iCE40 UP5K), ``multiplier`` leaves it to a multiplier block. The
product's partial sums (:func:`deviate_product_parts`) let a pipeline split it over two
cycles.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Value

from molxbar.emulator.config import Z_MAX

__all__ = ["DEVIATE_BITS", "popcount", "deviate", "deviate_product_parts"]

#: Signed width of a deviate ``z`` in ``[-32, 32]``.
DEVIATE_BITS = 7


def popcount(value: Value) -> Value:
    """The number of ones in ``value``, as an adder tree (unsigned, just wide enough)."""
    terms = [value[k] for k in range(len(value))]
    width = 1
    while len(terms) > 1:
        width += 1
        pairs = [(terms[k] + terms[k + 1])[:width] for k in range(0, len(terms) - 1, 2)]
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]


def deviate(count: Value) -> Value:
    """``count - 32`` as a signed :data:`DEVIATE_BITS`-bit deviate, from a popcount of a
    64-bit word (``0 .. 64``)."""
    return (count.as_unsigned() - Z_MAX)[:DEVIATE_BITS].as_signed()


def deviate_product_parts(
    z: Value, scale: Value, *, multiplier: bool = False
) -> tuple[Value, Value]:
    """``z * scale`` as two partial sums whose total is the product: an unsigned one from the
    low three bits of ``z``, a signed one from the rest (its sign bit weighs ``-2**6``); with
    ``multiplier``, the product itself (for a multiplier block) and 0."""
    assert len(z) == DEVIATE_BITS and z.shape().signed
    if multiplier:
        return z * scale, Const(0, 1)

    def term(k: int) -> Value:
        return Mux(z[k], scale.as_unsigned() << k, 0)

    low = term(0) + term(1) + term(2)
    high = term(3) + term(4) + term(5) - term(6)
    return low, high
