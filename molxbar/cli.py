"""The ``molxbar`` command line (also ``python -m molxbar``)."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, NoReturn


def _interrupted() -> NoReturn:
    """End the run after Ctrl-C: one line, exit status 130 (128 + SIGINT)."""
    sys.stderr.write("molxbar: interrupted\n")
    raise SystemExit(130)


# These imports take a second: Ctrl-C during them ends the run like Ctrl-C in a command.
try:
    import numpy as np
    import numpy.random  # noqa: F401  (its first import, if left to the demo, can lose a Ctrl-C)

    from molxbar import __version__
    from molxbar.emulator.checks import check_codes
    from molxbar.emulator.device import PAPER_SNR_DB
    from molxbar.emulator.mapping import split_signed
    from molxbar.emulator.workloads import SIGNAL_KINDS, run_dft
    from molxbar.host.programs import decode_outputs, vmm_program
    from molxbar.sim.backends import BACKENDS, run_stream

    from .emulator import PRESETS, Crossbar, CrossbarConfig, preset
except KeyboardInterrupt:
    _interrupted()

__all__ = ["main"]


class CliError(Exception):
    """A user error: printed as ``molxbar: error: ...`` with exit status 2."""


#: The first bytes of every .npy file.
_NPY_MAGIC = b"\x93NUMPY"

#: What this run created (folders, partial files): removed if it stops on an error or Ctrl-C.
_created: list[Path] = []


def _load_array(path: str, what: str) -> np.ndarray:
    try:
        with open(path, "rb") as file:
            magic = file.read(len(_NPY_MAGIC))
    except FileNotFoundError:
        raise CliError(f"{what} file {path!r} does not exist") from None
    except OSError as error:
        raise CliError(f"{what} file {path!r} cannot be read: {error.strerror}") from None
    if magic != _NPY_MAGIC:
        raise CliError(
            f"{what} file {path!r} is not a .npy file (no NumPy header): save the array "
            f"with numpy.save"
        )
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise CliError(f"{what} file {path!r} is not a readable .npy array: {error}") from None
    if not isinstance(array, np.ndarray):
        raise CliError(f"{what} file {path!r} holds several arrays; give one .npy array")
    return array


def _output_file(path: str, what: str) -> Path:
    """``path`` as a file to write, checked before any work: its folder exists and is
    writable, and it is not a folder itself."""
    file = Path(path)
    folder = file.parent
    if file.is_dir():
        raise CliError(f"{what} {path!r} is a folder, not a file")
    if not folder.is_dir():
        raise CliError(f"{what} {path!r}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (file.exists() and not os.access(file, os.W_OK)):
        raise CliError(f"{what} {path!r} cannot be written (permission denied)")
    return file


def _output_folder(path: str, what: str) -> Path:
    """``path`` as a folder to write into, checked before any work and made if missing (and
    then removed again if the run stops on an error or Ctrl-C)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{what} {path!r} is a file, not a folder")
    parent = folder if folder.is_dir() else folder.parent
    if not parent.is_dir():
        raise CliError(f"{what} {path!r}: the folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise CliError(f"{what} {path!r} cannot be written (permission denied)")
    if not folder.exists():
        try:  # made now: some folders refuse children that os.access allows (/proc)
            folder.mkdir()
        except OSError as error:
            raise CliError(f"{what} {path!r} cannot be made: {error.strerror}") from None
        _created.append(folder)
    return folder


def _write_file(file: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``file`` through ``write`` into a neighbour, renamed when complete: an
    interrupted run leaves no partial file."""
    partial = file.with_name(f".{file.name}.partial")
    _created.append(partial)
    with open(partial, "wb") as stream:
        write(stream)
    os.replace(partial, file)
    _created.remove(partial)


def _abandon() -> None:
    """Stop the run: remove what it created, newest first, and let the designs it left half
    built go without a warning."""
    from amaranth.hdl import UnusedElaboratable

    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    while _created:
        path = _created.pop()
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _config_for(args: argparse.Namespace, rows: int, cols: int) -> CrossbarConfig:
    changes: dict[str, object] = {"rows": rows, "cols": cols}
    base = preset(args.preset)
    changes["lanes"] = math.gcd(base.lanes, cols)  # lanes never change a result
    if args.no_noise:
        changes.update(read_noise=False, write_noise=False)
    return base.replace(**changes)


def _progress(total: int, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=None, file=sys.stderr)


def cmd_vmm(args: argparse.Namespace) -> int:
    out = _output_file(args.out, "--out")
    if args.waves is not None:
        _output_file(args.waves, "--waves")
    levels = _load_array(args.levels, "levels")
    inputs = _load_array(args.inputs, "inputs")
    if levels.ndim != 2 or 0 in levels.shape:
        raise CliError(f"levels must be a (rows, cols) array, not shape {levels.shape}")
    rows, cols = levels.shape
    if inputs.size == 0:
        raise CliError(f"inputs has no vectors (shape {inputs.shape})")
    if inputs.ndim == 1:
        inputs = inputs[None]
    if inputs.ndim != 2 or inputs.shape[1] != rows:
        raise CliError(
            f"inputs must have shape ({rows},) or (batch, {rows}) to match levels "
            f"{levels.shape}, not {inputs.shape}"
        )
    config = _config_for(args, rows, cols)
    # Check every value before anything runs: the same errors on every backend.
    levels = check_codes("levels", levels, 0, config.g_max, (rows, cols))
    inputs = check_codes("inputs", inputs, config.x_min, config.x_max, None)
    registers = Crossbar(config)  # checks the register values
    registers.set_adc(args.adc_bits, args.adc_shift)
    registers.set_rectification(args.rect_shift)
    if args.signed_inputs:
        if (inputs == config.x_min).any():
            raise CliError(
                f"--signed-inputs applies negative inputs as a positive phase: input code "
                f"{config.x_min} has no positive counterpart; use [{-config.x_max}, {config.x_max}]"
            )
        phases = np.concatenate(split_signed(inputs))
    else:
        phases = inputs
    commands = vmm_program(
        config,
        levels,
        phases,
        adc_bits=args.adc_bits,
        adc_shift=args.adc_shift,
        rect_shift=args.rect_shift,
    )
    with _progress(len(commands), f"vmm ({args.backend})", "B") as bar:

        def progress(done: int) -> None:
            bar.update(done - bar.n)

        try:
            responses = run_stream(
                config, commands, args.backend, progress=progress, waves=args.waves
            ).responses
        except RuntimeError as error:
            from molxbar.sim.cosim import CosimError  # a simulator missing, failing or disagreeing

            if not isinstance(error, CosimError):
                raise
            raise CliError(str(error)) from None
    if args.waves is not None:
        print(f"wrote {args.waves}: waveform of the {args.backend} run", file=sys.stderr)
    outputs = decode_outputs(config, responses)
    if args.signed_inputs and len(outputs) > len(inputs):  # a negative phase ran too
        outputs = outputs[: len(inputs)] - outputs[len(inputs) :]
    _write_file(out, lambda stream: np.save(stream, outputs))  # (np.save(name) adds .npy)
    print(
        f"wrote {args.out}: {outputs.shape[0]} x {outputs.shape[1]} int64 outputs", file=sys.stderr
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from molxbar.hdl.generate import generate

    changes = {
        name: getattr(args, name)
        for name in ("rows", "cols", "lanes", "g_bits", "x_bits")
        if getattr(args, name) is not None
    }
    if args.no_noise_hardware:
        changes.update(noise_hardware=False, read_noise=False, write_noise=False)
    if args.no_leakage_hardware:
        changes.update(leakage_hardware=False, rect_shift=None)
    output = None if args.output == "-" else _output_file(args.output, "-o")
    config = preset(args.preset, **changes)
    build_options = {
        name: getattr(args, name)
        for name in ("stream_bytes", "product_stages")
        if getattr(args, name) is not None
    }
    text = generate(config, args.format, **build_options)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        _write_file(output, lambda stream: stream.write(text.encode()))
        print(
            f"wrote {args.output}: {args.format}, {config.rows}x{config.cols}, "
            f"{config.lanes} lanes",
            file=sys.stderr,
        )
    return 0


def cmd_dft(args: argparse.Namespace) -> int:
    config = preset(args.preset)
    if args.no_noise:
        config = config.replace(read_noise=False, write_noise=False)
    result = run_dft(
        config, n=args.n, batch=args.batch, kind=args.signal, scheme=args.scheme, seed=args.seed
    )
    report = {
        "preset": args.preset,
        "scheme": args.scheme,
        "signal": args.signal,
        **result.summary(),
        "paper_snr_db": PAPER_SNR_DB,
        "config": config.as_dict(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{args.n}-point DFT of {args.batch} {args.signal} signals, preset {args.preset}, "
        f"{args.scheme} mapping on {result.tiles} crossbar tile(s), {result.vmms} VMMs"
    )
    print(f"  SNR       {result.snr_db:7.2f} dB   (ENOB {result.enob:.2f} bits)")
    print(f"  predicted {result.predicted_snr_db:7.2f} dB   (quantization and read noise)")
    print(f"  paper     > {PAPER_SNR_DB:.0f} dB    (Sharma et al., Nature 633, 560 (2024))")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import gateware_table, run_benchmarks

    table = sys.stderr if args.json else sys.stdout
    report = run_benchmarks(quick=args.quick, repeats=args.repeats, out=table)
    if args.gateware:
        report["gateware"] = gateware_table(args.lanes, out=table)
    if args.cosim:
        from molxbar.sim.cosim.bench import cosim_table

        report["cosim"] = cosim_table(out=table)
    if args.link:
        from .link_bench import link_table

        report["link"] = link_table(quick=args.quick, out=table)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import print_summary, run_demo

    _output_folder(args.output, "-o")
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _add_vmm(commands: argparse._SubParsersAction, presets: list[str]) -> None:
    """Add the ``vmm`` command: programmed levels times input vectors."""
    vmm = commands.add_parser(
        "vmm",
        help="run vector-matrix multiplications on a programmed crossbar",
        description="Program the level codes of LEVELS and multiply each input vector of "
        "INPUTS by them. Outputs are exact (full precision) unless ADC options are given.",
    )
    vmm.add_argument(
        "--levels",
        required=True,
        metavar="L.npy",
        help="(rows, cols) integer level codes; the shape sets rows and cols",
    )
    vmm.add_argument(
        "--inputs",
        required=True,
        metavar="X.npy",
        help="(rows,) or (batch, rows) signed integer input codes",
    )
    vmm.add_argument("--out", required=True, metavar="Y.npy", help="(batch, cols) int64 outputs")
    vmm.add_argument("--preset", choices=presets, default="ideal14")
    vmm.add_argument(
        "--adc-bits",
        type=int,
        default=None,
        metavar="N",
        help="saturate outputs to N signed bits (default: full precision)",
    )
    vmm.add_argument(
        "--adc-shift",
        type=int,
        default=0,
        metavar="S",
        help="right shift before the ADC, rounded half away from zero",
    )
    vmm.add_argument(
        "--rect-shift",
        type=int,
        default=None,
        metavar="K",
        help="negative inputs leak (x*g) >> K; without it they contribute nothing",
    )
    vmm.add_argument(
        "--signed-inputs",
        action="store_true",
        help="apply positive and negative inputs in two phases: the exact signed product",
    )
    vmm.add_argument(
        "--no-noise", action="store_true", help="switch off the preset's read and write noise"
    )
    vmm.add_argument(
        "--backend",
        choices=BACKENDS,
        default="golden",
        help="where the command stream runs: the golden engine (default), the gateware in "
        "the Amaranth simulator (slow: about one vector a second), or its Verilog under cocotb "
        "in Verilator or Icarus Verilog (the first run of a design builds it, then cached)",
    )
    vmm.add_argument(
        "--waves",
        metavar="FILE",
        default=None,
        help="write a waveform of a simulator backend's run: .vcd (amaranth, verilator) or "
        ".fst (icarus)",
    )
    vmm.set_defaults(run=cmd_vmm)


def _add_dft(commands: argparse._SubParsersAction, presets: list[str]) -> None:
    """Add the ``dft`` command: the DFT on the golden model against numpy.fft."""
    dft = commands.add_parser(
        "dft",
        help="Fourier transform on the crossbar: SNR and ENOB against numpy.fft",
        description="Map the N-point DFT onto crossbar tiles, transform test signals on the "
        "golden model and compare with numpy.fft in float64.",
    )
    dft.add_argument("--n", type=_positive_int, default=64, help="transform length (default 64)")
    dft.add_argument("--preset", choices=presets, default="ideal14")
    dft.add_argument(
        "--scheme",
        choices=["offset", "differential"],
        default="offset",
        help="signed-weight mapping (default offset)",
    )
    dft.add_argument("--batch", type=_positive_int, default=64, help="signals (default 64)")
    dft.add_argument("--signal", choices=SIGNAL_KINDS, default="gaussian")
    dft.add_argument("--seed", type=int, default=0, help="seed of the test signals")
    dft.add_argument("--no-noise", action="store_true", help="switch off the preset's noise")
    dft.add_argument("--json", action="store_true", help="print a JSON report")
    dft.set_defaults(run=cmd_dft)


def _add_generate(commands: argparse._SubParsersAction, presets: list[str]) -> None:
    """Add the ``generate`` command: the engine gateware as Verilog or RTLIL."""
    gen = commands.add_parser(
        "generate",
        help="write the engine gateware as Verilog or RTLIL",
        description="Generate the crossbar engine for a preset, optionally resized. The output "
        "is deterministic and carries no source paths; see docs/gateware.md for the ports.",
    )
    gen.add_argument("--preset", choices=presets, default="ideal14")
    gen.add_argument("--rows", type=_positive_int)
    gen.add_argument("--cols", type=_positive_int)
    gen.add_argument("--lanes", type=_positive_int, help="MAC lanes, a power of two dividing cols")
    gen.add_argument("--g-bits", dest="g_bits", type=_positive_int, help="level code width")
    gen.add_argument("--x-bits", dest="x_bits", type=_positive_int, help="input code width")
    gen.add_argument(
        "--stream-bytes",
        dest="stream_bytes",
        type=_positive_int,
        help="bytes per beat on the command and response streams (1-16; default: the fewest "
        "that keep a batch compute-bound, 1 at 8 lanes, 8 at 64)",
    )
    gen.add_argument(
        "--no-noise-hardware",
        dest="no_noise_hardware",
        action="store_true",
        help="leave out the noise generator and arithmetic (SET_NOISE then refuses flags)",
    )
    gen.add_argument(
        "--no-leakage-hardware",
        dest="no_leakage_hardware",
        action="store_true",
        help="leave out the reverse-leakage shifters (ideal cells; SET_RECT refuses shifts)",
    )
    gen.add_argument(
        "--product-stages",
        dest="product_stages",
        type=int,
        choices=(1, 2),
        help="registers after each lane's multipliers (default 1): 2 gives a large FPGA's "
        "multiplier outputs a cycle to reach their lane (one cycle more per VMM)",
    )
    gen.add_argument("--format", choices=["verilog", "rtlil"], default="verilog")
    gen.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="output file, - for stdout"
    )
    gen.set_defaults(run=cmd_generate)


def _add_bench(commands: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command: throughput and accuracy figures."""
    bench = commands.add_parser("bench", help="measure golden-model throughput and DFT accuracy")
    bench.add_argument("--quick", action="store_true", help="smaller batches, fewer repeats")
    bench.add_argument(
        "--repeats", type=_positive_int, default=5, help="timed runs per figure (median)"
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
        type=_positive_int,
        nargs="+",
        default=[1, 4, 8, 16, 64],
        help="lane counts for --gateware (default: 1 4 8 16 64)",
    )
    bench.add_argument(
        "--cosim",
        action="store_true",
        help="also measure verified 64x64 VMMs per second through cocotb on Verilator and "
        "Icarus (the first run generates and builds the 64-lane design: minutes)",
    )
    bench.add_argument(
        "--link",
        action="store_true",
        help="also inject 10,000+ faults into the serial link (host-level model) and print "
        "the silent errors, retries and the frame overhead",
    )
    bench.set_defaults(run=cmd_bench)


def _add_demo(commands: argparse._SubParsersAction, presets: list[str]) -> None:
    """Add the ``demo`` command: the 2-D inverse DFT of a sky image."""
    from .demo import DEFAULT_BACKEND

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
        type=_positive_int,
        default=256,
        help="image side in pixels: a multiple of 64, or below 64 for one small block "
        "(default 256)",
    )
    demo.add_argument(
        "--crossbars",
        type=_positive_int,
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


def build_parser() -> argparse.ArgumentParser:
    """The ``molxbar`` parser: one ``_add_*`` function per command, the board commands
    from :mod:`molxbar.boards.commands`."""
    parser = argparse.ArgumentParser(
        prog="molxbar",
        description="FPGA digital twin of the 14-bit Ru-azo molecular memristor crossbar.",
    )
    parser.add_argument("--version", action="version", version=f"molxbar {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    presets = sorted(PRESETS)
    _add_vmm(commands, presets)
    _add_dft(commands, presets)
    _add_generate(commands, presets)
    _add_bench(commands)
    _add_demo(commands, presets)
    from molxbar.boards.commands import add_board_commands

    add_board_commands(commands)  # build, program
    from .sweep import add_sweep_command

    add_sweep_command(commands)  # sweep build|device
    from molxbar.sim.formal import add_formal_command

    add_formal_command(commands)  # formal
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line: a user error is one line and exit status 2, Ctrl-C one line
    and 130; either removes what the run created."""
    try:
        parser = build_parser()  # (it imports the demo and the board commands)
    except KeyboardInterrupt:
        _interrupted()
    args = parser.parse_args(argv)
    _created.clear()
    try:
        return args.run(args)
    except KeyboardInterrupt:
        _abandon()
        _interrupted()
    except (CliError, ValueError) as error:
        _abandon()
        parser.exit(2, f"molxbar: error: {error}\n")
    finally:
        _created.clear()
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
