"""Figures of the co-simulation: verified 64x64 VMMs per second through cocotb on each
simulator, and what generating and building the design costs.

A run programs the levels and sends one RUN_BATCH of random vectors; every response byte is
compared with the golden engine as it arrives. The rate is measured inside the simulator
process (without its start-up or the build) as the difference between a long and a short
batch, so it is the steady rate of verified vectors.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.spec import Layout, Opcode, encode_command

from .cache import cache_dir, design_key, verilog_file
from .job import Job, Segment
from .simulators import SIMULATORS, build, run_job, simulator_missing

__all__ = ["cosim_vmm_rate", "cosim_table"]


def cosim_vmm_rate(
    simulator: str,
    vectors: int,
    *,
    config: CrossbarConfig | None = None,
    rows: int | None = None,
    seed: int = 0,
    stall_out: float = 0.0,
) -> dict[str, object]:
    """Verified VMMs per second of batched vectors on ``simulator``.

    Two runs program ``rows`` rows of levels (default all; the others stay 0) and send a
    batch of ``vectors`` and of ``vectors // 10`` vectors (at least one); the rate is the
    difference in vectors over the difference in simulated seconds, so neither the
    programming nor the start of a batch counts.
    """
    config = CrossbarConfig(lanes=64) if config is None else config
    rows = config.rows if rows is None else rows
    rng = np.random.default_rng(seed)
    layout = Layout(config)
    start = time.perf_counter()
    verilog = verilog_file(config)
    generate_s = json.loads((verilog.parent / "design.json").read_text())["generate_seconds"]
    fresh_generation = time.perf_counter() - start > 1.0
    built = build(config, simulator)
    program = b"".join(
        encode_command(
            layout, Opcode.WRITE_ROW, row=r, levels=rng.integers(0, config.levels, config.cols)
        )
        for r in range(rows)
    )
    runs = {}
    wall = time.perf_counter()
    for count in (max(1, vectors // 10), vectors):
        x = rng.integers(config.x_min, config.x_max + 1, (count, config.rows))
        commands = program + encode_command(layout, Opcode.RUN_BATCH, count=count, x=x)
        job = Job(config, [Segment(commands)], stall_out=stall_out, seed=seed)
        runs[count] = run_job(job, simulator)
    wall = time.perf_counter() - wall
    (few, short), (many, long) = sorted(runs.items())
    seconds = long.seconds - short.seconds
    cycles = long.cycles - short.cycles
    return {
        "simulator": simulator,
        "rows": config.rows,
        "cols": config.cols,
        "lanes": config.lanes,
        "stream_bytes": long.stream_bytes,
        "programmed_rows": rows,
        "vectors": many - few,
        "cycles_per_vector": cycles / (many - few),
        "sim_seconds": seconds,
        "run_seconds": wall,
        "vmm_per_s": (many - few) / seconds,
        "cycles_per_s": cycles / seconds,
        "generate_seconds": generate_s,
        "generated_now": fresh_generation,
        "build_seconds": built.seconds,
        "built_now": not built.cached,
        "design": design_key(config),
    }


def cosim_table(
    vectors: dict[str, int] | None = None,
    *,
    config: CrossbarConfig | None = None,
    out=sys.stdout,
) -> list[dict[str, object]]:
    """Measure each installed simulator and print a table; returns the figures."""
    vectors = {"verilator": 2000, "icarus": 10} if vectors is None else vectors
    rows = []
    print(f"cocotb co-simulation, every response byte checked (cache: {cache_dir()}):", file=out)
    for simulator in SIMULATORS:
        reason = simulator_missing(simulator)
        if reason is not None:
            print(f"  {simulator:<9} skipped: {reason}", file=out)
            continue
        # Icarus simulates the full engine at tens of cycles a second: program three rows.
        programmed = 3 if simulator == "icarus" else None
        figures = cosim_vmm_rate(simulator, vectors[simulator], config=config, rows=programmed)
        rows.append(figures)
        built = "built now" if figures["built_now"] else "cached build"
        print(
            f"  {simulator:<9} {figures['rows']}x{figures['cols']}, {figures['lanes']} lanes, "
            f"{figures['stream_bytes']}-byte beats: {figures['vmm_per_s']:8.1f} VMM/s "
            f"({figures['vectors']} vectors, {figures['cycles_per_vector']:.1f} cycles each, "
            f"{figures['cycles_per_s']:,.0f} cycles/s); build {figures['build_seconds']:.0f} s "
            f"({built}), Verilog generation {figures['generate_seconds']:.0f} s",
            file=out,
        )
    return rows
