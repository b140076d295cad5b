"""Field widths in bytes, command and response lengths, and the valid values of each field, for
one :class:`~molxbar.emulator.config.CrossbarConfig` and one width of the VMM outputs.

The fields themselves are in :mod:`.spec` (``COMMANDS``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from molxbar.emulator.config import (
    MAX_ADC_BITS,
    MAX_SHIFT,
    SIGMA_SCALE_BITS,
    SIGMA_SEGMENTS,
    CrossbarConfig,
)

from .spec import (
    COMMANDS,
    MAX_BATCH,
    NOISE_READ,
    NOISE_WRITE,
    RECT_IDEAL,
    TABLE_READ,
    TABLE_WRITE,
    Field,
    FieldKind,
    Opcode,
    Status,
    header_fields,
)

if TYPE_CHECKING:
    from .codec import Response

__all__ = ["Layout", "output_width"]


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
