"""The host's end of the serial link: :class:`SerialTransport`, the engine's command stream
in checked, numbered, flow-controlled frames (docs/link.md, constants in
:mod:`molxbar.protocol.link`).

The transport has the ``send``/``receive`` pair of every transport
(:mod:`molxbar.host.transports`), so the driver runs on it unchanged; below that pair it
cuts the command stream into frames of whole commands
(:class:`~molxbar.host.link_packer.FramePacker`), sends one frame at a time within the
credits the board last reported, and retries a frame that was refused or not answered in
time. A retried frame keeps its ``seq``, and the board answers a frame that repeats the last
one it ran from its replay buffer: a command is never run twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.errors import ProtocolError
from molxbar.protocol.framing import ANY_LAYOUT, response_length
from molxbar.protocol.link import (
    BOARD_BAUD,
    COMMAND_BUFFER_BYTES,
    CRC_BYTES,
    CREDIT_BYTES,
    FRAME_HEADER_BYTES,
    LINK_STATUS_TEXT,
    REPLAY_BUFFER_BYTES,
    FrameKind,
    LinkStatus,
    max_payload,
)
from molxbar.protocol.link_frames import (
    COUNTERS_PAYLOAD_BYTES,
    MIN_RESPONSE_BYTES,
    BadFrame,
    Counters,
    FrameDecoder,
    Response,
    command_frame,
    parse_response,
)
from molxbar.protocol.spec import Layout, Opcode, Status, decode_response

from .link_packer import Frame, FramePacker, check_frames
from .transports import check_count, config_from_status

__all__ = ["LinkError", "LinkStats", "SerialTransport", "check_frames"]


class LinkError(ProtocolError):
    """The link could not deliver a frame: retries exhausted, or the board's answer cannot
    be right (its replay lost, responses that are not to the frame's commands)."""


@dataclass
class LinkStats:
    """What the transport has seen of the link."""

    #: Frames written, retries included, and of those the retries.
    frames_sent: int = 0
    retries: int = 0
    #: Response frames dropped for a bad CRC, length or escape.
    bad_responses: int = 0
    #: Good response frames to another ``seq`` than the one waited for (stale answers).
    stale_responses: int = 0
    #: Error frames from the board (bad CRC, length, escape, kind, overflow).
    refused: int = 0
    #: Waits for an answer that ran out.
    timeouts: int = 0
    #: Frames answered from the board's replay buffer.
    replays: int = 0
    #: Bytes written, and command bytes among them.
    line_bytes: int = 0
    payload_bytes: int = 0
    #: Bytes read, and engine response bytes delivered among them.
    read_bytes: int = 0
    response_bytes: int = 0
    #: Error statuses by name.
    statuses: dict = field(default_factory=dict)


class SerialTransport:
    """A serial port to a board's link: the command stream in frames, checked both ways.

    **Frames.** ``send`` frames the command stream into commands (and the vectors of a
    batch: :class:`~molxbar.protocol.framing.CommandFramer`); whole commands go into a
    frame until its payload would pass the board's credits (its free command buffer, at most
    ``max_payload`` bytes) or its responses the board's replay buffer. A RUN_BATCH longer
    than a frame is sent as several shorter RUN_BATCH commands: the engine answers each
    vector alike, so the responses are the same bytes. A command (or batch vector) that
    cannot fit a frame on its own is refused with ``ValueError`` at ``send``.

    **One frame at a time.** A frame is written when the one before it has been answered
    (the board's replay buffer holds the last frame's responses only). Its answer is good
    when its CRC is, its ``seq`` is the frame's, and its responses are to the frame's
    commands, in order and of the lengths the protocol gives; a frame the board refused
    (bad CRC, length, escape, overflow), an answer that comes damaged, or none within the
    timeout, sends the frame again, with the same ``seq``. After ``retries`` more tries the
    transport raises :class:`LinkError`.

    **Where the sequence starts.** Before its first command frame the transport reads the
    board's counters, which name the ``seq`` of the last frame the board ran, and numbers
    on from there, so that no frame of this session is taken for a repeat of the last one.

    Parameters
    ----------
    port
        A device name or pyserial URL, or an open ``serial.Serial``-like object (``read``,
        ``write``, ``flush``; a blocking one gets a short read timeout).
    baudrate
        Line rate, bits per second (8N1: ten bits per byte): the one the bitstream was built
        for (its ``report.json``, ``uart``). Needed to open a device by name; for an open
        port, its own ``baudrate`` by default.
    timeout
        Seconds to wait for an answer beyond the time its bytes need on the line.
    config
        The crossbar behind the port, if known; otherwise the driver's first ``STATUS``
        gives it (until then only commands of fixed width can be framed).
    retries
        Tries of a frame after the first.
    buffer_bytes, replay_bytes
        The board's command and replay buffers (:mod:`molxbar.protocol.link`).
    clock
        Seconds, monotonic (for tests that run the line in virtual time).
    """

    def __init__(
        self,
        port,
        baudrate: int | None = None,
        *,
        timeout: float = 2.0,
        config: CrossbarConfig | None = None,
        retries: int = 8,
        buffer_bytes: int = COMMAND_BUFFER_BYTES,
        replay_bytes: int = REPLAY_BUFFER_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout = {timeout} must be > 0 seconds")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries = {retries!r} must be an int >= 0")
        if buffer_bytes <= CRC_BYTES:
            raise ValueError(f"buffer_bytes = {buffer_bytes} must be > {CRC_BYTES}")
        self.max_payload = max_payload(buffer_bytes)
        self.replay_bytes = replay_bytes
        self._packer = FramePacker(
            Layout(config) if config is not None else None,
            max_payload=self.max_payload,
            replay_bytes=replay_bytes,
        )
        if isinstance(port, str):
            if baudrate is None:
                raise ValueError(
                    f"port = {port!r}: give baudrate, the rate the bitstream was built for "
                    f"(its report.json, \"uart\")"
                )
            import serial

            port = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
        elif getattr(port, "timeout", 0) is None:
            port.timeout = 0.05  # reads must return for the deadline to be checked
        self.port = port
        self.baudrate = baudrate or getattr(port, "baudrate", None) or BOARD_BAUD
        self.timeout = timeout
        self.retries = retries
        self.clock = clock
        self.config = config
        self.stats = LinkStats()
        self.credits = self.max_payload  # until the board says otherwise
        self._decoder = FrameDecoder(
            min_body=MIN_RESPONSE_BYTES,
            max_body=FRAME_HEADER_BYTES
            + max(replay_bytes, COUNTERS_PAYLOAD_BYTES)
            + CREDIT_BYTES
            + CRC_BYTES,
        )
        self._next_seq: int | None = None  # unknown until the board's counters are read
        self._pending: Frame | None = None
        self._out = bytearray()  # engine responses not yet received
        self._answered: Response | None = None

    # The transport's two methods ----------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue ``data``; the first frame goes out at once if none waits for its answer."""
        self._packer.feed(bytes(data))
        self._pump()

    def receive(self, n: int) -> bytes:
        """The next ``n`` response bytes, sending frames and retrying as needed.

        Raises ``TimeoutError`` when every frame is answered and fewer bytes came (the
        commands sent do not ask for more, or the last one is incomplete), and
        :class:`LinkError` when a frame cannot be delivered.
        """
        n = check_count(n)
        while len(self._out) < n:
            if self._pending is None and not self._pump():
                raise TimeoutError(
                    f"{self._name()}: {len(self._out)} of {n} response byte(s): every frame "
                    f"is answered" + self._held()
                )
            self._service()
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def close(self) -> None:
        """Close the port; commands not yet sent are dropped."""
        self.port.close()

    def line_time(self, n: int) -> float:
        """Seconds ``n`` bytes take on the line (ten bits each)."""
        return 10 * n / self.baudrate

    @property
    def unsent(self) -> int:
        """Command bytes framed (or being framed) and not yet answered."""
        return self._packer.unsent

    # Link control ---------------------------------------------------------------------------

    def read_counters(self) -> Counters:
        """The board's link counters, after every queued frame is answered."""
        return self._control(FrameKind.READ_COUNTERS)

    def clear_counters(self) -> Counters:
        """The board's link counters, then set to 0 on the board."""
        return self._control(FrameKind.CLEAR_COUNTERS)

    def _control(self, kind: FrameKind) -> Counters:
        while self._pending is not None or self._packer.queued:
            if self._pending is None:
                self._pump()
            else:
                self._service()
        counters = self._exchange(kind)
        return counters

    def _exchange(self, kind: FrameKind) -> Counters:
        seq = 0 if self._next_seq is None else self._next_seq
        self._start(Frame(seq, kind, b"", [], COUNTERS_PAYLOAD_BYTES))
        while self._pending is not None:
            self._service()
        answer = self._answered
        counters = Counters.from_payload(answer.payload)
        if self._next_seq is None:
            self._next_seq = 0 if counters.last_seq is None else (counters.last_seq + 1) & 0xFF
        else:
            self._next_seq = (self._next_seq + 1) & 0xFF
        return counters

    # Sending and answers ------------------------------------------------------------------

    def _pump(self) -> bool:
        """Start the next frame if none waits for an answer; ``True`` if one waits now."""
        if self._pending is not None:
            return True
        if not self._packer.queued:
            return False
        if self._next_seq is None:
            self._exchange(FrameKind.READ_COUNTERS)
        frame = self._packer.next_frame(self.credits)
        if frame is None:
            # Credits too low even for the next command: ask again (the board frees its
            # buffer as the engine runs).
            self._exchange(FrameKind.READ_COUNTERS)
            frame = self._packer.next_frame(self.credits)
            if frame is None:
                atom = self._packer.head
                raise self._fail(
                    f"the board reports {self.credits} free command bytes, the next command "
                    f"needs {len(atom.data)}"
                )
        frame.seq = self._next_seq
        self._next_seq = (self._next_seq + 1) & 0xFF
        self._start(frame)
        return True

    def _start(self, frame: Frame) -> None:
        frame.wire = command_frame(frame.seq, frame.payload, frame.kind)
        self._pending = frame
        self._transmit()

    def _transmit(self) -> None:
        frame = self._pending
        frame.attempts += 1
        if frame.attempts > 1:
            self.stats.retries += 1
        if frame.attempts > 1 + self.retries:
            raise self._fail(
                f"{self._name()}: frame {frame.seq} ({len(frame.payload)} command bytes) not "
                f"answered after {frame.attempts - 1} tries (retries = {self.retries}); "
                f"link errors seen: {self._summary()}"
            )
        self.stats.frames_sent += 1
        self.stats.line_bytes += len(frame.wire)
        self.stats.payload_bytes += len(frame.payload)
        wait = self.timeout + self.line_time(2 * len(frame.wire) + 2 * frame.response + 16)
        frame.deadline = self.clock() + wait
        self.port.write(frame.wire)
        self.port.flush()

    def _fail(self, message: str) -> LinkError:
        """The error to raise, after dropping everything queued (:meth:`_abandon`)."""
        self._abandon()
        return LinkError(message)

    def _abandon(self) -> None:
        """Drop the frame and everything queued, so that the next command starts afresh
        after a :class:`LinkError` (whether the frame ran is unknown)."""
        self._pending = None
        self._packer.clear()
        self._out.clear()

    def _service(self) -> None:
        """Read what the line brings; retry on a refusal, damage or the deadline."""
        frame = self._pending
        waiting = getattr(self.port, "in_waiting", 0)
        chunk = self.port.read(max(1, waiting))
        self.stats.read_bytes += len(chunk)
        for item in self._decoder.feed(chunk):
            if self._pending is not frame:
                return  # answered; the rest of the chunk is stale (the decoder keeps none)
            self._take(item)
            if self._pending is None:
                return
        if self.clock() > frame.deadline:
            self.stats.timeouts += 1
            self._decoder.timeout()
            self._transmit()

    def _take(self, item: bytes | BadFrame) -> None:
        frame = self._pending
        if isinstance(item, BadFrame):
            self.stats.bad_responses += 1
            self._transmit()  # the frame ran or not: the board knows, by its seq
            return
        answer = parse_response(item)
        if answer.seq != frame.seq:
            # An answer to an earlier try of an earlier frame, or a refusal of a frame whose
            # seq came damaged (its own timeout covers that).
            self.stats.stale_responses += 1
            return
        if answer.status not in (LinkStatus.OK, LinkStatus.REPLAY):
            self._refused(answer)
            return
        if answer.status is LinkStatus.REPLAY:
            if frame.attempts == 1 or frame.kind != FrameKind.COMMANDS:
                raise self._fail(
                    f"the board answered frame {frame.seq} from its replay buffer on its "
                    f"first sending: another host shares the link, or the board's last seq "
                    f"was not read"
                )
            self.stats.replays += 1
        if frame.kind == FrameKind.COMMANDS:
            self._check_responses(frame, answer.payload)
            self._out += answer.payload
            self.stats.response_bytes += len(answer.payload)
        elif len(answer.payload) != COUNTERS_PAYLOAD_BYTES:
            raise self._fail(
                f"a counters answer of {len(answer.payload)} bytes, "
                f"{COUNTERS_PAYLOAD_BYTES} expected"
            )
        self.credits = answer.credits
        self._answered = answer
        self._pending = None

    def _refused(self, answer: Response) -> None:
        status = answer.status
        if status == LinkStatus.REPLAY_LOST:
            raise self._fail(
                f"frame {answer.seq}: {LINK_STATUS_TEXT[LinkStatus.REPLAY_LOST]} (a frame's "
                f"responses must fit {self.replay_bytes} bytes)"
            )
        name = status.name if isinstance(status, LinkStatus) else f"{status:#04x}"
        self.stats.refused += 1
        self.stats.statuses[name] = self.stats.statuses.get(name, 0) + 1
        self.credits = answer.credits
        self._transmit()

    def _check_responses(self, frame: Frame, payload: bytes) -> None:
        """The payload is one response to each of the frame's commands, in order."""
        pos = 0
        for index, opcode in enumerate(frame.opcodes):
            if pos + 2 > len(payload) or payload[pos] != opcode:
                got = payload[pos : pos + 2].hex(" ") or "nothing"
                raise self._fail(
                    f"frame {frame.seq}: response {index} begins {got}, not opcode "
                    f"{opcode:#04x} (the board's answer is not to this frame's commands)"
                )
            try:
                length = response_length(
                    self._packer.output_layout, payload[pos], payload[pos + 1]
                )
                if payload[pos + 1] == Status.OK and frame.lengths[index] is not None:
                    length = frame.lengths[index]  # at the output width it ran with
            except ValueError as error:
                raise self._fail(f"frame {frame.seq}: response {index}: {error}") from None
            if length is None:
                raise self._fail(f"frame {frame.seq}: response {index} needs the field widths")
            learn = self._packer.layout is None and opcode == Opcode.STATUS
            if learn and payload[pos + 1] == Status.OK:
                self._learn(payload[pos : pos + length])
            pos += length
        if pos != len(payload):
            raise self._fail(
                f"frame {frame.seq}: {len(payload)} response bytes, {pos} expected for its "
                f"{len(frame.opcodes)} command(s)"
            )

    def _learn(self, response: bytes) -> None:
        """The field widths from a STATUS response; the commands that waited for them."""
        fields = decode_response(ANY_LAYOUT, response)[0].fields
        config = config_from_status(fields)
        layout = Layout(config).at_adc(fields["adc_bits"])
        self._packer.check_fits(layout)
        self.config = config
        self._packer.set_layout(layout)

    # Messages -------------------------------------------------------------------------------

    def _name(self) -> str:
        return getattr(self.port, "name", None) or "serial port"

    def _held(self) -> str:
        pending = self._packer.pending
        if not pending:
            return ""
        if self._packer.needs_layout:
            return (
                f"; {len(pending)} command byte(s) wait for the field widths (give config=, "
                f"or send STATUS first)"
            )
        return f"; {len(pending)} command byte(s) of an incomplete command are not sent"

    def _summary(self) -> str:
        s = self.stats
        return (
            f"{s.bad_responses} damaged answer(s), {s.refused} refusal(s) "
            f"{s.statuses or ''}, {s.timeouts} timeout(s)"
        )
