"""cocotb on the generated Verilog: Verilator and Icarus against the golden engine.

Every run compares each response byte with the golden engine inside the simulator (the
scoreboard of :mod:`molxbar.sim.cosim.testbench`); a mismatch fails with the seed and the first
differing command. Random streams print their seed; ``MOLXBAR_COSIM_SEED`` replays one.
A simulator that is not installed skips its tests with the way to install it.
"""

import os

import numpy as np
import pytest

from molxbar.cli import main
from molxbar.emulator import CrossbarConfig
from molxbar.hdl.options import EngineOptions
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import Layout, Opcode, Status, encode_command
from molxbar.sim.cosim import Job, Segment, run_job, simulator_missing
from molxbar.sim.cosim.bench import cosim_vmm_rate
from molxbar.sim.cosim.cache import design_key, verilog_file
from molxbar.sim.cosim.coverage import EDGES, ERROR_STATUSES, Coverage, stream_coverage
from molxbar.sim.cosim.simulators import (
    PUBLIC_FLAT_RW,
    CosimError,
    icarus_time_zero,
    ports_only_runner,
)
from molxbar.sim.stimulus import directed_commands, preamble, program_rows, random_commands
from tests.support.skips import need

#: The configuration ``molxbar vmm`` uses for an 8x8 level file (ideal14, 8 lanes).
SMALL = CrossbarConfig(rows=8, cols=8, lanes=8)
#: Narrower inputs (so BAD_INPUT is reachable), noise amplitudes, two lanes.
NOISY = CrossbarConfig(
    rows=8, cols=8, lanes=2, x_bits=12, read_sigma=0.4, read_sigma_slope=1e-4, write_sigma=0.6,
    seed=99,
)  # fmt: skip
FULL = CrossbarConfig(lanes=64)

SIMULATORS = [
    pytest.param("verilator", id="verilator"),
    pytest.param("icarus", id="icarus"),
]


def seed_for(default):
    """The seed of a random test: ``MOLXBAR_COSIM_SEED`` if set; printed either way."""
    seed = int(os.environ.get("MOLXBAR_COSIM_SEED", default))
    print(f"MOLXBAR_COSIM_SEED={seed}")
    return seed


def default_job(config, seed, *, count=150):
    """The default run: the directed stream, then a reset in mid-traffic during a random
    stream, then a random stream on the fresh engine; random idle cycles on the command
    stream and back-pressure on the response stream throughout."""
    rng = np.random.default_rng(seed)
    cut = preamble(config, rng) + random_commands(config, rng, count)
    after = preamble(config, rng) + random_commands(config, rng, count)
    segments = [
        Segment(directed_commands(config, rng)),
        Segment(cut, reset_after=int(rng.integers(len(cut) // 3, 2 * len(cut) // 3))),
        Segment(after),
    ]
    return Job(config, segments, idle_in=0.3, stall_out=0.4, seed=seed)


def job_coverage(job, result):
    coverage = Coverage()
    for segment, outcome in zip(job.segments, result.segments, strict=True):
        coverage.add_stream(
            job.config,
            segment.commands[: outcome.taken] if outcome.reset else segment.commands,
            outcome.responses,
            stream_bytes=result.stream_bytes,
            cut=outcome.reset,
        )
    return stream_coverage(coverage, result)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_default_run_covers_every_command_and_status(simulator):
    """The default run on the noisy 8x8 engine matches the golden engine byte for byte and
    hits every command, every status, every edge case and every stream condition."""
    need(simulator)
    seed = seed_for(101)
    job = default_job(NOISY, seed, count=150 if simulator == "verilator" else 40)
    result = run_job(job, simulator)
    coverage = job_coverage(job, result)
    print(coverage.report())
    assert [s.reset for s in result.segments] == [False, True, False]
    assert coverage.missing() == []
    assert {Status[name] for name, n in coverage.bins["status"].items() if n} >= ERROR_STATUSES
    assert set(coverage.bins["edge"]) == set(EDGES)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_random_stream_with_stalls(simulator):
    """Random commands (valid and out-of-range fields, unknown opcodes, batches of up to 24
    vectors) on the 8x8, 8-lane engine with idle cycles and back-pressure in runs."""
    need(simulator)
    seed = seed_for(202)
    rng = np.random.default_rng(seed)
    c = SMALL
    commands = program_rows(c, rng.integers(0, c.levels, (c.rows, c.cols)))
    count = 300 if simulator == "verilator" else 60
    commands += random_commands(c, rng, count, vmm_weight=3.0, long_batch=24)
    job = Job(c, [Segment(commands)], idle_in=0.2, stall_out=0.5, stall_burst=8, seed=seed)
    result = run_job(job, simulator)
    assert result.cmd_stall_cycles > 0 and result.rsp_backpressure_cycles > 0


#: Designs for the back-pressure runs: (config, stream_bytes). One-byte beats (the bridge's
#: width) on an 8-column array with a lane per column, the most vectors behind the lanes; the
#: noisy two-lane engine at its own width; a wide four-row array.
BACKPRESSURE_DESIGNS = [
    pytest.param(SMALL, 1, id="8x8-8lanes-1byte"),
    pytest.param(NOISY, None, id="8x8-2lanes-noisy"),
    pytest.param(CrossbarConfig(rows=4, cols=32, lanes=8), 1, id="4x32-8lanes-1byte"),
]


@pytest.mark.parametrize(("config", "stream_bytes"), BACKPRESSURE_DESIGNS)
def test_long_batches_under_heavy_backpressure(config, stream_bytes):
    """Batches of hundreds of vectors and random streams with long batches, against a reader
    that refuses 0 to 99 % of the cycles, alone or in runs of hundreds: every response byte
    arrives, equal to the golden engine's, and the engine finishes."""
    need("verilator")
    seed = seed_for(505)
    rng = np.random.default_rng(seed)
    c, layout = config, Layout(config)
    for stall_out, stall_burst, vectors in [(0.0, 1, 300), (0.9, 1, 100), (0.99, 1, 12),
                                            (0.95, 500, 40), (0.5, 50, 200)]:  # fmt: skip
        x = rng.integers(c.x_min, c.x_max + 1, (vectors, c.rows))
        commands = b"".join(
            [
                preamble(c, rng),
                encode_command(layout, Opcode.RUN_BATCH, count=vectors, x=x),
                encode_command(layout, Opcode.SYNC, value=vectors % 256),
                random_commands(c, rng, 40, vmm_weight=3.0, long_batch=40),
            ]
        )
        # A hang fails fast: eight cycles per byte in or out, scaled by the back-pressure.
        moved = len(commands) + len(GoldenEngine(c).execute(commands))
        job = Job(
            c, [Segment(commands)], idle_in=0.1, stall_out=stall_out, stall_burst=stall_burst,
            seed=seed, max_cycles=100_000 + int(8 * moved / (1 - stall_out)),
        )  # fmt: skip
        result = run_job(job, "verilator", options=EngineOptions(stream_bytes=stream_bytes))
        if stall_out > 0:
            assert result.rsp_backpressure_cycles > 0


def test_long_random_sequence():
    """Thousands of random commands through Verilator, several resets in mid-traffic."""
    need("verilator")
    seed = seed_for(303)
    rng = np.random.default_rng(seed)
    c = NOISY
    segments = []
    for k in range(4):
        stream = preamble(c, rng) + random_commands(c, rng, 1000, vmm_weight=2.0)
        cut = int(rng.integers(len(stream) // 2, len(stream))) if k < 3 else None
        segments.append(Segment(stream, reset_after=cut))
    job = Job(c, segments, idle_in=0.1, stall_out=0.2, seed=seed)
    result = run_job(job, "verilator")
    coverage = job_coverage(job, result)
    assert sum(coverage.bins["command"].values()) >= 2000
    assert coverage.bins["stream"]["reset_mid_traffic"] == 3


def test_coverage_of_a_stream_cut_by_a_reset():
    """A reset may cut the last response short: a cut stream's coverage leaves it out."""
    layout = Layout(SMALL)
    commands = encode_command(layout, Opcode.SYNC, value=5) + encode_command(layout, Opcode.RUN_VMM)
    responses = GoldenEngine(SMALL).execute(commands)[:-3]  # RUN_VMM's last 3 bytes missing
    with pytest.raises(ValueError, match="RUN_VMM response needs"):
        Coverage().add_stream(SMALL, commands, responses)
    coverage = Coverage().add_stream(SMALL, commands, responses, cut=True)
    assert coverage.bins["status"]["OK"] == 1  # SYNC's response only
    assert coverage.bins["command"]["RUN_VMM"] == 1


def test_mismatch_names_seed_and_command():
    """A response that differs from the golden engine fails the run with the seed and the
    command: here the engine is told it has 12-bit inputs but was built for 16."""
    need("verilator")
    layout = Layout(SMALL)
    commands = encode_command(layout, Opcode.SYNC, value=1) + encode_command(layout, Opcode.STATUS)
    wrong = Job(SMALL.replace(x_bits=12), [Segment(commands)], seed=7)
    with pytest.raises(CosimError, match=r"seed 7: command 1 \(command byte 2: 02\)"):
        run_job(wrong, "verilator", design=SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_full_array_64_lanes(simulator):
    """The full 64x64 engine with 64 lanes: programming, batches, leaky cells, the ADC."""
    need(simulator)
    seed = seed_for(404)
    c, layout = FULL, Layout(FULL)
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, c.levels, (c.rows, c.cols))
    if simulator == "verilator":
        commands = program_rows(c, levels)
    else:  # Icarus runs the full engine at tens of cycles a second: program a few rows
        commands = b"".join(
            encode_command(layout, Opcode.WRITE_ROW, row=r, levels=levels[r]) for r in (0, 31, 63)
        )
    n = 20 if simulator == "verilator" else 2
    x = rng.integers(c.x_min, c.x_max + 1, (n, c.rows))
    commands += encode_command(layout, Opcode.RUN_BATCH, count=n, x=x)
    commands += encode_command(layout, Opcode.SET_RECT, shift=2)
    commands += encode_command(layout, Opcode.SET_ADC, bits=24, shift=8)
    commands += encode_command(layout, Opcode.LOAD_INPUT, x=x[0])
    commands += encode_command(layout, Opcode.RUN_VMM)
    if simulator == "verilator":
        commands += random_commands(c, rng, 100, max_batch=2)
    job = Job(c, [Segment(commands)], idle_in=0.05, stall_out=0.1, seed=seed)
    result = run_job(job, simulator)
    assert result.stream_bytes is not None


def test_verilator_runner_drops_public_flat_rw_and_fails_loudly_without_it(monkeypatch):
    """The one override of cocotb's runner internals removes the option that makes every
    signal public; a cocotb that stops passing it makes the build fail, not slow down."""
    from cocotb_tools.runner import Verilator

    runner = ports_only_runner()
    command = [["verilator", "-cc", PUBLIC_FLAT_RW, "e.v"], ["make", "-C", "build"]]
    monkeypatch.setattr(Verilator, "_build_command", lambda self: command)
    assert runner._build_command() == [["verilator", "-cc", "e.v"], ["make", "-C", "build"]]
    monkeypatch.setattr(Verilator, "_build_command", lambda self: [["verilator", "e.v"]])
    with pytest.raises(CosimError, match="no longer passes --public-flat-rw"):
        runner._build_command()


def test_missing_simulator_says_how_to_install(monkeypatch):
    monkeypatch.setattr("molxbar.sim.cosim.simulators.shutil.which", lambda name: None)
    assert "apt-get install iverilog" in simulator_missing("icarus")
    with pytest.raises(ValueError, match="choose one of"):
        simulator_missing("modelsim")


def test_verilog_cache_reuses_and_keys_by_config():
    tiny = CrossbarConfig(rows=4, cols=4, lanes=2, g_bits=6, x_bits=6)
    first = verilog_file(tiny)
    assert verilog_file(tiny) == first
    assert design_key(tiny) != design_key(tiny.replace(lanes=4))
    assert design_key(tiny) != design_key(tiny, EngineOptions(stream_bytes=2))
    assert design_key(tiny) != design_key(tiny, EngineOptions(speck_unroll=9))
    assert design_key(tiny) == design_key(tiny, EngineOptions())
    text = first.read_text()
    assert "module molxbar_engine(" in text
    patched = icarus_time_zero(text)
    assert "initial #0" in patched and "dump_module" in patched


@pytest.mark.parametrize(
    ("backend", "waves"),
    [("verilator", ".vcd"), ("icarus", None), ("icarus", ".fst")],
    ids=["verilator-vcd", "icarus", "icarus-fst"],
)
def test_vmm_backend_returns_what_golden_returns(tmp_path, backend, waves):
    need(backend)
    rng = np.random.default_rng(5)
    np.save(tmp_path / "L.npy", rng.integers(0, SMALL.levels, (SMALL.rows, SMALL.cols)))
    np.save(tmp_path / "X.npy", rng.integers(SMALL.x_min + 1, SMALL.x_max + 1, (3, SMALL.rows)))
    common = ["vmm", "--levels", str(tmp_path / "L.npy"), "--inputs", str(tmp_path / "X.npy")]
    common += ["--rect-shift", "3", "--adc-bits", "20", "--adc-shift", "4"]
    assert main([*common, "--out", str(tmp_path / "golden.npy")]) == 0
    extra = [] if waves is None else ["--waves", str(tmp_path / f"run{waves}")]
    assert main([*common, "--out", str(tmp_path / "sim.npy"), "--backend", backend, *extra]) == 0
    want, got = np.load(tmp_path / "golden.npy"), np.load(tmp_path / "sim.npy")
    assert got.shape == (3, SMALL.cols) and (got == want).all()
    if waves is not None:
        trace = (tmp_path / f"run{waves}").read_bytes()
        assert len(trace) > 1000
        if waves == ".vcd":
            assert b"$enddefinitions" in trace and b"cmd__valid" in trace


def test_vmm_waves_need_a_simulator_backend(tmp_path, capsys):
    np.save(tmp_path / "L.npy", np.zeros((4, 4), dtype=int))
    np.save(tmp_path / "X.npy", np.ones((1, 4), dtype=int))
    args = ["vmm", "--levels", str(tmp_path / "L.npy"), "--inputs", str(tmp_path / "X.npy")]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--out", str(tmp_path / "Y.npy"), "--waves", str(tmp_path / "w.vcd")])
    assert stop.value.code == 2
    assert "waves need a simulator backend" in capsys.readouterr().err
    assert not (tmp_path / "Y.npy").exists()


def test_wave_formats_are_checked_before_building():
    with pytest.raises(ValueError, match=r"verilator writes \.vcd files"):
        run_job(Job(SMALL, [Segment(b"")]), "verilator", waves="trace.fst")
    with pytest.raises(ValueError, match=r"icarus writes \.fst files"):
        run_job(Job(SMALL, [Segment(b"")]), "icarus", waves="trace.vcd")


def test_cosim_bench_measures_a_steady_rate():
    need("verilator")
    figures = cosim_vmm_rate("verilator", 20, config=SMALL, rows=2)
    # The rate is the difference of two runs' wall times: on a loaded machine its sign is
    # noise, so only its definition is checked here (figures: ``molxbar bench``).
    assert figures["vectors"] == 18
    assert figures["vmm_per_s"] == figures["vectors"] / figures["sim_seconds"]
    assert figures["cycles_per_vector"] >= SMALL.rows * SMALL.cols / SMALL.lanes


def test_a_stream_cut_inside_a_command_runs_alike_on_every_backend():
    """The whole commands run and are answered; the trailing partial command is returned
    unrun: cut in a row write's levels, in a batch's missing vectors, after a lone opcode."""
    from molxbar.sim.backends import BACKENDS, run_stream

    layout = Layout(SMALL)
    head = encode_command(layout, Opcode.WRITE_CELL, row=2, col=3, level=1234)
    head += encode_command(layout, Opcode.RUN_BATCH, count=1, x=np.arange(8)[None])
    tails = [
        encode_command(layout, Opcode.WRITE_ROW, row=1, levels=np.arange(8) * 3)[:-5],
        encode_command(layout, Opcode.RUN_BATCH, count=3, x=np.ones((3, 8), dtype=int))[:-16],
        bytes([Opcode.READ_CELL]),
    ]
    want = GoldenEngine(SMALL).execute(head)
    for tail in tails:
        for name in BACKENDS:
            if name in ("verilator", "icarus") and simulator_missing(name):
                continue
            result = run_stream(SMALL, head + tail, name)
            assert result.responses == want and result.partial == tail, (name, tail[:1])


def test_a_design_built_once_says_so_once(tmp_path, monkeypatch, capsys):
    """The Verilog generation and the simulator build are named while they run, the first
    time only."""
    need("icarus")
    monkeypatch.setenv("MOLXBAR_CACHE", str(tmp_path))
    tiny = CrossbarConfig(rows=4, cols=4, lanes=2, g_bits=6, x_bits=6)
    status = encode_command(Layout(tiny), Opcode.STATUS)
    run_job(Job(tiny, [Segment(status)]), "icarus")
    err = capsys.readouterr().err
    assert "molxbar: generating the Verilog of the 4x4, 2-lane engine (once" in err
    assert "molxbar: compiling the design with Icarus Verilog (once per design)" in err
    run_job(Job(tiny, [Segment(status)]), "icarus")
    assert "molxbar:" not in capsys.readouterr().err
