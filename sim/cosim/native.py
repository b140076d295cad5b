"""The native stream driver: the Verilated engine driven by a small C++ loop
(``native_driver.cpp``), a whole job at a time, with no Python in the cycle loop.

It runs the same :class:`~molxbar.sim.cosim.job.Job` as the cocotb bench on Verilator — the
segments, mid-traffic resets, idle cycles and bursty back-pressure — and gives the same
:class:`~molxbar.sim.cosim.job.JobResult`; the responses are then held to the golden engine
here, with the bench's :class:`~molxbar.sim.cosim.scoreboard.Scoreboard`. The cocotb bench
stays the verification harness (it checks every byte as it arrives and writes waveforms);
this driver is what ``--backend verilator``, the demo and ``molxbar verify`` use for speed.
Its idle and back-pressure draws come from its own generator, so with stalls the cycle
counts differ from the cocotb bench's for the same seed; the response bytes do not.

The driver is compiled once per design, with the engine's Verilog, into one executable kept
in the cache (:func:`native_build`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.engine import balanced_stream_bytes
from molxbar.hdl.generate import TOP_NAME
from molxbar.hdl.options import EngineOptions
from molxbar.protocol.beats import beat_bits

from .cache import announce, cache_dir, design_key, locked, verilog_file
from .job import Job, JobResult, SegmentResult
from .scoreboard import Scoreboard
from .simulators import (
    TIMESCALE,
    VERILATOR_ARGS,
    CosimError,
    simulator_missing,
)

__all__ = ["DRIVER_SOURCE", "NATIVE_OPTIONS", "native_build", "native_executable", "run_native"]

#: The C++ of the driver.
DRIVER_SOURCE = Path(__file__).with_name("native_driver.cpp")
#: The executable's name in its build folder.
EXECUTABLE = "molxbar_native"
#: Verilator options of the driver's model beyond the cocotb build's. None helped: on the
#: 64-lane engine (medians of three interleaved runs, 2 busy cores) the defaults gave 1,200
#: verified VMM/s, ``-O3 --x-assign fast --x-initial fast`` 1,146 and ``--threads 2`` 117
#: (its threads wait on each other every cycle, and on cores with other work to do).
NATIVE_OPTIONS: tuple[str, ...] = ()
#: Make variables of the driver's C++ build: ``-O2`` for the model, as the cocotb build, and
#: no precompiled header. With one, a 64-lane build on a busy machine failed (``one or more
#: PCH files were found, but they were invalid``, then the header missing), and a failed
#: build is minutes lost; without, the ULX3S's 64-lane engine took 139 s against 91 s with
#: one (the first on the busier machine).
NATIVE_MAKE_FLAGS = ("OPT_FAST=-O2", "VK_PCH_I_FAST=", "VK_PCH_I_SLOW=")


def _recipe() -> str:
    """A digest of how the driver is built: the C++ and the options of its build (an edit
    elsewhere in this module makes no new builds)."""
    digest = hashlib.sha256(DRIVER_SOURCE.read_bytes())
    options = (*TIMESCALE, *VERILATOR_ARGS, *NATIVE_OPTIONS, *NATIVE_MAKE_FLAGS)
    digest.update("\n".join(options).encode())
    return digest.hexdigest()[:8]


def native_executable(config: CrossbarConfig, options: EngineOptions | None = None) -> Path:
    """Where the driver executable for the engine of ``config`` is kept (built or not); its
    folder's ``build.json`` says how long the build took."""
    return cache_dir() / "build" / f"native-{design_key(config, options)}-{_recipe()}" / EXECUTABLE


def native_build(config: CrossbarConfig, options: EngineOptions | None = None) -> Path:
    """The driver executable for the engine of ``config`` (built once, then cached).

    Raises :class:`~molxbar.sim.cosim.CosimError` when Verilator or a C++ compiler is
    missing, or the build fails (naming its log)."""
    reason = simulator_missing("verilator")
    if reason is not None:
        raise CosimError(reason)
    verilog = verilog_file(config, options)
    executable = native_executable(config, options)
    folder = executable.parent
    with locked(folder.with_suffix(".lock")):
        if executable.is_file():
            return executable
        if folder.exists():
            shutil.rmtree(folder)  # a build that did not finish
        folder.mkdir(parents=True)
        announce(
            f"compiling the native Verilator driver of the {config.rows}x{config.cols}, "
            f"{config.lanes}-lane engine (once per design; a few minutes for 64 lanes)"
        )
        command = [
            "verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1),
            "--Mdir", str(folder / "obj"), "--top-module", TOP_NAME, "-o", EXECUTABLE,
            "--timescale", "/".join(TIMESCALE), *VERILATOR_ARGS, *NATIVE_OPTIONS,
            str(verilog), str(DRIVER_SOURCE),
        ]  # fmt: skip
        environment = dict(os.environ)
        environment["MAKEFLAGS"] = " ".join(
            filter(None, [environment.get("MAKEFLAGS"), *NATIVE_MAKE_FLAGS])
        )
        start = time.perf_counter()
        log = folder / "build.log"
        with open(log, "w") as handle:
            done = subprocess.run(
                command, stdout=handle, stderr=subprocess.STDOUT, env=environment, check=False
            )
        if done.returncode != 0 or not (folder / "obj" / EXECUTABLE).is_file():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise CosimError(f"the native Verilator driver did not build; log: {log}\n{tail}")
        (folder / "obj" / EXECUTABLE).replace(folder / f"{EXECUTABLE}.partial")
        shutil.rmtree(folder / "obj")  # the C++ and objects: about 100 MB for 64 lanes
        (folder / "build.json").write_text(
            json.dumps({"seconds": round(time.perf_counter() - start, 2)}) + "\n"
        )
        (folder / f"{EXECUTABLE}.partial").replace(executable)
    return executable


def run_native(
    job: Job,
    *,
    options: EngineOptions | None = None,
    design: CrossbarConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> JobResult:
    """Run ``job`` on the native driver and, when ``job.check``, hold its responses to the
    golden engine (every byte of a finished segment; the prefix before a mid-traffic reset).

    Parameters
    ----------
    options
        How the engine is built (:class:`~molxbar.hdl.options.EngineOptions`).
    design
        Simulate the engine generated for this configuration instead of ``job.config``.
    progress
        Called now and then with the command bytes taken so far (over all segments).

    Raises :class:`~molxbar.sim.cosim.CosimError` on a mismatch, naming the seed and the
    first differing command, or on a timeout.
    """
    design = job.config if design is None else design
    executable = native_build(design, options)
    stream_bytes = (options or EngineOptions()).stream_bytes or balanced_stream_bytes(design)
    with tempfile.TemporaryDirectory(prefix="molxbar-native-") as scratch:
        work = Path(scratch)
        arguments = [
            str(executable), "--stream-bytes", str(stream_bytes), "--seed", str(job.seed),
            "--idle-in", repr(job.idle_in), "--stall-out", repr(job.stall_out),
            "--burst", str(job.stall_burst), "--out", str(work),
        ]  # fmt: skip
        if job.max_cycles is not None:
            arguments += ["--max-cycles", str(job.max_cycles)]
        for k, segment in enumerate(job.segments):
            path = work / f"segment{k}.bin"
            path.write_bytes(segment.commands)
            cut = "" if segment.reset_after is None else f"@{segment.reset_after}"
            arguments.append(f"{path}{cut}")
        summary, error = _drive(arguments, job, progress)
        if error is not None:
            raise CosimError(f"verilator (native): seed {job.seed}: {error}")
        segments = [
            SegmentResult(
                taken=s["taken"],
                responses=(work / f"responses{k}.bin").read_bytes(),
                cycles=s["cycles"],
                reset=s["reset"],
            )
            for k, s in enumerate(summary.pop("segments"))
        ]
    result = JobResult(
        seed=job.seed,
        payload_bits=beat_bits(stream_bytes),
        stream_bytes=stream_bytes,
        segments=segments,
        **summary,
    )
    if job.check:
        _check(job, result)
    return result


def _drive(arguments: list[str], job: Job, progress) -> tuple[dict | None, str | None]:
    """Run the driver; returns its summary, or the error it reported."""
    before = [sum(len(s.commands) for s in job.segments[:k]) for k in range(len(job.segments))]
    summary = error = None
    with subprocess.Popen(
        arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        for line in process.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "progress" and progress is not None:
                segment, taken = map(int, rest.split())
                progress(before[segment] + taken)
            elif kind == "result":
                summary = json.loads(rest)
            elif kind == "error":
                error = rest
        stderr = process.stderr.read()
    if summary is None and error is None:
        error = f"the driver stopped with status {process.returncode}: {stderr.strip()[-2000:]}"
    return summary, error


def _check(job: Job, result: JobResult) -> None:
    """Hold each segment's responses to the golden engine, as the cocotb scoreboard does."""
    board = Scoreboard(job.config)
    for k, (segment, outcome) in enumerate(zip(job.segments, result.segments, strict=True)):
        board.expect(segment.commands)
        try:
            if outcome.reset:
                board.check_prefix(outcome.responses, outcome.taken)
            else:
                board.finish(outcome.responses)
        except AssertionError as mismatch:
            raise CosimError(
                f"verilator (native): seed {job.seed}: segment {k}: {mismatch}"
            ) from None
