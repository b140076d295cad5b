"""The link counters in gateware."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from molxbar.protocol.link import COUNTER_BITS, COUNTERS

__all__ = ["COUNTERS_LAYOUT", "LinkCounters"]

#: The counters, in :data:`~molxbar.protocol.link.COUNTERS` order.
COUNTERS_LAYOUT = data.ArrayLayout(unsigned(COUNTER_BITS), len(COUNTERS))


class LinkCounters(wiring.Component):
    """The link counters (:class:`~molxbar.protocol.link.LinkCounter`), each stopping at its
    largest value; ``clear`` sets them to 0 (an event in the same cycle is lost).

    Members
    -------
    events : ``In(len(COUNTERS))``
        One-cycle pulses, bit ``k`` for counter ``k``.
    clear : ``In(1)``
    counts : ``Out(COUNTERS_LAYOUT)``
    """

    def __init__(self) -> None:
        super().__init__(
            {"events": In(len(COUNTERS)), "clear": In(1), "counts": Out(COUNTERS_LAYOUT)}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        for k in range(len(COUNTERS)):
            count = self.counts[k]
            more = Signal(COUNTER_BITS + 1)  # the carry out says the counter is full
            m.d.comb += more.eq(count + 1)
            with m.If(self.clear):
                m.d.sync += count.eq(0)
            with m.Elif(self.events[k] & ~more[COUNTER_BITS]):
                m.d.sync += count.eq(more[:COUNTER_BITS])
        return m
