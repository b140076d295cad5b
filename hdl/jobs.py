"""What the command receiver hands the executor: a job per command (and per batch vector),
and the fields it parsed.

The receiver offers each job on a ``stream`` of :data:`JOB_LAYOUT`; the fields of the command
(:data:`SCALAR_FIELDS`, one 32-bit register each, in :func:`fields_layout`) and the buffers it
filled hold still until the executor has finished the job. The opcodes and statuses are
Amaranth enumerations made from the protocol's, so that they cannot differ from it.
"""

from __future__ import annotations

import enum as py_enum

from amaranth.hdl import ShapeLike, signed, unsigned
from amaranth.lib import data, enum
from amaranth.utils import ceil_log2

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol import spec
from molxbar.protocol.spec import COMMANDS, header_fields

__all__ = [
    "INPUT_SLOTS",
    "JOB_LAYOUT",
    "Opcode",
    "SCALAR_FIELDS",
    "Status",
    "VECTOR_FIELDS",
    "buffer_shapes",
    "fields_layout",
    "input_slot_bits",
]


def _shaped(protocol_enum: type[py_enum.IntEnum], shape: int) -> type[enum.Enum]:
    """``protocol_enum`` as an Amaranth enumeration of ``shape`` bits: the same names and
    values (the protocol table stays their one definition)."""
    name = protocol_enum.__name__
    namespace = enum.EnumType.__prepare__(name, (enum.Enum,), shape=shape)
    for member in protocol_enum:
        namespace[member.name] = member.value
    namespace["__module__"] = __name__
    namespace["__doc__"] = f"The protocol's :class:`~molxbar.protocol.spec.{name}`, {shape} bits."
    return enum.EnumType(name, (enum.Enum,), namespace, shape=shape)


Opcode = _shaped(spec.Opcode, 8)
Status = _shaped(spec.Status, 8)

#: Vector fields and the buffer each one fills.
VECTOR_FIELDS = {
    (spec.Opcode.WRITE_ROW, "levels"): "row_buf",
    (spec.Opcode.UPDATE_RANK1, "a"): "a_buf",
    (spec.Opcode.UPDATE_RANK1, "b"): "b_buf",
    (spec.Opcode.LOAD_INPUT, "x"): "in_buf",
    (spec.Opcode.RUN_BATCH, "x"): "in_buf",
    (spec.Opcode.SET_SIGMA, "scale"): "sigma",
}
#: Names of the scalar field registers (32 bits each, raw two's complement for signed ones).
SCALAR_FIELDS = sorted(
    {
        f.name
        for command in COMMANDS.values()
        for f in header_fields(command.opcode)
        if (command.opcode, f.name) not in VECTOR_FIELDS
    }
)
#: Input slots 0 and 1 take batch vectors; 2 and 3 the loaded vector (one live, one filling).
INPUT_SLOTS = 4

#: A job: the command (its opcode as received, possibly unknown), its status (the first
#: failed field check, or OK) and ``ok`` beside it; ``vector``: the job is a vector of a
#: batch, in input slot ``slot``.
JOB_LAYOUT = data.StructLayout(
    {"opcode": Opcode, "status": Status, "ok": 1, "vector": 1, "slot": 2}
)


def fields_layout() -> data.StructLayout:
    """The scalar field registers of the receiver, by name (:data:`SCALAR_FIELDS`)."""
    return data.StructLayout({name: 32 for name in SCALAR_FIELDS})


def input_slot_bits(config: CrossbarConfig) -> int:
    """Address bits of one input slot: input memory address = ``slot << bits | row``."""
    return max(1, ceil_log2(config.rows))


def buffer_shapes(config: CrossbarConfig) -> dict[str, tuple[ShapeLike, int]]:
    """The buffer memories the receiver fills and the executor reads, by name: the shape of
    an element and the depth (rows to write, rank-1 factors, input slots)."""
    c = config
    return {
        "row_buf": (unsigned(c.g_bits), c.cols),
        "a_buf": (signed(c.x_bits), c.rows),
        "b_buf": (signed(c.x_bits), c.cols),
        "in_buf": (signed(c.x_bits), INPUT_SLOTS << input_slot_bits(c)),
    }
