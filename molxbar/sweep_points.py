"""One point of a sweep, as a Dask worker runs it: a device point on the golden model, or a
board build through ``molxbar build --json`` in a child process.

Each function takes the point's parameters (plain values) and returns its figures as a flat
dict, the same on any worker: device points are bit-exact functions of their parameters
(the noise generator and the test signals take the point's seed), and a build point's
figures are those of its ``report.json``. A point that fails raises; the sweep records the
error in its row.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from molxbar.emulator import CrossbarConfig
from molxbar.emulator.config import SIGMA_SEGMENTS
from molxbar.emulator.metrics import enob, snr_db
from molxbar.emulator.workloads import ComplexTransform, astro_image, dft_matrix, make_signals
from molxbar.host.programs import image_blocks

__all__ = [
    "MAPPINGS",
    "WORKLOADS",
    "DFT_N",
    "DFT_BATCH",
    "IMAGE_SIZE",
    "BUILD_MODES",
    "DEFAULT_TIMEOUT_S",
    "device_config",
    "device_point",
    "build_point",
    "build_figures",
    "DEVICE_FIGURES",
    "BUILD_FIGURES",
]

MAPPINGS = ("offset", "differential")
#: ``dft``: the ``DFT_N``-point DFT of ``DFT_BATCH`` Gaussian signals against ``numpy.fft``;
#: ``image``: the 2-D inverse DFT of the demo's sky image (``IMAGE_SIZE`` pixels a side, in
#: 64x64 blocks) against the image.
WORKLOADS = ("dft", "image")
DFT_N = 64
DFT_BATCH = 64
IMAGE_SIZE = 128
#: How far a build point goes: the build tree only, synthesis, or place and route.
BUILD_MODES = ("dry-run", "synth-only", "full")
#: Seconds a build point may take before it is stopped (a ULX3S build takes 13-19 minutes).
DEFAULT_TIMEOUT_S = 7200.0


def device_config(point: dict) -> CrossbarConfig:
    """The crossbar of a device point: ``levels`` levels in the fewest bits that hold them
    (at least 4, the noise segments' bits), the noise on when its sigma is above 0."""
    levels = point["levels"]
    g_bits = max((levels - 1).bit_length(), SIGMA_SEGMENTS.bit_length() - 1)
    return CrossbarConfig(
        g_bits=g_bits,
        levels=levels,
        read_sigma=point["read_sigma"],
        write_sigma=point["write_sigma"],
        read_noise=point["read_sigma"] > 0,
        write_noise=point["write_sigma"] > 0,
        seed=point["seed"],
    )


def _dft_snr(config: CrossbarConfig, scheme: str, adc_bits: int | None, seed: int) -> float:
    """SNR of the golden-model DFT of Gaussian signals; an ADC of ``adc_bits`` is ranged
    like the demo's: its shift keeps the largest tile output of a full-precision run just
    inside its range."""
    signals = make_signals(DFT_N, DFT_BATCH, "gaussian", seed)
    transform = ComplexTransform(dft_matrix(DFT_N), config, scheme, real_inputs=True)
    if adc_bits is not None:
        peak = 0
        run = transform.tiled.runner

        def recording(tile: int, codes: np.ndarray) -> np.ndarray:
            nonlocal peak
            out = run(tile, codes)
            peak = max(peak, int(np.abs(out).max()))
            return out

        transform.tiled.runner = recording
        transform(signals)
        transform.tiled.runner = run
        shift = max(0, peak.bit_length() + 1 - adc_bits)
        for crossbar in transform.tiled.crossbars:
            crossbar.set_adc(adc_bits, shift)
    return snr_db(transform(signals), np.fft.fft(signals, axis=1))


def device_point(point: dict) -> dict:
    """SNR (dB) and ENOB of one device point on the golden model, and its seconds."""
    started = time.monotonic()
    config = device_config(point)
    if point["workload"] == "dft":
        snr = _dft_snr(config, point["mapping"], point["adc_bits"], point["seed"])
    else:
        from .demo import BLOCK  # (the simulators' imports: only where needed)
        from .demo_measurements import idft_snr

        blocks = image_blocks(astro_image(IMAGE_SIZE), BLOCK)
        spectra = np.fft.fft2(blocks)
        # (a first full-precision run ranges the ADC)
        snrs, _ = idft_snr(config, spectra, blocks, point["mapping"], [None, point["adc_bits"]])
        snr = snrs[-1]
    return {
        "g_bits": config.g_bits,
        "snr_db": round(snr, 6) if math.isfinite(snr) else snr,
        "enob": round(enob(snr), 6) if math.isfinite(snr) else snr,
        "seconds": round(time.monotonic() - started, 3),
    }


#: The figures of a device point, in the table's order.
DEVICE_FIGURES = ("g_bits", "snr_db", "enob", "seconds")


def _resource(report: dict, *names: str) -> int | None:
    """Cells used of the first of ``names`` the report counts: after place and route if there
    was one, else after synthesis."""
    for section in ("resources", "synthesis"):
        for name in names:
            value = (report.get(section) or {}).get(name)
            if value is not None:
                return value["used"]
    return None


def build_figures(report: dict) -> dict:
    """The figures of a build's ``report.json``: fits, Fmax (MHz, the slowest clock), timing
    met, LUT/FF/DSP/RAM cells, engine GMAC/s at the engine clock, and tool seconds."""
    fmax = report.get("fmax") or {}
    achieved = min((v["achieved_hz"] for v in fmax.values()), default=None)
    rate = report.get("throughput_at_engine_clock") or {}
    mac_per_s = rate.get("engine_mac_per_s")
    return {
        "fits": report.get("fits"),
        "fmax_mhz": None if achieved is None else round(achieved / 1e6, 2),
        "timing_met": report.get("timing_met"),
        "lut": _resource(report, "lut4", "lut"),
        "ff": _resource(report, "ff"),
        "dsp": _resource(report, "dsp"),
        "ram": _resource(report, "bram"),
        "gmac_per_s": None if mac_per_s is None else round(mac_per_s / 1e9, 4),
        "tool_seconds": (report.get("seconds") or {}).get("tools"),
    }


#: Leads the process group of a build (argument: the worker's process id): started before the
#: build, it stops the group, the build's tools with it, as soon as the worker that started
#: them is gone (killed, or its cluster closed).
_REAPER = """
import os, signal, sys, time
worker = int(sys.argv[1])
while os.getppid() == worker:
    time.sleep(0.2)
os.killpg(os.getpgrp(), signal.SIGKILL)
"""


def build_point(point: dict, out_dir: str, mode: str, timeout: float | None) -> dict:
    """Build one board point with ``molxbar build --json`` in a child process (a tool that
    crashes takes only the child with it) into ``out_dir``; a build that outlives
    ``timeout`` seconds, or the worker running it, is stopped, its tools with it. Returns the
    build's figures; a build that fails also gives ``error``, beside what its report found
    out."""
    command = [
        sys.executable, "-m", "molxbar", "build",
        "--board", point["board"],
        "--lanes", str(point["lanes"]),
        "--clock-mhz", repr(point["clock_mhz"]),
        "--seed", str(point["seed"]),
        "-o", out_dir, "--json",
    ]  # fmt: skip
    if mode != "full":
        command.append(f"--{mode}")
    report_path = Path(out_dir) / "report.json"
    report_path.unlink(missing_ok=True)  # (a failed build's figures are its own)
    # A group of its own (outside the terminal's, so Ctrl-C reaches the sweep, not the tools)
    # whose leader stops it when this worker is gone.
    reaper = subprocess.Popen([sys.executable, "-c", _REAPER, str(os.getpid())], process_group=0)
    try:
        with subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            process_group=reaper.pid,
        ) as child:
            try:
                out, err = child.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(reaper.pid, signal.SIGKILL)  # the build, its tools and the reaper
                child.communicate()
                raise TimeoutError(
                    f"the build took longer than {timeout:g} s and was stopped"
                ) from None
    finally:
        reaper.kill()
        reaper.wait()
    if child.returncode == 0:
        return build_figures(json.loads(out))
    # What the tools found out before failing (a design that does not fit: by how much).
    lines = [line for line in err.splitlines() if line.startswith("molxbar: error:")]
    reason = lines[-1] if lines else (err.strip().splitlines() or ["(no output)"])[-1]
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    error = f"molxbar build exited with status {child.returncode}: {reason}"
    return {**build_figures(report), "error": error}


#: The figures of a build point, in the table's order.
BUILD_FIGURES = tuple(build_figures({}))
