"""Figures of the co-simulation: verified 64x64 VMMs per second through cocotb on each
simulator and through the native Verilator driver, and what generating and building the
design costs.

A run programs the levels and sends one RUN_BATCH of random vectors; every response byte is
compared with the golden engine. The rate is the difference between a long and a short
batch, so it is the steady rate of verified vectors, without the simulator's start-up or the
build: under cocotb, the time inside the simulator process (its scoreboard checks each byte
as it arrives); on the native driver, the wall time of the whole call (the driver, then the
check of every byte).
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
from .native import native_build, native_executable, run_native
from .simulators import build, run_job, simulator_missing

__all__ = ["cosim_vmm_rate", "cosim_table"]


def cosim_vmm_rate(
    simulator: str,
    vectors: int,
    *,
    config: CrossbarConfig | None = None,
    rows: int | None = None,
    seed: int = 0,
    stall_out: float = 0.0,
    native: bool = False,
) -> dict[str, object]:
    """Verified VMMs per second of batched vectors on ``simulator``, under cocotb or, with
    ``native``, on the native Verilator driver (:mod:`molxbar.sim.cosim.native`).

    Two runs program ``rows`` rows of levels (default all; the others stay 0) and send a
    batch of ``vectors`` and of ``vectors // 10`` vectors (at least one); the rate is the
    difference in vectors over the difference in seconds (see the module), so neither the
    programming nor the start of a batch counts.
    """
    if native and simulator != "verilator":
        raise ValueError(f"simulator = {simulator!r}: the native driver runs Verilator only")
    config = CrossbarConfig(lanes=64) if config is None else config
    rows = config.rows if rows is None else rows
    rng = np.random.default_rng(seed)
    layout = Layout(config)
    start = time.perf_counter()
    verilog = verilog_file(config)
    generate_s = json.loads((verilog.parent / "design.json").read_text())["generate_seconds"]
    fresh_generation = time.perf_counter() - start > 1.0
    if native:
        built_now = not native_executable(config).is_file()
        executable = native_build(config)
        build_seconds = json.loads((executable.parent / "build.json").read_text())["seconds"]
    else:
        built = build(config, simulator)
        build_seconds, built_now = built.seconds, not built.cached
    program = b"".join(
        encode_command(
            layout, Opcode.WRITE_ROW, row=r, levels=rng.integers(0, config.levels, config.cols)
        )
        for r in range(rows)
    )
    runs, seconds_of = {}, {}
    wall = time.perf_counter()
    for count in (max(1, vectors // 10), vectors):
        x = rng.integers(config.x_min, config.x_max + 1, (count, config.rows))
        commands = program + encode_command(layout, Opcode.RUN_BATCH, count=count, x=x)
        job = Job(config, [Segment(commands)], stall_out=stall_out, seed=seed)
        start = time.perf_counter()
        runs[count] = run_native(job) if native else run_job(job, simulator)
        call = time.perf_counter() - start
        seconds_of[count] = call if native else runs[count].seconds
    wall = time.perf_counter() - wall
    (few, short), (many, long) = sorted(runs.items())
    seconds = seconds_of[many] - seconds_of[few]
    cycles = long.cycles - short.cycles
    return {
        "simulator": simulator,
        "driver": "native" if native else "cocotb",
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
        "build_seconds": build_seconds,
        "built_now": built_now,
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
    print(f"co-simulation, every response byte checked (cache: {cache_dir()}):", file=out)
    for simulator, native in (("verilator", False), ("verilator", True), ("icarus", False)):
        reason = simulator_missing(simulator)
        if reason is not None:
            print(f"  {simulator:<9} skipped: {reason}", file=out)
            continue
        # Icarus simulates the full engine at tens of cycles a second: program three rows.
        programmed = 3 if simulator == "icarus" else None
        count = vectors[simulator] * (5 if native else 1)
        figures = cosim_vmm_rate(simulator, count, config=config, rows=programmed, native=native)
        rows.append(figures)
        built = "built now" if figures["built_now"] else "cached build"
        name = f"{simulator}, {figures['driver']}"
        print(
            f"  {name:<18} {figures['rows']}x{figures['cols']}, {figures['lanes']} lanes, "
            f"{figures['stream_bytes']}-byte beats: {figures['vmm_per_s']:8.1f} VMM/s "
            f"({figures['vectors']} vectors, {figures['cycles_per_vector']:.1f} cycles each, "
            f"{figures['cycles_per_s']:,.0f} cycles/s); build {figures['build_seconds']:.0f} s "
            f"({built}), Verilog generation {figures['generate_seconds']:.0f} s",
            file=out,
        )
        if native and rows[-2:-1] and rows[-2]["driver"] == "cocotb":
            ratio = figures["vmm_per_s"] / rows[-2]["vmm_per_s"]
            figures["ratio_to_cocotb"] = ratio
            print(f"  {'':<18} native = {ratio:.1f} x cocotb on the same design", file=out)
    return rows
