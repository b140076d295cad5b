"""``molxbar verify``: long random command streams through a simulator, every response byte
compared with the golden engine.

The run is cut into segments: each is a fresh engine (a reset), the :func:`preamble`, then
``segment`` random commands (:func:`~molxbar.sim.stimulus.random_commands`, long batches
included) with random idle cycles on the command stream and bursty back-pressure on the
response stream. Segment ``k`` of seed ``S`` draws everything from
``np.random.default_rng([S, k])``, so ``--seed S`` replays a run and the summary names the
segment of a mismatch. Verilator runs the native driver (:mod:`molxbar.sim.cosim.native`;
``--cocotb`` for the cocotb bench), Icarus the cocotb bench; both hold every byte to the
golden engine with the scoreboard of :mod:`molxbar.sim.cosim.scoreboard`. On Amaranth the
responses are compared after each segment
(:func:`~molxbar.protocol.difference.first_difference`). A coverage table counts the
commands, statuses, edge cases and stream conditions met.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from molxbar.emulator.config import PRESETS, CrossbarConfig, preset

__all__ = ["VERIFY_CONFIGS", "add_verify_command", "run_verify"]

#: The configurations a run can name: the 8x8 test configuration with noise amplitudes and
#: narrow inputs (every status reachable), the boards' default crossbars (``board-*``; the
#: ``*-ideal`` and ``*-twin`` ones by name) and the presets (64x64).
VERIFY_CONFIGS = {
    "8x8-noisy": lambda: CrossbarConfig(
        rows=8, cols=8, lanes=2, x_bits=12, read_sigma=0.4, read_sigma_slope=1e-4,
        write_sigma=0.6, seed=99,
    ),  # fmt: skip
    **{
        f"board-{short}{suffix}": (
            lambda board=board, crossbar=crossbar: _board_config(board, crossbar)
        )
        for short, board in (("icebreaker", "icebreaker"), ("ulx3s", "ulx3s-85f"))
        for suffix, crossbar in (("", None), ("-ideal", "ideal"), ("-twin", "twin"))
    },
    **{name: (lambda name=name: preset(name)) for name in PRESETS},
}
BACKENDS = ("verilator", "icarus", "amaranth")


def _board_config(board: str, crossbar: str | None) -> CrossbarConfig:
    from molxbar.boards.targets import BOARDS, board_config

    return board_config(BOARDS[board], crossbar=crossbar)


def _segment_commands(config: CrossbarConfig, rng: np.random.Generator, count: int) -> bytes:
    from molxbar.sim.stimulus import preamble, random_commands

    return preamble(config, rng) + random_commands(
        config, rng, count, vmm_weight=2.0, long_batch=24
    )


def _run_segment(
    backend: str,
    config: CrossbarConfig,
    commands: bytes,
    seed: int,
    stalls: tuple[float, float, int],
    reset_after: int | None,
    design: CrossbarConfig | None,
    cocotb: bool,
):
    """Run one segment; returns (command bytes taken, responses, cosim result or None);
    raises on a mismatch. Verilator runs the native driver unless ``cocotb``."""
    idle_in, stall_out, stall_burst = stalls
    if backend == "amaranth":
        from molxbar.protocol.difference import first_difference
        from molxbar.sim.simulate import simulate_engine

        result = simulate_engine(
            config,
            commands,
            idle_in=idle_in,
            stall_out=stall_out,
            stall_burst=stall_burst,
            seed=seed,
        )
        difference = first_difference(config, commands, result.responses)
        if difference is not None:
            raise AssertionError(f"amaranth: {difference}")
        return len(commands), result.responses, None
    from molxbar.sim.cosim import Job, Segment, run_job

    job = Job(
        config,
        [Segment(commands, reset_after)],
        idle_in=idle_in,
        stall_out=stall_out,
        stall_burst=stall_burst,
        seed=seed,
    )
    if backend == "verilator" and not cocotb:
        from molxbar.sim.cosim.native import run_native

        result = run_native(job, design=design)
    else:
        result = run_job(job, backend, design=design)
    outcome = result.segments[0]
    return outcome.taken, outcome.responses, result


def _driver(backend: str, cocotb: bool) -> str:
    """What drives the simulator: ``native`` (Verilator's C++ loop), ``cocotb`` or the
    Amaranth simulator's ``testbench``."""
    if backend == "amaranth":
        return "testbench"
    return "native" if backend == "verilator" and not cocotb else "cocotb"


def run_verify(
    backend: str,
    config: CrossbarConfig,
    *,
    commands: int,
    seed: int = 0,
    segment: int = 2_000,
    progress: bool = True,
    design: CrossbarConfig | None = None,
    cocotb: bool = False,
) -> dict:
    """Run at least ``commands`` random commands, in segments of ``segment`` (a reset
    cuts one short, so as many segments run as it takes), on ``backend`` and return the
    summary: counts, rates, coverage, and the first mismatch
    (``None`` if every byte matched). On Verilator and Icarus one segment in four ends with
    a reset in mid-traffic; ``design`` simulates the engine generated for another
    configuration (the golden engine keeps ``config``: a way to see a run fail). Verilator
    runs the native driver (:mod:`molxbar.sim.cosim.native`), or the cocotb bench when
    ``cocotb``."""
    from tqdm import tqdm

    from molxbar.protocol.framing import split_commands
    from molxbar.protocol.spec import Layout
    from molxbar.sim.cosim.coverage import Coverage, stream_coverage

    if backend not in BACKENDS:
        raise ValueError(f"backend = {backend!r} must be one of {', '.join(BACKENDS)}")
    if commands < 1 or segment < 1:
        raise ValueError(f"commands = {commands} and segment = {segment} must be >= 1")
    coverage = Coverage()
    summary: dict = {
        "backend": backend,
        "driver": _driver(backend, cocotb),
        "config": config.as_dict(),
        "seed": seed,
        "segments": 0,
        "commands": 0,
        "command_bytes": 0,
        "response_bytes": 0,
        "mismatch": None,
    }
    start = time.perf_counter()
    bar = tqdm(total=commands, unit="cmd", disable=not progress or None, file=sys.stderr)
    try:
        k = 0
        while summary["commands"] < commands:
            rng = np.random.default_rng([seed, k])
            stream = _segment_commands(config, rng, segment)
            stalls = (
                float(rng.choice([0.0, 0.2, 0.5])),
                float(rng.choice([0.0, 0.4, 0.8, 0.95])),
                int(rng.choice([1, 1, 8, 64])),
            )
            cut = backend != "amaranth" and rng.random() < 0.25
            reset_after = int(rng.integers(len(stream) // 2, len(stream))) if cut else None
            try:
                taken, responses, result = _run_segment(
                    backend, config, stream, seed + k, stalls, reset_after, design, cocotb
                )
            except Exception as error:  # a mismatch or a timeout: the run's finding
                summary["mismatch"] = {
                    "segment": k,
                    "stalls": stalls,
                    "error": str(error).splitlines()[0][:500],
                }
                break
            reset = result is not None and result.segments[0].reset
            stream = stream[:taken] if reset else stream
            coverage.add_stream(config, stream, responses, cut=reset)
            if result is not None:
                stream_coverage(coverage, result)
            ran = len(split_commands(Layout(config), stream))
            summary["segments"] += 1
            summary["commands"] += ran
            summary["command_bytes"] += len(stream)
            summary["response_bytes"] += len(responses)
            bar.update(min(ran, commands - bar.n))
            k += 1
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    summary["seconds"] = round(seconds, 2)
    summary["commands_per_s"] = round(summary["commands"] / seconds, 1) if seconds else None
    summary["coverage"] = coverage.as_dict()
    summary["coverage_missed"] = coverage.missing()
    summary["coverage_table"] = coverage.report()
    return summary


def _print_summary(summary: dict, out=sys.stdout) -> None:
    print(summary["coverage_table"], file=out)
    print(
        f"{summary['backend']} ({summary['driver']}): {summary['commands']:,} commands in "
        f"{summary['segments']} segments ({summary['command_bytes']:,} command and "
        f"{summary['response_bytes']:,} response bytes), {summary['seconds']:.0f} s, "
        f"{summary['commands_per_s']:,} commands/s, seed {summary['seed']}",
        file=out,
    )
    mismatch = summary["mismatch"]
    if mismatch is None:
        print("every response byte matched the golden engine", file=out)
    else:
        print(
            f"MISMATCH in segment {mismatch['segment']} (stalls {mismatch['stalls']}): "
            f"{mismatch['error']}",
            file=out,
        )


def cmd_verify(args: argparse.Namespace) -> int:
    from molxbar.commands.common import output_file

    json_file = None if args.json is None else output_file(args.json, "--json")
    config = VERIFY_CONFIGS[args.config]()
    summary = run_verify(
        args.backend,
        config,
        commands=args.commands,
        seed=args.seed,
        segment=args.segment,
        progress=not args.quiet,
        cocotb=args.cocotb,
    )
    _print_summary(summary, out=sys.stderr)
    if json_file is not None:
        record = {k: v for k, v in summary.items() if k != "coverage_table"}
        json_file.write_text(json.dumps(record, indent=1) + "\n")
    return 0 if summary["mismatch"] is None else 1


def add_verify_command(commands) -> None:
    """Add ``verify`` to the subcommand set ``commands``."""
    from molxbar.commands.common import positive_int

    verify = commands.add_parser(
        "verify",
        help="random command streams on a simulator, every byte against the golden engine",
        description="Run random command streams (every command, valid and out of range, "
        "long batches, idle cycles and bursty back-pressure) through a simulator in "
        "segments, compare every response byte with the golden engine, and print a "
        "coverage table and a summary. Exit status 1 on a mismatch; --seed replays a run.",
    )
    verify.add_argument("--backend", choices=BACKENDS, default="verilator")
    verify.add_argument("--commands", type=positive_int, default=10_000, metavar="N")
    verify.add_argument("--seed", type=int, default=0)
    verify.add_argument(
        "--config", choices=sorted(VERIFY_CONFIGS), default="8x8-noisy", help="the crossbar"
    )
    verify.add_argument(
        "--segment",
        type=positive_int,
        default=2_000,
        metavar="K",
        help="random commands per segment (each after a reset)",
    )
    verify.add_argument(
        "--cocotb",
        action="store_true",
        help="on Verilator, run the cocotb bench instead of the native driver",
    )
    verify.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    verify.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    verify.set_defaults(run=cmd_verify)
