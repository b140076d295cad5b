"""``molxbar bench``: throughput and accuracy figures."""

from __future__ import annotations

import argparse
import json
import sys

from .common import positive_int

__all__ = ["add_bench_command", "cmd_bench"]


def cmd_bench(args: argparse.Namespace) -> int:
    from molxbar.bench import gateware_table, run_benchmarks

    table = sys.stderr if args.json else sys.stdout
    report = run_benchmarks(quick=args.quick, repeats=args.repeats, out=table)
    if args.gateware:
        report["gateware"] = gateware_table(args.lanes, noise=args.noise, out=table)
    if args.cosim:
        from molxbar.sim.cosim.bench import cosim_table

        report["cosim"] = cosim_table(out=table)
    if args.link:
        from molxbar.link_bench import link_table

        report["link"] = link_table(quick=args.quick, out=table)
    if args.lane_cost:
        from molxbar.boards.lane_cost import lane_cost_table

        report["lane_cost"] = lane_cost_table(out=table)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def add_bench_command(commands: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command: throughput and accuracy figures."""
    bench = commands.add_parser("bench", help="measure golden-model throughput and DFT accuracy")
    bench.add_argument("--quick", action="store_true", help="smaller batches, fewer repeats")
    bench.add_argument(
        "--repeats", type=positive_int, default=5, help="timed runs per figure (median)"
    )
    bench.add_argument(
        "--json", action="store_true", help="print a JSON report (the table goes to stderr)"
    )
    bench.add_argument(
        "--gateware",
        action="store_true",
        help="also simulate the 64x64 engine and measure its cycles per VMM (minutes)",
    )
    bench.add_argument(
        "--lanes",
        type=positive_int,
        nargs="+",
        default=[1, 4, 8, 16, 64],
        help="lane counts for --gateware (default: 1 4 8 16 64)",
    )
    bench.add_argument(
        "--noise",
        action="store_true",
        help="with --gateware, also the Ru-azo engine with read noise on (noise words made "
        "by the iterative and by the pipelined generator)",
    )
    bench.add_argument(
        "--cosim",
        action="store_true",
        help="also measure verified 64x64 VMMs per second through cocotb on Verilator and "
        "Icarus and through the native Verilator driver, and their ratio (the first run "
        "generates and builds the 64-lane design: minutes)",
    )
    bench.add_argument(
        "--link",
        action="store_true",
        help="also inject 10,000+ faults into the serial link (host-level model) and print "
        "the silent errors, retries and the frame overhead",
    )
    bench.add_argument(
        "--lane-cost",
        action="store_true",
        help="also synthesise one MAC lane of each board's twin and ideal crossbar with Yosys "
        "and print its cells: what the noise hardware adds per lane",
    )
    bench.set_defaults(run=cmd_bench)
