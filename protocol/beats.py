"""Beats: how the engine's command and response streams carry the protocol's bytes.

The engine moves ``stream_bytes`` (``B``) bytes per clock on each stream. One transfer, a
*beat*, is a ``8*B + count_bits(B)``-bit payload:

* bits ``[8*B-1 : 0]``, ``data``: byte ``k`` of the beat in bits ``8k .. 8k+7``; byte 0 comes
  first in the protocol's byte stream;
* the bits above, ``count``: how many of the ``B`` bytes are valid (``1 .. B``; the valid
  ones are bytes ``0 .. count-1``). A beat with ``count = 0`` carries nothing; the engine
  reads a count above ``B`` as ``B``.

Commands may start and end anywhere in a beat; the bytes are the protocol's byte stream,
unchanged. With ``B = 1`` a beat is one byte and ``count`` (one bit) is 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = [
    "MAX_STREAM_BYTES",
    "count_bits",
    "beat_bits",
    "pack_beats",
    "unpack_beat",
    "unpack_beats",
]

#: The widest stream the gateware offers, in bytes per beat.
MAX_STREAM_BYTES = 16


def _check_stream_bytes(stream_bytes: int) -> None:
    if (
        isinstance(stream_bytes, bool)
        or not isinstance(stream_bytes, int)
        or not 1 <= stream_bytes <= MAX_STREAM_BYTES
    ):
        raise ValueError(
            f"stream_bytes = {stream_bytes!r} must be an int in [1, {MAX_STREAM_BYTES}]"
        )


def count_bits(stream_bytes: int) -> int:
    """Width of a beat's ``count`` field."""
    _check_stream_bytes(stream_bytes)
    return stream_bytes.bit_length()


def beat_bits(stream_bytes: int) -> int:
    """Width of a whole beat payload."""
    return 8 * stream_bytes + count_bits(stream_bytes)


def pack_beats(data: bytes, stream_bytes: int) -> Iterator[int]:
    """The beats (payload integers) that carry ``data``: full beats, then one partial beat."""
    _check_stream_bytes(stream_bytes)
    data = bytes(data)
    shift = 8 * stream_bytes
    for start in range(0, len(data), stream_bytes):
        chunk = data[start : start + stream_bytes]
        yield int.from_bytes(chunk, "little") | (len(chunk) << shift)


def unpack_beat(payload: int, stream_bytes: int) -> bytes:
    """The valid bytes of one beat payload."""
    _check_stream_bytes(stream_bytes)
    shift = 8 * stream_bytes
    count = payload >> shift
    if count > stream_bytes:
        raise ValueError(f"beat count = {count} exceeds stream_bytes = {stream_bytes}")
    return (payload & ((1 << shift) - 1)).to_bytes(stream_bytes, "little")[:count]


def unpack_beats(payloads: Iterable[int], stream_bytes: int) -> bytes:
    """The byte stream a sequence of beats carries."""
    return b"".join(unpack_beat(p, stream_bytes) for p in payloads)
