"""The host's end of the serial link: :class:`SerialTransport`, the engine's command stream
in checked, numbered, flow-controlled frames (docs/link.md, constants in
:mod:`molxbar.protocol.link`).

The transport has the ``send``/``receive`` pair of every transport
(:mod:`molxbar.host.transports`), so the driver runs on it unchanged; below that pair it
cuts the command stream into frames of whole commands
(:class:`~molxbar.host.link_packer.FramePacker`), keeps up to
:data:`~molxbar.protocol.link.FRAMES_IN_FLIGHT` frames in flight within the credits the
board last reported, and goes back to the first frame not answered when one is refused,
damaged or not answered in time (go-back-N). A frame sent again keeps its ``seq``: the board
runs frames only in order, and answers one that repeats either of the last two it ran from
its replay buffer, so a command is never run twice nor out of order.
"""

from __future__ import annotations

import time
from collections import deque
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
    FRAMES_IN_FLIGHT,
    LINK_STATUS_TEXT,
    REPLAY_BUFFER_BYTES,
    FrameKind,
    LinkStatus,
    max_payload,
    replay_slot,
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

from .link_packer import Frame, FramePacker, check_frames, frame_share
from .transports import check_count, config_from_status

__all__ = ["LinkError", "LinkStats", "SerialTransport", "check_frames"]


class LinkError(ProtocolError):
    """The link could not deliver a frame: its tries exhausted (refused, damaged, not
    answered, or answered with responses that are not to its commands), or its responses
    lost from the board's replay buffer."""


@dataclass
class LinkStats:
    """What the transport has seen of the link."""

    #: Frames written, retries included, and of those the retries.
    frames_sent: int = 0
    retries: int = 0
    #: Response frames dropped for a bad CRC, length or escape, or for responses that are
    #: not to the frame's commands.
    bad_responses: int = 0
    #: Good response frames to another ``seq`` than the one waited for (stale answers, and
    #: the answers to frames after one that must be sent again).
    stale_responses: int = 0
    #: Error frames from the board (bad CRC, length, escape, kind, overflow, order) to the
    #: first frame not answered.
    refused: int = 0
    #: Waits for an answer that ran out.
    timeouts: int = 0
    #: Frames answered from the board's replay buffer.
    replays: int = 0
    #: The most frames in flight at once.
    most_in_flight: int = 0
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
    frame until its payload would pass its share of the board's credits (at most
    ``max_payload`` bytes) or its responses a slot of the board's replay buffer. A RUN_BATCH
    longer than a frame is sent as several shorter RUN_BATCH commands: the engine answers
    each vector alike, so the responses are the same bytes. A command (or batch vector) that
    cannot fit a frame on its own is refused with ``ValueError`` at ``send``.

    **Frames in flight.** Up to ``in_flight`` frames are written before the first is
    answered (the board keeps the responses of its last two frames), while their payloads
    and CRCs fit the credits of the last answer: one frame is answered while the next
    arrives, and both lines stay busy. Answers come in order; the first frame's answer is
    good when its CRC is, its ``seq`` is the frame's, and its responses are to the frame's
    commands, in order and of the lengths the protocol gives. When the board refuses it
    (bad CRC, length, escape, overflow, order) or its answer comes damaged, once every
    frame written has had an answer, or when none comes within the timeout, every frame in
    flight is sent again, in order and with the same ``seq`` (go-back-N): the board runs
    each frame only after the one before it, and answers a frame it already ran from its
    replay buffer. After ``retries`` more tries of a frame the transport raises
    :class:`LinkError`.

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
    in_flight
        Frames sent before the first is answered, at most; 1 waits for each answer.
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
        in_flight: int = FRAMES_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout = {timeout} must be > 0 seconds")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries = {retries!r} must be an int >= 0")
        if buffer_bytes <= CRC_BYTES:
            raise ValueError(f"buffer_bytes = {buffer_bytes} must be > {CRC_BYTES}")
        if isinstance(in_flight, bool) or in_flight not in range(1, FRAMES_IN_FLIGHT + 1):
            raise ValueError(
                f"in_flight = {in_flight!r} must be 1 .. {FRAMES_IN_FLIGHT} (the frames the "
                f"board answers again)"
            )
        self.max_payload = max_payload(buffer_bytes)
        self.replay_bytes = replay_bytes
        self.slot_bytes = replay_slot(replay_bytes)
        self.in_flight = in_flight
        self._packer = FramePacker(
            Layout(config) if config is not None else None,
            max_payload=self.max_payload,
            slot_bytes=self.slot_bytes,
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
            + max(self.slot_bytes, COUNTERS_PAYLOAD_BYTES)
            + CREDIT_BYTES
            + CRC_BYTES,
        )
        self._next_seq: int | None = None  # unknown until the board's counters are read
        self._controls = 0  # control frames sent: their seq, apart from the command frames'
        self._inflight: deque[Frame] = deque()  # sent, not yet answered, oldest first
        # Frames written (retries included) that no answer frame, good or bad, has followed
        # yet: the board holds two frames, so no more than `in_flight` are ever on the way.
        self._unanswered = 0
        self._problem: str | None = None  # what was wrong with the last answer not taken
        self._out = bytearray()  # engine responses not yet received
        self._answered: Response | None = None

    # The transport's two methods ----------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue ``data``; frames go out at once while the credits and ``in_flight`` allow."""
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
            if not self._pump():
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
        while self._pump():
            self._service()
        return self._exchange(kind)

    def _exchange(self, kind: FrameKind) -> Counters:
        """A control frame, with nothing in flight. Its ``seq`` lies half the sequence away
        from the command frames', so that a late answer to one is never taken for the
        other's (the board does not order control frames)."""
        base = 0 if self._next_seq is None else self._next_seq
        self._controls += 1
        seq = (base + 128 + self._controls % 64) & 0xFF
        self._start(Frame(seq, kind, b"", [], COUNTERS_PAYLOAD_BYTES))
        while self._inflight:
            self._service()
        counters = Counters.from_payload(self._answered.payload)
        if self._next_seq is None:
            self._next_seq = 0 if counters.last_seq is None else (counters.last_seq + 1) & 0xFF
        return counters

    # Sending and answers ------------------------------------------------------------------

    def _pump(self) -> bool:
        """Send frames while the credits and ``in_flight`` allow; ``True`` if any is in
        flight then."""
        while self._packer.queued and max(len(self._inflight), self._unanswered) < self.in_flight:
            if self._next_seq is None:
                self._exchange(FrameKind.READ_COUNTERS)
            # Each frame takes its share of the credits, so that the next one fits beside
            # it; a command larger than a share goes alone.
            held = sum(len(f.payload) + CRC_BYTES for f in self._inflight)
            share = frame_share(self.credits, self.in_flight)
            frame = self._packer.next_frame(min(share, self.credits - held))
            if frame is None and self._inflight:
                break  # the next frame waits for the answers in flight
            if frame is None:
                frame = self._packer.next_frame(self.credits)
            if frame is None:
                # Credits too low even for the next command alone: ask the board again.
                self._exchange(FrameKind.READ_COUNTERS)
                frame = self._packer.next_frame(self.credits)
                if frame is None:
                    atom = self._packer.head
                    raise self._fail(
                        f"the board reports {self.credits} free command bytes, the next "
                        f"command needs {len(atom.data)}"
                    )
            frame.seq = self._next_seq
            self._next_seq = (self._next_seq + 1) & 0xFF
            self._start(frame)
        return bool(self._inflight)

    def _start(self, frame: Frame) -> None:
        frame.wire = command_frame(frame.seq, frame.payload, frame.kind)
        self._inflight.append(frame)
        self.stats.most_in_flight = max(self.stats.most_in_flight, len(self._inflight))
        self._transmit(frame)

    def _transmit(self, frame: Frame) -> None:
        frame.attempts += 1
        if frame.attempts > 1:
            self.stats.retries += 1
        if frame.attempts > 1 + self.retries:
            kind = "" if frame.kind == FrameKind.COMMANDS else f"{frame.kind.name} "
            raise self._fail(
                f"{self._name()}: {kind}frame {frame.seq} ({len(frame.payload)} command bytes) not "
                f"answered after {frame.attempts - 1} tries (retries = {self.retries}); "
                f"link errors seen: {self._summary()}"
            )
        self.stats.frames_sent += 1
        self._unanswered += 1
        self.stats.line_bytes += len(frame.wire)
        self.stats.payload_bytes += len(frame.payload)
        self._set_deadline(frame)
        self.port.write(frame.wire)
        self.port.flush()

    def _set_deadline(self, frame: Frame) -> None:
        """The time by which the frame's answer is due, were it the first in flight."""
        wait = self.timeout + self.line_time(2 * len(frame.wire) + 2 * frame.response + 16)
        frame.deadline = self.clock() + wait

    def _go_back(self) -> None:
        """Send every frame in flight again, in order, with the same ``seq``: when every
        frame written has had an answer and these were not among the good ones, or when
        the first one's answer is late."""
        self._unanswered = 0
        for frame in list(self._inflight):
            self._transmit(frame)

    def _fail(self, message: str) -> LinkError:
        """The error to raise, after dropping everything queued (:meth:`_abandon`)."""
        self._abandon()
        return LinkError(message)

    def _abandon(self) -> None:
        """Drop the frames in flight and everything queued, so that the next command starts
        afresh after a :class:`LinkError` (whether those frames ran is unknown)."""
        self._inflight.clear()
        self._unanswered = 0
        self._problem = None
        self._packer.clear()
        self._out.clear()

    def _service(self) -> None:
        """Read what the line brings; go back once every frame written is answered and the
        first in flight was refused or came damaged, or when its deadline passes."""
        waiting = getattr(self.port, "in_waiting", 0)
        chunk = self.port.read(max(1, waiting))
        self.stats.read_bytes += len(chunk)
        for item in self._decoder.feed(chunk):
            self._unanswered = max(0, self._unanswered - 1)
            if not self._inflight:
                self.stats.stale_responses += 1
                continue
            self._take(item)
        if not self._inflight:
            return
        if self.clock() > self._inflight[0].deadline:
            self.stats.timeouts += 1
            self._decoder.timeout()
            self._go_back()
        elif self._unanswered == 0:
            self._go_back()

    def _take(self, item: bytes | BadFrame) -> None:
        frame = self._inflight[0]
        if isinstance(item, BadFrame):
            self.stats.bad_responses += 1
            return  # each frame ran or not: the board knows, by its seq
        answer = parse_response(item)
        if answer.seq != frame.seq:
            # An answer to an earlier try of an earlier frame, a refusal of a frame whose
            # seq came damaged (its own timeout covers that), or an answer to a later frame
            # in flight (sent again after the first).
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
            problem = self._check_responses(frame, answer.payload)
            if problem is not None:
                # Damaged past its CRC (a byte sent twice where the CRC register stood
                # still): the frame goes again and the board answers it from its replay.
                self.stats.bad_responses += 1
                self._problem = problem
                return
            self._out += answer.payload
            self.stats.response_bytes += len(answer.payload)
        elif len(answer.payload) != COUNTERS_PAYLOAD_BYTES:
            self.stats.bad_responses += 1
            self._problem = (
                f"a counters answer of {len(answer.payload)} bytes, "
                f"{COUNTERS_PAYLOAD_BYTES} expected"
            )
            return
        self.credits = answer.credits
        self._answered = answer
        self._inflight.popleft()
        if self._inflight:
            self._set_deadline(self._inflight[0])  # its answer comes after this one's

    def _refused(self, answer: Response) -> None:
        status = answer.status
        if status == LinkStatus.REPLAY_LOST:
            raise self._fail(
                f"frame {answer.seq}: {LINK_STATUS_TEXT[LinkStatus.REPLAY_LOST]} (a frame's "
                f"responses must fit {self.slot_bytes} bytes)"
            )
        name = status.name if isinstance(status, LinkStatus) else f"{status:#04x}"
        self.stats.refused += 1
        self.stats.statuses[name] = self.stats.statuses.get(name, 0) + 1
        self.credits = answer.credits

    def _check_responses(self, frame: Frame, payload: bytes) -> str | None:
        """What is wrong with the payload as the responses to the frame's commands, one
        each, in order; ``None`` if nothing is (the field widths a STATUS among them
        reports are learnt then)."""
        pos, status = 0, None
        for index, opcode in enumerate(frame.opcodes):
            if pos + 2 > len(payload) or payload[pos] != opcode:
                got = payload[pos : pos + 2].hex(" ") or "nothing"
                return (
                    f"frame {frame.seq}: response {index} begins {got}, not opcode "
                    f"{opcode:#04x} (the answer is not to this frame's commands)"
                )
            try:
                length = response_length(
                    self._packer.output_layout, payload[pos], payload[pos + 1]
                )
                if payload[pos + 1] == Status.OK and frame.lengths[index] is not None:
                    length = frame.lengths[index]  # at the output width it ran with
            except ValueError as error:
                return f"frame {frame.seq}: response {index}: {error}"
            if length is None:
                return f"frame {frame.seq}: response {index} needs the field widths"
            learn = self._packer.layout is None and opcode == Opcode.STATUS
            if learn and payload[pos + 1] == Status.OK:
                status = payload[pos : pos + length]
            pos += length
        if pos != len(payload):
            return (
                f"frame {frame.seq}: {len(payload)} response bytes, {pos} expected for its "
                f"{len(frame.opcodes)} command(s)"
            )
        if status is not None:
            self._learn(status)
        return None

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
        problem = "" if self._problem is None else f"; the last answer not taken: {self._problem}"
        return (
            f"{s.bad_responses} damaged answer(s), {s.refused} refusal(s) "
            f"{s.statuses or ''}, {s.timeouts} timeout(s){problem}"
        )
