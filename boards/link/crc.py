"""The link's CRC in gateware, a bit a cycle."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from molxbar.protocol.link import CRC_INIT, CRC_POLY

__all__ = ["SerialCRC"]


class SerialCRC(wiring.Component):
    """The link's CRC register, one bit per cycle: a byte loaded with ``load`` is in ``crc``
    eight cycles later (``busy`` until then). A few LUTs where the byte-wide update takes
    dozens and lies on the clock's critical path; bytes come from a UART, at least ten bit
    times apart.

    Members
    -------
    init : ``In(1)``
        Set the register to :data:`~molxbar.protocol.link.CRC_INIT` (before ``load``).
    load : ``In(1)``, ``byte`` : ``In(8)``
        Start on ``byte``.
    crc : ``Out(16)``
        The register (before the final XOR).
    busy : ``Out(1)``
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "init": In(1),
                "load": In(1),
                "byte": In(8),
                "crc": Out(16, init=CRC_INIT),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        shift = Signal(8)
        left = Signal(range(9))  # bits of the byte still to go
        top = self.crc[15] ^ shift[7]
        m.d.comb += self.busy.eq(left != 0)
        with m.If(self.init):
            m.d.sync += [self.crc.eq(CRC_INIT), left.eq(0)]
        with m.Elif(self.load):
            m.d.sync += [shift.eq(self.byte), left.eq(8)]
        with m.Elif(left != 0):
            m.d.sync += [
                self.crc.eq(Cat(Const(0, 1), self.crc[:15]) ^ Mux(top, CRC_POLY, 0)),
                shift.eq(shift << 1),
                left.eq(left - 1),
            ]
        return m
