"""Fault injection on the serial link, at host level: the host's
:class:`~molxbar.host.link.SerialTransport` talks to the board's link model
(:class:`~molxbar.protocol.link_model.BoardLinkModel`) through a serial line that flips,
drops, inserts and duplicates bytes on both directions and stalls the host, in virtual time.

:func:`run_fault_session` runs a session of crossbar work over that line beside a fault-free
golden engine and counts what went wrong silently: results that differ from the golden
engine's without an error, and stored levels that differ at the end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.host.driver import CrossbarDriver
from molxbar.host.link import LinkError, SerialTransport
from molxbar.host.transports import GoldenTransport
from molxbar.protocol.link import BOARD_BAUD, IDLE_TIMEOUT_BYTES
from molxbar.protocol.link_model import BoardLinkModel

__all__ = [
    "FAULT_KINDS",
    "FaultReport",
    "FaultyLine",
    "ModelPort",
    "run_fault_session",
]

#: Faults of one line, each one event: a bit flipped, a burst of 2 to 16 bits flipped, a
#: byte dropped, a random byte inserted, a byte sent twice, and (host to board only) the
#: host stalling in the middle of a frame for longer than the board's idle timeout.
FAULT_KINDS = ("flip", "burst", "drop", "insert", "duplicate", "stall")


class FaultyLine:
    """One direction of the serial line: each chunk written gets one fault with
    probability ``rate`` (of a kind drawn from ``kinds``).

    Attributes
    ----------
    injected : collections.Counter
        Faults injected, by kind.
    """

    def __init__(self, rng: np.random.Generator, rate: float, kinds: tuple[str, ...]) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
        if not 0 <= rate <= 1:
            raise ValueError(f"rate = {rate} must be 0 .. 1")
        self.rng = rng
        self.rate = rate
        self.kinds = kinds
        self.injected: Counter = Counter()

    def corrupt(self, data: bytes) -> list[bytes | None]:
        """``data`` as it arrives: pieces of bytes, ``None`` between two pieces for a stall."""
        if not data or self.rng.random() >= self.rate:
            return [data]
        kind = self.kinds[self.rng.integers(len(self.kinds))]
        self.injected[kind] += 1
        buf = bytearray(data)
        at = int(self.rng.integers(len(buf)))
        if kind == "flip":
            buf[at] ^= 1 << int(self.rng.integers(8))
        elif kind == "burst":
            first, length = int(self.rng.integers(8 * len(buf))), int(self.rng.integers(2, 17))
            for bit in range(first, min(first + length, 8 * len(buf))):
                buf[bit // 8] ^= 1 << (bit % 8)
        elif kind == "drop":
            del buf[at]
        elif kind == "insert":
            buf.insert(at, int(self.rng.integers(256)))
        elif kind == "duplicate":
            buf.insert(at, buf[at])
        else:  # stall
            return [bytes(buf[:at]), None, bytes(buf[at:])]
        return [bytes(buf)]


class ModelPort:
    """A serial port whose far end is the board's link model, in virtual time.

    Writes cross ``command_line`` into the model; what the model answers crosses
    ``response_line`` into the read buffer. Time passes on the line (ten bits per byte at
    ``baudrate``) and while a read finds nothing (``poll`` seconds); the model's idle timeout
    fires when the command line has been quiet for :data:`IDLE_TIMEOUT_BYTES` byte times.
    """

    def __init__(
        self,
        model: BoardLinkModel,
        command_line: FaultyLine | None = None,
        response_line: FaultyLine | None = None,
        *,
        baudrate: int = BOARD_BAUD,
        poll: float = 1e-3,
    ) -> None:
        self.model = model
        self.command_line = command_line
        self.response_line = response_line
        self.baudrate = baudrate
        self.poll = poll
        self.now = 0.0
        self.name = "model port"
        self._rx = bytearray()
        self._quiet_since = 0.0
        self._idle = IDLE_TIMEOUT_BYTES * 10 / baudrate

    def clock(self) -> float:
        return self.now

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def write(self, data: bytes) -> int:
        pieces = [data] if self.command_line is None else self.command_line.corrupt(data)
        for piece in pieces:
            if piece is None:  # the host stalls past the board's idle timeout
                self.now += 2 * self._idle
                self.model.timeout()
                continue
            self.now += 10 * len(piece) / self.baudrate
            answer = self.model.feed(piece)
            self._quiet_since = self.now
            if answer:
                if self.response_line is not None:
                    answer = b"".join(p for p in self.response_line.corrupt(answer) if p)
                self._rx += answer
        return len(data)

    def flush(self) -> None:
        pass

    def read(self, n: int = 1) -> bytes:
        if not self._rx:
            self.now += self.poll
            if self.now - self._quiet_since > self._idle:
                self.model.timeout()
            return b""
        data = bytes(self._rx[:n])
        del self._rx[:n]
        return data

    def close(self) -> None:
        pass


@dataclass
class FaultReport:
    """What a fault session measured."""

    operations: int = 0
    faults: Counter = field(default_factory=Counter)
    #: Results (VMM outputs, reads) that differed from the golden engine's, no error raised.
    silent_wrong_results: int = 0
    #: Cells whose level differed from the golden engine's at the end.
    silent_level_changes: int = 0
    #: Operations that raised a link error (reported, not silent).
    reported: int = 0
    retries: int = 0
    replays: int = 0
    frames: int = 0
    #: The board's counters at the end (read over the faulty line).
    counters: tuple[int, ...] = ()

    @property
    def injected(self) -> int:
        return sum(self.faults.values())


def run_fault_session(
    config: CrossbarConfig,
    *,
    operations: int,
    rate: float,
    seed: int,
    kinds: tuple[str, ...] = FAULT_KINDS,
    retries: int = 12,
) -> FaultReport:
    """Run ``operations`` random crossbar operations over a faulty line and beside a
    fault-free golden engine; count the silent differences.

    ``rate`` is the probability that a frame (either way) meets a fault. Stalls happen on
    the command line only.
    """
    rng = np.random.default_rng(seed)
    model = BoardLinkModel(config)
    port = ModelPort(
        model,
        FaultyLine(rng, rate, kinds),
        FaultyLine(rng, rate, tuple(k for k in kinds if k != "stall") or ("flip",)),
    )
    serial = SerialTransport(port, timeout=0.05, config=config, retries=retries, clock=port.clock)
    board = CrossbarDriver(serial, config)
    golden = CrossbarDriver(GoldenTransport(config), config)
    report = FaultReport(operations=operations)
    c = config
    work = np.random.default_rng(seed + 1)
    for _ in range(operations):
        op = int(work.integers(7))
        args: tuple
        if op == 0:
            name, args = (
                "write_row",
                (int(work.integers(c.rows)), work.integers(0, c.levels, c.cols)),
            )
        elif op == 1:
            name = "write_cell"
            args = (
                int(work.integers(c.rows)),
                int(work.integers(c.cols)),
                int(work.integers(c.levels)),
            )
        elif op == 2:
            name = "pulse"
            args = (
                int(work.integers(c.rows)),
                int(work.integers(c.cols)),
                int(work.integers(-9, 10)),
            )
        elif op == 3:
            name, args = "vmm", (work.integers(c.x_min, c.x_max + 1, c.rows),)
        elif op == 4:
            count = int(work.integers(1, 6))
            name, args = "vmm_batch", (work.integers(c.x_min, c.x_max + 1, (count, c.rows)),)
        elif op == 5:
            name, args = "read_row", (int(work.integers(c.rows)),)
        else:
            name, args = "read_cell", (int(work.integers(c.rows)), int(work.integers(c.cols)))
        want = getattr(golden, name)(*args)
        try:
            got = getattr(board, name)(*args)
        except LinkError:
            report.reported += 1
            continue
        if want is not None and not np.array_equal(np.asarray(got), np.asarray(want)):
            report.silent_wrong_results += 1
    levels = model.engine.crossbar.levels
    reference = golden.transport.engine.crossbar.levels
    report.silent_level_changes = int(np.count_nonzero(levels != reference))
    report.faults = port.command_line.injected + port.response_line.injected
    report.retries = serial.stats.retries
    report.replays = serial.stats.replays
    report.frames = serial.stats.frames_sent
    port.command_line.rate = port.response_line.rate = 0.0  # read the counters cleanly
    report.counters = serial.read_counters().values
    return report
