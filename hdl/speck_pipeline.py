"""Speck64/128 noise words at one or two row words and as many column words per cycle, for
large FPGAs.

Bit-exact with :func:`molxbar.emulator.noise.axis_words`, like
:class:`~molxbar.hdl.speck.SpeckWords`, which makes the same words iteratively in a fraction
of the area (about ``(rows + cols + 1) * ceil(27 / unroll)`` cycles per operation). Here the
27 rounds are unrolled into a pipeline, so an operation's ``rows + cols`` words take
``ceil(max(rows, cols) / ways)`` cycles and operations follow each other with no gap:

* :class:`SpeckPipeline` encrypts ``lanes`` blocks per cycle under a key that travels with
  them: every stage holds, beside the blocks, the key-schedule state its round needs, so the
  key may change from one cycle to the next and there is no key-expansion phase;
* :class:`PipelinedSpeckWords` keys it with ``(seed, counter)`` and feeds it, in cycle ``t``,
  the row block ``(AXIS_ROW, ways * t + w)`` and the column block ``(AXIS_COL, ways * t + w)``
  for each way ``w < ways`` (``ways`` is 1 or 2), all under that one key.

Both the block rounds and the key schedule (the round function with
``(x, y, key) = (l[i], k[i], i)``) use :func:`~molxbar.hdl.speck.speck_round`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from molxbar.emulator.noise import AXIS_COL, AXIS_ROW, NOISE_KEY_DOMAIN, SPECK64_ROUNDS

from .speck import (
    AXIS_INDEX_BITS,
    AXIS_WORD_LAYOUT,
    SPECK_BLOCK_LAYOUT,
    SPECK_KEY_LAYOUT,
    SPECK_RESULT_LAYOUT,
    speck_round,
)

__all__ = [
    "speck_pipeline_input_layout",
    "speck_pipeline_output_layout",
    "SpeckPipeline",
    "PipelinedSpeckWords",
]


def speck_pipeline_input_layout(lanes: int) -> data.StructLayout:
    """One input of :class:`SpeckPipeline`: a key and the ``lanes`` plaintexts it encrypts."""
    return data.StructLayout(
        {"key": SPECK_KEY_LAYOUT, "plaintexts": data.ArrayLayout(SPECK_BLOCK_LAYOUT, lanes)}
    )


def speck_pipeline_output_layout(lanes: int) -> data.ArrayLayout:
    """One output of :class:`SpeckPipeline`: each lane's ciphertext with its plaintext."""
    return data.ArrayLayout(SPECK_RESULT_LAYOUT, lanes)


def _check_count(name: str, value: object, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if not 1 <= value <= limit:
        raise ValueError(f"{name} = {value} is out of range: must be in [1, {limit}]")
    return value


def _kept_l_words(round_index: int) -> int:
    """How many of ``l[i+1], l[i+2], l[i+3]`` a round after round ``i`` still reads.

    Round ``i`` reads the schedule word ``l[i]`` only to make ``k[i+1]``, so rounds
    ``0 .. 25`` read ``l[0] .. l[25]`` and the last round reads none.
    """
    return max(0, min(3, SPECK64_ROUNDS - 2 - round_index))


def _stage_layout(lanes: int, round_index: int) -> data.StructLayout:
    """The register after round ``round_index``: the blocks, their plaintexts, and the
    key-schedule state the later rounds read (``k[i+1]`` and :func:`_kept_l_words`)."""
    fields = {
        "blocks": data.ArrayLayout(SPECK_BLOCK_LAYOUT, lanes),
        "plaintexts": data.ArrayLayout(SPECK_BLOCK_LAYOUT, lanes),
    }
    if round_index < SPECK64_ROUNDS - 1:
        fields["k"] = 32
    if l_words := _kept_l_words(round_index):
        fields["l"] = data.ArrayLayout(32, l_words)
    return data.StructLayout(fields)


class SpeckPipeline(wiring.Component):
    """Speck64/128 encryption of ``lanes`` blocks per cycle, one round per pipeline stage.

    Each of the 27 stages applies one round to every lane and one step of the key schedule
    to the key that came with them, and registers both: the key travels with its blocks, so
    every cycle may bring a different key. There is no back-pressure: an input with
    ``i.valid`` in cycle ``c`` comes out on ``o`` (``o.valid`` high, ciphertexts with their
    plaintexts, lane for lane) in cycle ``c +`` :attr:`LATENCY`, whatever enters around it.
    Only the ``valid`` bits are reset; the payload registers load every cycle.

    The input goes straight into the first round (no input register) and ``o`` is the last
    stage's register: every register-to-register path is one round (a 32-bit addition and
    two XORs, the rotations are wiring).

    Parameters
    ----------
    lanes
        Blocks encrypted under each key, in ``[1, 64]``; they share one key-schedule path.

    Attributes
    ----------
    i : In(stream.Signature(speck_pipeline_input_layout(lanes)))
        A key (:data:`~molxbar.hdl.speck.SPECK_KEY_LAYOUT`) and ``lanes`` plaintexts.
        ``i.ready`` is always 1 (not an ``always_ready`` signature: its constant ``ready``
        would not convert as a top-level port in Amaranth 0.5).
    o : Out(stream.Signature(speck_pipeline_output_layout(lanes)))
        The results, in input order, :attr:`LATENCY` cycles after their input. ``o.ready``
        is ignored: the consumer takes each result in the cycle it is valid.
    """

    #: Cycles from an input on ``i`` to its results on ``o``: one per round.
    LATENCY = SPECK64_ROUNDS

    def __init__(self, lanes: int = 2) -> None:
        self.lanes = _check_count("lanes", lanes, 64)
        super().__init__(
            {
                "i": In(stream.Signature(speck_pipeline_input_layout(self.lanes))),
                "o": Out(stream.Signature(speck_pipeline_output_layout(self.lanes))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.i.ready.eq(1)

        # The state entering round `i`: `k` = k[i], `ls` = l[i], l[i+1], l[i+2] (those a
        # later round reads), the blocks after i rounds and the plaintexts they came from.
        key = self.i.payload.key
        valid = self.i.valid
        k, ls = key.k0, [key.l0, key.l1, key.l2]
        blocks, plaintexts = self.i.payload.plaintexts, self.i.payload.plaintexts
        for round_index in range(SPECK64_ROUNDS):
            stage = Signal(
                _stage_layout(self.lanes, round_index), name=f"stage{round_index}", reset_less=True
            )
            stage_valid = Signal(name=f"stage{round_index}_valid")
            m.d.sync += [stage_valid.eq(valid), stage.plaintexts.eq(plaintexts)]
            for lane in range(self.lanes):
                x, y = speck_round(blocks[lane].x, blocks[lane].y, k)
                m.d.sync += [stage.blocks[lane].x.eq(x), stage.blocks[lane].y.eq(y)]
            if round_index < SPECK64_ROUNDS - 1:
                new_l, next_k = speck_round(ls[0], k, round_index)
                m.d.sync += stage.k.eq(next_k)
                l_words = _kept_l_words(round_index)
                if l_words:
                    kept = [*ls[1:], new_l][:l_words]
                    m.d.sync += [stage.l[n].eq(word) for n, word in enumerate(kept)]
                    ls = list(stage.l)
                k = stage.k
            valid, blocks, plaintexts = stage_valid, stage.blocks, stage.plaintexts

        m.d.comb += self.o.valid.eq(valid)
        for lane in range(self.lanes):
            m.d.comb += [
                self.o.payload[lane].ciphertext.eq(blocks[lane]),
                self.o.payload[lane].plaintext.eq(plaintexts[lane]),
            ]
        return m


class PipelinedSpeckWords(wiring.Component):
    """The row and column words of noise operations, ``ways`` of each per cycle, bit-exact
    with ``axis_words``.

    An accepted ``start`` samples ``seed`` and ``counter``; the operation's key is
    ``(l2, l1, l0, k0) = (0x6D6F6C78, 0, seed, counter)``. With
    ``length = max(rows, cols)``, :attr:`cycles` ``= ceil(length / ways)`` and the cycle of
    the accepted start as cycle 0, the row blocks ``(AXIS_ROW, ways * t + w)`` and the column
    blocks ``(AXIS_COL, ways * t + w)`` of every way ``w < ways`` enter a
    :class:`SpeckPipeline` of ``2 * ways`` lanes (lane ``axis * ways + w``, one key path) in
    cycle ``t`` for ``t = 0 .. cycles - 1`` (the first ``ways`` indices in the start cycle
    itself, from the ``seed`` and ``counter`` inputs), and their words come out
    :attr:`LATENCY` = 27 cycles later:

    * ``R_i`` is valid on ``row[i % ways]`` in cycle ``27 + i // ways`` for ``i < rows``, and
      ``C_i`` on ``col[i % ways]`` in cycle ``27 + i // ways`` for ``i < cols``: with
      ``ways = 1`` one word per cycle, with ``ways = 2`` the even index on way 0 and the odd
      one on way 1, in index order and with no gaps. A way whose index is past its axis's
      count (the shorter axis, or way 1 in the last cycle of an odd count) is not valid;
    * ``feeding`` is high in cycles ``1 .. cycles - 1``, while the blocks after the first
      cycle's enter. A ``start`` is accepted in any cycle with ``feeding`` low, so the
      earliest next start is cycle ``cycles`` (the cycle after the last blocks entered): its
      words follow the previous operation's with no gap, and a stream of operations yields
      ``ways`` words per cycle on the longer axis (but way 1 idles in an operation's last
      cycle if ``length`` is odd). A ``start`` while ``feeding`` is ignored;
    * ``busy`` is high in cycles ``1 .. cycles + 26``, through the cycle of the operation's
      last word (and longer if another operation has started).

    With ``ways = 1``, ``cycles = length``, and index ``t`` enters in cycle ``t`` on
    ``row[0]`` and ``col[0]``.

    In the start cycle the first round reads ``seed`` and ``counter`` straight from the ports
    (through a 2:1 multiplexer with their sampled copies): drive them from registers.

    Parameters
    ----------
    rows, cols
        Number of row and column words, each in ``[1, 65536]``.
    ways
        Words of each axis per cycle, 1 or 2. Two double the pipeline's block lanes (2 to 4)
        but not its key path, and halve an operation's cycles.

    Attributes
    ----------
    start : In(1)
    seed, counter : In(32)
        Sampled in the cycle ``start`` is accepted.
    feeding : Out(1)
        The operation's blocks after the first cycle's are entering; ``start`` is ignored.
    busy : Out(1)
        From the cycle after an accepted ``start`` through the cycle of its last word.
    row, col : Out(stream.Signature(AXIS_WORD_LAYOUT)).array(ways)
        ``row[w]``, ``col[w]``: ``R_index`` (axis 0) and ``C_index`` (axis 1) of the indices
        ``index % ways == w``; ``word`` is ``x' * 2**32 + y'``. ``ready`` is ignored: the
        consumer takes each word in the cycle it is valid.
    """

    #: Cycles from a block's entry (cycle ``i // ways`` after the start for index ``i``) to
    #: its word.
    LATENCY = SpeckPipeline.LATENCY

    def __init__(self, rows: int = 64, cols: int = 64, *, ways: int = 1) -> None:
        self.rows = _check_count("rows", rows, 1 << AXIS_INDEX_BITS)
        self.cols = _check_count("cols", cols, 1 << AXIS_INDEX_BITS)
        self.ways = _check_count("ways", ways, 2)
        self.length = max(self.rows, self.cols)
        #: Cycles an operation's blocks take to enter, ``ceil(length / ways)``: the earliest
        #: next start is this many cycles after a start.
        self.cycles = -(-self.length // self.ways)
        super().__init__(
            {
                "start": In(1),
                "seed": In(32),
                "counter": In(32),
                "feeding": Out(1),
                "busy": Out(1),
                "row": Out(stream.Signature(AXIS_WORD_LAYOUT)).array(self.ways),
                "col": Out(stream.Signature(AXIS_WORD_LAYOUT)).array(self.ways),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        ways, cycles = self.ways, self.cycles
        m.submodules.pipeline = pipeline = SpeckPipeline(lanes=2 * ways)

        def lane(axis: int, way: int) -> int:
            return axis * ways + way

        # Block source: cycle 0 (the start cycle) from the ports; cycle t from the sampled
        # key and `next_cycle`. Way w of cycle t is index ways * t + w.
        accept = Signal()
        m.d.comb += accept.eq(self.start & ~self.feeding)
        seed = Signal(32, name="sampled_seed", reset_less=True)
        counter = Signal(32, name="sampled_counter", reset_less=True)
        next_cycle = Signal(range(cycles), reset_less=True)  # while feeding: this cycle's t
        with m.If(accept):
            m.d.sync += [seed.eq(self.seed), counter.eq(self.counter)]
            if cycles > 1:
                m.d.sync += [self.feeding.eq(1), next_cycle.eq(1)]
        with m.Elif(self.feeding):
            m.d.sync += next_cycle.eq(next_cycle + 1)
            with m.If(next_cycle == cycles - 1):
                m.d.sync += self.feeding.eq(0)

        key = pipeline.i.payload.key
        cycle = Mux(self.feeding, next_cycle, 0)
        m.d.comb += [
            pipeline.i.valid.eq(accept | self.feeding),
            key.l2.eq(NOISE_KEY_DOMAIN),
            key.l1.eq(0),
            key.l0.eq(Mux(self.feeding, seed, self.seed)),
            key.k0.eq(Mux(self.feeding, counter, self.counter)),
        ]
        for axis in (AXIS_ROW, AXIS_COL):
            for way in range(ways):
                plaintext = pipeline.i.payload.plaintexts[lane(axis, way)]
                index = Cat(Const(way, exact_log2(ways)), cycle)  # ways * cycle + way
                m.d.comb += [plaintext.x.eq(axis), plaintext.y.eq(index)]

        # Cycles left until the last word of the latest operation has been out for a cycle.
        remaining = Signal(range(cycles + self.LATENCY))
        with m.If(accept):
            m.d.sync += remaining.eq(cycles + self.LATENCY - 1)
        with m.Elif(remaining != 0):
            m.d.sync += remaining.eq(remaining - 1)
        m.d.comb += self.busy.eq(remaining != 0)

        for axis, ports, count in (
            (AXIS_ROW, self.row, self.rows),
            (AXIS_COL, self.col, self.cols),
        ):
            for way, port in enumerate(ports):
                result = pipeline.o.payload[lane(axis, way)]
                word_index = result.plaintext.y[:AXIS_INDEX_BITS]
                valid = pipeline.o.valid
                if ways * (cycles - 1) + way >= count:  # this way has indices past `count`
                    valid = valid & (word_index < count)
                m.d.comb += [
                    port.valid.eq(valid),
                    port.payload.axis.eq(axis),
                    port.payload.index.eq(word_index),
                    port.payload.word.eq(Cat(result.ciphertext.y, result.ciphertext.x)),
                ]
        return m
