"""The cocotb test bench of the generated engine: a stream source, a stream sink and the
scoreboard of :mod:`molxbar.sim.cosim.scoreboard`, in the manner of cocotbext-axi.

The simulator process runs :func:`run_job` on the top ``molxbar_engine``; what to run comes
from the job folder named by ``$MOLXBAR_COSIM_JOB`` (see :mod:`molxbar.sim.cosim.job`), and the
responses, counters and any mismatch go back into it.

Timing: one ``await RisingEdge(clk)`` per cycle. Right after the edge the signals still hold
the values the flip-flops sampled at it (the clock is driven by the simulator, and writes
are inertial), so a transfer happened at that edge when the driven ``valid`` and the sampled
``ready`` were both high. New values written then take effect for the next edge.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from molxbar.protocol.beats import MAX_STREAM_BYTES, beat_bits, pack_beats
from molxbar.sim.stalls import stall_draws

from .job import Job, JobResult, SegmentResult
from .scoreboard import Scoreboard

__all__ = ["Port", "StreamSource", "StreamSink", "stream_bytes_of", "run_job"]

#: Clock period in ns (any period works: the engine is simulated cycle by cycle).
CLOCK_NS = 10


def stream_bytes_of(payload_bits: int) -> int | None:
    """Bytes per beat of a stream whose payload is ``payload_bits`` wide; ``None`` for a
    plain byte stream (an 8-bit payload, no count field)."""
    if payload_bits == 8:
        return None
    for stream_bytes in range(1, MAX_STREAM_BYTES + 1):
        if beat_bits(stream_bytes) == payload_bits:
            return stream_bytes
    raise ValueError(f"a {payload_bits}-bit stream payload is neither a byte nor a beat")


class Port:
    """Integer reads and writes of one port, with little Python work per access.

    On Verilator (two-state, writes applied inertially) they go straight to the simulator
    handle: an ``int`` for up to 32 bits, a bit string beyond. Elsewhere they go through
    cocotb's values, which report X and Z and schedule writes after the edge.
    """

    def __init__(self, handle) -> None:
        self.handle = handle
        self.width = len(handle)
        raw = handle._handle if cocotb.SIM_NAME.lower().startswith("verilator") else None
        if raw is None:
            if self.width == 1:
                self.get = lambda: int(handle.value)
            else:
                self.get = lambda: handle.value.to_unsigned()
            self.set = lambda value: setattr(handle, "value", value)
        elif self.width <= 32:
            self.get = raw.get_signal_val_long
            self.set = lambda value: raw.set_signal_val_int(0, value)
        else:
            binary = f"0{self.width}b"
            get_binstr, set_binstr = raw.get_signal_val_binstr, raw.set_signal_val_binstr
            self.get = lambda: int(get_binstr(), 2)
            self.set = lambda value: set_binstr(0, format(value, binary))


class StreamSource:
    """Drives a ready/valid stream with beats, leaving random idle cycles.

    Once ``valid`` is high it stays high with the same payload until the beat is taken.

    Parameters
    ----------
    valid, ready, payload
        The stream's signals (``ready`` is the DUT's output).
    idle
        Probability that a cycle with a beat to send leaves ``valid`` low.
    rng
        The random generator of the idle cycles.
    """

    def __init__(self, valid, ready, payload, *, idle: float, rng: np.random.Generator) -> None:
        self.valid, self.ready, self.payload = Port(valid), Port(ready), Port(payload)
        self.stream_bytes = stream_bytes_of(len(payload))
        self._idle = stall_draws(rng, idle)
        self._beats: list[int] = []
        self._sizes: list[int] = []
        self._next = 0
        self.driving = False
        #: Bytes taken by the DUT since the last :meth:`send`.
        self.taken = 0
        #: Cycles ``valid`` was high and ``ready`` low.
        self.stall_cycles = 0
        #: Cycles with a beat to send and ``valid`` left low on purpose.
        self.idle_cycles = 0
        self.valid.set(0)

    def send(self, data: bytes) -> None:
        """Queue ``data`` (replacing whatever was not sent)."""
        if self.stream_bytes is None:
            self._beats = list(data)
            self._sizes = [1] * len(data)
        else:
            self._beats = list(pack_beats(data, self.stream_bytes))
            self._sizes = [
                min(self.stream_bytes, len(data) - k * self.stream_bytes)
                for k in range(len(self._beats))
            ]
        self._next = 0
        self.taken = 0

    @property
    def done(self) -> bool:
        return self._next == len(self._beats)

    def clear(self) -> None:
        """Drop the beat on the bus and everything queued (for a reset)."""
        self._beats, self._sizes, self._next = [], [], 0
        if self.driving:
            self.valid.set(0)
            self.driving = False

    def step(self) -> None:
        """Account for the edge just passed and drive the next cycle."""
        if self.driving:
            if self.ready.get():
                self.taken += self._sizes[self._next]
                self._next += 1
            else:
                self.stall_cycles += 1
                return  # hold the beat
        if self._next < len(self._beats):
            if next(self._idle):
                self.idle_cycles += 1
                if self.driving:
                    self.valid.set(0)
                    self.driving = False
                return
            self.payload.set(self._beats[self._next])
            if not self.driving:
                self.valid.set(1)
                self.driving = True
        elif self.driving:
            self.valid.set(0)
            self.driving = False


class StreamSink:
    """Takes beats from a ready/valid stream, with random back-pressure.

    Parameters
    ----------
    valid, ready, payload
        The stream's signals (``valid`` and ``payload`` are the DUT's outputs).
    stall, burst
        Probability that ``ready`` is low in a cycle, and the mean length of the runs of
        cycles that share a draw (:func:`~molxbar.sim.stalls.stall_draws`).
    rng
        The random generator of the back-pressure.
    """

    def __init__(
        self, valid, ready, payload, *, stall: float, rng: np.random.Generator, burst: int = 1
    ) -> None:
        self.valid, self.ready, self.payload = Port(valid), Port(ready), Port(payload)
        self.stream_bytes = stream_bytes_of(len(payload))
        self._shift = 8 * (self.stream_bytes or 0)
        self._mask = (1 << self._shift) - 1
        self._stall = stall_draws(rng, stall, burst)
        self.ready_now = False
        self.data = bytearray()
        #: Cycles ``valid`` was high and ``ready`` low.
        self.backpressure_cycles = 0
        self.ready.set(0)

    def step(self) -> bool:
        """Take the beat of the edge just passed, if any, and choose ``ready`` for the next;
        returns whether ``valid`` was high at the edge."""
        valid = self.valid.get()
        if valid:
            if self.ready_now:
                beat = self.payload.get()
                if self.stream_bytes is None:
                    self.data.append(beat)
                else:
                    count = beat >> self._shift
                    self.data += (beat & self._mask).to_bytes(self.stream_bytes, "little")[:count]
            else:
                self.backpressure_cycles += 1
        ready = not next(self._stall)
        if ready != self.ready_now:
            self.ready.set(int(ready))
            self.ready_now = ready
        return valid

    def hold(self) -> None:
        """Deassert ``ready`` (for a reset)."""
        if self.ready_now:
            self.ready.set(0)
            self.ready_now = False


async def _reset(dut, source: StreamSource, sink: StreamSink, cycles: int = 2) -> None:
    edge = RisingEdge(dut.clk)
    source.clear()
    sink.hold()
    dut.rst.value = 1
    for _ in range(cycles + 1):
        await edge
    dut.rst.value = 0


async def _segment(dut, job: Job, index: int, source, sink, board, rng, limit) -> SegmentResult:
    """One command stream on a freshly reset engine; returns when the engine is idle again
    (or right after the mid-traffic reset that ends the segment)."""
    commands = job.segment_commands(index)
    reset_after = job.segments[index].reset_after
    await _reset(dut, source, sink)
    source.send(commands)
    if board is not None:
        board.expect(commands)
    sink.data = bytearray()
    edge = RisingEdge(dut.clk)
    idle = Port(dut.idle)
    quiet = cycles = 0
    countdown = -1
    while True:
        await edge
        cycles += 1
        source.step()
        valid = sink.step()
        if board is not None:
            board.check(sink.data)
        if reset_after is not None:
            if countdown < 0 and source.taken >= reset_after:
                countdown = int(rng.integers(0, 24))  # a few more cycles of traffic
            if countdown == 0:
                taken = source.taken
                received = bytes(sink.data)
                if board is not None:
                    board.check_prefix(received, taken)
                return SegmentResult(taken=taken, responses=received, cycles=cycles, reset=True)
            countdown -= countdown > 0
        elif source.done and not valid and idle.get():
            quiet += 1
            if quiet >= 2:
                received = bytes(sink.data)
                if board is not None:
                    board.finish(received)
                return SegmentResult(
                    taken=source.taken, responses=received, cycles=cycles, reset=False
                )
        else:
            quiet = 0
        if cycles >= limit:
            raise TimeoutError(
                f"segment {index}: the engine did not finish within {limit} cycles "
                f"({source.taken} of {len(commands)} command bytes taken, "
                f"{len(sink.data)} response bytes)"
            )


@cocotb.test()
async def run_job(dut) -> None:
    """Run the job of ``$MOLXBAR_COSIM_JOB`` and write its result next to it."""
    job = Job.load(Path(os.environ["MOLXBAR_COSIM_JOB"]))
    result = JobResult(seed=job.seed, payload_bits=len(dut.cmd__payload))
    result.stream_bytes = stream_bytes_of(result.payload_bits)
    rng = np.random.default_rng(job.seed)
    dut._log.info("molxbar cosim: seed %d, %d segment(s)", job.seed, len(job.segments))
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    source = StreamSource(
        dut.cmd__valid, dut.cmd__ready, dut.cmd__payload, idle=job.idle_in, rng=rng
    )
    sink = StreamSink(
        dut.rsp__valid,
        dut.rsp__ready,
        dut.rsp__payload,
        stall=job.stall_out,
        burst=job.stall_burst,
        rng=rng,
    )
    board = Scoreboard(job.config) if job.check else None
    dut.rst.value = 0
    start = time.perf_counter()
    try:
        for index in range(len(job.segments)):
            commands = job.segment_commands(index)
            limit = job.max_cycles or 20_000 + 4_000 * len(commands)
            segment = await _segment(dut, job, index, source, sink, board, rng, limit)
            result.segments.append(segment)
        result.vmm_cycles = dut.vmm_cycles.value.to_unsigned()
    except (AssertionError, TimeoutError) as error:
        result.error = f"seed {job.seed}: {error}"
        raise
    finally:
        result.seconds = time.perf_counter() - start
        result.cmd_stall_cycles = source.stall_cycles
        result.cmd_idle_cycles = source.idle_cycles
        result.rsp_backpressure_cycles = sink.backpressure_cycles
        result.save(job.folder)
