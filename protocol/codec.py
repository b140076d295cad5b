"""The bytes of commands and responses: little-endian fields of the widths a :class:`.Layout`
gives, in the order of the command table (:mod:`.spec`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import Layout
from .spec import COMMANDS, Field, Opcode, Status, header_fields

__all__ = [
    "Response",
    "encode_command",
    "decode_command_fields",
    "encode_response",
    "decode_response",
    "decode_responses",
]


def _pack(values, width: int, signed: bool, name: str) -> bytes:
    """Little-endian two's-complement packing of ints (scalar or array) into ``width`` bytes."""
    low = -(1 << (8 * width - 1)) if signed else 0
    high = (1 << (8 * width - 1)) - 1 if signed else (1 << (8 * width)) - 1
    out = bytearray()
    for value in np.atleast_1d(np.asarray(values, dtype=object)).tolist():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            if not (isinstance(value, (float, np.floating)) and float(value).is_integer()):
                raise ValueError(f"{name} = {value!r} is not an integer")
        value = int(value)
        if not low <= value <= high:
            raise ValueError(
                f"{name} = {value} does not fit a {width}-byte {'signed' if signed else 'unsigned'}"
                f" field: must be in [{low}, {high}]"
            )
        out += value.to_bytes(width, "little", signed=signed)
    return bytes(out)


def _unpack(data, width: int, signed: bool, count: int) -> np.ndarray:
    """``count`` little-endian ints of ``width`` bytes from ``data`` as ``int64``."""
    raw = np.frombuffer(bytes(data), dtype=np.uint8, count=count * width).reshape(count, width)
    values = np.zeros(count, dtype=np.int64)
    for byte in range(width):
        values |= raw[:, byte].astype(np.int64) << (8 * byte)
    if signed and width < 8:
        sign = np.int64(1) << (8 * width - 1)
        values = (values ^ sign) - sign
    return values


def _encode_fields(layout: Layout, fields: tuple[Field, ...], values: dict) -> bytes:
    missing = [f.name for f in fields if f.name not in values]
    extra = sorted(set(values) - {f.name for f in fields})
    if missing or extra:
        raise ValueError(f"fields missing: {missing}, unexpected: {extra}")
    out = bytearray()
    for f in fields:
        value = values[f.name]
        count = layout.count(f)
        if np.ndim(value) != (0 if f.repeat == 1 else 1) or np.size(value) != count:
            raise ValueError(f"{f.name} needs {count} value(s), got shape {np.shape(value)}")
        out += _pack(value, layout.width(f.kind), Layout.signed(f.kind), f.name)
    return bytes(out)


def _decode_fields(layout: Layout, fields: tuple[Field, ...], data, offset: int = 0) -> dict:
    values = {}
    for f in fields:
        size = layout.size(f)
        decoded = _unpack(
            data[offset : offset + size],
            layout.width(f.kind),
            Layout.signed(f.kind),
            layout.count(f),
        )
        values[f.name] = int(decoded[0]) if f.repeat == 1 else decoded
        offset += size
    return values


def encode_command(layout: Layout, opcode: Opcode, **values) -> bytes:
    """The bytes of one command. For RUN_BATCH give ``count`` and ``x`` as a
    ``(count, rows)`` array: the header and every vector are encoded."""
    opcode = Opcode(opcode)
    spec = COMMANDS[opcode]
    if opcode is Opcode.RUN_BATCH:
        if "x" not in values:
            raise ValueError("fields missing: ['x'] (count vectors of rows codes)")
        vectors = np.asarray(values.pop("x"))
        header = _encode_fields(layout, spec.fields[:1], values)
        if vectors.ndim != 2 or vectors.shape[0] != values["count"]:
            raise ValueError(
                f"x must be (count, rows) = ({values['count']}, {layout.config.rows}), "
                f"not shape {vectors.shape}"
            )
        body = b"".join(_encode_fields(layout, spec.fields[1:], {"x": v}) for v in vectors)
        return bytes([opcode]) + header + body
    return bytes([opcode]) + _encode_fields(layout, spec.fields, values)


def decode_command_fields(layout: Layout, opcode: Opcode, data, offset: int = 0) -> dict:
    """The :func:`header_fields` of a command whose bytes (after the opcode) start at
    ``offset``."""
    return _decode_fields(layout, header_fields(opcode), data, offset)


def encode_response(layout: Layout, opcode: Opcode, status: Status = Status.OK, **values) -> bytes:
    """The bytes of one response: ``opcode, status`` and, for OK, the response fields."""
    status = Status(status)
    head = bytes([opcode, status])
    if status is not Status.OK:
        return head
    return head + _encode_fields(layout, COMMANDS[Opcode(opcode)].response, values)


@dataclass(frozen=True)
class Response:
    """A decoded response."""

    opcode: int
    status: Status
    fields: dict

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


def decode_response(layout: Layout, data, offset: int = 0) -> tuple[Response, int]:
    """Decode the response starting at ``data[offset]``; returns it and the next offset.

    Raises ValueError when the bytes are not a complete response.
    """
    if len(data) - offset < 2:
        raise ValueError(f"a response needs 2 bytes, only {len(data) - offset} left")
    opcode, status = data[offset], data[offset + 1]
    try:
        status = Status(status)
    except ValueError:
        raise ValueError(f"status byte {status:#04x} at offset {offset + 1} is unknown") from None
    if status is not Status.OK:
        return Response(opcode, status, {}), offset + 2
    try:
        spec = COMMANDS[Opcode(opcode)]
    except ValueError:
        raise ValueError(f"OK response for unknown opcode {opcode:#04x}") from None
    length = layout.response_length(spec.opcode)
    if len(data) - offset < length:
        raise ValueError(
            f"{spec.opcode.name} response needs {length} bytes, got {len(data) - offset}"
        )
    fields = _decode_fields(layout, spec.response, data, offset + 2)
    return Response(opcode, status, fields), offset + length


def decode_responses(layout: Layout, data) -> list[Response]:
    """Every response of a response stream that began at ``layout`` (the engine's layout
    when its first command ran), following the outputs' width through the ``SET_ADC``
    responses. Raises ValueError when the bytes do not end with a complete response."""
    responses, offset = [], 0
    while offset < len(data):
        response, offset = decode_response(layout, data, offset)
        layout = layout.after(response)
        responses.append(response)
    return responses
