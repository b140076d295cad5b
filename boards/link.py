"""The link layer of the board bridge in gateware: frames in, whole good frames to the
engine, response frames out (docs/link.md; constants in :mod:`molxbar.protocol.link`, the
same behaviour in Python in :mod:`molxbar.protocol.link_model`).

* :class:`LinkReceiver` -- SLIP-decodes the line bytes, checks escapes, length and CRC,
  writes a command frame's payload into the command buffer and commits it only when the
  frame is whole and good; every frame becomes one entry for the transmitter.
* :class:`BufferReader` -- hands the committed bytes of the frame being answered to the
  engine, one command beat each.
* :class:`LinkTransmitter` -- answers each entry with a response frame: the engine's
  responses for a frame that runs (kept in the replay buffer), the replay buffer for a
  repeated frame, the counters for a control frame, nothing for a refused one.
* :class:`SlipEncoder` -- escapes the response bytes and sends ``END`` for delimiters.
* :class:`LinkCounters` -- the saturating link counters.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from molxbar.hdl.construction import checking_arguments
from molxbar.protocol.link import (
    COUNTER_BITS,
    COUNTERS,
    CRC_BYTES,
    CRC_INIT,
    CRC_POLY,
    CRC_XOROUT,
    MIN_FRAME_BYTES,
    SLIP_END,
    SLIP_ESC,
    SLIP_ESC_END,
    SLIP_ESC_ESC,
    FrameKind,
    LinkStatus,
)

__all__ = [
    "COUNTERS_LAYOUT",
    "Action",
    "BufferReader",
    "LinkCounters",
    "LinkReceiver",
    "LinkTransmitter",
    "SlipEncoder",
    "TX_BYTE_LAYOUT",
    "check_buffer_bytes",
    "SerialCRC",
    "entry_layout",
]


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


class Action(enum.Enum, shape=3):
    """What the transmitter does for an entry."""

    RUN = 0  # OK: the engine's responses to the frame's commands
    REPLAY = 1  # REPLAY (or REPLAY_LOST): the replay buffer
    COUNTERS = 2  # OK: the counters
    CLEAR = 3  # OK: the counters, then cleared
    REFUSE = 4  # the status alone


def entry_layout(pointer_bits: int) -> data.StructLayout:
    """One received frame for the transmitter: its ``seq``, status, action, and for
    ``RUN`` the buffer pointer just past its payload."""
    return data.StructLayout(
        {"seq": 8, "status": 8, "action": Action, "end": unsigned(pointer_bits)}
    )


#: The counters, in :data:`~molxbar.protocol.link.COUNTERS` order.
COUNTERS_LAYOUT = data.ArrayLayout(unsigned(COUNTER_BITS), len(COUNTERS))

#: A byte for the SLIP encoder: a body byte, or (``delimiter``) an ``END``.
TX_BYTE_LAYOUT = data.StructLayout({"byte": 8, "delimiter": 1})


def check_buffer_bytes(name: str, value: int) -> None:
    """Raise ``ValueError`` unless ``value`` (named ``name``) is a usable buffer size."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 8 or value & (value - 1):
        raise ValueError(f"{name} = {value!r} must be a power of two >= 8")


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
        The ``seq`` of the last command frame run, and whether one has run.
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
                "last_seq": Out(8),
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
            with m.If(self.ran & (seq == self.last_seq)):
                m.d.comb += [status.eq(LinkStatus.REPLAY), action.eq(Action.REPLAY)]
            with m.Else():
                m.d.comb += [status.eq(LinkStatus.OK), action.eq(Action.RUN), commit.eq(1)]
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
                ]
        reset_frame(Mux(commit & ~self.frames.valid, payload_end, self.committed))


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


class LinkTransmitter(wiring.Component):
    """Entries in, response frames out (as :data:`TX_BYTE_LAYOUT` for the
    :class:`SlipEncoder`).

    For a ``RUN`` entry it raises ``running`` with ``end`` the frame's payload end, passes
    the engine's response bytes on (and into the replay buffer), and closes the frame when
    ``engine_done``: the engine has taken every byte of the frame and has nothing left to
    say. The credits are sent as they are when the frame closes.

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
    credits : ``In(16)``
        Payload bytes the next frame may carry.
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
        self.pointer_bits = exact_log2(buffer_bytes) + 1
        super().__init__(
            {
                "frames": In(stream.Signature(entry_layout(self.pointer_bits))),
                "rsp": In(stream.Signature(8)),
                "running": Out(1),
                "end": Out(self.pointer_bits),
                "engine_done": In(1),
                "credits": In(16),
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
        m.submodules.replay = replay = Memory(shape=8, depth=replay_bytes, init=[])
        replay_w = replay.write_port()
        replay_r = replay.read_port()

        entry = Signal(entry_layout(self.pointer_bits))
        m.submodules.crc = crc_unit = SerialCRC()
        crc = crc_unit.crc
        m.d.sync += self.clear.eq(0)
        replay_len = Signal(range(replay_bytes + 1))
        replay_lost = Signal()
        replay_byte = Signal(8)  # the memory's output, registered before the CRC
        index = Signal(range(max(replay_bytes, 2 * len(COUNTERS) + 2) + 1))

        o = self.o
        sending = Signal()  # a body byte goes out this cycle (CRC it)
        m.d.comb += [
            self.end.eq(entry.end),
            replay_r.addr.eq(index[: ceil_log2(replay_bytes)]),
            replay_r.en.eq(1),
            replay_w.addr.eq(replay_len[: ceil_log2(replay_bytes)]),
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
                    with m.If(replay_len == replay_bytes):
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
                # The credits do not move while the engine is idle and no frame runs.
                emit(self.credits[:8], "CREDITS_HI")
            with m.State("CREDITS_HI"):
                emit(self.credits[8:], "CRC_HI")
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
