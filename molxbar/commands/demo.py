"""``molxbar demo``: the 2-D inverse DFT of a sky image, figures and a report."""

from __future__ import annotations

import argparse
import json
import sys

from molxbar.sim.backends import BACKENDS

from .common import output_folder, positive_int

__all__ = ["add_demo_command", "cmd_demo"]


def cmd_demo(args: argparse.Namespace) -> int:
    from molxbar.demo import print_summary, run_demo

    output_folder(args.output, "-o")
    report = run_demo(
        args.backend,
        args.output,
        size=args.size,
        preset_name=args.preset,
        scheme=args.scheme,
        crossbars=args.crossbars,
        sweep=not args.no_sweep,
        log=lambda text: print(text, file=sys.stderr),
    )
    if args.json:
        print(json.dumps({k: report[k] for k in _DEMO_SUMMARY}, indent=2))
    else:
        print_summary(report, args.output)
    check = report["check"]
    return 1 if check["checked"] and not check["bit_exact"] else 0


_DEMO_SUMMARY = ("backend", "preset", "image_size", "vmms", "snr_db", "enob", "check", "cycles")


def add_demo_command(commands: argparse._SubParsersAction, presets: list[str]) -> None:
    """Add the ``demo`` command: the 2-D inverse DFT of a sky image."""
    from molxbar.demo import DEFAULT_BACKEND

    demo = commands.add_parser(
        "demo",
        help="2-D inverse DFT of a sky image on the crossbar twin: SNR, figures, JSON report",
        description="Transform the spectrum of the bundled synthetic astronomical image back "
        "in 64x64 blocks on the crossbar, check every response byte against the golden "
        "engine, and write report.json and PNG figures (images, SNR against ADC bits and "
        "conductance levels, conductance against pulse number, energy per VMM).",
    )
    demo.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help=f"where the crossbar runs (default {DEFAULT_BACKEND})",
    )
    demo.add_argument("--preset", choices=presets, default="ideal14")
    demo.add_argument("--scheme", choices=["offset", "differential"], default="offset")
    demo.add_argument(
        "--size",
        type=positive_int,
        default=256,
        help="image side in pixels: a multiple of 64, or below 64 for one small block "
        "(default 256)",
    )
    demo.add_argument(
        "--crossbars",
        type=positive_int,
        default=1,
        help="crossbars to spread the tiles over; fewer than the tiles are reprogrammed "
        "in turn (default 1)",
    )
    demo.add_argument("--no-sweep", action="store_true", help="skip the ADC and level sweep")
    demo.add_argument(
        "-o", "--output", default="demo", metavar="DIR", help="report folder (default demo)"
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(run=cmd_demo)
