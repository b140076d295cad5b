"""One multiply-accumulate lane and the ADC stage: the arithmetic datapath of a VMM.

Both blocks implement the "Vector-matrix multiplication" section of ``docs/arithmetic.md``
bit for bit; :mod:`molxbar.emulator.golden` is the reference. With
``contrib(x, v) = x*v`` for ``x >= 0`` and, for ``x < 0``, ``0`` (ideal cells) or
``(x*v) >> rect_shift`` (reverse leakage, arithmetic shift of each product):

* :class:`MacLane` sums ``acc = sum_i contrib(x_i, g_i)`` and
  ``noise_acc = sum_i contrib(x_i, n_i)`` for one column, exactly, with each cell's read noise
  ``n_i = z_i * s[g_i >> segment_shift]`` made from its noise word (``z_i`` its deviate). With
  leakage hardware the terms with ``x < 0`` go to two leak sums instead, each product with its
  low ``rect_shift`` bits masked: ``p & ~(2**t - 1) = 2**t * floor(p / 2**t)``, so that one
  shift of the sum after the lane gives the sum of the shifted products (``t`` is
  ``rect_shift`` up to the product's width, :func:`leak_shift`). One shifter for the whole
  datapath replaces two in every lane;
* :class:`AdcStage` adds the leak sums shifted by ``t`` to the sums, forms
  ``acc_fine = acc * 2**10 + noise_acc`` (read noise on) or
  ``acc_fine = acc`` (off), shifts it right by ``adc_shift`` (plus 10 with noise), rounding half
  away from zero, and saturates it to ``adc_bits`` signed (``adc_bits = 0``: full precision).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from molxbar.emulator.config import (
    NOISE_FRAC_BITS,
    SIGMA_SCALE_BITS,
    SIGMA_SEGMENTS,
    CrossbarConfig,
)

from .deviates import DEVIATE_BITS, deviate, deviate_product_parts, popcount
from .rounding import halve_rounding

__all__ = [
    "shift_bits",
    "check_product_stages",
    "noise_product_bits",
    "leak_shift",
    "leak_keep_mask",
    "leak_sum_bits",
    "mac_input_layout",
    "adc_input_layout",
    "MacLane",
    "AdcStage",
    "PER_LANE_ATTRIBUTE",
]

#: Attribute of the registers every lane holds a copy of (the same value in each lane). Yosys
#: merges identical registers; the board build keeps the flip-flops behind wires with this
#: attribute, so that each lane's multiplier is fed from a register of its own.
PER_LANE_ATTRIBUTE = "molxbar_per_lane"
PER_LANE = {PER_LANE_ATTRIBUTE: 1}


def check_product_stages(product_stages: object) -> int:
    """``product_stages``, checked: registers after each lane multiplier, 1 or 2."""
    if isinstance(product_stages, bool) or product_stages not in (1, 2):
        raise ValueError(f"product_stages = {product_stages!r} must be 1 or 2")
    return product_stages


def _check_config(config: object) -> CrossbarConfig:
    if not isinstance(config, CrossbarConfig):
        raise TypeError(f"config must be a CrossbarConfig, not {config!r}")
    return config


def _pipeline_registers(
    m: Module, values: dict[str, Value], prefix: str, enable: Value | None = None
) -> dict[str, Signal]:
    """A pipeline stage: a register per value (``prefix_name``), loaded when ``enable`` (every
    cycle if ``None``); only ``valid`` is reset."""
    registers = {
        name: Signal(value.shape(), name=f"{prefix}_{name}", reset_less=name != "valid")
        for name, value in values.items()
    }
    loads = [registers[name].eq(value) for name, value in values.items()]
    if enable is None:
        m.d.sync += loads
    else:
        with m.If(enable):
            m.d.sync += loads
    return registers


def shift_bits(config: CrossbarConfig) -> int:
    """Width of a shift register value (``0 .. max_shift``, unsigned): 6."""
    return config.max_shift.bit_length()


def noise_product_bits(config: CrossbarConfig) -> int:
    """Signed width of one product ``x * n``."""
    return ((1 << (config.x_bits - 1)) * config.noise_max).bit_length() + 1


def leak_shift(shift: Value | int, width: int) -> Value | int:
    """The shift that takes a sum of leak-masked ``width``-bit products to the sum of their
    contributions: ``min(shift, width - 1)``. Beyond ``width - 1`` every product's
    contribution is ``-1`` or ``0`` (its sign), which ``width - 1`` already gives."""
    if isinstance(shift, int):
        return min(shift, width - 1)
    return Mux(shift < width - 1, shift, width - 1)


def leak_keep_mask(shift: Value, width: int) -> Value:
    """The bits of a signed ``width``-bit product that its leak mask keeps: bit ``k`` when
    ``k >= leak_shift(shift, width)``. ``p & mask`` is ``2**t * floor(p / 2**t)`` with
    ``t = leak_shift(shift, width)``, so that a sum of masked products shifted right by ``t``
    is exactly the sum of the products each shifted right by ``shift``."""
    ones = Const((1 << width) - 1, width)
    return (ones << shift)[:width] | (1 << (width - 1))


def leak_sum_bits(config: CrossbarConfig, width: int) -> int:
    """Signed width of a sum of ``rows`` leak-masked ``width``-bit products (each at most
    ``2**(width-1)`` in magnitude: masking rounds towards minus infinity)."""
    return (config.rows << (width - 1)).bit_length() + 1


def mac_input_layout(config: CrossbarConfig) -> data.StructLayout:
    """Payload of one term of a :class:`MacLane` sum.

    ``x`` is the input code (signed ``x_bits``), ``g`` the cell's level (unsigned ``g_bits``);
    with noise hardware, ``word`` is the cell's noise word ``R_i XOR C_j`` (its deviate is
    ``popcount(word) - 32``). ``clear`` marks the first term of a sum (the sums restart from
    this term), ``last`` the final one (it raises :attr:`MacLane.done` when the sum is
    complete).
    """
    _check_config(config)
    fields = {"x": signed(config.x_bits), "g": unsigned(config.g_bits)}
    if config.noise_hardware:
        fields["word"] = 64
    return data.StructLayout({**fields, "clear": 1, "last": 1})


def adc_input_layout(config: CrossbarConfig) -> data.StructLayout:
    """Payload of :class:`AdcStage`: the sums of one :class:`MacLane` (with leakage hardware
    also its two leak sums)."""
    _check_config(config)
    fields = {"acc": signed(config.acc_bits), "noise_acc": signed(config.noise_acc_bits)}
    if config.leakage_hardware:
        fields["leak_acc"] = signed(leak_sum_bits(config, config.product_bits))
        fields["leak_noise_acc"] = signed(leak_sum_bits(config, noise_product_bits(config)))
    return data.StructLayout(fields)


class MacLane(wiring.Component):
    """Exact multiply-accumulate of one column: ``acc`` and ``noise_acc``.

    Each cycle with ``i.valid`` adds one term: ``acc += contrib(x, g)`` and, when ``noise_en``,
    ``noise_acc += contrib(x, n)`` with the cell's read noise
    ``n = (popcount(word) - 32) * read_table[g >> segment_shift]`` (otherwise
    ``noise_acc += 0``). A term with ``clear`` starts new sums (``acc = contrib(x, g)``).
    With leakage hardware, a term with ``x < 0`` and not ``rect_ideal`` adds to ``leak_acc``
    and ``leak_noise_acc`` instead: its products masked by :func:`leak_keep_mask`, so that
    ``acc + (leak_acc >> leak_shift(rect_shift, product_bits))`` is the sum of contributions
    (and the same for the noise, with ``noise_product_bits``); without it the leak sums stay
    0. ``noise_en`` and ``rect_ideal`` are sampled together with each term, so they may
    change between any two terms; ``read_table`` and ``rect_shift`` must not change while
    terms are in the lane (the engine changes them only while its datapath is drained). The
    sums are exact: the widths make overflow impossible for up to ``rows`` terms per sum.
    Without noise hardware in the configuration there is no ``word``, ``noise_en`` and
    ``read_table`` are ignored and ``noise_acc`` stays 0.

    Timing: a four-stage pipeline (operands, products, contributions, sums), five stages with
    ``product_stages = 2``, after the :data:`NOISE_STAGES` that make ``n`` with noise
    hardware (the popcount in two steps, the amplitude, and ``z * s`` in two steps); ``i``
    never stalls. A term presented in cycle ``c`` is included in ``acc`` and ``noise_acc``
    from cycle ``c + latency`` on (:attr:`latency`): ``acc`` is valid ``latency`` cycles
    after the last valid input, and ``done`` is high for exactly that one cycle when the last
    input had ``last``. Between sums both outputs hold their value.

    Each product has a register before and after its multiplier, for a DSP block's input and
    output registers; ``product_stages = 2`` adds a second register after it, so that on a
    large die the first one can sit beside the multiplier and the product has a cycle to
    travel. ``x*g`` (``x_bits`` by ``g_bits + 1`` signed) fits one ECP5 MULT18X18D,
    and one iCE40 SB_MAC16 when ``x_bits <= 16`` and ``g_bits <= 15``; ``x*n`` (``x_bits`` by
    18 signed) fits one MULT18X18D but takes two SB_MAC16. ``z*s`` is shifts and adds in
    logic (:mod:`molxbar.hdl.deviates`), so a noisy lane takes two multipliers.

    Parameters
    ----------
    config
        Widths: ``x_bits``, ``g_bits``, ``acc_bits`` and ``rows`` (for ``noise_acc``).
    product_stages
        Registers after each multiplier: 1 or 2.
    noise_multiplier
        Make ``z * s`` in a third multiplier instead of logic
        (:func:`~molxbar.hdl.deviates.deviate_product_parts`).

    Members
    -------
    i : ``In(stream.Signature(mac_input_layout(config)))``
        The terms (``x``, ``g``, ``word``, ``clear``, ``last``). ``i.ready`` is always 1 (not
        an ``always_ready`` signature: its constant ``ready`` would not convert as a top-level
        port in Amaranth 0.5).
    noise_en : ``In(1)``
        Accumulate the read noise of this term.
    read_table : ``In(data.ArrayLayout(unsigned(12), 16))``
        The read-noise amplitude of each segment of the level range.
    rect_ideal : ``In(1)``
        Ideal unidirectional cells: a term with ``x < 0`` contributes nothing.
    rect_shift : ``In(6)``
        Reverse-leakage shift ``0 .. 63`` for ``x < 0`` (when not ``rect_ideal``).
    acc : ``Out(signed(config.acc_bits))``
        Noise-free sum (of the terms that are not leaky).
    noise_acc : ``Out(signed(config.noise_acc_bits))``
        Sum of noise contributions, in units of ``2**-NOISE_FRAC_BITS`` level.
    leak_acc, leak_noise_acc : ``Out(signed(leak_sum_bits(config, width)))``
        The leak sums of ``x*g`` and ``x*n`` (``width``: ``product_bits``,
        :func:`noise_product_bits`).
    done : ``Out(1)``
        The sums ended by a ``last`` term are on the sum outputs (one cycle).
    """

    #: Cycles from a term at ``i`` to the sums that include it, with one product stage and
    #: without noise hardware.
    LATENCY = 4
    #: Cycles that making the read noise adds to the latency with noise hardware.
    NOISE_STAGES = 5

    def __init__(
        self, config: CrossbarConfig, *, product_stages: int = 1, noise_multiplier: bool = False
    ) -> None:
        self._config = _check_config(config)
        self.product_stages = check_product_stages(product_stages)
        self.noise_multiplier = noise_multiplier
        super().__init__(
            {
                "i": In(stream.Signature(mac_input_layout(config))),
                "noise_en": In(1),
                "read_table": In(data.ArrayLayout(unsigned(SIGMA_SCALE_BITS), SIGMA_SEGMENTS)),
                "rect_ideal": In(1),
                "rect_shift": In(shift_bits(config)),
                "acc": Out(signed(config.acc_bits)),
                "noise_acc": Out(signed(config.noise_acc_bits)),
                "leak_acc": Out(signed(leak_sum_bits(config, config.product_bits))),
                "leak_noise_acc": Out(signed(leak_sum_bits(config, noise_product_bits(config)))),
                "done": Out(1),
            }
        )

    @property
    def config(self) -> CrossbarConfig:
        return self._config

    @property
    def latency(self) -> int:
        """Cycles from a term at ``i`` to the sums that include it."""
        noise = self.NOISE_STAGES if self._config.noise_hardware else 0
        return self.LATENCY + self.product_stages - 1 + noise

    def _noise_front(self, m: Module) -> SimpleNamespace:
        """The term and its read noise ``n``, :data:`NOISE_STAGES` cycles later."""
        c = self._config
        term = self.i.payload
        # What only travels along (the same in every lane: synthesis keeps one copy).
        along = {
            "valid": self.i.valid,
            "clear": term.clear,
            "last": term.last,
            "x": term.x,
            "rect_ideal": self.rect_ideal,
        }

        def delay(values: dict, stage: int) -> dict:
            return _pipeline_registers(m, values, f"f{stage}")

        # F1: the word, the level and the noise switch.
        f1_word = Signal(64, reset_less=True)
        f1_g = Signal(unsigned(c.g_bits), reset_less=True)
        f1_noise = Signal(reset_less=True)
        m.d.sync += [f1_word.eq(term.word), f1_g.eq(term.g), f1_noise.eq(self.noise_en)]
        along = delay(along, 1)
        # F2: four 16-bit popcounts, the amplitude of the level's segment (0: noise off).
        f2_counts = [Signal(5, name=f"f2_count{k}", reset_less=True) for k in range(4)]
        f2_g = Signal.like(f1_g)
        f2_scale = Signal(SIGMA_SCALE_BITS, reset_less=True)
        m.d.sync += [
            count.eq(popcount(f1_word[16 * k : 16 * k + 16])) for k, count in enumerate(f2_counts)
        ]
        amplitude = self.read_table.as_value().word_select(
            f1_g >> c.segment_shift, SIGMA_SCALE_BITS
        )
        m.d.sync += [f2_g.eq(f1_g), f2_scale.eq(Mux(f1_noise, amplitude, 0))]
        along = delay(along, 2)
        # F3: the deviate.
        f3_z = Signal(signed(DEVIATE_BITS), reset_less=True)
        f3_g, f3_scale = Signal.like(f2_g), Signal.like(f2_scale)
        m.d.sync += [
            f3_z.eq(deviate(sum(f2_counts[1:], f2_counts[0]))),
            f3_g.eq(f2_g),
            f3_scale.eq(f2_scale),
        ]
        along = delay(along, 3)
        # F4, F5: n = z * s in two steps.
        low, high = deviate_product_parts(f3_z, f3_scale, multiplier=self.noise_multiplier)
        f4_low = Signal(low.shape(), reset_less=True)
        f4_high = Signal(high.shape(), reset_less=True)
        f4_g = Signal.like(f3_g)
        m.d.sync += [f4_low.eq(low), f4_high.eq(high), f4_g.eq(f3_g)]
        along = delay(along, 4)
        f5_n = Signal(signed(c.noise_bits), reset_less=True)
        f5_g = Signal.like(f4_g)
        m.d.sync += [f5_n.eq(f4_low + f4_high), f5_g.eq(f4_g)]
        return SimpleNamespace(**delay(along, 5), g=f5_g, n=f5_n)

    def elaborate(self, platform) -> Module:
        c = self._config
        m = Module()
        m.d.comb += self.i.ready.eq(1)
        if c.noise_hardware:
            term = self._noise_front(m)
        else:
            payload = self.i.payload
            term = SimpleNamespace(
                valid=self.i.valid,
                clear=payload.clear,
                last=payload.last,
                x=payload.x,
                g=payload.g,
                n=None,
                rect_ideal=self.rect_ideal,
            )
        negative = term.x < 0
        # Without leakage hardware the cells are always ideal.
        ideal = term.rect_ideal if c.leakage_hardware else 1
        leaky = negative & ~ideal
        product_widths = {"g": c.product_bits, "n": noise_product_bits(c)}

        # Stage 1 (cycle c+1): operands. A negative input of an ideal cell becomes x = 0, so
        # both of its contributions vanish. Noise off (the front's amplitude 0) feeds n = 0, so
        # noise_acc adds nothing. With leakage hardware, a leaky term (x < 0, not ideal) goes
        # to the leak sums: each product masked by :func:`leak_keep_mask` (all zeros for the
        # other terms).
        # The lanes' stage-1 registers other than g and n hold the same values in every lane;
        # PER_LANE asks synthesis to keep each lane's copy beside its multiplier rather than
        # merge them into one register that drives every lane (see ``molxbar.boards.build``).
        s1_valid = Signal(attrs=PER_LANE)
        s1_clear = Signal(attrs=PER_LANE)
        s1_last = Signal(attrs=PER_LANE)
        s1_x = Signal(signed(c.x_bits), reset_less=True, attrs=PER_LANE)
        s1_g = Signal(unsigned(c.g_bits), reset_less=True)
        m.d.sync += [
            s1_valid.eq(term.valid),
            s1_clear.eq(term.clear),
            s1_last.eq(term.last),
            s1_x.eq(Mux(negative & ideal, 0, term.x)),
            s1_g.eq(term.g),
        ]
        if c.noise_hardware:
            s1_n = Signal(signed(c.noise_bits), reset_less=True)
            m.d.sync += s1_n.eq(term.n)
        if c.leakage_hardware:
            s1_leaky = Signal(reset_less=True, attrs=PER_LANE)
            m.d.sync += s1_leaky.eq(leaky)
            # The masks depend on rect_shift alone, which stays while terms are in the lane.
            keep = {
                name: Signal(width, name=f"keep_{name}", reset_less=True)
                for name, width in product_widths.items()
            }
            m.d.sync += [
                keep[name].eq(leak_keep_mask(self.rect_shift, width))
                for name, width in product_widths.items()
            ]

        # Stage 2 (cycle c+2): the products, one multiplier each (DSP output register).
        s2_valid = Signal()
        s2_clear = Signal()
        s2_last = Signal()
        s2_xg = Signal(signed(c.product_bits), reset_less=True)
        s2_xn = Signal(signed(noise_product_bits(c)), reset_less=True)
        s2_leaky = Signal(reset_less=True)
        m.d.sync += [
            s2_valid.eq(s1_valid),
            s2_clear.eq(s1_clear),
            s2_last.eq(s1_last),
            s2_xg.eq(s1_x * s1_g),
        ]
        if c.leakage_hardware:
            m.d.sync += s2_leaky.eq(s1_leaky)
        if c.noise_hardware:
            m.d.sync += s2_xn.eq(s1_x * s1_n)
        if self.product_stages == 2:
            # A second product register: the products travel from the multipliers for a cycle.
            late_valid = Signal()
            late_clear = Signal()
            late_last = Signal()
            late_xg = Signal.like(s2_xg)
            late_xn = Signal.like(s2_xn)
            late_leaky = Signal.like(s2_leaky)
            m.d.sync += [
                late_valid.eq(s2_valid),
                late_clear.eq(s2_clear),
                late_last.eq(s2_last),
                late_leaky.eq(s2_leaky),
            ]
            with m.If(s2_valid):  # (loads valid terms only, as stage 3 below)
                m.d.sync += [late_xg.eq(s2_xg), late_xn.eq(s2_xn)]
            s2_valid, s2_clear, s2_last = late_valid, late_clear, late_last
            s2_xg, s2_xn, s2_leaky = late_xg, late_xn, late_leaky

        # Stage 3 (cycle c+3): contributions. A leaky term's products go to the leak sums
        # with their low bits masked (floor to a multiple of 2**shift), the others' to the sums.
        s3_valid = Signal()
        s3_clear = Signal()
        s3_last = Signal()
        s3_g = Signal(signed(c.product_bits), reset_less=True)
        s3_n = Signal(signed(noise_product_bits(c)), reset_less=True)
        m.d.sync += [
            s3_valid.eq(s2_valid),
            s3_clear.eq(s2_clear),
            s3_last.eq(s2_last),
        ]
        if c.leakage_hardware:
            s3_leak_g = Signal.like(s3_g)
            s3_leak_n = Signal.like(s3_n)
            m.d.sync += [
                s3_g.eq(Mux(s2_leaky, 0, s2_xg)),
                s3_n.eq(Mux(s2_leaky, 0, s2_xn)),
                s3_leak_g.eq(Mux(s2_leaky, s2_xg & keep["g"], 0)),
                s3_leak_n.eq(Mux(s2_leaky, s2_xn & keep["n"], 0)),
            ]
        else:
            # The cells are ideal: no product is ever shifted. Loading only valid terms keeps
            # Yosys' iCE40 DSP mapping from taking this register as the multiplier's second
            # pipeline stage, a mapping that loses the products (Yosys 0.70).
            with m.If(s2_valid):
                m.d.sync += [s3_g.eq(s2_xg), s3_n.eq(s2_xn)]

        # Stage 4 (cycle c+4): the sums.
        sums = [(self.acc, s3_g), (self.noise_acc, s3_n)]
        if c.leakage_hardware:
            sums += [(self.leak_acc, s3_leak_g), (self.leak_noise_acc, s3_leak_n)]
        m.d.sync += self.done.eq(s3_valid & s3_last)
        with m.If(s3_valid):
            with m.If(s3_clear):
                m.d.sync += [total.eq(value) for total, value in sums]
            with m.Else():
                m.d.sync += [total.eq(total + value) for total, value in sums]
        return m


class AdcStage(wiring.Component):
    """The ADC model: ``y = saturate(round(acc_fine / 2**shift), adc_bits)``.

    For each transfer on ``i``, with ``F = NOISE_FRAC_BITS``:

    * ``noise_en``: ``acc_fine = acc * 2**F + noise_acc`` and ``shift = adc_shift + F``;
      otherwise ``acc_fine = acc`` and ``shift = adc_shift``;
    * ``round`` is half away from zero, as :func:`molxbar.emulator.fixedpoint.round_shift`
      defines it without a wider intermediate: ``t = (v - (v < 0)) >> (shift - 1)``,
      ``round = (t >> 1) + (t & 1)``; ``shift = 0`` gives ``v``; shifts past the width give 0;
    * ``saturate`` clamps to ``adc_bits`` signed bits; ``adc_bits = 0`` means full precision
      (valid settings are 0 and 2 .. 63; 1 clamps to ``[-1, 0]``).

    ``noise_en``, ``adc_shift`` and ``adc_bits`` are sampled together with each input. The
    inputs must be sums that a :class:`MacLane` can produce (at most ``rows`` terms), so that
    ``acc_fine`` fits ``acc_fine_bits``; ``acc_bits`` alone would allow larger values, since
    it rounds ``log2 rows`` up.

    With leakage hardware, ``acc`` and ``noise_acc`` are first the input's sums plus its leak
    sums, each shifted right by :func:`leak_shift` of ``rect_shift`` (sampled with the input).

    Timing: a five-stage pipeline (``acc_fine``, two shift steps, rounding, saturation) with
    one stall signal, ``i.ready = ~o.valid | o.ready``; leakage hardware puts
    :data:`LEAK_STAGES` in front (the input registered, the leak sums' shift, the additions:
    the input comes from a block RAM late in the cycle). An input
    transferred in cycle ``c`` is on ``o`` from cycle ``c + latency`` on (:attr:`latency`)
    when ``o.ready`` stays high; full throughput (one result per cycle).

    Parameters
    ----------
    config
        Widths: ``acc_bits``, ``acc_fine_bits``, ``rows`` and ``x_bits`` (for ``noise_acc``).

    Members
    -------
    i : ``In(stream.Signature(adc_input_layout(config)))``
        The sums of one column (``acc``, ``noise_acc``).
    noise_en : ``In(1)``
        Read noise was on for these sums (ignored without ``config.noise_hardware``: the
        pipeline is then as wide as ``acc``).
    adc_shift : ``In(6)``
        Right shift before saturation, ``0 .. 63``.
    adc_bits : ``In(6)``
        Output width ``2 .. 63``, or 0 for full precision.
    rect_shift : ``In(6)``
        The reverse-leakage shift of the leak sums (ignored without leakage hardware).
    o : ``Out(stream.Signature(signed(config.acc_fine_bits)))``
        The output code ``y``.
    """

    #: Cycles from a transfer at ``i`` to its result on ``o`` (without backpressure), without
    #: leakage hardware.
    LATENCY = 5
    #: Cycles the leak sums add with leakage hardware (the input registered, the leak sums'
    #: shift, the additions).
    LEAK_STAGES = 3

    def __init__(self, config: CrossbarConfig) -> None:
        self._config = _check_config(config)
        super().__init__(
            {
                "i": In(stream.Signature(adc_input_layout(config))),
                "noise_en": In(1),
                "adc_shift": In(shift_bits(config)),
                "adc_bits": In(shift_bits(config)),
                "rect_shift": In(shift_bits(config)),
                "o": Out(stream.Signature(signed(config.acc_fine_bits))),
            }
        )

    @property
    def config(self) -> CrossbarConfig:
        return self._config

    @property
    def latency(self) -> int:
        """Cycles from a transfer at ``i`` to its result on ``o`` (without backpressure)."""
        return self.LATENCY + (self.LEAK_STAGES if self._config.leakage_hardware else 0)

    def _leak_front(self, m: Module, advance: Value) -> SimpleNamespace:
        """The input with the leak sums added to its sums, :data:`LEAK_STAGES` cycles later
        (with the settings sampled along with it): ``acc + (leak_acc >> t)`` and the same for
        the noise, ``t`` the :func:`leak_shift` of ``rect_shift`` for each product width."""
        c = self._config
        payload = self.i.payload
        settings = {
            "valid": self.i.valid,
            "noise_en": self.noise_en,
            "adc_shift": self.adc_shift,
            "adc_bits": self.adc_bits,
        }

        def delay(values: dict, stage: int) -> dict:
            return _pipeline_registers(m, values, f"l{stage}", enable=advance)

        # L1: the input as it comes (from a FIFO's block RAM, late in the cycle); L2: the leak
        # sums shifted; L3: added.
        fields = ("acc", "noise_acc", "leak_acc", "leak_noise_acc")
        l1 = delay(
            {**settings, "rect_shift": self.rect_shift, **{f: payload[f] for f in fields}}, 1
        )
        shifted = {
            "acc": l1["acc"],
            "noise_acc": l1["noise_acc"],
            "leak_acc": l1["leak_acc"] >> leak_shift(l1["rect_shift"], c.product_bits),
            "leak_noise_acc": l1["leak_noise_acc"]
            >> leak_shift(l1["rect_shift"], noise_product_bits(c)),
        }
        l2 = delay({**{name: l1[name] for name in settings}, **shifted}, 2)
        sums = {
            "acc": l2["acc"] + l2["leak_acc"],
            "noise_acc": l2["noise_acc"] + l2["leak_noise_acc"],
        }
        l3 = delay({**{name: l2[name] for name in settings}, **sums}, 3)
        return SimpleNamespace(**l3)

    def elaborate(self, platform) -> Module:
        c = self._config
        # Without noise hardware the engine never sets ``noise_en`` (SET_NOISE accepts only 0):
        # ``acc_fine`` is ``acc``, and the pipeline is only as wide as a sum, for a shorter
        # rounding carry chain.
        noisy = c.noise_hardware
        width = c.acc_fine_bits if noisy else c.acc_bits
        total_shift_bits = (c.max_shift + NOISE_FRAC_BITS).bit_length()
        m = Module()

        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)
        if c.leakage_hardware:
            front = self._leak_front(m, advance)
        else:
            front = SimpleNamespace(
                valid=self.i.valid,
                noise_en=self.noise_en,
                adc_shift=self.adc_shift,
                adc_bits=self.adc_bits,
                acc=self.i.payload.acc,
                noise_acc=self.i.payload.noise_acc,
            )

        # Stage 1: acc_fine and the total shift (its value minus one for the rounding shift).
        # (The sums with their leak sums added fit ``acc_bits`` and ``noise_acc_bits``: they
        # are sums of at most ``rows`` contributions.)
        s1_valid = Signal()
        s1_value = Signal(signed(width), reset_less=True)
        s1_zero_shift = Signal(reset_less=True)
        s1_inner_shift = Signal(total_shift_bits, reset_less=True)
        s1_bits = Signal(shift_bits(c), reset_less=True)
        noise_en = front.noise_en if noisy else Const(0)
        acc = front.acc[: c.acc_bits].as_signed()
        noise_acc = front.noise_acc[: c.noise_acc_bits].as_signed()
        fine = acc.shift_left(NOISE_FRAC_BITS) + noise_acc
        total_shift = front.adc_shift + Mux(noise_en, NOISE_FRAC_BITS, 0)
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(front.valid),
                s1_value.eq(Mux(noise_en, fine, acc)),
                s1_zero_shift.eq(total_shift == 0),
                s1_inner_shift.eq(total_shift - 1),
                s1_bits.eq(front.adc_bits),
            ]

        # Stages 2 and 3: t = (v - (v < 0)) >> k with k = shift - 1, computed without the wide
        # decrement as t0 - d: t0 = v >> k, and d = 1 when v < 0 and its k low bits are all 0
        # (floor((v-1) / 2**k) = floor(v / 2**k) - [2**k divides v]). The variable >> fills with
        # the sign: shifts past the width give 0 or -1. The shift takes two steps, by the low
        # three bits of k and then by the rest (arithmetic shifts compose; the k low bits are 0
        # when both steps shift out zeros). Shift 0 takes t0 = 2*v, d = 0, so that stage 4
        # gives v back. In parallel: the saturation limit 2**j - 1 with j = adc_bits - 1, as a
        # mask of j ones.
        low_steps = 3
        s2_valid = Signal()
        s2_v = Signal(signed(width + 1), reset_less=True)
        s2_high_shift = Signal(total_shift_bits - low_steps, reset_less=True)
        s2_d = Signal(reset_less=True)  # d, as far as the low step tells
        s2_saturate = Signal(reset_less=True)
        s2_mask = Signal(width, reset_less=True)
        low_shift = s1_inner_shift[:low_steps]
        low_bits = Cat(low_shift > bit for bit in range(min(width, (1 << low_steps) - 1)))
        low_exact = (s1_value.as_unsigned()[: len(low_bits)] & low_bits) == 0
        with m.If(advance):
            m.d.sync += [
                s2_valid.eq(s1_valid),
                s2_v.eq(Mux(s1_zero_shift, s1_value.shift_left(1), s1_value >> low_shift)),
                s2_high_shift.eq(Mux(s1_zero_shift, 0, s1_inner_shift[low_steps:])),
                s2_d.eq(~s1_zero_shift & (s1_value < 0) & low_exact),
                s2_saturate.eq(s1_bits != 0),
                s2_mask.eq(Cat(s1_bits > bit + 1 for bit in range(width))),
            ]

        s3_valid = Signal()
        s3_t0 = Signal(signed(width + 1), reset_less=True)
        s3_d = Signal(reset_less=True)
        s3_saturate = Signal(reset_less=True)
        s3_mask = Signal(width, reset_less=True)
        high_bits = Cat(s2_high_shift > (bit >> low_steps) for bit in range(width + 1))
        high_exact = (s2_v.as_unsigned() & high_bits) == 0
        with m.If(advance):
            m.d.sync += [
                s3_valid.eq(s2_valid),
                s3_t0.eq(s2_v >> Cat(Const(0, low_steps), s2_high_shift)),
                s3_d.eq(s2_d & high_exact),
                s3_saturate.eq(s2_saturate),
                s3_mask.eq(s2_mask),
            ]

        # Stage 4: rounded = (t + 1) >> 1 = (t0 + 1 - d) >> 1 (:mod:`molxbar.hdl.rounding`).
        s4_valid = Signal()
        s4_rounded = Signal(signed(width), reset_less=True)
        s4_saturate = Signal(reset_less=True)
        s4_mask = Signal(width, reset_less=True)
        with m.If(advance):
            m.d.sync += [
                s4_valid.eq(s3_valid),
                s4_rounded.eq(halve_rounding(s3_t0, borrow=s3_d)),
                s4_saturate.eq(s3_saturate),
                s4_mask.eq(s3_mask),
            ]

        # Stage 5: saturation. The value fits when its bits j and up all equal its sign; the
        # limits are the mask and its complement -2**j.
        upper = s4_rounded.as_unsigned() & ~s4_mask
        fits = (upper == 0) | (upper == ~s4_mask)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(s4_valid)
            with m.If(~s4_saturate | fits):
                m.d.sync += self.o.payload.eq(s4_rounded)
            with m.Elif(s4_rounded < 0):
                m.d.sync += self.o.payload.eq((~s4_mask).as_signed())
            with m.Else():
                m.d.sync += self.o.payload.eq(s4_mask)
        return m
