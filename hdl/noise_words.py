"""The noise words of noisy operations, made ahead and kept: the row words and the column words
of every lane, in two banks, so that the words of the next operation are made while the
current one runs."""

from __future__ import annotations

import operator
from functools import reduce

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from molxbar.emulator.config import CrossbarConfig

from .speck import SpeckWords
from .speck_pipeline import PipelinedSpeckWords

__all__ = ["NoiseWords", "generator_ways", "noise_port_signature"]


def noise_port_signature(config: CrossbarConfig) -> wiring.Signature:
    """The executor's port on the noise words (members from the executor's side).

    ``start``: a noisy operation wants the words of the noise registers' ``(seed, counter)``;
    ``done``: they are in the bank the reads use from the next cycle on (the operation may
    read them from then, and the counter may advance); ``row_word``: the word of the row at
    the ``row_addr`` address, a cycle after it; ``col_words``: the words of the columns of
    the group at the ``group`` address, a cycle after it (lane ``p``'s column in bits
    ``64 * p ...``)."""
    return wiring.Signature(
        {
            "start": Out(1),
            "done": In(1),
            "row_word": In(64),
            "col_words": In(64 * config.lanes),
        }
    )


def generator_ways(config: CrossbarConfig, pipelined: bool) -> int:
    """Words of each axis a :class:`NoiseWords` generator makes per cycle: 2 for the
    pipelined one when one way would make an operation's words more slowly than a VMM issues
    its rows (``max(rows, cols) + 27`` cycles against ``rows * cols / lanes``) and the words
    of two columns go to one entry (``lanes >= 2``), else 1."""
    one_way = max(config.rows, config.cols) + PipelinedSpeckWords.LATENCY
    slow = config.rows * config.cols // config.lanes < one_way
    return 2 if pipelined and config.lanes >= 2 and slow else 1


class NoiseWords(wiring.Component):
    """A Speck word generator and two banks of its words.

    Each bank holds the words of one ``(seed, counter)``: ``rows`` row words and one column
    word per column (an entry per group of ``lanes`` columns, a word per lane), with the tag
    they were made for. Whenever neither bank holds the words of the noise registers' current
    ``(seed, counter)`` and the generator is free, it makes them into the bank the reads do
    not use. So after a noisy operation has taken its words (``done``) and the counter has
    advanced, the next operation's words are made while it runs; a request (``start``) is
    answered as soon as a bank holds its words, and the reads switch to that bank. The words
    depend only on ``(seed, counter)`` (``docs/arithmetic.md``), so making them ahead changes
    no result; a SEED while words are being made only means they are made again.

    The generator is a :class:`~molxbar.hdl.speck.SpeckWords` with ``unroll`` rounds per
    cycle (``(rows + cols + 1) * ceil(27 / unroll)`` cycles an operation), or with
    ``pipelined`` a :class:`~molxbar.hdl.speck_pipeline.PipelinedSpeckWords` (:attr:`ways`
    row and column words per cycle: ``ceil(max(rows, cols) / ways) + 27`` cycles, for large
    FPGAs). Without noise
    hardware in the configuration there is nothing inside: every output reads as zero, and
    ``done`` never rises (the noisy operations are never started).

    Members
    -------
    port : ``In(noise_port_signature(config))``
        The executor's port.
    seed, counter : ``In(32)``
        The noise registers.
    row_addr, group : ``In(range(rows))``, ``In(range(groups))``
        Read addresses of the row word and of the column words.
    """

    def __init__(self, config: CrossbarConfig, *, unroll: int, pipelined: bool = False) -> None:
        self.config = config
        self.unroll = unroll
        self.pipelined = pipelined
        groups = config.cols // config.lanes
        super().__init__(
            {
                "port": In(noise_port_signature(config)),
                "seed": In(32),
                "counter": In(32),
                "row_addr": In(range(max(2, config.rows))),
                "group": In(range(max(2, groups))),
            }
        )

    @property
    def ways(self) -> int:
        """Words of each axis the generator makes per cycle (:func:`generator_ways`)."""
        return generator_ways(self.config, self.pipelined)

    def elaborate(self, platform) -> Module:
        c = self.config
        m = Module()
        if not c.noise_hardware:
            return m
        lanes, ways = c.lanes, self.ways
        lane_bits, way_bits = exact_log2(lanes), exact_log2(ways)
        groups = c.cols // lanes
        # The row words in ``ways`` memories (row ``i`` in memory ``i % ways``), the column
        # words in one (an entry per group); each address's top bit is the bank.
        row_bits = ceil_log2(-(-c.rows // ways))
        group_bits = ceil_log2(groups)
        row_memories = [Memory(shape=64, depth=2 << row_bits, init=[]) for _ in range(ways)]
        col_words = Memory(shape=64 * lanes, depth=2 << group_bits, init=[])
        for w, memory in enumerate(row_memories):
            m.submodules[f"row_words{w}" if ways > 1 else "row_words"] = memory
        m.submodules.col_words = col_words
        row_reads = [memory.read_port() for memory in row_memories]
        row_writes = [memory.write_port() for memory in row_memories]
        col_read, col_write = col_words.read_port(), col_words.write_port(granularity=64)

        # The banks: what each holds (complete words of `tag`), and the one the reads use.
        tag_valid = [Signal(name=f"bank{b}_valid") for b in range(2)]
        tag = [Signal(64, name=f"bank{b}_tag", reset_less=True) for b in range(2)]
        read_bank = Signal()
        current = Cat(self.seed, self.counter)
        holds = [tag_valid[b] & (tag[b] == current) for b in range(2)]
        row_way = Signal(max(1, way_bits))  # the memory of the row read, a cycle later
        m.d.sync += row_way.eq(self.row_addr[:way_bits] if way_bits else 0)
        row_address = (self.row_addr >> way_bits)[:row_bits]
        m.d.comb += [
            *(read.addr.eq(Cat(row_address, read_bank)) for read in row_reads),
            col_read.addr.eq(Cat(self.group[:group_bits], read_bank)),
            self.port.row_word.eq(Array(read.data for read in row_reads)[row_way]),
            self.port.col_words.eq(col_read.data),
        ]

        # A request waits (from the cycle after ``start``) for a bank that holds its words,
        # then the reads switch to it.
        requested = Signal()
        with m.If(self.port.start):
            m.d.sync += requested.eq(1)
        with m.If(requested):
            for b in range(2):
                with m.If(holds[b]):
                    m.d.comb += self.port.done.eq(1)
                    m.d.sync += [read_bank.eq(b), requested.eq(0)]

        # The generator fills the other bank when neither holds the current words.
        making = Signal()  # words are being made into `fill` for `making_tag`
        fill = Signal()
        making_tag = Signal(64, reset_less=True)
        rows_left = Signal()  # (the last row word and the last column word not yet stored)
        cols_left = Signal()
        start = ~making & ~holds[0] & ~holds[1]
        with m.If(start):
            m.d.sync += [
                making.eq(1),
                fill.eq(~read_bank),
                making_tag.eq(current),
                rows_left.eq(1),
                cols_left.eq(1),
            ]
            for b in range(2):
                with m.If(read_bank != b):
                    m.d.sync += tag_valid[b].eq(0)
        row_words, col_words_made = self._generator(m, start)
        for write, word in zip(row_writes, row_words, strict=True):
            m.d.comb += [
                write.addr.eq(Cat((word.payload.index >> way_bits)[:row_bits], fill)),
                write.data.eq(word.payload.word),
                write.en.eq(word.valid),
            ]
        # A cycle's column words (indices ``ways * t + w``) share one entry: way ``w`` goes to
        # the lanes ``p`` with ``p % ways == w``.
        first = col_words_made[0].payload.index
        m.d.comb += [
            col_write.addr.eq(Cat((first >> lane_bits)[:group_bits], fill)),
            col_write.data.eq(
                Cat(word.payload.word for word in col_words_made).replicate(lanes // ways)
            ),
        ]
        enables = [
            Mux(
                word.valid,
                Const(1, lanes) << (word.payload.index[:lane_bits] if lane_bits else 0),
                0,
            )
            for word in col_words_made
        ]
        m.d.comb += col_write.en.eq(reduce(operator.or_, enables))
        last_row = Cat(w.valid & (w.payload.index == c.rows - 1) for w in row_words).any()
        last_col = Cat(w.valid & (w.payload.index == c.cols - 1) for w in col_words_made).any()
        with m.If(last_row):
            m.d.sync += rows_left.eq(0)
        with m.If(last_col):
            m.d.sync += cols_left.eq(0)
        with m.If(making & ~(rows_left & ~last_row) & ~(cols_left & ~last_col)):
            # The last word is stored in this cycle: the bank holds the words from the next.
            m.d.sync += making.eq(0)
            for b in range(2):
                with m.If(fill == b):
                    m.d.sync += [tag_valid[b].eq(1), tag[b].eq(making_tag)]
        return m

    def _generator(self, m: Module, start) -> tuple[list, list]:
        """The Speck generator, started by ``start`` with the current noise registers; its
        row words and column words, ``ways`` streams each (valid, payload)."""
        c = self.config
        if self.pipelined:
            m.submodules.speck = speck = PipelinedSpeckWords(
                rows=c.rows, cols=c.cols, ways=self.ways
            )
            m.d.comb += [
                speck.start.eq(start),
                speck.seed.eq(self.seed),
                speck.counter.eq(self.counter),
            ]
            return list(speck.row), list(speck.col)
        m.submodules.speck = speck = SpeckWords(rows=c.rows, cols=c.cols, unroll=self.unroll)
        m.d.comb += [
            speck.start.eq(start),
            speck.seed.eq(self.seed),
            speck.counter.eq(self.counter),
            speck.words.ready.eq(1),
        ]
        # One stream of both axes, rows first: split by the axis.
        row = wiring.Signature(speck.words.signature.members).create()
        col = wiring.Signature(speck.words.signature.members).create()
        for axis, port in ((0, row), (1, col)):
            m.d.comb += [
                port.valid.eq(speck.words.valid & (speck.words.payload.axis == axis)),
                port.payload.eq(speck.words.payload),
            ]
        return [row], [col]
