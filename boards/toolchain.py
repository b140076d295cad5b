"""The toolchain of a bitstream build: finding Yosys, nextpnr and the bitstream packer, running
the build plan's commands into ``build.log``, and the progress line while they run.

The tools are found through the environment variables Amaranth reads (``YOSYS``,
``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``). By default they point at the
YoWASP (WebAssembly) builds installed next to the running Python; ``toolchain="system"`` uses
whatever is on ``PATH`` under the plain names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from .clocks import POWER_ON_RESET_S

__all__ = [
    "DESIGN",
    "TOOLS",
    "TOOL_NAMES",
    "PHASES",
    "FSM_INIT_WARNING",
    "FSM_INIT_NOTE",
    "ToolchainError",
    "MissingToolError",
    "toolchain_env",
    "Progress",
    "run_tools",
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
#: (the build's Yosys script asks for it): the state register's initial value is dropped.
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


def run_tools(
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
