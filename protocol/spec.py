"""The molxbar command protocol: the one definition of opcodes, fields, widths and errors.

The host sends a byte stream of commands; the engine answers every command (and every vector
of a batch) with one response. All multi-byte fields are little-endian; field widths follow
from the :class:`~molxbar.emulator.config.CrossbarConfig` through :class:`Layout`.

A command is its opcode byte followed by its fields. A response is the opcode byte, a status
byte and, when the status is ``OK``, the response fields. An unknown opcode is answered with
``(opcode, UNKNOWN_OPCODE)`` and only that one byte is consumed. A command with a field out
of range is consumed whole and answered with ``(opcode, status)``; it changes nothing.

The gateware, the golden engine and the host drivers all read this module; the C header for
embedded hosts and ``docs/protocol.md`` are generated from it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

import numpy as np

from molxbar.emulator.config import (
    MAX_ADC_BITS,
    MAX_SHIFT,
    SIGMA_SCALE_BITS,
    SIGMA_SEGMENTS,
    CrossbarConfig,
)

__all__ = [
    "PROTOCOL_VERSION",
    "Opcode",
    "Status",
    "FieldKind",
    "Field",
    "CommandSpec",
    "COMMANDS",
    "Layout",
    "RECT_IDEAL",
    "NOISE_READ",
    "NOISE_WRITE",
    "TABLE_READ",
    "TABLE_WRITE",
    "HARDWARE_NOISE",
    "HARDWARE_LEAKAGE",
    "hardware_flags",
    "MAX_SHIFT",
    "STATUS_TEXT",
    "Response",
    "encode_command",
    "decode_command_fields",
    "header_fields",
    "encode_response",
    "decode_response",
    "decode_responses",
    "MAX_BATCH",
    "output_width",
]

#: Version 3: a VMM output takes only the bytes the ADC width register needs
#: (:meth:`Layout.output_width`). Version 2: STATUS reports the output width and the hardware.
PROTOCOL_VERSION = 3
#: ``SET_RECT`` value for ideal unidirectional cells (no reverse leakage).
RECT_IDEAL = 0xFF
#: ``SET_NOISE`` flag bits.
NOISE_READ = 0x01
NOISE_WRITE = 0x02
#: ``SET_SIGMA`` table selectors.
TABLE_READ = 0
TABLE_WRITE = 1
#: ``STATUS`` hardware flag bits: the engine has noise hardware (SET_NOISE accepts flags), and
#: leakage shifters (SET_RECT accepts shifts).
HARDWARE_NOISE = 0x01
HARDWARE_LEAKAGE = 0x02


def hardware_flags(config: CrossbarConfig) -> int:
    """The ``STATUS`` hardware flags of an engine built for ``config``."""
    return (HARDWARE_NOISE * config.noise_hardware) | (HARDWARE_LEAKAGE * config.leakage_hardware)
#: Vectors per RUN_BATCH command (its count field is 16 bits).
MAX_BATCH = 0xFFFF


class Opcode(enum.IntEnum):
    """Command opcodes (one byte)."""

    SYNC = 0x01
    STATUS = 0x02
    WRITE_CELL = 0x10
    WRITE_ROW = 0x11
    PULSE_CELL = 0x12
    UPDATE_RANK1 = 0x13
    READ_CELL = 0x14
    READ_ROW = 0x15
    LOAD_INPUT = 0x20
    RUN_VMM = 0x21
    RUN_BATCH = 0x22
    SET_ADC = 0x30
    SET_RECT = 0x31
    SET_UPDATE_SHIFT = 0x32
    SET_NOISE = 0x33
    SET_SIGMA = 0x34
    SEED = 0x35


class Status(enum.IntEnum):
    """Response status codes (one byte)."""

    OK = 0x00
    UNKNOWN_OPCODE = 0x01
    BAD_ROW = 0x02
    BAD_COL = 0x03
    BAD_LEVEL = 0x04
    BAD_COUNT = 0x05
    BAD_INPUT = 0x06
    BAD_SHIFT = 0x07
    BAD_VALUE = 0x08


STATUS_TEXT = {
    Status.OK: "success",
    Status.UNKNOWN_OPCODE: "the opcode is not a command",
    Status.BAD_ROW: "row index out of range",
    Status.BAD_COL: "column index out of range",
    Status.BAD_LEVEL: "level code out of range",
    Status.BAD_COUNT: "pulse or batch count out of range",
    Status.BAD_INPUT: "input code out of range",
    Status.BAD_SHIFT: "shift out of range",
    Status.BAD_VALUE: "register value out of range",
}


class FieldKind(enum.Enum):
    """How a field is encoded; its width comes from :class:`Layout`."""

    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    ROW = "row index (u16)"
    COL = "column index (u16)"
    LEVEL = "level code (unsigned)"
    PULSES = "pulse count (signed)"
    INPUT = "input code (signed)"
    OUTPUT = "output (signed)"
    SIGMA = "noise amplitude (u16)"


@dataclass(frozen=True)
class Field:
    """One field: ``repeat`` is 1, ``"rows"``, ``"cols"`` or ``"segments"``."""

    name: str
    kind: FieldKind
    doc: str
    repeat: int | str = 1


@dataclass(frozen=True)
class CommandSpec:
    """A command's fields, response fields, the statuses it can return, and its meaning."""

    opcode: Opcode
    fields: tuple[Field, ...]
    response: tuple[Field, ...]
    errors: tuple[Status, ...]
    doc: str


_F = Field
_K = FieldKind

COMMANDS: dict[Opcode, CommandSpec] = {
    spec.opcode: spec
    for spec in (
        CommandSpec(
            Opcode.SYNC,
            (_F("value", _K.U8, "any byte"),),
            (_F("value", _K.U8, "the same byte"),),
            (),
            "Echo a byte: finds the command boundary and checks the link.",
        ),
        CommandSpec(
            Opcode.STATUS,
            (),
            (
                _F("version", _K.U8, f"protocol version ({PROTOCOL_VERSION})"),
                _F("rows", _K.U16, "array rows"),
                _F("cols", _K.U16, "array columns"),
                _F("lanes", _K.U16, "MAC lanes"),
                _F("g_bits", _K.U8, "level code width"),
                _F("x_bits", _K.U8, "input code width"),
                _F("levels", _K.U32, "number of levels"),
                _F("adc_bits", _K.U8, "ADC width register (0: full precision)"),
                _F("adc_shift", _K.U8, "ADC shift register"),
                _F("rect_shift", _K.U8, f"rectification register ({RECT_IDEAL:#x}: ideal)"),
                _F("update_shift", _K.U8, "rank-1 update shift register"),
                _F("noise", _K.U8, "noise flags (bit 0 read, bit 1 write)"),
                _F("seed", _K.U32, "noise seed"),
                _F("counter", _K.U32, "noise operation counter"),
                _F("output_bytes", _K.U8, "bytes of each VMM output: ceil(acc_fine_bits/8)"),
                _F(
                    "hardware",
                    _K.U8,
                    f"hardware present: bit 0 noise ({HARDWARE_NOISE:#04x}), bit 1 leakage "
                    f"({HARDWARE_LEAKAGE:#04x})",
                ),
            ),
            (),
            "Report the configuration and the registers.",
        ),
        CommandSpec(
            Opcode.WRITE_CELL,
            (
                _F("row", _K.ROW, "row"),
                _F("col", _K.COL, "column"),
                _F("level", _K.LEVEL, "level, 0 .. levels-1"),
            ),
            (),
            (Status.BAD_ROW, Status.BAD_COL, Status.BAD_LEVEL),
            "Direct write of one cell (plus the write error when write noise is on).",
        ),
        CommandSpec(
            Opcode.WRITE_ROW,
            (_F("row", _K.ROW, "row"), _F("levels", _K.LEVEL, "one level per column", "cols")),
            (),
            (Status.BAD_ROW, Status.BAD_LEVEL),
            "Direct write of a whole row in one operation; nothing is written if any level "
            "is out of range.",
        ),
        CommandSpec(
            Opcode.PULSE_CELL,
            (
                _F("row", _K.ROW, "row"),
                _F("col", _K.COL, "column"),
                _F("count", _K.PULSES, "pulses: > 0 potentiate, < 0 depress"),
            ),
            (),
            (Status.BAD_ROW, Status.BAD_COL, Status.BAD_COUNT),
            "Move one cell by `count` levels, saturating at 0 and levels-1.",
        ),
        CommandSpec(
            Opcode.UPDATE_RANK1,
            (_F("a", _K.INPUT, "row factors", "rows"), _F("b", _K.INPUT, "column factors", "cols")),
            (),
            (Status.BAD_INPUT,),
            "Rank-1 pulse update: g_ij += round(a_i*b_j / 2**update_shift), saturating.",
        ),
        CommandSpec(
            Opcode.READ_CELL,
            (_F("row", _K.ROW, "row"), _F("col", _K.COL, "column")),
            (_F("level", _K.LEVEL, "stored level"),),
            (Status.BAD_ROW, Status.BAD_COL),
            "Read one cell's level.",
        ),
        CommandSpec(
            Opcode.READ_ROW,
            (_F("row", _K.ROW, "row"),),
            (_F("levels", _K.LEVEL, "stored levels", "cols"),),
            (Status.BAD_ROW,),
            "Read a whole row.",
        ),
        CommandSpec(
            Opcode.LOAD_INPUT,
            (_F("x", _K.INPUT, "input codes", "rows"),),
            (),
            (Status.BAD_INPUT,),
            "Load the input vector used by RUN_VMM (kept if any code is out of range).",
        ),
        CommandSpec(
            Opcode.RUN_VMM,
            (),
            (_F("y", _K.OUTPUT, "ADC outputs, `output_width` bytes each", "cols"),),
            (),
            "One VMM of the loaded input vector.",
        ),
        CommandSpec(
            Opcode.RUN_BATCH,
            (
                _F("count", _K.U16, "vectors that follow, 1 .. 65535"),
                _F("x", _K.INPUT, "input codes of each vector, `count` times", "rows"),
            ),
            (_F("y", _K.OUTPUT, "ADC outputs of each vector, `output_width` bytes each", "cols"),),
            (Status.BAD_COUNT, Status.BAD_INPUT),
            "A batch of VMMs. Each vector gets its own response (OK with its outputs, or "
            "BAD_INPUT); count 0 is answered BAD_COUNT once and no vectors follow.",
        ),
        CommandSpec(
            Opcode.SET_ADC,
            (
                _F("bits", _K.U8, f"output width 2 .. {MAX_ADC_BITS}, or 0 for full precision"),
                _F("shift", _K.U8, f"right shift 0 .. {MAX_SHIFT}"),
            ),
            (_F("width", _K.U8, "`output_width`: bytes of each VMM output from now on"),),
            (Status.BAD_VALUE, Status.BAD_SHIFT),
            "Set the ADC registers, and with them the bytes of each VMM output.",
        ),
        CommandSpec(
            Opcode.SET_RECT,
            (_F("shift", _K.U8, f"leakage shift 0 .. {MAX_SHIFT}, or {RECT_IDEAL:#x} for ideal"),),
            (),
            (Status.BAD_SHIFT,),
            "Set the rectification of negative inputs.",
        ),
        CommandSpec(
            Opcode.SET_UPDATE_SHIFT,
            (_F("shift", _K.U8, f"0 .. {MAX_SHIFT}"),),
            (),
            (Status.BAD_SHIFT,),
            "Set the shift of rank-1 updates.",
        ),
        CommandSpec(
            Opcode.SET_NOISE,
            (_F("flags", _K.U8, "bit 0: read noise, bit 1: write error; other bits 0"),),
            (),
            (Status.BAD_VALUE,),
            "Switch the noise on or off.",
        ),
        CommandSpec(
            Opcode.SET_SIGMA,
            (
                _F("table", _K.U8, f"{TABLE_READ}: read noise, {TABLE_WRITE}: write error"),
                _F("scale", _K.SIGMA, f"amplitude 0 .. {(1 << SIGMA_SCALE_BITS) - 1}", "segments"),
            ),
            (),
            (Status.BAD_VALUE,),
            f"Set a noise amplitude table ({SIGMA_SEGMENTS} segments of the level range).",
        ),
        CommandSpec(
            Opcode.SEED,
            (_F("seed", _K.U32, "noise seed"),),
            (),
            (),
            "Set the noise seed and restart the operation counter at 0.",
        ),
    )
}


def header_fields(opcode: Opcode) -> tuple[Field, ...]:
    """The fields of a command that precede its action: all of them, except for RUN_BATCH,
    whose vectors follow its ``count`` one by one."""
    fields = COMMANDS[Opcode(opcode)].fields
    return fields[:1] if opcode == Opcode.RUN_BATCH else fields


def _bytes_for(bits: int) -> int:
    return math.ceil(bits / 8)


def output_width(output_bytes: int, adc_bits: int) -> int:
    """Bytes of each VMM output in a response: ``output_bytes`` (the accumulator's width) with
    the ADC off (``adc_bits = 0``), otherwise the fewest bytes that hold an ``adc_bits``-bit
    signed output, ``ceil(adc_bits / 8)``, and never more than ``output_bytes``."""
    return output_bytes if adc_bits == 0 else min(output_bytes, _bytes_for(adc_bits))


@dataclass(frozen=True)
class Layout:
    """Field widths in bytes, and command and response lengths, for one configuration and
    one width of the VMM outputs.

    ``output_width`` is the bytes of each VMM output, which the ADC width register sets
    (:func:`output_width`); ``None`` gives the power-on width, the configuration's.
    :meth:`at_adc` is the layout after a ``SET_ADC``, whose response also reports the width.
    """

    config: CrossbarConfig
    output_width: int | None = None

    def __post_init__(self) -> None:
        full = self.output_bytes
        if self.output_width is None:
            object.__setattr__(self, "output_width", output_width(full, self.config.adc_bits or 0))
        elif not 1 <= self.output_width <= full:
            raise ValueError(f"output_width = {self.output_width} must be in [1, {full}]")

    def at_adc(self, adc_bits: int) -> Layout:
        """This layout with the ADC width register at ``adc_bits`` (0: off)."""
        return replace(self, output_width=output_width(self.output_bytes, adc_bits))

    def after(self, response: Response) -> Layout:
        """The layout after ``response``: an OK ``SET_ADC`` response gives the outputs'
        width from then on; any other leaves it."""
        if response.opcode == Opcode.SET_ADC and response.ok:
            return replace(self, output_width=response.fields["width"])
        return self

    @property
    def level_bytes(self) -> int:
        return _bytes_for(self.config.g_bits)

    @property
    def pulse_bytes(self) -> int:
        return _bytes_for(self.config.pulse_bits)

    @property
    def input_bytes(self) -> int:
        return _bytes_for(self.config.x_bits)

    @property
    def output_bytes(self) -> int:
        """Bytes of an output at full precision (the ADC off), as STATUS reports them."""
        return _bytes_for(self.config.acc_fine_bits)


    def width(self, kind: FieldKind) -> int:
        """Bytes of one element of a field."""
        return {
            FieldKind.U8: 1,
            FieldKind.U16: 2,
            FieldKind.U32: 4,
            FieldKind.ROW: 2,
            FieldKind.COL: 2,
            FieldKind.LEVEL: self.level_bytes,
            FieldKind.PULSES: self.pulse_bytes,
            FieldKind.INPUT: self.input_bytes,
            FieldKind.OUTPUT: self.output_width,
            FieldKind.SIGMA: 2,
        }[kind]

    def count(self, field: Field) -> int:
        """Elements in a field."""
        if isinstance(field.repeat, int):
            return field.repeat
        return {"rows": self.config.rows, "cols": self.config.cols, "segments": SIGMA_SEGMENTS}[
            field.repeat
        ]

    def size(self, field: Field) -> int:
        """Bytes of a whole field."""
        return self.width(field.kind) * self.count(field)

    def command_length(self, opcode: Opcode) -> int:
        """Bytes of a command, opcode included (for RUN_BATCH: the header and one vector)."""
        return 1 + sum(self.size(f) for f in COMMANDS[opcode].fields)

    def header_length(self, opcode: Opcode) -> int:
        """Bytes the engine reads before it acts: the opcode and :func:`header_fields`."""
        return 1 + sum(self.size(f) for f in header_fields(opcode))

    def response_length(self, opcode: Opcode) -> int:
        """Bytes of a successful response, opcode and status included."""
        return 2 + sum(self.size(f) for f in COMMANDS[opcode].response)

    @staticmethod
    def signed(kind: FieldKind) -> bool:
        return kind in (FieldKind.PULSES, FieldKind.INPUT, FieldKind.OUTPUT)

    def check(self, opcode: Opcode, field: Field) -> tuple[tuple[tuple[int, int], ...], Status]:
        """The valid values of a command field (inclusive ranges) and the status that
        rejects any other value. A field that takes every value has ``Status.OK``."""
        c = self.config
        by_kind = {
            FieldKind.ROW: (((0, c.rows - 1),), Status.BAD_ROW),
            FieldKind.COL: (((0, c.cols - 1),), Status.BAD_COL),
            FieldKind.LEVEL: (((0, c.g_max),), Status.BAD_LEVEL),
            FieldKind.PULSES: (((c.pulse_min, c.pulse_max),), Status.BAD_COUNT),
            FieldKind.INPUT: (((c.x_min, c.x_max),), Status.BAD_INPUT),
            FieldKind.SIGMA: (((0, (1 << SIGMA_SCALE_BITS) - 1),), Status.BAD_VALUE),
        }
        by_name = {
            (Opcode.SET_ADC, "bits"): (((0, 0), (2, MAX_ADC_BITS)), Status.BAD_VALUE),
            (Opcode.SET_ADC, "shift"): (((0, MAX_SHIFT),), Status.BAD_SHIFT),
            (Opcode.SET_RECT, "shift"): (
                ((0, MAX_SHIFT), (RECT_IDEAL, RECT_IDEAL))
                if self.config.leakage_hardware
                else ((RECT_IDEAL, RECT_IDEAL),),
                Status.BAD_SHIFT,
            ),
            (Opcode.SET_UPDATE_SHIFT, "shift"): (((0, MAX_SHIFT),), Status.BAD_SHIFT),
            (Opcode.SET_NOISE, "flags"): (
                ((0, NOISE_READ | NOISE_WRITE if self.config.noise_hardware else 0),),
                Status.BAD_VALUE,
            ),
            (Opcode.SET_SIGMA, "table"): (((TABLE_READ, TABLE_WRITE),), Status.BAD_VALUE),
            (Opcode.RUN_BATCH, "count"): (((1, MAX_BATCH),), Status.BAD_COUNT),
        }
        if (opcode, field.name) in by_name:
            return by_name[(opcode, field.name)]
        if field.kind in by_kind:
            return by_kind[field.kind]
        width = 8 * self.width(field.kind)
        return ((0, (1 << width) - 1),), Status.OK

    def validate(self, opcode: Opcode, values: dict) -> Status:
        """The status of a command with decoded ``values`` for its :func:`header_fields`:
        the first field (in order) with a value out of range decides."""
        for field in header_fields(opcode):
            ranges, status = self.check(opcode, field)
            value = np.asarray(values[field.name])
            ok = np.zeros(value.shape, dtype=bool)
            for low, high in ranges:
                ok |= (value >= low) & (value <= high)
            if not ok.all():
                return status
        return Status.OK


# Encoding ---------------------------------------------------------------------------------


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
