"""Bitstreams: the build tree of a board (its Amaranth build plan and the Yosys script around
synthesis), the run of its toolchain (:mod:`.toolchain`), and ``report.json`` (:mod:`.reports`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.mac import PER_LANE_ATTRIBUTE
from molxbar.hdl.options import EngineOptions

from .clocks import ECP5PLL, ICE40PLL
from .reports import (
    parse_nextpnr_log,
    parse_nextpnr_report,
    parse_yosys_cells,
    read_tool_reports,
    throughput,
)
from .targets import BOARDS, Board, board_config
from .toolchain import DESIGN, TOOLS, Progress, ToolchainError, run_tools, toolchain_env
from .toolchain import FSM_INIT_NOTE as FSM_INIT_NOTE
from .toolchain import FSM_INIT_WARNING as FSM_INIT_WARNING
from .toolchain import PHASES as PHASES
from .toolchain import TOOL_NAMES as TOOL_NAMES
from .toolchain import MissingToolError as MissingToolError
from .top import BoardTop

__all__ = [
    "TOOLS",
    "BuildResult",
    "build_board",
    "engine_choice",
    "multipliers_per_lane",
    "engine_multipliers",
    "toolchain_env",
    "parse_nextpnr_report",
    "parse_nextpnr_log",
    "parse_yosys_cells",
    "throughput",
]


def multipliers_per_lane(
    board: Board, config: CrossbarConfig, options: EngineOptions | None = None
) -> int:
    """DSP multipliers a MAC lane takes on ``board``: those of ``x*g``, and with noise
    hardware of ``x*n`` and, with the ``noise_multipliers`` option, of ``z*s`` (else in
    logic); a product wider than the board's multiplier takes one for each pair of slices."""

    def blocks(*widths: int) -> int:
        return math.prod(-(-width // board.multiplier_bits) for width in widths)

    products = blocks(config.x_bits, config.g_bits + 1)
    if config.noise_hardware:
        products += blocks(config.x_bits, config.noise_bits)
        if options is not None and options.noise_multipliers:
            products += 1  # (a 7-bit deviate by a 12-bit amplitude)
    return products


def engine_multipliers(
    board: Board, config: CrossbarConfig, options: EngineOptions | None = None
) -> int:
    """DSP multipliers of the whole engine: the lanes', and with noise hardware and the
    ``noise_multipliers`` option the write error's ``z*w``."""
    lanes = config.lanes * multipliers_per_lane(board, config, options)
    noise = config.noise_hardware and options is not None and options.noise_multipliers
    return lanes + int(noise)


def fit_warnings(
    board: Board, config: CrossbarConfig, options: EngineOptions | None = None
) -> list[str]:
    """What makes ``config`` too large for ``board`` before any tool runs (the DSP blocks)."""
    needed = engine_multipliers(board, config, options)
    available = board.capacity.get("dsp")
    if available is None or needed <= available:
        return []
    return [
        f"{config.lanes} lanes need {needed} DSP multipliers and the {board.device} has "
        f"{available}: this design will not fit ({board.name}'s default is "
        f"{board.twin.lanes} lanes for the twin, {board.ideal.lanes} ideal)"
    ]


def engine_choice(
    board: Board,
    lanes: int | None = None,
    crossbar: str | None = None,
    config: CrossbarConfig | None = None,
    options: EngineOptions | None = None,
) -> tuple[CrossbarConfig, EngineOptions, list[str]]:
    """The crossbar and engine options a build of ``board`` makes, and its warnings: the
    board's crossbar ``crossbar`` (:func:`board_config`, with its options unless ``options``
    are given) when ``config`` is ``None``, else ``config`` with ``options`` (the defaults if
    ``None``)."""
    warnings = []
    if config is None:
        chosen = board.crossbar_named(crossbar)
        config = board_config(board, lanes, crossbar=crossbar)
        options = chosen.options if options is None else options
        warnings += [chosen.warning] if chosen.warning else []
    options = EngineOptions() if options is None else options
    return config, options, warnings + fit_warnings(board, config, options)


@dataclass
class BuildResult:
    """Where the build tree is, the bitstream (``None`` for a dry run), and the report."""

    directory: Path
    bitstream: Path | None
    report: dict = field(default_factory=dict)


def build_board(
    board: Board | str,
    out_dir: str | Path,
    *,
    lanes: int | None = None,
    crossbar: str | None = None,
    config: CrossbarConfig | None = None,
    clock_hz: float | None = None,
    baud: int | None = None,
    dry_run: bool = False,
    synth_only: bool = False,
    toolchain: str = "yowasp",
    seed: int = 1,
    verbose: bool = False,
    stream=None,
    options: EngineOptions | None = None,
) -> BuildResult:
    """Write the build tree for ``board`` into ``out_dir`` and, unless ``dry_run``, run the
    toolchain and write ``report.json``.

    Parameters
    ----------
    lanes, crossbar, config
        The crossbar: ``config`` as given, or the board's (:func:`board_config`): ``"twin"``,
        the device with its noise, or ``"ideal"`` (``None``: the board's default); ``lanes``
        lanes.
    clock_hz
        Engine clock (the board's default if ``None``): the oscillator's frequency runs
        without the PLL (but for a UART with a clock of its own, which the PLL makes), any
        other is the nearest the PLL makes.
    dry_run, synth_only
        Write the build tree only; or run synthesis only (Yosys: cell counts, no
        placement, timing or bitstream).
    baud
        The UART's bit rate; by default the fastest the board's serial chip makes that the
        engine clock divides (:meth:`~molxbar.boards.targets.Board.baud_for`).
    seed
        nextpnr's placement seed.
    verbose, stream
        Progress output (``stream``: default ``sys.stderr``); ``verbose`` shows every tool line.
    options
        How the engine is built (:class:`~molxbar.hdl.options.EngineOptions`; ``None``: the
        board crossbar's).

    Raises ``ToolchainError`` when a tool is missing or fails; ``report.json`` then holds
    what the tools found out (for a design that does not fit: the utilization nextpnr
    reported before giving up).
    """
    board = BOARDS[board] if isinstance(board, str) else board
    crossbar = None if config is not None else crossbar or board.crossbar
    config, options, warnings = engine_choice(board, lanes, crossbar, config, options)
    pll = board.make_pll(clock_hz)
    engine_hz = board.engine_hz(pll)
    baud = baud or board.baud_for(engine_hz)
    env = {} if dry_run else toolchain_env(board.family, toolchain)  # (before any file)
    for warning in warnings:
        print(f"molxbar: warning: {warning}", file=stream or sys.stderr)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    top = BoardTop(
        config,
        pll=pll,
        baud=baud,
        leds=board.leds,
        oscillator_hz=board.oscillator_hz,
        options=options,
        uart_clock_ratio=board.uart_clock_ratio,
    )
    started = time.monotonic()
    with Progress(stream, verbose) as progress:
        progress.begin("amaranth", "elaborating the design and writing the build tree")
        _write_build_tree(board, config, options, top, out, seed)
    elaborate_s = time.monotonic() - started
    report = {
        **_design_report(board, crossbar, config, options, toolchain, pll, engine_hz, baud),
        "seconds": {"elaborate": round(elaborate_s, 1)},
        "warnings": warnings,
    }
    bitstream_name = f"{DESIGN}.{board.bitstream}"
    if dry_run:
        (out / "report.json").write_text(json.dumps({**report, "dry_run": True}, indent=2) + "\n")
        return BuildResult(out, None, report)

    for stale in (f"{DESIGN}.report.json", f"{DESIGN}.tim", f"{DESIGN}.stat", bitstream_name):
        (out / stale).unlink(missing_ok=True)
    with Progress(stream, verbose, start=started) as progress:
        _run_and_report(board, config, baud, out, env, progress, report, synth_only)
    bitstream = None if synth_only else out / bitstream_name
    report["bitstream"] = None if bitstream is None else bitstream.name
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return BuildResult(out, bitstream, report)


def _design_report(
    board: Board,
    crossbar: str | None,
    config: CrossbarConfig,
    options: EngineOptions,
    toolchain: str,
    pll: ICE40PLL | ECP5PLL | None,
    engine_hz: float,
    baud: int,
) -> dict:
    """The report's account of what is built: the board, the crossbar (``crossbar``: the
    board's ``"twin"`` or ``"ideal"``, ``None`` for a configuration given whole), the engine
    options, the clock, the UART and the throughput at the engine clock."""
    uart_hz = engine_hz * board.uart_clock_ratio
    return {
        "board": board.name,
        "description": board.description,
        "device": board.device,
        "toolchain": toolchain,
        "crossbar": crossbar,
        "config": config.as_dict(),
        "lanes": config.lanes,
        "engine_options": options.as_dict(),
        "clock": {
            "oscillator_hz": board.oscillator_hz,
            "engine_hz": engine_hz,
            "pll": None if pll is None else {k: v for k, v in vars(pll).items() if k != "f_in"},
        },
        "uart": {
            "baud": baud,
            "clock_hz": uart_hz,
            "divisor": round(uart_hz / baud),
        },
        "throughput_at_engine_clock": throughput(config, engine_hz, baud),
    }


def _write_build_tree(
    board: Board,
    config: CrossbarConfig,
    options: EngineOptions,
    top: BoardTop,
    out: Path,
    seed: int,
) -> None:
    """Elaborate ``top`` and write the build plan for ``board`` into ``out``: the design, the
    Yosys script around synthesis, nextpnr's options (``seed``: its placement seed)."""
    overrides = {
        "nextpnr_opts": f"--report {DESIGN}.report.json --timing-allow-fail --seed {seed}",
        "synth_opts": board.synth_options,
        "script_after_read": "\n".join(_before_synthesis(board, options)),
        "script_after_synth": "\n".join(_after_synthesis(board, config)),
    }
    plan = board.platform().build(top, name=DESIGN, do_build=False, **overrides)
    plan.extract(out)


def _run_and_report(
    board: Board,
    config: CrossbarConfig,
    baud: int,
    out: Path,
    env: dict,
    progress: Progress,
    report: dict,
    synth_only: bool,
) -> None:
    """Run the tools in the build tree ``out`` (only Yosys if ``synth_only``) and add their
    seconds and findings to ``report``; if a tool fails, write ``report.json`` with what they
    found out and raise."""
    stages: dict[str, float] = {}
    try:
        run_tools(out, env, progress, stages, "yosys" if synth_only else None)
    except ToolchainError as error:
        # Keep what the tools found out (a design that does not fit: by how much).
        report["error"] = str(error).splitlines()[0]
        report["seconds"].update(stages, tools=round(sum(stages.values()), 1))
        report.update(read_tool_reports(board, config, baud, out))
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        raise
    report["seconds"].update(stages, tools=round(sum(stages.values()), 1))
    report.update(read_tool_reports(board, config, baud, out))


#: The level banks in the board top (:class:`~molxbar.hdl.banks.LevelBanks`), as Yosys
#: names their module.
BANKS_MODULE = f"{DESIGN}.bridge.engine.banks"


def _before_synthesis(board: Board, options: EngineOptions) -> list[str]:
    """Yosys commands between reading the design and synthesizing it."""
    commands = [
        # One flip-flop per state of each state machine (Amaranth names their state registers
        # ``*_state``): a state is then one bit, not a comparison. Constant tables stay logic
        # (no ROM cells), so that Yosys can follow every transition of a machine.
        "proc -norom",
        'setattr -set fsm_encoding "one-hot" w:*_state',
    ]
    if board.per_lane_registers:
        # Each lane keeps its own copy of the registers shared by all lanes, placed beside its
        # multiplier: one merged register would have to reach every lane across the die.
        commands.append(f"setattr -set keep 1 a:{PER_LANE_ATTRIBUTE} %ci1:+$dff[Q] t:$dff %i")
    if options.single_port_banks:
        # A single-port RAM such as the iCE40's SPRAM has no initial contents; the banks
        # write their zeros after reset themselves.
        commands.append(f"delete {BANKS_MODULE}/t:$meminit_v2")
    return commands


def lane_multiplier_sites(board: Board, config: CrossbarConfig) -> list[str]:
    """The multiplier site of each lane, in lane order: the lanes split evenly between the
    board's ``multiplier_rows``, and in each row centred, at most two sites apart. Empty when
    the board names no sites, when a lane has more than one multiplier (noise hardware, or
    ``x*g`` wider than 18 x 18 bits) or when there are more lanes than sites."""
    rows = board.multiplier_rows
    one_multiplier = multipliers_per_lane(board, config) == 1
    if not rows or not one_multiplier or config.lanes > sum(len(row) for row in rows):
        return []
    sites, left = [], config.lanes
    for k, row in enumerate(rows):
        n = min(len(row), -(-left // (len(rows) - k)))  # this row's share of the rest
        step = min(2.0, (len(row) - 1) / (n - 1)) if n > 1 else 0.0
        start = (len(row) - 1 - step * (n - 1)) / 2
        sites += [row[round(start + i * step)] for i in range(n)]
        left -= n
    return sites


#: The cells of lane ``p`` in the board top, flattened by Yosys into one module.
LANE_CELLS = "bridge.engine.datapath.lane{}.*"


def _after_synthesis(board: Board, config: CrossbarConfig) -> list[str]:
    """Yosys commands after synthesis: each lane's multiplier fixed at its site (nextpnr
    honours a cell's ``BEL`` attribute), and the cell counts in a file of their own."""
    multiplier = board.resources["dsp"][0]
    commands = [
        f'setattr -set BEL "{site}" {DESIGN}/{LANE_CELLS.format(p)} t:{multiplier} %i'
        for p, site in enumerate(lane_multiplier_sites(board, config))
    ]
    commands.append(f"tee -o {DESIGN}.stat stat")
    return commands
