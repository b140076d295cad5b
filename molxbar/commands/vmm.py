"""``molxbar vmm``: programmed levels times input vectors, on any backend."""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from molxbar.emulator import Crossbar, CrossbarConfig, preset
from molxbar.emulator.checks import check_codes
from molxbar.emulator.mapping import split_signed
from molxbar.host.programs import decode_outputs, vmm_program
from molxbar.sim.backends import BACKENDS, run_stream

from .common import CliError, load_array, output_file, write_file

__all__ = ["add_vmm_command", "cmd_vmm"]


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


def _read_operands(args: argparse.Namespace) -> tuple[CrossbarConfig, np.ndarray, np.ndarray]:
    """The configuration, levels and inputs of the run, every value checked."""
    levels = load_array(args.levels, "levels")
    inputs = load_array(args.inputs, "inputs")
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
    return config, levels, inputs


def _run_with_progress(config: CrossbarConfig, commands: bytes, args: argparse.Namespace) -> bytes:
    """The responses to ``commands`` on ``args.backend``, with a progress bar on stderr."""
    with _progress(len(commands), f"vmm ({args.backend})", "B") as bar:

        def progress(done: int) -> None:
            bar.update(done - bar.n)

        try:
            return run_stream(
                config, commands, args.backend, progress=progress, waves=args.waves
            ).responses
        except RuntimeError as error:
            from molxbar.sim.cosim import CosimError  # a simulator missing, failing or disagreeing

            if not isinstance(error, CosimError):
                raise
            raise CliError(str(error)) from None


def cmd_vmm(args: argparse.Namespace) -> int:
    out = output_file(args.out, "--out")
    if args.waves is not None:
        output_file(args.waves, "--waves")
    config, levels, inputs = _read_operands(args)
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
    responses = _run_with_progress(config, commands, args)
    if args.waves is not None:
        print(f"wrote {args.waves}: waveform of the {args.backend} run", file=sys.stderr)
    outputs = decode_outputs(config, responses)
    if args.signed_inputs and len(outputs) > len(inputs):  # a negative phase ran too
        outputs = outputs[: len(inputs)] - outputs[len(inputs) :]
    write_file(out, lambda stream: np.save(stream, outputs))  # (np.save(name) adds .npy)
    print(
        f"wrote {args.out}: {outputs.shape[0]} x {outputs.shape[1]} int64 outputs", file=sys.stderr
    )
    return 0


def add_vmm_command(commands: argparse._SubParsersAction, presets: list[str]) -> None:
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
