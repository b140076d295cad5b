"""The link's buffer sizes checked, and the command buffer's bytes read out to the engine."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from molxbar.hdl.construction import checking_arguments

__all__ = ["BufferReader", "check_buffer_bytes"]


def check_buffer_bytes(name: str, value: int) -> None:
    """Raise ``ValueError`` unless ``value`` (named ``name``) is a usable buffer size."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 8 or value & (value - 1):
        raise ValueError(f"{name} = {value!r} must be a power of two >= 8")


class BufferReader(wiring.Component):
    """The committed bytes of the frame being answered, out of the buffer as command beats.

    A byte is read the cycle after ``taken`` moves past it and offered on ``cmd`` the cycle
    after that; a byte every other cycle at most, far above the line rate.

    Members
    -------
    buffer : ``In(ReadPort.Signature(...))``
        The command buffer's read port (synchronous).
    limit : ``In(pointer_bits)``
        Read up to here (the end of the frame being answered).
    enable : ``In(1)``
        A frame is being answered.
    taken : ``Out(pointer_bits)``
        Bytes read out of the buffer (free-running).
    cmd : ``Out(stream.Signature(8))``
        The bytes, to the engine.
    empty : ``Out(1)``
        Every byte up to ``limit`` has been handed on.
    """

    def __init__(self, buffer_bytes: int) -> None:
        with checking_arguments(self):
            check_buffer_bytes("buffer_bytes", buffer_bytes)
        self.addr_bits = exact_log2(buffer_bytes)
        self.pointer_bits = self.addr_bits + 1
        super().__init__(
            {
                "buffer": In(ReadPort.Signature(addr_width=self.addr_bits, shape=8)),
                "limit": In(self.pointer_bits),
                "enable": In(1),
                "taken": Out(self.pointer_bits),
                "cmd": Out(stream.Signature(8)),
                "empty": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        reading = Signal()  # a byte is on its way out of the memory
        m.d.comb += [
            self.buffer.addr.eq(self.taken[: self.addr_bits]),
            self.buffer.en.eq(1),
            self.empty.eq((self.taken == self.limit) & ~reading & ~self.cmd.valid),
        ]
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += self.cmd.valid.eq(0)
        with m.If(reading):
            m.d.sync += [reading.eq(0), self.cmd.valid.eq(1), self.cmd.payload.eq(self.buffer.data)]
        with m.Elif(self.enable & (self.taken != self.limit) & ~self.cmd.valid):
            m.d.sync += [reading.eq(1), self.taken.eq(self.taken + 1)]
        return m
