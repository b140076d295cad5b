"""Where commands and responses begin and end: one incremental framer of the command byte
stream, used by every place that cuts a stream (the comparisons with the golden engine, the
serial transport, the board simulation, the coverage).

The engine answers a command stream in *units*, each answered by exactly one response:

* a command, from its opcode to its last field; an unknown opcode is a one-byte unit
  (answered ``UNKNOWN_OPCODE``);
* a RUN_BATCH with ``count`` vectors is ``count`` units: its header (opcode, count) with the
  first vector, then each further vector; with ``count = 0`` the header alone is a unit
  (answered ``BAD_COUNT``).

:class:`CommandFramer` takes the bytes as they come and reports each unit once its last
byte has arrived, with the length of its response if the engine accepts it (a VMM's outputs
take the bytes the ADC width register needs, so the framer follows the ``SET_ADC`` commands
it frames); :func:`split_commands` cuts a whole stream into commands (a batch with all its
vectors). :func:`response_length` reads the length of a response from its first two bytes.

Without a :class:`~molxbar.protocol.spec.Layout` (the field widths of a crossbar not yet
known) the framer still frames the commands whose header has the same length on every
crossbar (``STATUS``, ``SYNC``, the settings) and waits at the first other one.
"""

from __future__ import annotations

from dataclasses import dataclass

from molxbar.emulator.config import CrossbarConfig

from .spec import (
    COMMANDS,
    Field,
    FieldKind,
    Layout,
    Opcode,
    Status,
    decode_command_fields,
    header_fields,
)

__all__ = [
    "CommandFramer",
    "Unit",
    "fixed_width",
    "response_length",
    "split_commands",
    "whole_commands",
]

_OPCODES = frozenset(int(op) for op in Opcode)
_STATUSES = frozenset(int(status) for status in Status)
#: Field kinds whose width is the same in every configuration.
_FIXED_KINDS = frozenset(
    {FieldKind.U8, FieldKind.U16, FieldKind.U32, FieldKind.ROW, FieldKind.COL, FieldKind.SIGMA}
)
#: A layout for what is the same in every configuration (:func:`fixed_width`).
ANY_LAYOUT = Layout(CrossbarConfig(rows=1, cols=1, lanes=1))


def fixed_width(fields: tuple[Field, ...]) -> bool:
    """The fields take the same bytes in every configuration."""
    return all(f.kind in _FIXED_KINDS and f.repeat not in ("rows", "cols") for f in fields)


@dataclass(frozen=True)
class Unit:
    """Command bytes ``start .. end - 1`` of the stream, answered by one response.

    ``opcode`` is the command's opcode byte (RUN_BATCH for each vector of a batch), and
    ``command`` the index of its command in the stream (a batch's vectors share it).
    ``response`` is the length of its response if the engine accepts it (an error response
    is 2 bytes), ``None`` while the field widths are unknown.
    """

    start: int
    end: int
    opcode: int
    command: int
    response: int | None = None


class CommandFramer:
    """Frames a command byte stream incrementally.

    Parameters
    ----------
    layout
        The field widths; ``None`` until known (see the module), then set :attr:`layout`.
        Its ADC setting is the engine's when the stream begins.

    Attributes
    ----------
    offset
        Stream offset of the first byte not yet in a unit.
    """

    def __init__(self, layout: Layout | None = None) -> None:
        self.layout = layout
        self.offset = 0
        self._adc_bits: int | None = None  # set by the last accepted SET_ADC framed
        self._buf = bytearray()
        self._commands = 0  # commands begun
        self._batch_left = 0  # vectors of the current batch still to frame

    @property
    def pending(self) -> bytes:
        """The bytes after the last unit: a command not complete yet."""
        return bytes(self._buf)

    @property
    def in_batch(self) -> bool:
        """Vectors of a batch are still to come."""
        return self._batch_left > 0

    @property
    def needs_layout(self) -> bool:
        """Framing waits for the field widths (:attr:`layout` is ``None``)."""
        return self.layout is None and bool(self._buf) and self._length() is None

    def feed(self, data: bytes = b"") -> list[Unit]:
        """Take ``data``; return the units it completes, in order."""
        self._buf += data
        units = []
        while self._buf:
            length = self._length()
            if length is None or len(self._buf) < length:
                break
            opcode = Opcode.RUN_BATCH if self._batch_left else self._buf[0]
            if not self._batch_left:
                self._commands += 1
                if opcode == Opcode.RUN_BATCH:
                    self._batch_left = int.from_bytes(self._buf[1:3], "little")
            self._batch_left -= self._batch_left > 0
            if opcode == Opcode.SET_ADC:
                self._follow_adc()
            response = self._response(opcode)
            units.append(
                Unit(self.offset, self.offset + length, opcode, self._commands - 1, response)
            )
            self.offset += length
            del self._buf[:length]
        return units

    @property
    def output_layout(self) -> Layout | None:
        """:attr:`layout` at the ADC setting the framed commands leave."""
        if self.layout is None or self._adc_bits is None:
            return self.layout
        return self.layout.at_adc(self._adc_bits)

    def _follow_adc(self) -> None:
        """The SET_ADC at the head of the buffer sets the ADC width register if its fields
        are in range (the same on every configuration)."""
        fields = decode_command_fields(ANY_LAYOUT, Opcode.SET_ADC, self._buf, 1)
        if ANY_LAYOUT.validate(Opcode.SET_ADC, fields) is Status.OK:
            self._adc_bits = fields["bits"]

    def _response(self, opcode: int) -> int | None:
        """Bytes of the OK response to the unit just framed; 2 for an unknown opcode."""
        if opcode not in _OPCODES:
            return 2
        layout = self.output_layout
        if layout is None:
            if not fixed_width(COMMANDS[Opcode(opcode)].response):
                return None
            layout = ANY_LAYOUT
        return layout.response_length(Opcode(opcode))

    def _length(self) -> int | None:
        """Bytes of the unit at the head of the buffer; ``None`` while the field widths are
        needed and unknown, or the count of a batch header has not arrived."""
        layout, buf = self.layout, self._buf
        if self._batch_left:
            return None if layout is None else _vector_bytes(layout)
        opcode = buf[0]
        if opcode not in _OPCODES:
            return 1
        opcode = Opcode(opcode)
        if layout is None:
            if not fixed_width(header_fields(opcode)):
                return None
            layout = ANY_LAYOUT
        length = layout.header_length(opcode)
        if opcode == Opcode.RUN_BATCH:
            if len(buf) < length:
                return length
            if int.from_bytes(buf[1:3], "little"):
                return None if self.layout is None else length + _vector_bytes(self.layout)
        return length


def _vector_bytes(layout: Layout) -> int:
    return layout.size(COMMANDS[Opcode.RUN_BATCH].fields[1])


def split_commands(layout: Layout, data: bytes) -> list[bytes]:
    """Cut a command stream into single commands (an unknown opcode is one byte; a
    RUN_BATCH is its header followed by its vectors). A trailing partial command is kept."""
    framer = CommandFramer(layout)
    starts = []  # stream offsets where the commands begin
    for unit in framer.feed(data):
        if unit.command == len(starts):
            starts.append(unit.start)
    if framer.offset < len(data) and not framer.in_batch:
        starts.append(framer.offset)  # a partial command at the end
    starts.append(len(data))
    return [bytes(data[a:b]) for a, b in zip(starts, starts[1:], strict=False)]


def whole_commands(layout: Layout, data: bytes) -> int:
    """Bytes of ``data`` that are whole commands: all of it, or up to the start of a
    trailing partial command (one cut inside its fields, or a RUN_BATCH with vectors still
    to come)."""
    framer = CommandFramer(layout)
    last_start = 0  # where the last command framed began
    last_command = -1
    for unit in framer.feed(data):
        if unit.command != last_command:
            last_command, last_start = unit.command, unit.start
    return last_start if framer.in_batch else framer.offset


def response_length(layout: Layout | None, opcode: int, status: int) -> int | None:
    """Bytes of the response whose first two bytes are ``opcode`` and ``status``: 2 for an
    error, the opcode's OK response otherwise (a VMM's at the ADC setting of ``layout``).
    ``None`` if an OK response's length needs the field widths and ``layout`` is ``None``.
    Raises ``ValueError`` for a header that no engine sends (an unknown status, or OK to an
    unknown opcode)."""
    if status not in _STATUSES:
        raise ValueError(f"a response to {opcode:#04x} has unknown status {status:#04x}")
    if status != Status.OK:
        return 2
    if opcode not in _OPCODES:
        raise ValueError(f"an OK response to unknown opcode {opcode:#04x}")
    if layout is None:
        if not fixed_width(COMMANDS[Opcode(opcode)].response):
            return None
        layout = ANY_LAYOUT
    return layout.response_length(Opcode(opcode))
