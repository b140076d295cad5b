"""``molxbar generate``: the engine gateware as Verilog or RTLIL."""

from __future__ import annotations

import argparse
import sys

from molxbar.emulator import preset

from .common import output_file, positive_int, write_file

__all__ = ["add_generate_command", "cmd_generate"]


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
    output = None if args.output == "-" else output_file(args.output, "-o")
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
        write_file(output, lambda stream: stream.write(text.encode()))
        print(
            f"wrote {args.output}: {args.format}, {config.rows}x{config.cols}, "
            f"{config.lanes} lanes",
            file=sys.stderr,
        )
    return 0


def add_generate_command(commands: argparse._SubParsersAction, presets: list[str]) -> None:
    """Add the ``generate`` command: the engine gateware as Verilog or RTLIL."""
    gen = commands.add_parser(
        "generate",
        help="write the engine gateware as Verilog or RTLIL",
        description="Generate the crossbar engine for a preset, optionally resized. The output "
        "is deterministic and carries no source paths; see docs/gateware.md for the ports.",
    )
    gen.add_argument("--preset", choices=presets, default="ideal14")
    gen.add_argument("--rows", type=positive_int)
    gen.add_argument("--cols", type=positive_int)
    gen.add_argument("--lanes", type=positive_int, help="MAC lanes, a power of two dividing cols")
    gen.add_argument("--g-bits", dest="g_bits", type=positive_int, help="level code width")
    gen.add_argument("--x-bits", dest="x_bits", type=positive_int, help="input code width")
    gen.add_argument(
        "--stream-bytes",
        dest="stream_bytes",
        type=positive_int,
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
        help="leave out the reverse-leakage hardware (ideal cells; SET_RECT refuses shifts)",
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
