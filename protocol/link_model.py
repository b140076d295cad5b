"""The board's link layer in Python, around the golden engine: what the board's bridge
(:mod:`molxbar.boards.link`) does with the bytes of its serial line, at the speed of NumPy.

The gateware is checked against this model byte for byte on the same line stream
(``tests/boards/test_link_gateware.py``); the host's transport and the fault-injection tests
run against it (``tests/unit/test_link_faults.py``).

The model's engine runs a frame as soon as the frame is whole and good; the gateware runs
it once the frames before it are answered. Both answer frames in the order they came, and
the credits do not depend on when the engine ran, so the gateware agrees with the model
whenever the host keeps within the credits and :data:`~.link.FRAMES_IN_FLIGHT`, as
:class:`~molxbar.host.link.SerialTransport` does.
"""

from __future__ import annotations

from molxbar.emulator.config import CrossbarConfig

from .golden_engine import GoldenEngine
from .link import (
    COMMAND_BUFFER_BYTES,
    COUNTER_BITS,
    COUNTERS,
    CRC_BYTES,
    FRAME_HEADER_BYTES,
    FRAMES_IN_FLIGHT,
    REPLAY_BUFFER_BYTES,
    FrameKind,
    LinkCounter,
    LinkStatus,
    max_payload,
    replay_slot,
)
from .link_frames import BadFrame, FrameDecoder, counters_payload, response_frame

__all__ = ["BoardLinkModel"]

_COUNTER_MAX = (1 << COUNTER_BITS) - 1


class BoardLinkModel:
    """A board's link layer and engine: command-line bytes in, response-line bytes out.

    Parameters
    ----------
    config
        The crossbar (the golden engine's).
    buffer_bytes
        The command buffer (payload and CRC of a frame).
    replay_bytes
        The replay buffer: :data:`~.link.FRAMES_IN_FLIGHT` slots, each the responses of
        one of the last command frames run.

    Attributes
    ----------
    engine : GoldenEngine
        The engine behind the link; only frames that are whole and good reach it.
    counters : list[int]
        The link counters, in :data:`~.link.COUNTERS` order.
    """

    def __init__(
        self,
        config: CrossbarConfig | None = None,
        *,
        buffer_bytes: int = COMMAND_BUFFER_BYTES,
        replay_bytes: int = REPLAY_BUFFER_BYTES,
    ) -> None:
        self.engine = GoldenEngine(config)
        self.config = self.engine.config
        self.buffer_bytes = buffer_bytes
        self.replay_bytes = replay_bytes
        self.decoder = FrameDecoder(max_body=FRAME_HEADER_BYTES + buffer_bytes)
        self.counters = [0] * len(COUNTERS)
        self.last_seq: int | None = None
        #: The last command frames run, by ``seq``: their responses, or ``None`` where
        #: those overflowed the replay slot. At most ``FRAMES_IN_FLIGHT``, oldest first.
        self.replay: dict[int, bytes | None] = {}
        #: Command frames run, and answered from the replay buffer.
        self.frames_run = 0
        self.replays = 0

    @property
    def credits(self) -> int:
        """The credits of every answer: the payload bytes the command buffer takes once the
        answer is out (the engine has taken every byte of the frame and those before it),
        before any frame sent after it."""
        return max_payload(self.buffer_bytes)

    @property
    def slot_bytes(self) -> int:
        """The responses one command frame keeps for a replay."""
        return replay_slot(self.replay_bytes)

    def count(self, counter: LinkCounter) -> None:
        """One more event of ``counter`` (saturating)."""
        self.counters[counter] = min(self.counters[counter] + 1, _COUNTER_MAX)

    def feed(self, data: bytes) -> bytes:
        """Take command-line bytes; return the response-line bytes they cause."""
        out = bytearray()
        for frame in self.decoder.feed(data):
            out += self._answer(frame)
        return bytes(out)

    def timeout(self) -> None:
        """The line has been idle for the timeout: a partial frame is dropped, unanswered."""
        if self.decoder.timeout():
            self.count(LinkCounter.TIMEOUT)

    def _answer(self, frame: bytes | BadFrame) -> bytes:
        if isinstance(frame, BadFrame):
            bad_crc = frame.status is LinkStatus.BAD_CRC
            self.count(LinkCounter.BAD_CRC if bad_crc else LinkCounter.BAD_FRAME)
            return self._response(frame.seq, frame.status)
        seq, kind = frame[0], frame[1]
        payload = frame[FRAME_HEADER_BYTES:-CRC_BYTES]
        if kind == FrameKind.COMMANDS:
            if seq in self.replay:
                self.replays += 1
                kept = self.replay[seq]
                if kept is None:
                    return self._response(seq, LinkStatus.REPLAY_LOST)
                return self._response(seq, LinkStatus.REPLAY, kept)
            if seq != (0 if self.last_seq is None else (self.last_seq + 1) & 0xFF):
                self.count(LinkCounter.BAD_FRAME)
                return self._response(seq, LinkStatus.OUT_OF_ORDER)
            responses = self.engine.execute(payload)
            self.frames_run += 1
            self.last_seq = seq
            self.replay[seq] = responses if len(responses) <= self.slot_bytes else None
            if len(self.replay) > FRAMES_IN_FLIGHT:
                del self.replay[next(iter(self.replay))]
            return self._response(seq, LinkStatus.OK, responses)
        if kind in (FrameKind.READ_COUNTERS, FrameKind.CLEAR_COUNTERS) and not payload:
            answer = self._response(seq, LinkStatus.OK, self.counters_payload())
            if kind == FrameKind.CLEAR_COUNTERS:
                self.counters = [0] * len(COUNTERS)
            return answer
        self.count(LinkCounter.BAD_FRAME)
        return self._response(seq, LinkStatus.BAD_KIND)

    def counters_payload(self) -> bytes:
        return counters_payload(self.last_seq, tuple(self.counters))

    def _response(self, seq: int, status: LinkStatus, payload: bytes = b"") -> bytes:
        return response_frame(seq, status, self.credits, payload)
