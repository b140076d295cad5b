"""The link receiver: SLIP, escapes, length and CRC checked, a good command frame's
payload committed to the command buffer, an entry per frame."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from molxbar.hdl.construction import checking_arguments
from molxbar.protocol.link import (
    CRC_BYTES,
    CRC_XOROUT,
    MIN_FRAME_BYTES,
    SLIP_END,
    SLIP_ESC,
    SLIP_ESC_END,
    SLIP_ESC_ESC,
    FrameKind,
    LinkStatus,
)

from .buffers import check_buffer_bytes
from .crc import SerialCRC
from .entries import Action, entry_layout

__all__ = ["LinkReceiver"]


class LinkReceiver(wiring.Component):
    """Line bytes in, good command payloads into the buffer, one entry per frame.

    Each byte is taken the cycle it is offered (``data.ready`` is high). A frame's entry is
    offered on ``frames`` the cycle after its closing ``END`` and held until taken; a frame
    that closes while the previous entry is still held is lost (the transmitter takes an
    entry within cycles, frames come no faster than a byte time apart).

    Parameters
    ----------
    buffer_bytes
        The command buffer (a power of two).
    timeout_cycles
        A partial frame is dropped after this many cycles without a byte.

    Members
    -------
    data : ``In(stream.Signature(8))``
        Bytes from the UART.
    buffer : ``In(WritePort.Signature(...))``
        The command buffer's write port.
    taken : ``In(pointer_bits)``
        Bytes the engine side has read out of the buffer (a free-running pointer).
    committed : ``Out(pointer_bits)``
        Just past the payload of the last good command frame.
    frames : ``Out(stream.Signature(entry_layout(pointer_bits)))``
        One entry per frame.
    last_seq, ran : ``Out(8)``, ``Out(1)``
        The ``seq`` of the last command frame committed (to be run, in order; 255 after a
        reset, so that the first is 0), and whether one has been.
    bad_crc, bad_frame, timeout : ``Out(1)``
        One-cycle pulses for the counters.
    """

    def __init__(self, buffer_bytes: int, timeout_cycles: int) -> None:
        with checking_arguments(self):
            check_buffer_bytes("buffer_bytes", buffer_bytes)
            if isinstance(timeout_cycles, bool) or not isinstance(timeout_cycles, int):
                raise TypeError(f"timeout_cycles must be an int, not {timeout_cycles!r}")
            if timeout_cycles < 1:
                raise ValueError(f"timeout_cycles = {timeout_cycles} must be >= 1")
        self.buffer_bytes = buffer_bytes
        self.timeout_cycles = timeout_cycles
        self.addr_bits = exact_log2(buffer_bytes)
        self.pointer_bits = self.addr_bits + 1
        super().__init__(
            {
                "data": In(stream.Signature(8)),
                "buffer": In(WritePort.Signature(addr_width=self.addr_bits, shape=8)),
                "taken": In(self.pointer_bits),
                "committed": Out(self.pointer_bits),
                "frames": Out(stream.Signature(entry_layout(self.pointer_bits))),
                "last_seq": Out(8, init=0xFF),
                "ran": Out(1),
                "bad_crc": Out(1),
                "bad_frame": Out(1),
                "timeout": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        depth = self.buffer_bytes
        # Decoded bytes of the frame so far, stopping one past the shortest frame: all that
        # is asked of it is < 2, < MIN_FRAME_BYTES or == MIN_FRAME_BYTES (the buffer's
        # pointers measure the payload).
        length_top = MIN_FRAME_BYTES + 1
        length = Signal(range(length_top + 1))
        escape = Signal()
        bad_escape = Signal()
        overflow = Signal()
        m.submodules.crc = crc_unit = SerialCRC()
        crc = crc_unit.crc  # over all but the last two bytes
        tail = Signal(16)  # the last two bytes: the CRC once the frame ends
        seq = Signal(8)
        kind = Signal(8)
        wptr = Signal(self.pointer_bits)
        timer = Signal(range(self.timeout_cycles + 1))
        partial = (length != 0) | escape | bad_escape

        byte = self.data.payload
        m.d.comb += [
            self.data.ready.eq(1),
            self.buffer.addr.eq(wptr[: self.addr_bits]),
            self.buffer.data.eq(0),
        ]

        def reset_frame(next_wptr):
            m.d.comb += crc_unit.init.eq(1)
            m.d.sync += [
                length.eq(0),
                escape.eq(0),
                bad_escape.eq(0),
                overflow.eq(0),
                tail.eq(0),
                seq.eq(0),
                kind.eq(0),
                wptr.eq(next_wptr),
                timer.eq(0),
            ]

        with m.If(self.frames.valid & self.frames.ready):
            m.d.sync += self.frames.valid.eq(0)

        value = Signal(8)  # the decoded byte, when `put`
        put = Signal()
        with m.If(self.data.valid):
            m.d.sync += timer.eq(0)
            with m.If(byte == SLIP_END):
                with m.If(partial):
                    self._finish(
                        m,
                        length,
                        escape,
                        bad_escape,
                        overflow,
                        crc,
                        tail,
                        seq,
                        kind,
                        wptr,
                        reset_frame,
                    )
            with m.Elif(escape):
                m.d.sync += escape.eq(0)
                with m.If(byte == SLIP_ESC_END):
                    m.d.comb += [put.eq(1), value.eq(SLIP_END)]
                with m.Elif(byte == SLIP_ESC_ESC):
                    m.d.comb += [put.eq(1), value.eq(SLIP_ESC)]
                with m.Else():
                    m.d.sync += bad_escape.eq(1)
            with m.Elif(byte == SLIP_ESC):
                m.d.sync += escape.eq(1)
            with m.Else():
                m.d.comb += [put.eq(1), value.eq(byte)]
        with m.Elif(partial):
            with m.If(timer == self.timeout_cycles - 1):
                m.d.comb += self.timeout.eq(1)
                reset_frame(self.committed)
            with m.Else():
                m.d.sync += timer.eq(timer + 1)

        with m.If(put):
            m.d.sync += tail.eq(Cat(value, tail[:8]))
            with m.If(length != length_top):
                m.d.sync += length.eq(length + 1)
            with m.If(length >= CRC_BYTES):
                m.d.comb += [crc_unit.load.eq(1), crc_unit.byte.eq(tail[8:])]
            with m.If(length == 0):
                m.d.sync += seq.eq(value)
            with m.If(length == 1):
                m.d.sync += kind.eq(value)
            with m.If(length >= 2):
                # The payload and the CRC go to the buffer while it has room.
                room = (wptr - self.taken)[: self.pointer_bits] != depth
                with m.If(room & ~overflow):
                    m.d.comb += [self.buffer.en.eq(1), self.buffer.data.eq(value)]
                    m.d.sync += wptr.eq(wptr + 1)
                with m.Else():
                    m.d.sync += overflow.eq(1)
        return m

    def _finish(
        self, m, length, escape, bad_escape, overflow, crc, tail, seq, kind, wptr, reset_frame
    ):
        """The frame's ``END``: its status, its entry, and the commit of a good payload."""
        entry = self.frames.payload
        status = Signal(LinkStatus)
        action = Signal(Action)
        commit = Signal()
        bad_crc = (crc ^ CRC_XOROUT) != tail
        ran_twice = Signal()  # two command frames committed: the one before the last is kept
        control = ((kind == FrameKind.READ_COUNTERS) | (kind == FrameKind.CLEAR_COUNTERS)) & (
            length == MIN_FRAME_BYTES
        )
        m.d.comb += action.eq(Action.REFUSE)
        with m.If(escape | bad_escape):
            m.d.comb += status.eq(LinkStatus.BAD_ESCAPE)
        with m.Elif(overflow):
            m.d.comb += status.eq(LinkStatus.OVERFLOW)
        with m.Elif(length < MIN_FRAME_BYTES):
            m.d.comb += status.eq(LinkStatus.BAD_LENGTH)
        with m.Elif(bad_crc):
            m.d.comb += status.eq(LinkStatus.BAD_CRC)
        with m.Elif(kind == FrameKind.COMMANDS):
            # In order: the frame after the last one committed runs (0 after a reset);
            # either of the last two committed is answered again; any other is refused.
            ahead = (seq - self.last_seq)[:8]
            repeat = (ahead == 0) | (ran_twice & (ahead == 0xFF))
            with m.If(self.ran & repeat):
                m.d.comb += [status.eq(LinkStatus.REPLAY), action.eq(Action.REPLAY)]
            with m.Elif(ahead == 1):
                m.d.comb += [status.eq(LinkStatus.OK), action.eq(Action.RUN), commit.eq(1)]
            with m.Else():
                m.d.comb += status.eq(LinkStatus.OUT_OF_ORDER)
        with m.Elif(control):
            m.d.comb += [
                status.eq(LinkStatus.OK),
                action.eq(Mux(kind == FrameKind.CLEAR_COUNTERS, Action.CLEAR, Action.COUNTERS)),
            ]
        with m.Else():
            m.d.comb += status.eq(LinkStatus.BAD_KIND)
        m.d.comb += [
            self.bad_crc.eq(status == LinkStatus.BAD_CRC),
            self.bad_frame.eq(
                (status != LinkStatus.BAD_CRC)
                & (status != LinkStatus.OK)
                & (status != LinkStatus.REPLAY)
            ),
        ]
        payload_end = (wptr - CRC_BYTES)[: self.pointer_bits]
        with m.If(~self.frames.valid):
            m.d.sync += [
                self.frames.valid.eq(1),
                entry.seq.eq(seq),
                entry.status.eq(status),
                entry.action.eq(action),
                entry.end.eq(payload_end),
            ]
            with m.If(commit):
                m.d.sync += [
                    self.committed.eq(payload_end),
                    self.last_seq.eq(seq),
                    self.ran.eq(1),
                    ran_twice.eq(self.ran),
                ]
        reset_frame(Mux(commit & ~self.frames.valid, payload_end, self.committed))
