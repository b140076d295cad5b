"""The response sender: the executor's responses and the datapath's VMM bytes, a chunk at a time,
onto the engine's response stream."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from molxbar.protocol.beats import count_bits

from .beats import beat_layout

__all__ = ["ResponseSender", "response_bytes", "sender_port_signature"]


def response_bytes(*parts: tuple[Value | int, int]) -> Value:
    """``parts`` (values with their byte counts) as little-endian bytes, each cut or
    zero-extended to its count."""
    fields = []
    for value, n in parts:
        if isinstance(value, int):
            fields.append(Const(value, 8 * n))
        elif len(value) >= 8 * n:
            fields.append(value[: 8 * n])
        else:
            fields.append(Cat(value, Const(0, 8 * n - len(value))))
    return Cat(*fields)


def sender_port_signature(short_bytes: int, long_bytes: int) -> wiring.Signature:
    """The executor's port on the sender (members from the executor's side).

    ``load`` with ``data`` and ``length``: a short response (up to ``short_bytes``) to send;
    ``load_long``: the long response (``long_bytes``, from the sender's ``long`` image)
    instead. ``send``: offer the next chunk; ``taken``: it is taken this cycle; ``last``: it
    is the response's last."""
    return wiring.Signature(
        {
            "load": Out(1),
            "data": Out(8 * short_bytes),
            "length": Out(range(short_bytes + 1)),
            "load_long": Out(1),
            "next_long": Out(1),
            "send": Out(1),
            "taken": In(1),
            "last": In(1),
        }
    )


class ResponseSender(wiring.Component):
    """Sends the executor's responses ``chunk_bytes`` at a time, and passes the datapath's
    VMM bytes on.

    A short response is loaded into a shift register of ``short_bytes`` and shifted out a
    chunk per ``send``. The long one (STATUS) is too wide for it: its image (``long``, which
    holds still while it is sent) is loaded a chunk at a time with ``next_long``, each chunk
    then sent, so that the shift register stays a few bytes wide.

    The executor sends only while the datapath has nothing to send (its VMMs are drained), so
    the two never compete: the datapath's bytes simply pass while they are valid.

    Members
    -------
    port : ``In(sender_port_signature(short_bytes, long_bytes))``
        The executor's port.
    long : ``In(8 * long_bytes)``
        The long response.
    vmm : ``In(stream.Signature(beat_layout(chunk_bytes)))``
        The datapath's response bytes.
    o : ``Out(stream.Signature(beat_layout(chunk_bytes)))``
        Response chunks, to the beat packer.
    """

    def __init__(self, chunk_bytes: int, short_bytes: int, long_bytes: int) -> None:
        count_bits(chunk_bytes)  # (checks the range)
        self.chunk_bytes = chunk_bytes
        self.short_bytes = short_bytes = max(short_bytes, chunk_bytes)
        self.long_bytes = long_bytes
        super().__init__(
            {
                "port": In(sender_port_signature(short_bytes, long_bytes)),
                "long": In(8 * long_bytes),
                "vmm": In(stream.Signature(beat_layout(chunk_bytes))),
                "o": Out(stream.Signature(beat_layout(chunk_bytes))),
            }
        )

    def elaborate(self, platform) -> Module:
        chunk = self.chunk_bytes
        port = self.port
        m = Module()
        tx = Signal(8 * self.short_bytes)
        left = Signal(range(max(self.short_bytes, self.long_bytes) + 1))
        long_chunk = Signal(range(-(-self.long_bytes // chunk)))

        with m.If(port.load):
            m.d.sync += [tx.eq(port.data), left.eq(port.length)]
        with m.If(port.load_long):
            m.d.sync += [long_chunk.eq(0), left.eq(self.long_bytes)]
        with m.If(port.next_long):
            chunks = Array(
                self.long[k : k + 8 * chunk] for k in range(0, len(self.long), 8 * chunk)
            )
            m.d.sync += [tx.eq(chunks[long_chunk]), long_chunk.eq(long_chunk + 1)]

        # Every response has a header: ``left`` is at least one while the executor sends.
        n = 1 if chunk == 1 else Mux(left > chunk, chunk, left)
        m.d.comb += [
            port.taken.eq(port.send & self.o.ready),
            port.last.eq(left <= chunk),
            self.vmm.ready.eq(self.o.ready),
        ]
        with m.If(self.vmm.valid):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(self.vmm.payload)]
        with m.Elif(port.send):
            m.d.comb += [
                self.o.valid.eq(1),
                self.o.payload.data.eq(tx[: 8 * chunk]),
                self.o.payload.count.eq(n),
            ]
        with m.If(port.taken):
            m.d.sync += [left.eq(left - n), tx.eq(tx >> (8 * chunk))]
        return m
