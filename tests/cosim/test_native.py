"""The native Verilator driver: the same jobs as the cocotb bench, the same bytes, every byte
held to the golden engine (:mod:`molxbar.sim.cosim.native`)."""

import numpy as np
import pytest

from molxbar.emulator import CrossbarConfig
from molxbar.hdl.options import EngineOptions
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import Layout, Opcode, encode_command
from molxbar.sim.backends import run_stream
from molxbar.sim.cosim import Job, Segment, run_job
from molxbar.sim.cosim.bench import cosim_vmm_rate
from molxbar.sim.cosim.coverage import EDGES
from molxbar.sim.cosim.native import run_native
from molxbar.sim.cosim.simulators import CosimError
from molxbar.sim.stimulus import preamble, random_commands
from tests.support.skips import need, only_with_slow

from .test_cosim import NOISY, SMALL, default_job, job_coverage, seed_for


def test_the_native_driver_and_the_cocotb_bench_give_the_same_bytes_and_cycles():
    """Without stalls both drivers see the same cycles; with them, the same bytes."""
    need("verilator")
    seed = seed_for(404)
    rng = np.random.default_rng(seed)
    stream = preamble(NOISY, rng) + random_commands(NOISY, rng, 120, long_batch=24)
    plain = Job(NOISY, [Segment(stream), Segment(stream)], seed=seed)
    native, bench = run_native(plain), run_job(plain, "verilator")
    assert [s.responses for s in native.segments] == [s.responses for s in bench.segments]
    assert [s.cycles for s in native.segments] == [s.cycles for s in bench.segments]
    assert native.vmm_cycles == bench.vmm_cycles > 0
    stalled = Job(NOISY, [Segment(stream)], idle_in=0.3, stall_out=0.7, stall_burst=8, seed=seed)
    native, bench = run_native(stalled), run_job(stalled, "verilator")
    assert native.responses == bench.responses == GoldenEngine(NOISY).execute(stream)
    assert native.cmd_idle_cycles > 0 and native.rsp_backpressure_cycles > 0


def test_the_default_run_covers_every_command_and_status():
    need("verilator")
    seed = seed_for(101)
    job = default_job(NOISY, seed, count=600)
    result = run_native(job)
    coverage = job_coverage(job, result)
    assert [s.reset for s in result.segments] == [False, True, False]
    assert coverage.missing() == [] and set(coverage.bins["edge"]) == set(EDGES)


#: (config, stream_bytes) of the back-pressure grid: one-byte beats on an 8-column array
#: with a lane per column, the noisy 2-lane engine at its own width, a wide 4-row array.
GRID_DESIGNS = [
    pytest.param(SMALL, 1, id="8x8-8lanes-1byte"),
    pytest.param(NOISY, None, id="8x8-2lanes-noisy"),
    pytest.param(CrossbarConfig(rows=4, cols=32, lanes=8), 1, id="4x32-8lanes-1byte"),
]


#: The back-pressure grid: batch lengths, the reader's refusal probabilities, and the mean
#: lengths of its runs of refusals.
GRID = {"vectors": (1, 5, 24, 255), "stall_out": (0.0, 0.5, 0.9, 0.99), "burst": (1, 30, 1000)}
#: Its corners, for the default test run.
CORNERS = [(255, 0.0, 1), (255, 0.9, 30), (24, 0.99, 1), (24, 0.99, 1000), (5, 0.99, 30)]


def backpressure_grid(config, stream_bytes, points, seed):
    """Per point (vectors, stall_out, burst): two batches around a SYNC, with idle cycles on
    the command stream; every run must finish (a hang fails on the cycle limit, scaled by the
    back-pressure), equal to the golden engine. Returns the runs made and the cycles of
    back-pressure they met (a short run may meet none in runs of a thousand cycles)."""
    backpressure = 0
    rng = np.random.default_rng(seed)
    layout = Layout(config)
    for runs, (vectors, stall_out, burst) in enumerate(points, 1):
        x = rng.integers(config.x_min, config.x_max + 1, (vectors, config.rows))
        commands = b"".join(
            [
                preamble(config, rng),
                encode_command(layout, Opcode.RUN_BATCH, count=vectors, x=x),
                encode_command(layout, Opcode.SYNC, value=vectors % 256),
                encode_command(layout, Opcode.RUN_BATCH, count=vectors, x=x[::-1]),
            ]
        )
        moved = len(commands) + len(GoldenEngine(config).execute(commands))
        job = Job(
            config, [Segment(commands)], idle_in=0.1, stall_out=stall_out, stall_burst=burst,
            seed=seed + runs, max_cycles=100_000 + int(8 * moved / (1 - stall_out)) + 4 * burst,
        )  # fmt: skip
        result = run_native(job, options=EngineOptions(stream_bytes=stream_bytes))
        if stall_out == 0:
            assert result.rsp_backpressure_cycles == 0
        backpressure += result.rsp_backpressure_cycles
    return runs, backpressure


@pytest.mark.parametrize(("config", "stream_bytes"), GRID_DESIGNS)
def test_no_batch_hangs_at_the_corners_of_the_backpressure_grid(config, stream_bytes):
    """The longest batches at no and at heavy back-pressure, short ones against a reader
    refusing 99 % of the cycles, one at a time and in runs of 1,000."""
    need("verilator")
    runs, backpressure = backpressure_grid(config, stream_bytes, CORNERS, seed_for(606))
    assert runs == len(CORNERS) and backpressure > 0


@pytest.mark.slow
@pytest.mark.parametrize(("config", "stream_bytes"), GRID_DESIGNS)
def test_no_batch_hangs_anywhere_in_the_backpressure_grid(config, stream_bytes, request):
    """Every point of :data:`GRID` (no runs of refusals without refusals): 40 a design."""
    only_with_slow(request, "the whole back-pressure grid")
    need("verilator")
    points = [
        (vectors, stall_out, burst)
        for vectors in GRID["vectors"]
        for stall_out in GRID["stall_out"]
        for burst in (GRID["burst"] if stall_out else (1,))
    ]
    runs, backpressure = backpressure_grid(config, stream_bytes, points, seed_for(606))
    assert runs == 40 and backpressure > 0


def test_a_mismatch_names_the_seed_and_the_command():
    need("verilator")
    layout = Layout(SMALL)
    commands = encode_command(layout, Opcode.SYNC, value=1) + encode_command(layout, Opcode.STATUS)
    wrong = Job(SMALL.replace(x_bits=12), [Segment(commands)], seed=7)
    with pytest.raises(CosimError, match=r"seed 7: segment 0: command 1 \(command byte 2: 02\)"):
        run_native(wrong, design=SMALL)


def test_a_hang_is_a_timeout_that_says_how_far_the_engine_got():
    need("verilator")
    x = np.ones((40, SMALL.rows), dtype=int)
    commands = encode_command(Layout(SMALL), Opcode.RUN_BATCH, count=40, x=x)
    job = Job(SMALL, [Segment(commands)], max_cycles=300, seed=3)
    stopped = (
        r"seed 3: segment 0: the engine did not finish within 300 cycles "
        rf"\(\d+ of {len(commands)} command bytes taken, \d+ response bytes\)"
    )
    with pytest.raises(CosimError, match=stopped):
        run_native(job)


def test_the_verilator_backend_runs_natively_and_reports_progress():
    need("verilator")
    rng = np.random.default_rng(9)
    commands = preamble(SMALL, rng) + random_commands(SMALL, rng, 200, vmm_weight=3.0)
    seen = []
    result = run_stream(SMALL, commands, "verilator", progress=seen.append)
    assert result.responses == GoldenEngine(SMALL).execute(commands)
    assert seen[-1] == len(commands) and seen == sorted(seen)
    assert result.cycles > 0 and result.vmm_cycles > 0


def test_the_cosim_bench_measures_the_native_driver_too():
    need("verilator")
    figures = cosim_vmm_rate("verilator", 20, config=SMALL, rows=2, native=True)
    assert figures["driver"] == "native" and figures["vectors"] == 18
    assert figures["vmm_per_s"] == figures["vectors"] / figures["sim_seconds"]
    assert figures["cycles_per_vector"] >= SMALL.rows * SMALL.cols / SMALL.lanes
    with pytest.raises(ValueError, match="'icarus': the native driver runs Verilator only"):
        cosim_vmm_rate("icarus", 20, config=SMALL, native=True)
