"""``molxbar dft``: the DFT on the golden model against numpy.fft."""

from __future__ import annotations

import argparse
import json

from molxbar.emulator import preset
from molxbar.emulator.device import PAPER_SNR_DB
from molxbar.emulator.workloads import SIGNAL_KINDS, run_dft

from .common import positive_int

__all__ = ["add_dft_command", "cmd_dft"]


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


def add_dft_command(commands: argparse._SubParsersAction, presets: list[str]) -> None:
    """Add the ``dft`` command: the DFT on the golden model against numpy.fft."""
    dft = commands.add_parser(
        "dft",
        help="Fourier transform on the crossbar: SNR and ENOB against numpy.fft",
        description="Map the N-point DFT onto crossbar tiles, transform test signals on the "
        "golden model and compare with numpy.fft in float64.",
    )
    dft.add_argument("--n", type=positive_int, default=64, help="transform length (default 64)")
    dft.add_argument("--preset", choices=presets, default="ideal14")
    dft.add_argument(
        "--scheme",
        choices=["offset", "differential"],
        default="offset",
        help="signed-weight mapping (default offset)",
    )
    dft.add_argument("--batch", type=positive_int, default=64, help="signals (default 64)")
    dft.add_argument("--signal", choices=SIGNAL_KINDS, default="gaussian")
    dft.add_argument("--seed", type=int, default=0, help="seed of the test signals")
    dft.add_argument("--no-noise", action="store_true", help="switch off the preset's noise")
    dft.add_argument("--json", action="store_true", help="print a JSON report")
    dft.set_defaults(run=cmd_dft)
