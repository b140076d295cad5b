"""Frames of the serial link (constants in :mod:`.link`, the design in docs/link.md): the CRC,
SLIP, the command and response frames, and an incremental decoder that reports bad frames
instead of raising.

The board's link gateware (:mod:`molxbar.boards.link`) does byte for byte what
:class:`FrameDecoder` and :func:`response_frame` do; the host-level model
(:mod:`.link_model`) and :class:`~molxbar.host.transports.SerialTransport` use them as they
are.
"""

from __future__ import annotations

from dataclasses import dataclass

from .link import (
    COUNTER_BITS,
    COUNTERS,
    CRC_BYTES,
    CRC_INIT,
    CRC_POLY,
    CRC_XOROUT,
    CREDIT_BYTES,
    FRAME_HEADER_BYTES,
    MIN_FRAME_BYTES,
    SLIP_END,
    SLIP_ESC,
    SLIP_ESC_END,
    SLIP_ESC_ESC,
    FrameKind,
    LinkStatus,
)

__all__ = [
    "COUNTERS_PAYLOAD_BYTES",
    "MIN_RESPONSE_BYTES",
    "BadFrame",
    "Counters",
    "FrameDecoder",
    "Response",
    "command_frame",
    "counters_payload",
    "crc16",
    "crc16_update",
    "frame_overhead",
    "parse_response",
    "response_frame",
    "slip_encode",
]

#: The shortest response frame body: header, credits and CRC.
MIN_RESPONSE_BYTES = FRAME_HEADER_BYTES + CREDIT_BYTES + CRC_BYTES
#: A counters response's payload: flags, the last command frame's ``seq``, the counters.
COUNTERS_PAYLOAD_BYTES = 2 + len(COUNTERS) * COUNTER_BITS // 8


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16_update(crc: int, byte: int) -> int:
    """The CRC register after one more byte (before the final XOR)."""
    return ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]


def crc16(data: bytes) -> int:
    """The link's CRC of ``data``, final XOR included (``crc16(b"123456789") == 0xD64E``,
    CRC-16/GENIBUS)."""
    crc = CRC_INIT
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc ^ CRC_XOROUT


def _with_crc(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(CRC_BYTES, "big")


def slip_encode(body: bytes) -> bytes:
    """``END``, the body with ``END`` and ``ESC`` escaped, ``END``."""
    escaped = (
        bytes(body)
        .replace(bytes([SLIP_ESC]), bytes([SLIP_ESC, SLIP_ESC_ESC]))
        .replace(bytes([SLIP_END]), bytes([SLIP_ESC, SLIP_ESC_END]))
    )
    return bytes([SLIP_END]) + escaped + bytes([SLIP_END])


def command_frame(seq: int, payload: bytes = b"", kind: FrameKind = FrameKind.COMMANDS) -> bytes:
    """A command frame as sent on the line."""
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"seq = {seq!r} must be 0 .. 255")
    return slip_encode(_with_crc(bytes([seq, kind]) + bytes(payload)))


def response_frame(seq: int, status: LinkStatus, credits: int, payload: bytes = b"") -> bytes:
    """A response frame as sent on the line."""
    body = bytes([seq, status]) + bytes(payload) + credits.to_bytes(CREDIT_BYTES, "little")
    return slip_encode(_with_crc(body))


def frame_overhead(payload: bytes) -> int:
    """Bytes a command frame adds on the line to ``payload``: delimiters, header, CRC and
    escapes."""
    return len(command_frame(0, payload)) - len(payload)


@dataclass(frozen=True)
class BadFrame:
    """A frame the decoder dropped: why (``BAD_ESCAPE``, ``OVERFLOW``, ``BAD_LENGTH`` or
    ``BAD_CRC``, the first that applies in that order) and its first bytes as decoded."""

    status: LinkStatus
    body: bytes

    @property
    def seq(self) -> int:
        """The frame's first byte (its ``seq``, if that byte is right)."""
        return self.body[0] if self.body else 0


class FrameDecoder:
    """SLIP frames out of a byte stream, checked for escapes, length and CRC.

    Parameters
    ----------
    min_body
        The shortest good body, CRC included.
    max_body
        The longest good body, CRC included; longer frames are ``OVERFLOW`` (only their
        first ``max_body`` bytes are kept).

    ``feed`` returns, in order, the body of each good frame (``bytes``, CRC included) and a
    :class:`BadFrame` for each bad one. An ``END`` with nothing before it is no frame.
    """

    def __init__(self, *, min_body: int = MIN_FRAME_BYTES, max_body: int | None = None) -> None:
        self.min_body = min_body
        self.max_body = max_body
        self._body = bytearray()
        self._length = 0  # decoded bytes, those beyond max_body included
        self._escape = False
        self._bad_escape = False
        self._crc = CRC_INIT  # over the body up to its last two bytes
        self._tail = 0  # the last two bytes, big-endian: the CRC once the frame ends

    @property
    def partial(self) -> bool:
        """Bytes of a frame have come and its ``END`` not yet."""
        return self._length > 0 or self._escape or self._bad_escape

    def timeout(self) -> bool:
        """Drop a partial frame (the line was idle too long); ``True`` if there was one."""
        dropped = self.partial
        self._reset()
        return dropped

    def _reset(self) -> None:
        self._body = bytearray()
        self._length = 0
        self._escape = self._bad_escape = False
        self._crc = CRC_INIT
        self._tail = 0

    def feed(self, data: bytes) -> list[bytes | BadFrame]:
        frames: list[bytes | BadFrame] = []
        for byte in bytes(data):
            if byte == SLIP_END:
                if self.partial:
                    frames.append(self._finish())
                continue
            if self._escape:
                self._escape = False
                if byte == SLIP_ESC_END:
                    byte = SLIP_END
                elif byte == SLIP_ESC_ESC:
                    byte = SLIP_ESC
                else:
                    self._bad_escape = True
                    continue
            elif byte == SLIP_ESC:
                self._escape = True
                continue
            if self._length >= CRC_BYTES:
                self._crc = crc16_update(self._crc, self._tail >> 8)
            self._tail = (self._tail << 8 | byte) & 0xFFFF
            self._length += 1
            if self.max_body is None or len(self._body) < self.max_body:
                self._body.append(byte)
        return frames

    def _finish(self) -> bytes | BadFrame:
        body, length = bytes(self._body), self._length
        bad_escape = self._bad_escape or self._escape
        good_crc = self._crc ^ CRC_XOROUT == self._tail
        self._reset()
        if bad_escape:
            return BadFrame(LinkStatus.BAD_ESCAPE, body)
        if self.max_body is not None and length > self.max_body:
            return BadFrame(LinkStatus.OVERFLOW, body)
        if length < self.min_body:
            return BadFrame(LinkStatus.BAD_LENGTH, body)
        if not good_crc:
            return BadFrame(LinkStatus.BAD_CRC, body)
        return body


@dataclass(frozen=True)
class Response:
    """A good response frame: its ``seq``, status, payload and the board's credits (free
    command-buffer bytes for the next frame's payload)."""

    seq: int
    status: LinkStatus | int
    payload: bytes
    credits: int


def parse_response(body: bytes) -> Response:
    """The fields of a good response body (CRC included, as :class:`FrameDecoder` gives)."""
    if len(body) < MIN_RESPONSE_BYTES:
        raise ValueError(f"a response body of {len(body)} bytes: at least {MIN_RESPONSE_BYTES}")
    end = len(body) - CRC_BYTES
    status = body[1]
    return Response(
        seq=body[0],
        status=LinkStatus(status) if status in LinkStatus._value2member_map_ else status,
        payload=bytes(body[FRAME_HEADER_BYTES : end - CREDIT_BYTES]),
        credits=int.from_bytes(body[end - CREDIT_BYTES : end], "little"),
    )


@dataclass(frozen=True)
class Counters:
    """The board's link counters (:class:`~.link.LinkCounter`), and the ``seq`` of the last
    command frame it ran (``None`` before the first)."""

    last_seq: int | None
    frame_error: int = 0
    overrun: int = 0
    bad_crc: int = 0
    bad_frame: int = 0
    timeout: int = 0

    @classmethod
    def from_payload(cls, payload: bytes) -> Counters:
        if len(payload) != COUNTERS_PAYLOAD_BYTES:
            raise ValueError(
                f"a counters payload of {len(payload)} bytes: {COUNTERS_PAYLOAD_BYTES} expected"
            )
        values = [int.from_bytes(payload[2 + 2 * k : 4 + 2 * k], "little") for k in COUNTERS]
        return cls(payload[1] if payload[0] & 1 else None, *values)

    @property
    def values(self) -> tuple[int, ...]:
        """The counters, in :data:`~.link.COUNTERS` order."""
        return (self.frame_error, self.overrun, self.bad_crc, self.bad_frame, self.timeout)


def counters_payload(last_seq: int | None, values: tuple[int, ...]) -> bytes:
    """A counters response's payload: flags (bit 0: a command frame has run), the last
    command frame's ``seq`` (0 before), each counter u16 little-endian."""
    head = bytes([0, 0]) if last_seq is None else bytes([1, last_seq])
    return head + b"".join(v.to_bytes(COUNTER_BITS // 8, "little") for v in values)
