"""The noise words of one noisy operation, made and kept: the row words for the datapath, the
column words of every lane, and the word of the written cell's row."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from molxbar.emulator.config import CrossbarConfig

from .speck import SpeckWords

__all__ = ["NoiseWords", "noise_port_signature"]


def noise_port_signature(config: CrossbarConfig) -> wiring.Signature:
    """The executor's port on the noise words (members from the executor's side).

    ``start``: make the words of the next noisy operation (from the seed and counter
    registers); ``done``: its last word is stored in this cycle; ``r_word``: the word of the
    row the ``row`` member named while the row words went by; ``col_words``: the words of the
    columns of the group at the ``group`` address, a cycle after it (lane ``p``'s column in
    bits ``64 * p ...``)."""
    return wiring.Signature(
        {
            "start": Out(1),
            "done": In(1),
            "r_word": In(64),
            "col_words": In(64 * config.lanes),
        }
    )


class NoiseWords(wiring.Component):
    """A :class:`~molxbar.hdl.speck.SpeckWords` generator and the memories of its words.

    The words of an operation stream into a row-word memory (``rows`` words) and a column-word
    memory (one entry per group of ``lanes`` columns, a word per lane); they stay there for the
    operation (a VMM reads them row by row and group by group). Without noise hardware in the
    configuration there is nothing inside: every output reads as zero, and ``done`` never
    rises (the noisy operations are never started).

    Members
    -------
    port : ``In(noise_port_signature(config))``
        The executor's port.
    seed, counter : ``In(32)``
        The noise registers, sampled at ``start``.
    row : ``In(range(rows))``
        The row whose word is captured as ``r_word``.
    row_addr, group : ``In(range(rows))``, ``In(range(groups))``
        Read addresses of the row word and of the column words.
    row_word : ``Out(64)``
        The word of row ``row_addr``, a cycle after it.
    """

    def __init__(self, config: CrossbarConfig, *, unroll: int) -> None:
        self.config = config
        self.unroll = unroll
        groups = config.cols // config.lanes
        super().__init__(
            {
                "port": In(noise_port_signature(config)),
                "seed": In(32),
                "counter": In(32),
                "row": In(range(max(2, config.rows))),
                "row_addr": In(range(max(2, config.rows))),
                "group": In(range(max(2, groups))),
                "row_word": Out(64),
            }
        )

    def elaborate(self, platform) -> Module:
        c = self.config
        m = Module()
        if not c.noise_hardware:
            return m
        lanes = c.lanes
        lane_bits = exact_log2(lanes)
        groups = c.cols // lanes
        m.submodules.speck = speck = SpeckWords(rows=c.rows, cols=c.cols, unroll=self.unroll)
        m.submodules.row_words = row_words = Memory(shape=64, depth=c.rows, init=[])
        m.submodules.col_words = col_words = Memory(shape=64 * lanes, depth=groups, init=[])
        row_read, row_write = row_words.read_port(), row_words.write_port()
        col_read, col_write = col_words.read_port(), col_words.write_port(granularity=64)

        m.d.comb += [
            speck.start.eq(self.port.start),
            speck.seed.eq(self.seed),
            speck.counter.eq(self.counter),
            row_read.addr.eq(self.row_addr),
            self.row_word.eq(row_read.data),
            col_read.addr.eq(self.group),
            self.port.col_words.eq(col_read.data),
        ]
        # Every word is taken as it comes: the executor waits for ``done`` after ``start``.
        words = speck.words.payload
        word_lane = words.index[:lane_bits] if lane_bits else 0
        m.d.comb += [
            speck.words.ready.eq(1),
            row_write.addr.eq(words.index),
            row_write.data.eq(words.word),
            col_write.addr.eq(words.index >> lane_bits),
            col_write.data.eq(words.word.replicate(lanes)),
        ]
        with m.If(speck.words.valid):
            with m.If(words.axis == 0):
                m.d.comb += row_write.en.eq(1)
                with m.If(words.index == self.row):
                    m.d.sync += self.port.r_word.eq(words.word)
            with m.Else():
                m.d.comb += col_write.en.eq(1 << word_lane)
                with m.If(words.index == c.cols - 1):
                    m.d.comb += self.port.done.eq(1)
        return m
