"""A direct write's stored level with its write error, as a pipeline: ``docs/arithmetic.md``,
"Storage and programming" and "Noise"::

    g = clamp(L + round(z * w[L >> segment_shift] / 2**10), 0, levels - 1)

with ``z = popcount(R_i XOR C_j) - 32`` the cell's deviate. The popcount, the product (in
logic, :mod:`molxbar.hdl.deviates`), the rounding and the clamp each take a stage, so that
the whole does not limit the engine's clock.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from molxbar.emulator.config import (
    NOISE_FRAC_BITS,
    SIGMA_SCALE_BITS,
    SIGMA_SEGMENTS,
    CrossbarConfig,
)

from .deviates import DEVIATE_BITS, deviate, deviate_product_parts, popcount
from .rounding import round_shift

__all__ = ["WriteError"]


class WriteError(wiring.Component):
    """The level a direct write of ``level`` stores in a cell with noise word ``word``.

    A ``start`` in cycle ``c`` samples ``level``, ``word``, ``noise_en`` and reads
    ``table``; ``written`` holds the stored level from cycle ``c +`` :data:`LATENCY` on (until
    the next ``start``), and ``done`` is high in that cycle. With ``noise_en`` low the stored
    level is ``level`` itself. ``table`` must not change while a write is in the pipeline.
    ``multiplier`` makes the error's product ``z * w`` in a multiplier block
    (:func:`~molxbar.hdl.deviates.deviate_product_parts`).

    Members
    -------
    start : ``In(1)``
    level : ``In(unsigned(g_bits))``
        The level written, within the level range.
    word : ``In(64)``
        The cell's noise word ``R_i XOR C_j``.
    noise_en : ``In(1)``
        Write noise on.
    table : ``In(data.ArrayLayout(unsigned(12), 16))``
        The write-noise amplitude of each segment of the level range.
    written : ``Out(unsigned(g_bits))``
    done : ``Out(1)``
    """

    #: Cycles from ``start`` to ``done``.
    LATENCY = 7

    def __init__(self, config: CrossbarConfig, *, multiplier: bool = False) -> None:
        self.config = config
        self.multiplier = multiplier
        super().__init__(
            {
                "start": In(1),
                "level": In(unsigned(config.g_bits)),
                "word": In(64),
                "noise_en": In(1),
                "table": In(data.ArrayLayout(unsigned(SIGMA_SCALE_BITS), SIGMA_SEGMENTS)),
                "written": Out(unsigned(config.g_bits)),
                "done": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        c = self.config
        m = Module()
        valid = [self.start]

        def stage(**values) -> dict:
            """The next stage's registers, loaded with ``values`` (and the valid bit)."""
            k = len(valid)
            registers = {
                name: Signal(value.shape(), name=f"w{k}_{name}", reset_less=True)
                for name, value in values.items()
            }
            m.d.sync += [registers[name].eq(value) for name, value in values.items()]
            valid.append(Signal(name=f"w{k}_valid"))
            m.d.sync += valid[-1].eq(valid[-2])
            return registers

        # W1: the operands. W2: four 16-bit popcounts and the amplitude (0: noise off).
        s = stage(level=self.level, word=self.word, noise_en=self.noise_en)
        amplitude = self.table.as_value().word_select(
            s["level"] >> c.segment_shift, SIGMA_SCALE_BITS
        )
        s = stage(
            level=s["level"],
            scale=Mux(s["noise_en"], amplitude, 0),
            **{f"count{k}": popcount(s["word"][16 * k : 16 * k + 16]) for k in range(4)},
        )
        # W3: the deviate. W4, W5: its product with the amplitude.
        counts = [s[f"count{k}"] for k in range(4)]
        s = stage(level=s["level"], scale=s["scale"], z=deviate(sum(counts[1:], counts[0])))
        assert len(s["z"]) == DEVIATE_BITS
        low, high = deviate_product_parts(s["z"], s["scale"], multiplier=self.multiplier)
        s = stage(level=s["level"], low=low, high=high)
        s = stage(level=s["level"], product=s["low"] + s["high"])
        # W6: the level plus the rounded error. W7: clamped to the level range.
        error = round_shift(s["product"], NOISE_FRAC_BITS, 0)
        s = stage(total=(s["level"] + error).as_signed())
        total = s["total"]
        clamped = Mux(total < 0, 0, Mux(total > c.g_max, c.g_max, total))[: c.g_bits]
        m.d.sync += self.done.eq(valid[-1])
        with m.If(valid[-1]):
            m.d.sync += self.written.eq(clamped)
        assert len(valid) == self.LATENCY
        return m
