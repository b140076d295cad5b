"""The board's link layer in Python, around the golden engine: what the board's bridge
(:mod:`molxbar.boards.link`) does with the bytes of its serial line, at the speed of NumPy.

The gateware is checked against this model byte for byte on the same line stream
(``tests/boards/test_link_gateware.py``); the host's transport and the fault-injection tests
run against it (``tests/unit/test_link_faults.py``).

The model's engine runs a frame as soon as the frame is whole and good, so the command
buffer is empty again before the next frame comes. The gateware agrees with it whenever
the host waits for each frame's answer before the next frame, as
:class:`~molxbar.host.transports.SerialTransport` does.
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
    REPLAY_BUFFER_BYTES,
    FrameKind,
    LinkCounter,
    LinkStatus,
    max_payload,
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
        The replay buffer (the last command frame's responses).

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
        self.replay = b""
        self.replay_lost = False
        #: Command frames run, and answered from the replay buffer.
        self.frames_run = 0
        self.replays = 0

    @property
    def credits(self) -> int:
        """Payload bytes the next frame may carry (the engine has taken every byte)."""
        return max_payload(self.buffer_bytes)

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
            if seq == self.last_seq:
                self.replays += 1
                if self.replay_lost:
                    return self._response(seq, LinkStatus.REPLAY_LOST)
                return self._response(seq, LinkStatus.REPLAY, self.replay)
            responses = self.engine.execute(payload)
            self.frames_run += 1
            self.last_seq = seq
            self.replay = responses[: self.replay_bytes]
            self.replay_lost = len(responses) > self.replay_bytes
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
