"""The boards' serial link, as both ends know it: the link gateware of the board bridge
(:mod:`molxbar.boards.link`), the host's :class:`~molxbar.host.transports.SerialTransport`
and the host-level model (:mod:`.link_model`) take every constant of the link from here.

The link carries the engine's commands in *frames* (docs/link.md):

* SLIP delimiting: every frame is sent ``END body END``; inside the body ``END`` is sent as
  ``ESC ESC_END`` and ``ESC`` as ``ESC ESC_ESC``, so ``END`` marks frame boundaries only.
* A command frame's body is ``seq, kind, payload..., crc_hi, crc_lo``; its payload (kind
  :attr:`FrameKind.COMMANDS`) is whole engine commands.
* A response frame's body is ``seq, status, payload..., credits (u16), crc_hi, crc_lo``;
  its payload is the engine's responses to the frame's commands.
* The CRC is CRC-16/CCITT with a final XOR, the catalogue's CRC-16/GENIBUS (polynomial
  0x1021, initial value 0xFFFF, no reflection, final XOR 0xFFFF), over the body before it,
  most significant byte first. Without the final XOR a good body followed by two zero
  bytes would be a good body again (its CRC register is 0 after its own CRC), and a
  dropped or inserted zero at a frame's end could pass.
"""

from __future__ import annotations

import enum

__all__ = [
    "BOARD_BAUD",
    "BOARD_BAUDS",
    "COMMAND_BUFFER_BYTES",
    "COMMAND_FRAMING_BYTES",
    "RESPONSE_FRAMING_BYTES",
    "COUNTERS",
    "COUNTER_BITS",
    "CRC_BYTES",
    "CRC_INIT",
    "CRC_POLY",
    "CRC_XOROUT",
    "CREDIT_BYTES",
    "FRAME_HEADER_BYTES",
    "IDLE_TIMEOUT_BYTES",
    "LINK_STATUS_TEXT",
    "MIN_FRAME_BYTES",
    "REPLAY_BUFFER_BYTES",
    "REPLAY_SLOT_BYTES",
    "FRAMES_IN_FLIGHT",
    "SLIP_END",
    "SLIP_ESC",
    "SLIP_ESC_END",
    "SLIP_ESC_ESC",
    "FrameKind",
    "LinkCounter",
    "LinkStatus",
    "max_payload",
    "replay_slot",
]

#: Bit rates each board's USB-serial chip makes exactly, fastest first: the iCEBreaker's
#: FT2232H 12 MHz / n, the ULX3S's FT231X 3 MHz / n. A build's UART takes the fastest that
#: is a whole number of at least four UART cycles per bit (``molxbar build``; ``--baud``
#: overrides it): 12 Mbaud from the iCEBreaker's 48 MHz UART clock (its engine at 24 MHz),
#: 3 Mbaud at the ULX3S's 75 MHz.
BOARD_BAUDS = {
    "icebreaker": tuple(12_000_000 // n for n in (1, 2, 3, 4, 6, 8, 12)),
    "ulx3s-85f": tuple(3_000_000 // n for n in (1, 2, 3)),
}
#: A rate both chips make: the serial transport's line rate for its deadlines when its port
#: names none.
BOARD_BAUD = 1_000_000

#: Command buffer of the board's link receiver, bytes (two iCE40 block RAMs, 512 x 8 each).
#: It holds the payload and CRC of the frames received and not yet taken by the engine: two
#: frames in flight of up to half of it each, or one of up to all of it.
COMMAND_BUFFER_BYTES = 1024

#: Replay buffer of the board's link transmitter, bytes (two iCE40 block RAMs), in
#: :data:`FRAMES_IN_FLIGHT` slots: the engine's responses to each of the last command frames
#: run, the frame whose ``seq`` is even in the first slot, odd in the second, sent again when
#: that frame comes again. A command frame's responses must fit a slot.
REPLAY_BUFFER_BYTES = 1024

#: Command frames a host may have sent and not yet seen answered: the board answers the last
#: this many frames it ran again, and runs a frame only after the one before it.
FRAMES_IN_FLIGHT = 2


#: A partial frame is dropped after this many byte times without a byte (at the boards'
#: rate: 2 ms). The next frame's leading ``END`` drops it too; the timeout only keeps a
#: stalled frame from being answered as a bad one.
IDLE_TIMEOUT_BYTES = 200

#: SLIP: the frame delimiter, the escape, and what follows the escape for each.
SLIP_END = 0xC0
SLIP_ESC = 0xDB
SLIP_ESC_END = 0xDC
SLIP_ESC_ESC = 0xDD

#: CRC-16/CCITT.
CRC_POLY = 0x1021
CRC_INIT = 0xFFFF
CRC_XOROUT = 0xFFFF
CRC_BYTES = 2
#: A frame's first bytes: command frames ``seq, kind``; response frames ``seq, status``.
FRAME_HEADER_BYTES = 2
#: The credits at the end of every response frame, u16 little-endian: the payload bytes the
#: command buffer takes once this answer is out, before any frame sent after this one.
CREDIT_BYTES = 2
#: The shortest command frame body: header and CRC.
MIN_FRAME_BYTES = FRAME_HEADER_BYTES + CRC_BYTES
#: Line bytes a frame adds to its payload, escapes aside: the two ``END``, the header and the
#: CRC, and in a response frame the credits too.
COMMAND_FRAMING_BYTES = 2 + MIN_FRAME_BYTES
RESPONSE_FRAMING_BYTES = COMMAND_FRAMING_BYTES + CREDIT_BYTES
#: Width of each link counter; a counter stops at its largest value.
COUNTER_BITS = 16


def max_payload(buffer_bytes: int = COMMAND_BUFFER_BYTES) -> int:
    """The most command bytes one frame carries: the buffer also holds the frame's CRC."""
    return buffer_bytes - CRC_BYTES


def replay_slot(replay_bytes: int = REPLAY_BUFFER_BYTES) -> int:
    """The most response bytes one command frame keeps for a replay: a slot of the replay
    buffer, one for each of :data:`FRAMES_IN_FLIGHT`."""
    return replay_bytes // FRAMES_IN_FLIGHT


#: The responses of one command frame, at most, with the boards' replay buffer.
REPLAY_SLOT_BYTES = replay_slot()


class FrameKind(enum.IntEnum):
    """The second byte of a command frame."""

    #: The payload is engine commands, run once and in order: the frame after the last one
    #: run, by ``seq`` (``seq`` 0 after a reset), runs; one repeating either of the last two
    #: run is answered from the replay buffer and not run again; any other is refused
    #: (``OUT_OF_ORDER``).
    COMMANDS = 0
    #: Answer the counters (:class:`LinkCounter`); the payload must be empty.
    READ_COUNTERS = 1
    #: Answer the counters, then set them to 0; the payload must be empty.
    CLEAR_COUNTERS = 2


class LinkStatus(enum.IntEnum):
    """The second byte of a response frame. Only ``OK`` and ``REPLAY`` carry a payload."""

    OK = 0x00
    REPLAY = 0x01
    BAD_CRC = 0x10
    BAD_LENGTH = 0x11
    BAD_ESCAPE = 0x12
    OVERFLOW = 0x13
    BAD_KIND = 0x14
    REPLAY_LOST = 0x15
    OUT_OF_ORDER = 0x16


#: What each status means.
LINK_STATUS_TEXT = {
    LinkStatus.OK: "the frame was run; its responses follow",
    LinkStatus.REPLAY: "the frame repeats one of the last two run: its responses again, not run "
    "twice",
    LinkStatus.BAD_CRC: "the frame's CRC does not match: dropped",
    LinkStatus.BAD_LENGTH: f"the frame is shorter than {MIN_FRAME_BYTES} bytes: dropped",
    LinkStatus.BAD_ESCAPE: "an escape byte was not followed by ESC_END or ESC_ESC: dropped",
    LinkStatus.OVERFLOW: "the frame does not fit the free command buffer: dropped",
    LinkStatus.BAD_KIND: "the frame's kind is unknown, or a control frame has a payload: dropped",
    LinkStatus.REPLAY_LOST: "the frame repeats one of the last two run, whose responses "
    "overflowed its replay slot: not run again, and its responses are lost",
    LinkStatus.OUT_OF_ORDER: "the frame is neither the one after the last one run nor one of "
    "the last two run: dropped",
}


class LinkCounter(enum.IntEnum):
    """The link counters, in the order a counters response carries them (u16 each)."""

    #: UART frames with a low stop bit (the byte was dropped).
    FRAME_ERROR = 0
    #: UART bytes lost because the receiver's holding register was still full.
    OVERRUN = 1
    #: Frames answered ``BAD_CRC``.
    BAD_CRC = 2
    #: Frames answered ``BAD_LENGTH``, ``BAD_ESCAPE``, ``OVERFLOW``, ``BAD_KIND`` or
    #: ``OUT_OF_ORDER``.
    BAD_FRAME = 3
    #: Partial frames dropped by the idle timeout.
    TIMEOUT = 4


#: The counters, in order.
COUNTERS = tuple(LinkCounter)
