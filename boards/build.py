"""Bitstreams: the build tree, the toolchain, progress while it runs, and ``report.json``.

The tools are Yosys, nextpnr and the bitstream packer, found through the environment
variables Amaranth reads (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``,
``ECPPACK``). By default they point at the YoWASP (WebAssembly) builds installed next to the
running Python; ``toolchain="system"`` uses whatever is on ``PATH`` under the plain names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.mac import PER_LANE_ATTRIBUTE
from molxbar.hdl.options import EngineOptions
from molxbar.host.link_packer import batch_frames
from molxbar.protocol.spec import Layout, Opcode

from .clocks import POWER_ON_RESET_S
from .targets import BOARDS, Board, board_config
from .top import BoardTop

__all__ = [
    "TOOLS",
    "BuildResult",
    "build_board",
    "toolchain_env",
    "parse_nextpnr_report",
    "parse_nextpnr_log",
    "parse_yosys_cells",
    "throughput",
]

#: Design name inside the build tree: files are ``molxbar.il``, ``molxbar.bin`` ...
DESIGN = "molxbar"

#: The tools of each family: environment variable, plain name.
TOOLS = {
    "ice40": (("YOSYS", "yosys"), ("NEXTPNR_ICE40", "nextpnr-ice40"), ("ICEPACK", "icepack")),
    "ecp5": (("YOSYS", "yosys"), ("NEXTPNR_ECP5", "nextpnr-ecp5"), ("ECPPACK", "ecppack")),
}


#: The plain name of the tool each environment variable names.
TOOL_NAMES = {var: name for family in TOOLS.values() for var, name in family}

#: What each tool of the build plan does, as the progress line and build.log name it.
PHASES = {
    "yosys": "synthesising with Yosys",
    "nextpnr-ice40": "placing and routing with nextpnr",
    "nextpnr-ecp5": "placing and routing with nextpnr",
    "icepack": "packing the bitstream",
    "ecppack": "packing the bitstream",
}

#: Yosys's warning, two lines, for each state machine it re-encodes one-hot
#: (``_before_synthesis``): the state register's initial value is dropped.
FSM_INIT_WARNING = (
    "Regarding the user-specified fsm_encoding attribute",
    "Initialization value on FSM state register is ignored",
)


#: Why :data:`FSM_INIT_WARNING` does not matter, shown once a build.
FSM_INIT_NOTE = (
    f"note: Yosys warns that state machines re-encoded one-hot lose their initial state; "
    f"harmless here: every state machine is in the sync domain, whose reset is held "
    f"{POWER_ON_RESET_S * 1e6:.0f} us after the clock starts (boards/clocks.py) and puts "
    f"each in its first state"
)


class ToolchainError(RuntimeError):
    """A tool is missing or failed; the message says which and where its log is."""


class MissingToolError(ToolchainError):
    """A tool is not installed: found out before anything is written."""


def multipliers_per_lane(config: CrossbarConfig) -> int:
    """DSP multipliers a MAC lane takes: ``x*g``, and with noise hardware ``x*n`` and
    ``z*s`` too."""
    return 3 if config.noise_hardware else 1


def fit_warnings(board: Board, config: CrossbarConfig) -> list[str]:
    """What makes ``config`` too large for ``board`` before any tool runs (the DSP blocks)."""
    needed = config.lanes * multipliers_per_lane(config)
    available = board.capacity.get("dsp")
    if available is None or needed <= available:
        return []
    return [
        f"{config.lanes} lanes need {needed} DSP multipliers and the {board.device} has "
        f"{available}: this design will not fit ({board.name}'s default is {board.lanes} lanes)"
    ]


def toolchain_env(family: str, toolchain: str = "yowasp") -> dict[str, str]:
    """Environment variables that point Amaranth's build script at the tools.

    ``yowasp``: the ``yowasp-*`` executables in the folder of ``sys.executable`` (the
    virtual environment), else on ``PATH``. ``system``: the plain names, which must be on
    ``PATH``.
    """
    if toolchain not in ("yowasp", "system"):
        raise ValueError(f"toolchain = {toolchain!r} must be 'yowasp' or 'system'")
    env = {}
    bin_dir = Path(sys.executable).parent
    for var, name in TOOLS[family]:
        if toolchain == "system":
            path = shutil.which(name)
            hint = f"install {name} (e.g. from the OSS CAD Suite) or use the YoWASP toolchain"
        else:
            local = bin_dir / f"yowasp-{name}"
            path = str(local) if local.exists() else shutil.which(f"yowasp-{name}")
            hint = f"pip install yowasp-{name.split('-')[0] if name == 'yosys' else name}"
        if path is None:
            raise MissingToolError(f"{name} ({toolchain}) not found: {hint}")
        env[var] = path
    return env


# Reports -------------------------------------------------------------------------------------


def parse_nextpnr_report(path: str | Path) -> dict:
    """Utilization, Fmax and critical paths from nextpnr's ``--report`` JSON.

    Returns ``{"utilization": {cell_type: {"used", "available"}}, "fmax": {clock:
    {"achieved_hz", "constraint_hz"}}, "critical_paths": [{"clocks", "delay_ns", "from",
    "to"}]}``.
    """
    data = json.loads(Path(path).read_text())
    fmax = {
        clock: {
            "achieved_hz": round(value["achieved"] * 1e6),
            "constraint_hz": round(value["constraint"] * 1e6),
        }
        for clock, value in data.get("fmax", {}).items()
    }
    paths = []
    for path_ in data.get("critical_paths", []):
        steps = path_.get("path", [])
        if not steps:
            continue
        paths.append(
            {
                "clocks": f"{path_['from']} -> {path_['to']}",
                "delay_ns": round(sum(step["delay"] for step in steps), 2),
                "logic_ns": round(
                    sum(step["delay"] for step in steps if step["type"] != "routing"), 2
                ),
                "from": steps[0]["from"]["cell"],
                "to": steps[-1]["to"]["cell"],
            }
        )
    return {"utilization": data.get("utilization", {}), "fmax": fmax, "critical_paths": paths}


def parse_nextpnr_log(text: str) -> dict:
    """Utilization (``{cell_type: {"used", "available"}}``) from the ``Device utilisation``
    block of a nextpnr log: there even when placement fails because the design does not fit."""
    utilization = {}
    for match in re.finditer(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text):
        utilization.setdefault(match[1], {"used": int(match[2]), "available": int(match[3])})
    return utilization


def parse_yosys_cells(log: str) -> dict[str, int]:
    """Cell counts by type from the last statistics block of a Yosys log or ``stat`` output
    (both the ``Number of cells: N`` and the ``N cells`` styles)."""
    lines = log.splitlines()
    starts = [
        k
        for k, line in enumerate(lines)
        if re.match(r"\s*Number of cells:\s*\d+\s*$", line) or re.match(r"\s*\d+\s+cells\s*$", line)
    ]
    if not starts:
        return {}
    cells: dict[str, int] = {}
    for line in lines[starts[-1] + 1 :]:
        match = re.match(r"\s+(\d+)\s+(\$?[A-Za-z_][\w$]*)\s*$", line) or re.match(
            r"\s+(\$?[A-Za-z_][\w$]*)\s+(\d+)\s*$", line
        )
        if not match:
            break
        count, name = match.groups() if match[1].isdigit() else match.groups()[::-1]
        if not name.startswith("$scopeinfo"):
            cells[name] = int(count)
    return cells


def throughput(config: CrossbarConfig, clock_hz: float, baud: int) -> dict:
    """VMMs and multiply-accumulates per second at ``clock_hz``.

    * ``compute``: the lanes alone, one row per cycle per lane (``rows * cols / lanes``
      cycles per vector);
    * ``engine``: a batch in the bridge's engine, whose streams move one byte per cycle, so a
      vector also needs as many cycles as its command bytes and its response bytes;
    * ``uart``: what a UART at ``baud`` carries (8N1, one line each way; the busier line
      sets the rate);
    * ``link``: what the serial link carries, with one frame in flight
      (:func:`~molxbar.host.link_packer.batch_frames`): each frame's commands, then its
      answer (no USB latency counted); ``link_adc16`` the same with a 16-bit ADC, whose
      outputs take 2 bytes.
    """
    layout = Layout(config)
    compute = config.rows * config.cols // config.lanes
    in_bytes = config.rows * layout.input_bytes
    out_bytes = layout.response_length(Opcode.RUN_BATCH)
    cycles = max(compute, in_bytes, out_bytes)
    macs = config.rows * config.cols
    rates = {
        "compute": clock_hz / compute,
        "engine": clock_hz / cycles,
        "uart": baud / 10 / max(in_bytes, out_bytes),
    }
    for name, adc_bits in (("link", 0), ("link_adc16", 16)):
        frames = batch_frames(layout.at_adc(adc_bits))
        rates[name] = baud / 10 * frames["vectors"] / (frames["command"] + frames["response"])
    result: dict = {
        "compute_cycles_per_vmm": compute,
        "batch_cycles_per_vmm": cycles,
        "uart_bytes_per_vmm": {"command": in_bytes, "response": out_bytes},
    }
    for name, vmm in rates.items():
        result[f"{name}_vmm_per_s"] = round(vmm, 1) if vmm < 1000 else round(vmm)
        result[f"{name}_mac_per_s"] = round(vmm * macs)
    return result


# Build ---------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    """Where the build tree is, the bitstream (``None`` for a dry run), and the report."""

    directory: Path
    bitstream: Path | None
    report: dict = field(default_factory=dict)


class Progress:
    """One status line while the tools run: elapsed time, the running tool, its last line.

    On a terminal the line is redrawn in place four times a second; otherwise each phase's
    start is printed once. ``verbose`` prints every line of tool output as well. ``start``:
    the ``time.monotonic()`` the elapsed time counts from (default: now).
    """

    def __init__(self, stream=None, verbose: bool = False, start: float | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.verbose = verbose
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic() if start is None else start
        self.stage = "starting"
        self.last = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self.tty and not self.verbose:
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.start)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def begin(self, tool: str, phase: str | None = None) -> None:
        """Start ``tool`` on ``phase`` ("synthesising with Yosys"; default "running
        ``tool``"): the status line names the phase."""
        phase = phase or f"running {tool}"
        with self._lock:
            self.stage, self.last = phase, ""
        if not self.tty or self.verbose:
            self.stream.write(f"[{self.elapsed()}] {phase}\n")
            self.stream.flush()

    def line(self, text: str) -> None:
        """A line of tool output: the status line shows the latest (not the known-harmless
        FSM warnings, which :meth:`note` explains)."""
        text = text.rstrip()
        if self.verbose:
            self.stream.write(text + "\n")
            self.stream.flush()
        elif text and not any(part in text for part in FSM_INIT_WARNING):
            with self._lock:
                self.last = text

    def note(self, text: str) -> None:
        """A line for the user, kept above the status line."""
        with self._lock:
            clear = "\r\x1b[K" if self._thread is not None else ""
            self.stream.write(f"{clear}[{self.elapsed()}] {text}\n")
            self.stream.flush()

    def _spin(self) -> None:
        frames = "|/-\\"
        k = 0
        width = shutil.get_terminal_size((100, 20)).columns - 1
        while not self._stop.wait(0.25):
            with self._lock:
                status = f"{frames[k % 4]} [{self.elapsed()}] {self.stage}: {self.last}"
            self.stream.write("\r\x1b[K" + status[:width])
            self.stream.flush()
            k += 1


def _run_tools(
    directory: Path,
    env: dict,
    progress: Progress,
    stages: dict[str, float],
    stop_after: str | None = None,
) -> None:
    """Run the build plan's commands (``build_molxbar.json``) with the tools of ``env``, all
    output to ``build.log``; stop after the tool named ``stop_after``. Puts the seconds each
    tool took into ``stages``, also for a tool that fails."""
    commands = json.loads((directory / f"build_{DESIGN}.json").read_text())["commands"]
    paths = {name: env[var] for var, name in TOOL_NAMES.items() if var in env}
    log_path = directory / "build.log"
    explained = False  # the FSM warnings
    with open(log_path, "w") as log:
        for command in commands:
            tool = command[0]
            phase = PHASES.get(tool, f"running {tool}")
            progress.begin(tool, phase)
            log.write(f"# {phase}\n$ {' '.join(command)}\n")
            started = time.monotonic()
            with subprocess.Popen(
                [paths.get(tool, tool), *command[1:]],
                cwd=directory,
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            ) as process:
                for line in process.stdout:
                    log.write(line)
                    log.flush()
                    progress.line(line)
                    if not explained and FSM_INIT_WARNING[1] in line:
                        log.write(f"# {FSM_INIT_NOTE}\n")
                        progress.note(FSM_INIT_NOTE)
                        explained = True
                code = process.wait()
            stages[tool] = round(time.monotonic() - started, 1)
            if code:
                tail = "".join(log_path.read_text().splitlines(keepends=True)[-12:])
                raise ToolchainError(
                    f"{tool} failed (exit status {code}); full log: {log_path}\n{tail}"
                )
            if tool == stop_after:
                break


def build_board(
    board: Board | str,
    out_dir: str | Path,
    *,
    lanes: int | None = None,
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
    lanes, config
        The crossbar: ``config`` as given, or the board's (:func:`board_config`) with
        ``lanes`` lanes.
    clock_hz
        Engine clock (the board's default if ``None``): the oscillator's frequency runs
        without the PLL, any other is the nearest the PLL makes.
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
        How the engine is built (:class:`~molxbar.hdl.options.EngineOptions`).

    Raises ``ToolchainError`` when a tool is missing or fails; ``report.json`` then holds
    what the tools found out (for a design that does not fit: the utilization nextpnr
    reported before giving up).
    """
    board = BOARDS[board] if isinstance(board, str) else board
    if config is None:
        config = board_config(board, lanes)
    options = EngineOptions() if options is None else options
    pll = board.make_pll(clock_hz)
    engine_hz = board.oscillator_hz if pll is None else pll.f_out
    baud = baud or board.baud_for(engine_hz)
    env = {} if dry_run else toolchain_env(board.family, toolchain)  # (before any file)
    warnings = fit_warnings(board, config)
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
    )
    platform = board.platform()
    overrides = {
        "nextpnr_opts": f"--report {DESIGN}.report.json --timing-allow-fail --seed {seed}",
        "synth_opts": board.synth_options,
        "script_after_read": "\n".join(_before_synthesis(board)),
        "script_after_synth": "\n".join(_after_synthesis(board, config)),
    }
    started = time.monotonic()
    with Progress(stream, verbose) as progress:
        progress.begin("amaranth", "elaborating the design and writing the build tree")
        plan = platform.build(top, name=DESIGN, do_build=False, **overrides)
        plan.extract(out)
    elaborate_s = time.monotonic() - started
    report = {
        "board": board.name,
        "description": board.description,
        "device": board.device,
        "toolchain": toolchain,
        "config": config.as_dict(),
        "lanes": config.lanes,
        "engine_options": options.as_dict(),
        "clock": {
            "oscillator_hz": board.oscillator_hz,
            "engine_hz": engine_hz,
            "pll": None if pll is None else {k: v for k, v in vars(pll).items() if k != "f_in"},
        },
        "uart": {"baud": baud, "divisor": round(engine_hz / baud)},
        "throughput_at_engine_clock": throughput(config, engine_hz, baud),
        "seconds": {"elaborate": round(elaborate_s, 1)},
        "warnings": warnings,
    }
    bitstream_name = f"{DESIGN}.{board.bitstream}"
    if dry_run:
        (out / "report.json").write_text(json.dumps({**report, "dry_run": True}, indent=2) + "\n")
        return BuildResult(out, None, report)

    for stale in (f"{DESIGN}.report.json", f"{DESIGN}.tim", f"{DESIGN}.stat", bitstream_name):
        (out / stale).unlink(missing_ok=True)
    stages: dict[str, float] = {}
    try:
        with Progress(stream, verbose, start=started) as progress:
            _run_tools(out, env, progress, stages, "yosys" if synth_only else None)
    except ToolchainError as error:
        # Keep what the tools found out (a design that does not fit: by how much).
        report["error"] = str(error).splitlines()[0]
        report["seconds"].update(stages, tools=round(sum(stages.values()), 1))
        report.update(_collect(board, config, baud, out))
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        raise
    report["seconds"].update(stages, tools=round(sum(stages.values()), 1))
    report.update(_collect(board, config, baud, out))
    bitstream = None if synth_only else out / bitstream_name
    report["bitstream"] = None if bitstream is None else bitstream.name
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return BuildResult(out, bitstream, report)


def _before_synthesis(board: Board) -> list[str]:
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
    return commands


def lane_multiplier_sites(board: Board, config: CrossbarConfig) -> list[str]:
    """The multiplier site of each lane, in lane order: the lanes split evenly between the
    board's ``multiplier_rows``, and in each row centred, at most two sites apart. Empty when
    the board names no sites, when a lane has more than one multiplier (noise hardware, or
    ``x*g`` wider than 18 x 18 bits) or when there are more lanes than sites."""
    rows = board.multiplier_rows
    one_multiplier = not config.noise_hardware and config.x_bits <= 18 and config.g_bits <= 17
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


def _collect(board: Board, config: CrossbarConfig, baud: int, out: Path) -> dict:
    """Utilization, Fmax and throughput from the tools' reports (what there is of them)."""
    report_path, log_path = out / f"{DESIGN}.report.json", out / f"{DESIGN}.tim"
    if report_path.exists():
        nextpnr = parse_nextpnr_report(report_path)
    else:
        log = log_path.read_text(errors="replace") if log_path.exists() else ""
        nextpnr = {"utilization": parse_nextpnr_log(log), "fmax": {}, "critical_paths": []}
    stat_path = out / f"{DESIGN}.stat"
    cells = parse_yosys_cells(stat_path.read_text()) if stat_path.exists() else {}
    synthesis = {
        name: {
            "used": sum(n for cell, n in cells.items() if cell.startswith(prefixes)),
            "available": board.capacity.get(name),
        }
        for name, prefixes in board.synthesis_cells.items()
    }
    used = nextpnr["utilization"]
    resources = {}
    for name, types in board.resources.items():
        present = [t for t in types if t in used]
        if present:
            resources[name] = {
                "used": sum(used[t]["used"] for t in present),
                "available": sum(used[t]["available"] for t in present),
            }
    if board.family == "ice40":
        # A logic cell is a LUT4 and a flip-flop; count what synthesis made of each.
        resources["lut4"] = {
            "used": cells.get("SB_LUT4", 0),
            "available": resources.get("lut", {}).get("available", 0),
        }
        resources["ff"] = {
            "used": sum(n for name, n in cells.items() if name.startswith("SB_DFF")),
            "available": resources.get("lut", {}).get("available", 0),
        }
    for value in (*resources.values(), *synthesis.values()):
        value["percent"] = (
            round(100 * value["used"] / value["available"], 1) if value["available"] else None
        )
    fmax = nextpnr["fmax"]
    engine_clock = min(fmax.values(), key=lambda v: v["achieved_hz"], default=None)
    achieved = engine_clock["achieved_hz"] if engine_clock else None
    timing_met = all(v["achieved_hz"] >= v["constraint_hz"] for v in fmax.values())
    result = {
        "resources": resources,
        "synthesis": synthesis,
        "synthesis_cells": cells,
        "fits": all(v["used"] <= v["available"] for v in used.values())
        if used
        else all(v["used"] <= v["available"] for v in synthesis.values() if v["available"])
        if cells
        else None,
        "fmax": fmax,
        "timing_met": timing_met if fmax else None,
        "critical_paths": nextpnr["critical_paths"],
    }
    if achieved:
        result["throughput_at_fmax"] = throughput(config, achieved, baud)
    return result
