"""The host's frame packer: the command stream cut into atoms -- whole commands, and the
vectors of a batch -- and the atoms packed into command frames' payloads within the board's
credits and a slot of its replay buffer (docs/link.md).
:class:`~molxbar.host.link.SerialTransport` sends the frames."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from molxbar.protocol.framing import ANY_LAYOUT, CommandFramer
from molxbar.protocol.link import (
    COMMAND_BUFFER_BYTES,
    COMMAND_FRAMING_BYTES,
    CRC_BYTES,
    FRAMES_IN_FLIGHT,
    REPLAY_SLOT_BYTES,
    RESPONSE_FRAMING_BYTES,
    FrameKind,
    max_payload,
)
from molxbar.protocol.spec import COMMANDS, Layout, Opcode

__all__ = ["Atom", "Frame", "FramePacker", "batch_frames", "check_frames", "frame_share"]

_OPCODES = frozenset(int(op) for op in Opcode)
_BATCH_HEADER = 1 + 2  # RUN_BATCH opcode and count


@dataclass
class Atom:
    """Command bytes that go into one frame whole: a command, or one vector of a batch
    (``batch`` the batch's index; its header is written per frame)."""

    data: bytes
    opcode: int
    response: int  # most response bytes
    length: int | None  # of its OK response; None: known once the field widths are
    batch: int | None = None


@dataclass
class Frame:
    """A command or control frame: its payload, the opcodes of the responses due, and its
    sending (``wire`` its bytes on the line, filled in by the transport)."""

    seq: int
    kind: FrameKind
    payload: bytes
    opcodes: list[int]  # of the responses due, in order
    response: int  # most response bytes
    lengths: list[int | None] = field(default_factory=list)  # of each OK response
    wire: bytes = b""
    attempts: int = 0
    deadline: float = 0.0


def check_frames(layout: Layout, *, max_payload: int, slot_bytes: int) -> None:
    """Raise ``ValueError`` unless every command of ``layout`` (a batch vector with its
    header) fits a frame's payload and its response, at full width, a replay slot."""
    layout = layout.at_adc(0)
    vector = layout.size(COMMANDS[Opcode.RUN_BATCH].fields[1])
    for opcode in Opcode:
        if opcode is Opcode.RUN_BATCH:
            _check_atom("a RUN_BATCH vector (with its header)", _BATCH_HEADER + vector, max_payload)
        else:
            _check_atom(opcode.name, layout.command_length(opcode), max_payload)
        _check_response(opcode.name, layout.response_length(opcode), slot_bytes)


def batch_frames(
    layout: Layout,
    *,
    buffer_bytes: int = COMMAND_BUFFER_BYTES,
    slot_bytes: int = REPLAY_SLOT_BYTES,
    in_flight: int = FRAMES_IN_FLIGHT,
) -> dict:
    """A long batch as the transport sends it: ``vectors`` per frame (as many as a share
    of the command buffer, :func:`frame_share`, and a replay slot take), and each frame's
    ``command`` and ``response`` bytes on the line (two ``END``, header, CRC, credits;
    escapes not counted: they add 2/256 of the random bytes)."""
    vector = layout.size(COMMANDS[Opcode.RUN_BATCH].fields[1])
    answer = layout.response_length(Opcode.RUN_BATCH)
    share = frame_share(max_payload(buffer_bytes), in_flight)
    vectors = min((share - _BATCH_HEADER) // vector, slot_bytes // answer)
    if vectors < 1:
        raise ValueError(f"a batch vector of {vector} bytes (answer {answer}) fits no frame")
    return {
        "vectors": vectors,
        "command": COMMAND_FRAMING_BYTES + _BATCH_HEADER + vectors * vector,
        "response": RESPONSE_FRAMING_BYTES + vectors * answer,
    }


def frame_share(credits: int, in_flight: int) -> int:
    """The payload of each of ``in_flight`` frames that fit ``credits`` together (each
    frame's CRC takes buffer room too)."""
    return (credits + CRC_BYTES) // in_flight - CRC_BYTES


def _check_atom(name: str, size: int, limit: int) -> None:
    if size > limit:
        raise ValueError(
            f"{name} of {size} bytes does not fit a frame: at most {limit} command bytes "
            f"(the board's command buffer less the CRC)"
        )


def _check_response(name: str, size: int, limit: int) -> None:
    if size > limit:
        raise ValueError(
            f"the response to {name}, {size} bytes, does not fit a slot of the board's "
            f"replay buffer: {limit} bytes"
        )


class FramePacker:
    """Command bytes in, frame payloads out: each whole command (and each vector of a
    batch) is an atom, and a frame takes atoms while its payload stays within the credits
    and ``max_payload`` and its responses within ``slot_bytes``. A RUN_BATCH longer than a
    frame goes out as several shorter RUN_BATCH commands, each frame's piece with a header
    of its own. An atom that cannot fit a frame on its own raises ``ValueError`` when it is
    fed.

    Parameters
    ----------
    layout
        The field widths, or ``None`` until they are known (only commands of fixed width
        are cut until then; :meth:`set_layout`).
    max_payload, slot_bytes
        Command bytes a frame can carry, and response bytes a slot of the board's replay
        buffer holds.
    """

    def __init__(self, layout: Layout | None, *, max_payload: int, slot_bytes: int) -> None:
        self.max_payload = max_payload
        self.slot_bytes = slot_bytes
        self.layout = layout
        if layout is not None:
            self.check_fits(layout)
        self._framer = CommandFramer(layout)
        self._stream = bytearray()  # command bytes from the framer's offset _base on
        self._base = 0
        self._atoms: deque[Atom] = deque()
        self._batches = 0  # batches begun
        self._batch_of_unit: int | None = None

    def feed(self, data: bytes) -> None:
        """Queue the command bytes ``data``."""
        self._stream += data
        self._frame_units(self._framer.feed(data))

    def set_layout(self, layout: Layout) -> None:
        """The field widths are known (checked with :meth:`check_fits`): cut the commands
        that waited for them."""
        self.layout = self._framer.layout = layout
        self._frame_units(self._framer.feed(b""))

    def clear(self) -> None:
        """Drop every queued atom and command byte. The output width stays the one the
        commands framed so far leave (a SET_ADC among the dropped ones may not have run:
        STATUS tells)."""
        self._atoms.clear()
        self._framer = CommandFramer(self.output_layout)
        self._stream.clear()
        self._base = 0
        self._batch_of_unit = None

    @property
    def output_layout(self) -> Layout | None:
        """The layout at the output width the commands fed so far leave."""
        return self._framer.output_layout

    @property
    def queued(self) -> bool:
        """Atoms wait for a frame."""
        return bool(self._atoms)

    @property
    def head(self) -> Atom:
        """The atom the next frame begins with."""
        return self._atoms[0]

    @property
    def unsent(self) -> int:
        """Command bytes queued, as atoms or not yet cut."""
        return sum(len(a.data) for a in self._atoms) + len(self._framer.pending)

    @property
    def pending(self) -> bytes:
        """Command bytes not yet cut into atoms."""
        return self._framer.pending

    @property
    def needs_layout(self) -> bool:
        """The pending bytes wait for the field widths."""
        return self._framer.needs_layout

    def check_fits(self, layout: Layout) -> None:
        """Raise ``ValueError`` unless every command of ``layout`` fits a frame."""
        check_frames(layout, max_payload=self.max_payload, slot_bytes=self.slot_bytes)

    def _check_atom(self, name: str, size: int) -> None:
        _check_atom(name, size, self.max_payload)

    def _check_response(self, name: str, size: int) -> None:
        _check_response(name, size, self.slot_bytes)

    @staticmethod
    def _response_bytes(unit) -> int:
        if unit.response is not None:
            return unit.response
        return ANY_LAYOUT.response_length(Opcode(unit.opcode))  # a bound until STATUS

    def _frame_units(self, units) -> None:
        """Turn framed units into atoms."""
        for unit in units:
            data = bytes(self._stream[unit.start - self._base : unit.end - self._base])
            if unit.opcode == Opcode.RUN_BATCH and len(data) > _BATCH_HEADER:
                if data[0] == Opcode.RUN_BATCH and self._batch_of_unit != unit.command:
                    self._batch_of_unit = unit.command  # the header and the first vector
                    self._batches += 1
                    data = data[_BATCH_HEADER:]
                response = self._response_bytes(unit)
                atom = Atom(data, unit.opcode, response, unit.response, self._batches)
                self._check_atom("a RUN_BATCH vector (with its header)", len(data) + 3)
            else:
                atom = Atom(data, unit.opcode, self._response_bytes(unit), unit.response)
                name = Opcode(unit.opcode).name if unit.opcode in _OPCODES else "a byte"
                self._check_atom(name, len(data))
            self._check_response(
                Opcode(unit.opcode).name if unit.opcode in _OPCODES else "a byte", atom.response
            )
            self._atoms.append(atom)
        del self._stream[: self._framer.offset - self._base]
        self._base = self._framer.offset

    def next_frame(self, credits: int) -> Frame | None:
        """The next frame's payload from the queued atoms, within ``credits`` and replay;
        ``None`` when no atom is queued or the first does not fit the credits."""
        if not self._atoms:
            return None
        room = min(credits, self.max_payload)
        payload, opcodes, lengths, response = bytearray(), [], [], 0
        batch: int | None = None  # the batch whose piece ends the payload
        count_at = 0  # where that piece's count field is
        while self._atoms:
            atom = self._atoms[0]
            extra = len(atom.data)
            opens = atom.batch is not None and atom.batch != batch
            if opens:
                extra += _BATCH_HEADER
            if len(payload) + extra > room or response + atom.response > self.slot_bytes:
                break
            self._atoms.popleft()
            if atom.batch is None:
                batch = None
            else:
                if opens:
                    batch, count_at = atom.batch, len(payload) + 1
                    payload += bytes([Opcode.RUN_BATCH, 0, 0])
                count = int.from_bytes(payload[count_at : count_at + 2], "little") + 1
                payload[count_at : count_at + 2] = count.to_bytes(2, "little")
            payload += atom.data
            opcodes.append(atom.opcode)
            lengths.append(atom.length)
            response += atom.response
        if not opcodes:
            return None  # credits too low for the next atom: wait for more
        return Frame(0, FrameKind.COMMANDS, bytes(payload), opcodes, response, lengths)
