"""The molxbar command protocol: the one definition of opcodes, fields, widths and errors.

The host sends a byte stream of commands; the engine answers every command (and every vector
of a batch) with one response. All multi-byte fields are little-endian; field widths follow
from the :class:`~molxbar.emulator.config.CrossbarConfig` through :class:`Layout`.

A command is its opcode byte followed by its fields. A response is the opcode byte, a status
byte and, when the status is ``OK``, the response fields. An unknown opcode is answered with
``(opcode, UNKNOWN_OPCODE)`` and only that one byte is consumed. A command with a field out
of range is consumed whole and answered with ``(opcode, status)``; it changes nothing.

The gateware, the golden engine and the host drivers all read this module; the C header for
embedded hosts and ``docs/protocol.md`` are generated from it. The field widths and lengths of
one configuration are in :mod:`.layout`, the bytes of commands and responses in :mod:`.codec`;
their names are importable from here too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

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

#: Version 4: the boards' serial link runs command frames in order (``OUT_OF_ORDER``), keeps
#: the responses of the last two for a replay, and sends credits that do not depend on when
#: the engine ran (docs/link.md). Version 3: a VMM output takes only the bytes the ADC width
#: register needs (:meth:`Layout.output_width`). Version 2: STATUS reports the output width
#: and the hardware.
PROTOCOL_VERSION = 4
#: ``SET_RECT`` value for ideal unidirectional cells (no reverse leakage).
RECT_IDEAL = 0xFF
#: ``SET_NOISE`` flag bits.
NOISE_READ = 0x01
NOISE_WRITE = 0x02
#: ``SET_SIGMA`` table selectors.
TABLE_READ = 0
TABLE_WRITE = 1
#: ``STATUS`` hardware flag bits: the engine has noise hardware (SET_NOISE accepts flags), and
#: leakage hardware (SET_RECT accepts shifts).
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


# The layout and the codec read the table above; they are imported last so that either module
# can be imported first (the package imports this one before them).
from .codec import (  # noqa: E402
    Response,
    decode_command_fields,
    decode_response,
    decode_responses,
    encode_command,
    encode_response,
)
from .layout import Layout, output_width  # noqa: E402
