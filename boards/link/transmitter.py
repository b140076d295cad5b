"""The link transmitter: a response frame for every entry, the engine's responses kept in
the replay buffer."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from molxbar.hdl.construction import checking_arguments
from molxbar.protocol.link import (
    COUNTERS,
    CRC_XOROUT,
    FRAMES_IN_FLIGHT,
    LinkStatus,
    max_payload,
    replay_slot,
)

from .buffers import check_buffer_bytes
from .counters import COUNTERS_LAYOUT
from .crc import SerialCRC
from .entries import Action, entry_layout
from .slip import TX_BYTE_LAYOUT

__all__ = ["LinkTransmitter"]


class LinkTransmitter(wiring.Component):
    """Entries in, response frames out (as :data:`TX_BYTE_LAYOUT` for the
    :class:`SlipEncoder`).

    For a ``RUN`` entry it raises ``running`` with ``end`` the frame's payload end, passes
    the engine's response bytes on (and into the replay slot of the frame's ``seq``: the
    first half of the replay buffer for an even ``seq``, the second for an odd one), and
    closes the frame when ``engine_done``: the engine has taken every byte of the frame and
    has nothing left to say. A ``REPLAY`` entry is answered from its ``seq``'s slot. Every
    answer's credits are the buffer less the CRC: once it is out, the engine has taken
    every byte of its frame and of those before it.

    Parameters
    ----------
    buffer_bytes, replay_bytes
        The command and replay buffers (powers of two).

    Members
    -------
    frames : ``In(stream.Signature(entry_layout(pointer_bits)))``
    rsp : ``In(stream.Signature(8))``
        The engine's response bytes.
    running : ``Out(1)``, ``end`` : ``Out(pointer_bits)``
        The frame whose commands go to the engine now, and its payload's end.
    engine_done : ``In(1)``
    counts : ``In(COUNTERS_LAYOUT)``; ``last_seq``, ``ran`` : ``In(8)``, ``In(1)``
        For the counters payload.
    clear : ``Out(1)``
        One-cycle pulse, the cycle after a ``CLEAR`` entry's last counter byte is out.
    o : ``Out(stream.Signature(TX_BYTE_LAYOUT))``
    """

    def __init__(self, buffer_bytes: int, replay_bytes: int) -> None:
        with checking_arguments(self):
            check_buffer_bytes("buffer_bytes", buffer_bytes)
            check_buffer_bytes("replay_bytes", replay_bytes)
        self.replay_bytes = replay_bytes
        self.credits = max_payload(buffer_bytes)
        self.pointer_bits = exact_log2(buffer_bytes) + 1
        super().__init__(
            {
                "frames": In(stream.Signature(entry_layout(self.pointer_bits))),
                "rsp": In(stream.Signature(8)),
                "running": Out(1),
                "end": Out(self.pointer_bits),
                "engine_done": In(1),
                "counts": In(COUNTERS_LAYOUT),
                "last_seq": In(8),
                "ran": In(1),
                "clear": Out(1),
                "o": Out(stream.Signature(TX_BYTE_LAYOUT)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        replay_bytes = self.replay_bytes
        slot_bytes = replay_slot(replay_bytes)
        slot_bits = ceil_log2(slot_bytes)
        m.submodules.replay = replay = Memory(shape=8, depth=replay_bytes, init=[])
        replay_w = replay.write_port()
        replay_r = replay.read_port()

        entry = Signal(entry_layout(self.pointer_bits))
        m.submodules.crc = crc_unit = SerialCRC()
        crc = crc_unit.crc
        m.d.sync += self.clear.eq(0)
        # Each slot's response bytes, and whether they overflowed it.
        slot_lens = Array(Signal(range(slot_bytes + 1)) for _ in range(FRAMES_IN_FLIGHT))
        slot_losts = Array(Signal() for _ in range(FRAMES_IN_FLIGHT))
        slot = entry.seq[: exact_log2(FRAMES_IN_FLIGHT)]
        replay_len = slot_lens[slot]
        replay_lost = slot_losts[slot]
        replay_byte = Signal(8)  # the memory's output, registered before the CRC
        index = Signal(range(max(slot_bytes, 2 * len(COUNTERS) + 2) + 1))

        o = self.o
        sending = Signal()  # a body byte goes out this cycle (CRC it)
        m.d.comb += [
            self.end.eq(entry.end),
            replay_r.addr.eq(Cat(index[:slot_bits], slot)),
            replay_r.en.eq(1),
            replay_w.addr.eq(Cat(replay_len[:slot_bits], slot)),
            replay_w.data.eq(self.rsp.payload),
        ]
        m.d.comb += crc_unit.byte.eq(o.payload.byte)
        # A body byte goes only when the CRC has taken the one before (8 cycles).
        free = ~crc_unit.busy
        with m.If(sending & o.valid & o.ready):
            m.d.comb += crc_unit.load.eq(1)

        def emit(value, next_state, *, body=True):
            go = free if body else 1
            m.d.comb += [o.valid.eq(go), o.payload.byte.eq(value)]
            if body:
                m.d.comb += sending.eq(1)
            with m.If(o.ready & go):
                m.next = next_state

        counter_bytes = [Mux(self.ran, 1, 0), Mux(self.ran, self.last_seq, 0)]
        for k in range(len(COUNTERS)):
            counter_bytes += [self.counts[k][:8], self.counts[k][8:]]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.frames.ready.eq(1)
                with m.If(self.frames.valid):
                    m.d.comb += crc_unit.init.eq(1)
                    m.d.sync += [entry.eq(self.frames.payload), index.eq(0)]
                    m.next = "OPEN"
            with m.State("OPEN"):
                m.d.comb += [o.valid.eq(1), o.payload.delimiter.eq(1)]
                with m.If(o.ready):
                    m.next = "SEQ"
            with m.State("SEQ"):
                emit(entry.seq, "STATUS")
            with m.State("STATUS"):
                is_run = entry.action == Action.RUN
                is_replay = entry.action == Action.REPLAY
                status = Mux(
                    is_replay,
                    Mux(replay_lost, LinkStatus.REPLAY_LOST, LinkStatus.REPLAY),
                    entry.status,
                )
                with m.If(is_run):
                    emit(status, "RUN")
                    with m.If(o.ready):
                        m.d.sync += [replay_len.eq(0), replay_lost.eq(0)]
                with m.Elif(is_replay & ~replay_lost & (replay_len != 0)):
                    emit(status, "REPLAY_READ")
                with m.Elif((entry.action == Action.COUNTERS) | (entry.action == Action.CLEAR)):
                    emit(status, "COUNTERS")
                with m.Else():
                    emit(status, "CREDITS_LO")
            with m.State("RUN"):
                m.d.comb += [
                    self.running.eq(1),
                    o.valid.eq(self.rsp.valid & free),
                    o.payload.byte.eq(self.rsp.payload),
                    sending.eq(self.rsp.valid),
                    self.rsp.ready.eq(o.ready & free),
                ]
                with m.If(self.rsp.valid & o.ready & free):
                    with m.If(replay_len == slot_bytes):
                        m.d.sync += replay_lost.eq(1)
                    with m.Else():
                        m.d.comb += replay_w.en.eq(1)
                        m.d.sync += replay_len.eq(replay_len + 1)
                with m.Elif(self.engine_done & ~self.rsp.valid):
                    m.next = "CREDITS_LO"
            with m.State("REPLAY_READ"):
                m.next = "REPLAY_LATCH"  # the byte at `index` is out of the memory next cycle
            with m.State("REPLAY_LATCH"):
                m.d.sync += replay_byte.eq(replay_r.data)
                m.next = "REPLAY"
            with m.State("REPLAY"):
                emit(replay_byte, "REPLAY_NEXT")
            with m.State("REPLAY_NEXT"):
                m.d.sync += index.eq(index + 1)
                with m.If(index + 1 == replay_len):
                    m.next = "CREDITS_LO"
                with m.Else():
                    m.next = "REPLAY_READ"
            with m.State("COUNTERS"):
                value = Signal(8)
                with m.Switch(index[: ceil_log2(len(counter_bytes))]):
                    for k, byte in enumerate(counter_bytes):
                        with m.Case(k):
                            m.d.comb += value.eq(byte)
                m.d.comb += [o.valid.eq(free), o.payload.byte.eq(value), sending.eq(1)]
                with m.If(o.ready & free):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == len(counter_bytes) - 1):
                        m.d.sync += self.clear.eq(entry.action == Action.CLEAR)
                        m.next = "CREDITS_LO"
            with m.State("CREDITS_LO"):
                emit(self.credits & 0xFF, "CREDITS_HI")
            with m.State("CREDITS_HI"):
                emit(self.credits >> 8, "CRC_HI")
            with m.State("CRC_HI"):
                with m.If(~crc_unit.busy):  # the credits' last byte is in
                    emit((crc ^ CRC_XOROUT)[8:], "CRC_LO", body=False)
            with m.State("CRC_LO"):
                emit((crc ^ CRC_XOROUT)[:8], "CLOSE", body=False)
            with m.State("CLOSE"):
                m.d.comb += [o.valid.eq(1), o.payload.delimiter.eq(1)]
                with m.If(o.ready):
                    m.next = "IDLE"
        return m
