"""The ``molxbar`` command line (also ``python -m molxbar``): the parser and the handling of
errors and Ctrl-C; each command is a module of :mod:`molxbar.commands`."""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from typing import NoReturn


def _interrupted() -> NoReturn:
    """End the run after Ctrl-C: one line, exit status 130 (128 + SIGINT)."""
    sys.stderr.write("molxbar: interrupted\n")
    raise SystemExit(130)


# These imports take a second: Ctrl-C during them ends the run like Ctrl-C in a command.
try:
    import numpy.random  # noqa: F401  (its first import, if left to the demo, can lose a Ctrl-C)

    from molxbar import __version__

    from .commands.bench import add_bench_command
    from .commands.bench import cmd_bench as cmd_bench
    from .commands.common import CliError, created
    from .commands.demo import add_demo_command
    from .commands.demo import cmd_demo as cmd_demo
    from .commands.dft import add_dft_command
    from .commands.dft import cmd_dft as cmd_dft
    from .commands.generate import add_generate_command
    from .commands.generate import cmd_generate as cmd_generate
    from .commands.vmm import add_vmm_command
    from .commands.vmm import cmd_vmm as cmd_vmm
    from .emulator import PRESETS
except KeyboardInterrupt:
    _interrupted()

__all__ = ["main"]


def _abandon() -> None:
    """Stop the run: remove what it created, newest first, and let the designs it left half
    built go without a warning."""
    from amaranth.hdl import UnusedElaboratable

    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    while created:
        path = created.pop()
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def build_parser() -> argparse.ArgumentParser:
    """The ``molxbar`` parser: an ``add_*_command`` function per command
    (:mod:`molxbar.commands`), the board commands from :mod:`molxbar.boards.commands`."""
    parser = argparse.ArgumentParser(
        prog="molxbar",
        description="FPGA digital twin of the 14-bit Ru-azo molecular memristor crossbar.",
    )
    parser.add_argument("--version", action="version", version=f"molxbar {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    presets = sorted(PRESETS)
    add_vmm_command(commands, presets)
    add_dft_command(commands, presets)
    add_generate_command(commands, presets)
    add_bench_command(commands)
    add_demo_command(commands, presets)
    from molxbar.boards.commands import add_board_commands

    add_board_commands(commands)  # build, program
    from .sweep import add_sweep_command

    add_sweep_command(commands)  # sweep build|device
    from .verify import add_verify_command

    add_verify_command(commands)  # verify
    from molxbar.sim.formal import add_formal_command

    add_formal_command(commands)  # formal
    from molxbar.sim.mutation import add_mutate_command

    add_mutate_command(commands)  # mutate
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line: a user error is one line and exit status 2, Ctrl-C one line
    and 130; either removes what the run created."""
    try:
        parser = build_parser()  # (it imports the demo and the board commands)
    except KeyboardInterrupt:
        _interrupted()
    args = parser.parse_args(argv)
    created.clear()
    try:
        return args.run(args)
    except KeyboardInterrupt:
        _abandon()
        _interrupted()
    except (CliError, ValueError) as error:
        _abandon()
        parser.exit(2, f"molxbar: error: {error}\n")
    finally:
        created.clear()
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
