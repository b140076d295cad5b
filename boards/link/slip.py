"""SLIP encoding of the response frames' bytes."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from molxbar.protocol.link import SLIP_END, SLIP_ESC, SLIP_ESC_END, SLIP_ESC_ESC

__all__ = ["TX_BYTE_LAYOUT", "SlipEncoder"]

#: A byte for the SLIP encoder: a body byte, or (``delimiter``) an ``END``.
TX_BYTE_LAYOUT = data.StructLayout({"byte": 8, "delimiter": 1})


class SlipEncoder(wiring.Component):
    """Body bytes escaped, delimiters as ``END``: one line byte per cycle while ``o`` takes
    them; an escaped byte takes two.

    Members
    -------
    i : ``In(stream.Signature(TX_BYTE_LAYOUT))``
    o : ``Out(stream.Signature(8))``
    """

    def __init__(self) -> None:
        super().__init__({"i": In(stream.Signature(TX_BYTE_LAYOUT)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform) -> Module:
        m = Module()
        second = Signal()  # the escape is out; its second byte is due
        byte, delimiter = self.i.payload.byte, self.i.payload.delimiter
        special = ~delimiter & ((byte == SLIP_END) | (byte == SLIP_ESC))
        m.d.comb += self.o.valid.eq(self.i.valid)
        with m.If(second):
            m.d.comb += [
                self.o.payload.eq(Mux(byte == SLIP_END, SLIP_ESC_END, SLIP_ESC_ESC)),
                self.i.ready.eq(self.o.ready),
            ]
            with m.If(self.o.ready):
                m.d.sync += second.eq(0)
        with m.Elif(special):
            m.d.comb += self.o.payload.eq(SLIP_ESC)
            with m.If(self.i.valid & self.o.ready):
                m.d.sync += second.eq(1)
        with m.Else():
            m.d.comb += [
                self.o.payload.eq(Mux(delimiter, SLIP_END, byte)),
                self.i.ready.eq(self.o.ready),
            ]
        return m
