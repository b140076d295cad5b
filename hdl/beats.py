"""Beats: several protocol bytes per clock on the engine's streams.

A beat of ``n`` bytes is the layout :func:`beat_layout` (``data``: byte ``k`` in bits
``8k .. 8k+7``, byte 0 first; ``count``: how many bytes are valid), as defined for hosts in
:mod:`molxbar.protocol.beats`. Inside the engine, the receiver takes whole elements (up to
four bytes) from a :class:`BeatUnpacker`, and the response senders give whole fields (up to
one output) to a :class:`BeatPacker`; the two adapt those element-sized steps to the
streams' ``stream_bytes``.

Both keep every byte past their fill level zero, so a shifted-in beat or chunk can be ORed
into place.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from molxbar.protocol.beats import count_bits

__all__ = ["beat_layout", "BeatPacker", "BeatUnpacker"]


def beat_layout(n: int) -> data.StructLayout:
    """``data`` (``n`` bytes) and ``count`` (valid bytes, ``0 .. n``)."""
    return data.StructLayout({"data": unsigned(8 * n), "count": unsigned(count_bits(n))})


def _byte_mask(count, n: int):
    """Ones in the first ``count`` of ``n`` bytes (all ``n`` for a larger count)."""
    return Array(Const((1 << 8 * min(k, n)) - 1, 8 * n) for k in range(1 << len(count)))[count]


def _clamp(count, n: int):
    """``count``, at most ``n``: a beat claiming more bytes than it has carries all of them."""
    return Mux(count > n, n, count)


class BeatUnpacker(wiring.Component):
    """Beats of ``beat_bytes`` in; a window of the next ``window_bytes`` bytes out.

    Members
    -------
    i : ``In(stream.Signature(beat_layout(beat_bytes)))``
        The command beats.
    window : ``Out(8 * window_bytes)``
        The next bytes of the stream, byte 0 first; bytes past ``avail`` are zero.
    avail : ``Out(range(window_bytes + 1))``
        How many bytes of ``window`` are there.
    take : ``In(range(window_bytes + 1))``
        How many bytes the consumer takes this cycle (at most ``avail``).
    empty : ``Out(1)``
        No byte is held.
    """

    def __init__(self, beat_bytes: int, window_bytes: int) -> None:
        if not 1 <= window_bytes <= beat_bytes:
            raise ValueError(f"window_bytes = {window_bytes} must be in [1, {beat_bytes}]")
        self.beat_bytes = beat_bytes
        self.window_bytes = window_bytes
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(beat_bytes))),
                "window": Out(8 * window_bytes),
                "avail": Out(range(window_bytes + 1)),
                "take": In(range(window_bytes + 1)),
                "empty": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        b, w = self.beat_bytes, self.window_bytes
        # Room for a beat on top of two windows: a beat is taken whenever at most 2w bytes are
        # held, whatever the consumer takes this cycle, so ``i.ready`` starts at a register
        # and the window never runs dry while beats arrive.
        # ``avail``, ``empty`` and ``i.ready`` are registers, loaded with the next ``fill``.
        capacity = b + 2 * w
        buf = Signal(8 * capacity)
        fill = Signal(range(capacity + 1))
        next_fill = Signal.like(fill)
        avail = Signal.like(self.avail)
        empty = Signal(init=1)
        ready = Signal(init=1)
        m.d.comb += [
            self.window.eq(buf[: 8 * w]),
            self.avail.eq(avail),
            self.empty.eq(empty),
            self.i.ready.eq(ready),
        ]
        m.d.sync += [
            fill.eq(next_fill),
            avail.eq(Mux(next_fill >= w, w, next_fill)),
            empty.eq(next_fill == 0),
            ready.eq(next_fill <= 2 * w),
        ]
        # The beat goes in above the held bytes, and then ``take`` bytes leave at the bottom:
        # everything before that last shift starts at registers and the beat, so ``take``,
        # which the consumer decides late in the cycle, only selects among the shifted
        # versions.
        accept = self.i.valid & self.i.ready
        beat = self.i.payload.data & _byte_mask(self.i.payload.count, b)
        placed = Array(Const(0, 8 * capacity) | (beat << 8 * k) for k in range(2 * w + 1))
        held = Signal(8 * capacity)
        m.d.comb += held.eq(buf | Mux(accept, placed[fill], 0))
        m.d.sync += buf.eq(held >> (self.take * 8))
        m.d.comb += next_fill.eq(fill + Mux(accept, _clamp(self.i.payload.count, b), 0) - self.take)
        return m


class BeatPacker(wiring.Component):
    """Chunks of up to ``chunk_bytes`` in; beats of ``beat_bytes`` out.

    A beat leaves full when there are ``beat_bytes`` bytes, or with what there is when no
    chunk is offered (the end of a response), so no byte waits for the next response.

    Members
    -------
    i : ``In(stream.Signature(beat_layout(chunk_bytes)))``
        Response chunks; the bytes past ``count`` are ignored.
    o : ``Out(stream.Signature(beat_layout(beat_bytes)))``
        Response beats, held steady until taken.
    empty : ``Out(1)``
        No byte is held or offered.
    """

    def __init__(self, chunk_bytes: int, beat_bytes: int) -> None:
        if not 1 <= chunk_bytes <= beat_bytes:
            raise ValueError(f"chunk_bytes = {chunk_bytes} must be in [1, {beat_bytes}]")
        self.chunk_bytes = chunk_bytes
        self.beat_bytes = beat_bytes
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(chunk_bytes))),
                "o": Out(stream.Signature(beat_layout(beat_bytes))),
                "empty": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        c, b = self.chunk_bytes, self.beat_bytes
        # Room for a chunk on top of a beat and a chunk: a chunk is taken whenever at most
        # b + c bytes are held, whatever leaves this cycle, so ``i.ready`` is a register
        # (``fill <= b + c``, kept with ``fill``).
        capacity = b + 2 * c
        buf = Signal(8 * capacity)
        fill = Signal(range(capacity + 1))
        ready = Signal(init=1)
        emit = Signal()
        emitted = Signal(range(b + 1))
        rest = Signal(range(capacity + 1))
        next_fill = Signal.like(fill)
        out_free = ~self.o.valid | self.o.ready
        m.d.comb += [
            emit.eq(out_free & ((fill >= b) | ((fill != 0) & ~self.i.valid))),
            emitted.eq(Mux(emit, Mux(fill >= b, b, fill), 0)),
            rest.eq(fill - emitted),
            self.i.ready.eq(ready),
            self.empty.eq((fill == 0) & ~self.o.valid),
        ]
        m.d.sync += [fill.eq(next_fill), ready.eq(next_fill <= b + c)]
        with m.If(emit):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.data.eq(buf[: 8 * b] & _byte_mask(emitted, b)),
                self.o.payload.count.eq(emitted),
            ]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        kept = buf >> (emitted * 8)
        with m.If(self.i.valid & self.i.ready):
            chunk = self.i.payload.data & _byte_mask(self.i.payload.count, c)
            m.d.sync += buf.eq(kept | (chunk << (rest * 8)))
            m.d.comb += next_fill.eq(rest + _clamp(self.i.payload.count, c))
        with m.Else():
            m.d.sync += buf.eq(kept)
            m.d.comb += next_fill.eq(rest)
        return m
