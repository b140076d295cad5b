"""The ``molxbar`` command line (also ``python -m molxbar``)."""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from . import __version__
from .emulator import PRESETS, Crossbar, CrossbarConfig, preset
from .emulator.workloads import SIGNAL_KINDS, run_dft

__all__ = ["main"]

#: The paper's reported accuracy of its crossbar Fourier transform.
PAPER_SNR_DB = 73.0
#: Input vectors per golden-model call when a progress bar is shown.
_VMM_CHUNK = 8192


class CliError(Exception):
    """A user error: printed as ``molxbar: error: ...`` with exit status 2."""


def _load_array(path: str, what: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CliError(f"{what} file {path!r} does not exist") from None
    except (OSError, ValueError) as error:
        raise CliError(f"{what} file {path!r} is not a readable .npy array: {error}") from None
    if not isinstance(array, np.ndarray):
        raise CliError(f"{what} file {path!r} holds several arrays; give one .npy array")
    return array


def _config_for(args: argparse.Namespace, rows: int, cols: int) -> CrossbarConfig:
    changes: dict[str, object] = {"rows": rows, "cols": cols}
    base = preset(args.preset)
    changes["lanes"] = math.gcd(base.lanes, cols)  # lanes never change a result
    if args.no_noise:
        changes.update(read_noise=False, write_noise=False)
    return base.replace(**changes)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="vec", disable=None, file=sys.stderr)


def cmd_vmm(args: argparse.Namespace) -> int:
    levels = _load_array(args.levels, "levels")
    inputs = _load_array(args.inputs, "inputs")
    if levels.ndim != 2 or 0 in levels.shape:
        raise CliError(f"levels must be a (rows, cols) array, not shape {levels.shape}")
    rows, cols = levels.shape
    if inputs.ndim == 1:
        inputs = inputs[None]
    if inputs.ndim != 2 or inputs.shape[1] != rows:
        raise CliError(
            f"inputs must have shape ({rows},) or (batch, {rows}) to match levels "
            f"{levels.shape}, not {inputs.shape}"
        )
    config = _config_for(args, rows, cols)
    crossbar = Crossbar(config)
    crossbar.write_levels(levels)
    crossbar.set_adc(args.adc_bits, args.adc_shift)
    crossbar.set_rectification(args.rect_shift)
    if args.signed_inputs:
        if (inputs == config.x_min).any():
            raise CliError(
                f"--signed-inputs applies negative inputs as a positive phase: input code "
                f"{config.x_min} has no positive counterpart; use [{-config.x_max}, {config.x_max}]"
            )
        phases = [np.maximum(inputs, 0), np.maximum(-inputs, 0)]
    else:
        phases = [inputs]
    outputs = np.zeros((inputs.shape[0], cols), dtype=np.int64)
    with _progress(inputs.shape[0] * len(phases), "vmm") as bar:
        for sign, phase in zip((1, -1), phases, strict=False):
            for start in range(0, phase.shape[0], _VMM_CHUNK):
                chunk = phase[start : start + _VMM_CHUNK]
                outputs[start : start + _VMM_CHUNK] += sign * crossbar.vmm_batch(chunk)
                bar.update(chunk.shape[0])
    np.save(args.out, outputs)
    print(
        f"wrote {args.out}: {outputs.shape[0]} x {outputs.shape[1]} int64 outputs", file=sys.stderr
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
    from .bench import run_benchmarks

    table = sys.stderr if args.json else sys.stdout
    report = run_benchmarks(quick=args.quick, repeats=args.repeats, out=table)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="molxbar",
        description="FPGA digital twin of the 14-bit Ru-azo molecular memristor crossbar.",
    )
    parser.add_argument("--version", action="version", version=f"molxbar {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    presets = sorted(PRESETS)

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
        choices=["golden"],
        default="golden",
        help="where the commands run (default: the NumPy golden model)",
    )
    vmm.set_defaults(run=cmd_vmm)

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

    bench = commands.add_parser("bench", help="measure golden-model throughput and DFT accuracy")
    bench.add_argument("--quick", action="store_true", help="smaller batches, fewer repeats")
    bench.add_argument(
        "--repeats", type=_positive_int, default=5, help="timed runs per figure (median)"
    )
    bench.add_argument(
        "--json", action="store_true", help="print a JSON report (the table goes to stderr)"
    )
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (CliError, ValueError) as error:
        parser.exit(2, f"molxbar: error: {error}\n")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
