"""A byte stream from one clock domain to another, a byte at a time: a handshake, not a FIFO.

:class:`StreamCrossing` holds one payload in a register of the writing domain and toggles a
request; the reading domain sees the request through a two-flip-flop synchronizer, offers
the held payload (stable since before the request changed) and, when it is taken, toggles
an acknowledge that returns the same way. A payload crosses in about three cycles of each
domain, so the crossing suits a stream far slower than both clocks, such as a UART's bytes
(one per ten bit times), at a few dozen flip-flops where an asynchronous FIFO takes a few
hundred logic cells.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["StreamCrossing"]


class StreamCrossing(wiring.Component):
    """``i`` in ``w_domain``, ``o`` in ``r_domain``: the same payloads in the same order.

    ``i.ready`` is high while the crossing is empty: a payload is taken in one cycle and
    the next only after the reading side has taken it and its acknowledge has come back.
    """

    def __init__(self, shape, *, w_domain: str, r_domain: str) -> None:
        self.w_domain = w_domain
        self.r_domain = r_domain
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        w, r = m.d[self.w_domain], m.d[self.r_domain]
        held = Signal.like(self.i.payload)
        request = Signal()  # toggled by the writer with each payload it holds
        acknowledge = Signal()  # toggled by the reader with each payload taken
        request_seen = Signal()
        acknowledge_seen = Signal()
        m.submodules.request_sync = FFSynchronizer(request, request_seen, o_domain=self.r_domain)
        m.submodules.acknowledge_sync = FFSynchronizer(
            acknowledge, acknowledge_seen, o_domain=self.w_domain
        )

        m.d.comb += self.i.ready.eq(request == acknowledge_seen)
        with m.If(self.i.valid & self.i.ready):
            w += [held.eq(self.i.payload), request.eq(~request)]

        m.d.comb += [self.o.valid.eq(request_seen != acknowledge), self.o.payload.eq(held)]
        with m.If(self.o.valid & self.o.ready):
            r += acknowledge.eq(~acknowledge)
        return m
