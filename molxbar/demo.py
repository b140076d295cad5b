"""``molxbar demo``: the 2-D inverse Fourier transform of a sky image on the crossbar twin.

The bundled synthetic astronomical image (:func:`~molxbar.emulator.workloads.astro_image`)
is cut into 64x64 blocks, each block's 2-D spectrum (``numpy.fft.fft2``) is transformed back
on the crossbar -- the inverse DFT matrix programmed (and verified) on a crossbar through the
host driver, rows then columns, signed and complex values through the offset or differential
mapping -- and the result is compared with the original image. Every response byte of the
chosen backend is checked against the golden engine.

Outputs in the report folder: ``report.json`` and four figures (original, reconstructed and
error images; SNR against ADC bits and conductance levels; conductance against pulse number;
energy per VMM against a digital baseline; drawn by :mod:`molxbar.demo_figures`).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from molxbar.emulator.device import (
    PAPER_SNR_DB,
)
from molxbar.emulator.mapping import MappedMatrix, complex_to_real
from molxbar.emulator.metrics import enob, snr_db
from molxbar.emulator.workloads import astro_image, dft_matrix
from molxbar.host.driver import CrossbarDriver
from molxbar.host.programs import idft2_on_crossbars, image_blocks, image_from_blocks
from molxbar.host.transports import (
    CheckedTransport,
    GoldenTransport,
    ReplayTransport,
)
from molxbar.sim.backends import BACKENDS, RunResult
from molxbar.sim.backends import backend as backend_named
from molxbar.sim.transport import AmaranthTransport

from .demo_figures import PRIOR_ART_SNR_DB as PRIOR_ART_SNR_DB
from .demo_figures import write_figures
from .demo_measurements import (
    SWEEP_ADC_BITS,
    SWEEP_G_BITS,
    energy_per_vmm,
    progress_bar,
    pulse_staircase,
    snr_sweep,
)
from .emulator import CrossbarConfig, preset

__all__ = ["DEFAULT_BACKEND", "run_demo", "print_summary"]

#: The backend ``molxbar demo`` uses unless told otherwise.
DEFAULT_BACKEND = "verilator"
#: Crossbar side and DFT block size.
BLOCK = 64


class _Link:
    """The drivers of the demo's crossbars on a backend, and how their bytes are checked."""

    def __init__(
        self, backend: str, config: CrossbarConfig, crossbars: int, progress: bool, replay: bool
    ) -> None:
        self.backend = backend
        self.replay = replay
        self.config = config
        self.progress = progress
        self.simulated: list[AmaranthTransport] = []
        self.replayed: list[RunResult] = []  # the one-pass runs of simulator backends
        self.transports = []
        runs_on = BACKENDS[backend]
        for _ in range(crossbars):
            if replay:
                transport = ReplayTransport(config, self._runner)
            elif backend == "golden":
                transport = runs_on.transport(config)
            else:  # a live simulator, checked against the golden engine as it runs
                sim = runs_on.transport(config)
                self.simulated.append(sim)
                transport = CheckedTransport(sim, GoldenTransport(config))
            self.transports.append(transport)
        self.drivers = [CrossbarDriver(t) for t in self.transports]

    def _runner(self, commands: bytes) -> bytes:
        with progress_bar(len(commands), f"{self.backend} replay", "B", self.progress) as bar:

            def update(done: int) -> None:
                bar.update(done - bar.n)

            result = BACKENDS[self.backend].run(self.config, commands, progress=update)
        self.replayed.append(result)
        return result.responses

    def check(self) -> dict:
        """Finish the byte-for-byte comparison with the golden engine."""
        if self.backend == "golden" and not self.replay:
            return {"checked": False, "bit_exact": None, "reference": "golden engine itself"}
        compared = mismatches = 0
        first = None
        for transport in self.transports:
            if isinstance(transport, ReplayTransport):
                transport.check()
                first = first or transport.difference
            compared += transport.bytes_compared
            mismatches += transport.mismatches
        report = {
            "checked": True,
            "bit_exact": mismatches == 0,
            "bytes_compared": compared,
            "mismatched_bytes": mismatches,
            "mode": "replayed in one pass" if self.replay else "live",
        }
        if first is not None:
            report["first_difference"] = first
        return report

    def cycles(self, vmms: int) -> dict | None:
        runs = self.simulated + [r for r in self.replayed if r.cycles is not None]
        if not runs:
            return None
        total = sum(r.cycles for r in runs)
        return {
            "total_cycles": total,
            "vmm_cycles": max(r.vmm_cycles for r in runs),
            "cycles_per_vmm_overall": total / max(vmms, 1),
        }


# The demo ------------------------------------------------------------------------------


def run_demo(
    backend: str = DEFAULT_BACKEND,
    out_dir: str | Path = "demo",
    *,
    size: int = 256,
    preset_name: str = "ideal14",
    scheme: str = "offset",
    crossbars: int = 1,
    sweep: bool = True,
    replay: bool | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run the demo and write ``report.json`` and the figures into ``out_dir``.

    Parameters
    ----------
    backend
        Where the crossbar runs (``molxbar.sim.backends.BACKENDS``). ``golden`` and
        ``amaranth`` are driven call by call (the Amaranth simulation checked byte for byte
        against the golden engine as it runs); other backends get the recorded command
        stream afterwards, in one pass, and are compared with the golden engine's bytes.
    size
        Side of the image in pixels: a multiple of 64, or less than 64 for one block of
        that size (quick runs).
    crossbars
        Crossbars to spread the tiles over; fewer than the tiles are reprogrammed in turn.
    sweep
        Also sweep ADC bits and conductance levels on the golden model.
    replay
        Run the programs against the golden engine and give the backend the recorded
        command stream in one pass afterwards (:class:`ReplayTransport`). By default only
        for backends other than ``golden`` and ``amaranth``.

    Returns the report (also written as JSON).
    """
    started = time.perf_counter()
    runs_on = backend_named(backend)  # checks the name
    config, block, out = _prepare(preset_name, size, crossbars, out_dir)
    say = log or (lambda _text: None)

    image = astro_image(size)
    blocks = image_blocks(image, block)
    spectra = np.fft.fft2(blocks)
    n_tiles = MappedMatrix.from_real(
        complex_to_real(dft_matrix(block, inverse=True)), config, scheme
    ).n_tiles
    say(
        f"{size}x{size} image, {len(blocks)} block(s) of {block}x{block}; inverse DFT on "
        f"{n_tiles} tile(s) of {config.rows}x{config.cols}, {crossbars} crossbar(s), "
        f"backend {backend}"
    )

    if replay is None:
        replay = not runs_on.live
    link = _Link(backend, config, crossbars, progress, replay)
    expected = 2 * 2 * len(blocks) * block * n_tiles  # passes, input phases, vectors, tiles
    result, matrix, batches, staircase, check, timing_s = _run_on_crossbars(
        link, spectra, scheme, expected, progress, say
    )
    recon = image_from_blocks(result.real, image.shape)
    snr = snr_db(recon, image)

    sweep_data = _sweep_step(blocks, block, scheme, progress, say) if sweep else None
    energy = energy_per_vmm(config, matrix.mapped.tiles, batches)
    report = {
        "backend": backend,
        "preset": preset_name,
        "scheme": scheme,
        "image_size": size,
        "block": block,
        "blocks": len(blocks),
        "tiles": matrix.mapped.n_tiles,
        "crossbars": crossbars,
        "programmings": matrix.tiles.programmings,
        "vmms": matrix.vmms,
        "snr_db": snr,
        "enob": enob(snr),
        "paper_snr_db": PAPER_SNR_DB,
        "max_abs_error": float(np.abs(recon - image).max()),
        "check": check,
        "cycles": link.cycles(matrix.vmms),
        **_session_report(matrix, link, staircase),
        "energy": energy,
        "snr_sweep": sweep_data,
        "config": config.as_dict(),
        "timing_s": timing_s,
        "python": platform.python_version(),
    }
    report["figures"] = write_figures(
        out, image, recon, sweep_data, staircase, energy, config, BLOCK
    )
    report["timing_s"]["total"] = time.perf_counter() - started
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    return report


def _prepare(
    preset_name: str, size: int, crossbars: int, out_dir: str | Path
) -> tuple[CrossbarConfig, int, Path]:
    """The demo's configuration, the side of its blocks and its report folder (made), the
    arguments checked."""
    block = BLOCK if size >= BLOCK else size
    if size % block:
        raise ValueError(f"size = {size} must be a multiple of {BLOCK} or less than {BLOCK}")
    if crossbars < 1:
        raise ValueError(f"crossbars = {crossbars} must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = preset(preset_name)
    if config.lanes & (config.lanes - 1):
        raise ValueError(f"preset {preset_name} has {config.lanes} lanes, not a power of two")
    return config, block, out


def _run_on_crossbars(link: _Link, spectra, scheme: str, expected: int, progress: bool, say):
    """The inverse DFT of ``spectra`` on the link's crossbars, the pulse staircase on the first,
    and the comparison of every response byte with the golden engine: the result, the mapped
    matrix, its batches, the staircase, the check and the seconds of each step."""
    recorded = " on the golden engine, recorded for the replay" if link.replay else ""
    say(f"inverse DFT: {expected:,} VMMs{recorded}")
    t0 = time.perf_counter()
    result, matrix, batches = _inverse_dft(link, spectra, scheme, expected, progress)
    transform_s = time.perf_counter() - t0
    staircase = pulse_staircase(link.drivers[0])
    if link.replay:
        sent = sum(d.bytes_sent for d in link.drivers)
        say(
            f"replaying the session ({sent:,} command bytes) on {link.backend}, every response "
            f"byte compared with the golden engine's"
        )
    t0 = time.perf_counter()
    check = link.check()
    check_s = time.perf_counter() - t0
    timing_s = {"transform": transform_s, "check": check_s}
    return result, matrix, batches, staircase, check, timing_s


def _inverse_dft(link: _Link, spectra, scheme: str, expected: int, progress: bool):
    """The 2-D inverse DFT of ``spectra`` on the link's crossbars: the result, the mapped
    matrix and the (tile, input codes) batches it ran, for the energy figures."""
    batches: list = []
    with progress_bar(expected, f"inverse DFT ({link.backend})", "VMM", progress) as bar:

        def update(done: int) -> None:
            bar.update(done - bar.n)

        result, matrix = idft2_on_crossbars(
            spectra,
            link.drivers,
            scheme,
            # Read every tile back after programming it (and correct it with pulses if the
            # write error is on): 8 KiB of READ_ROW responses a 64x64 tile.
            verify=True,
            progress=update,
            observer=lambda tile, codes: batches.append((tile, codes)),
        )
    return result, matrix, batches


def _sweep_step(blocks, block: int, scheme: str, progress: bool, say) -> dict:
    """The SNR sweep over ADC bits and conductance levels, on the golden model."""
    say(
        f"SNR sweep on the golden model: {len(SWEEP_G_BITS) + 1} devices, "
        f"{len(SWEEP_ADC_BITS) + 1} ADC widths"
    )
    # On (up to four) 64x64 blocks whatever the size: on a block of a few pixels each
    # point of the sweep rests on a few dozen numbers, and the curves wander.
    sweep_blocks = (blocks if block == BLOCK else image_blocks(astro_image(BLOCK), BLOCK))[:4]
    return snr_sweep(np.fft.fft2(sweep_blocks), sweep_blocks, scheme, progress)


def _session_report(matrix, link: _Link, staircase: dict) -> dict:
    """The report's program-and-verify, link and pulse-staircase sections."""
    reports = matrix.tiles.reports
    return {
        "program_and_verify": {
            "tile_programmings_verified": len(reports),
            "initial_errors": sum(r.initial_errors for r in reports),
            "pulse_commands": sum(r.pulse_commands for r in reports),
            "remaining_errors": sum(r.remaining_errors for r in reports),
        },
        "link": {
            "commands": sum(d.commands_sent for d in link.drivers),
            "command_bytes": sum(d.bytes_sent for d in link.drivers),
            "response_bytes": sum(d.bytes_received for d in link.drivers),
        },
        "pulse_staircase": {
            k: staircase[k]
            for k in ("pulses_per_train", "matches_device_view", "single_pulse_levels")
        }
        | {"top_level": max(staircase["levels"]), "final_level": staircase["levels"][-1]}
        | {"write_error": staircase["write_error"]},
    }


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def print_summary(report: dict, out_dir: str | Path, file=None) -> None:
    """The short summary ``molxbar demo`` prints."""
    file = file or sys.stdout
    check = report["check"]
    if check["checked"]:
        exact = "yes" if check["bit_exact"] else f"NO ({check['mismatched_bytes']} bytes differ)"
        exact += f", {check['bytes_compared']:,} response bytes compared with the golden engine"
    else:
        exact = "n/a (the golden engine is the reference)"
    lines = [
        f"2-D inverse DFT of a {report['image_size']}x{report['image_size']} sky image in "
        f"{report['blocks']} block(s), {report['vmms']:,} VMMs on {report['crossbars']} "
        f"crossbar(s), backend {report['backend']}, preset {report['preset']}",
        f"  SNR        {report['snr_db']:7.2f} dB  (ENOB {report['enob']:.2f} bits; "
        f"paper > {PAPER_SNR_DB:.0f} dB)",
        f"  bit-exact  {exact}",
    ]
    cycles = report["cycles"]
    if cycles:
        lines.append(
            f"  cycles     {cycles['vmm_cycles']} per VMM (engine count), "
            f"{cycles['cycles_per_vmm_overall']:.0f} per VMM with I/O and programming"
        )
    energy = report["energy"]
    lines.append(
        f"  energy     {energy['demo_device_energy_per_vmm_j'] * 1e9:.3g} nJ per VMM (device "
        f"view) vs {energy['digital_energy_per_vmm_j'] * 1e9:.3g} nJ digital"
    )
    if report["snr_sweep"]:
        devices = report["snr_sweep"]["devices"]
        parts = [f"{k} {v['snr_db'][0]:.1f} dB" for k, v in devices.items() if v["g_bits"] != 10]
        lines.append("  sweep      " + ", ".join(parts))
    lines.append(
        f"  wrote      {Path(out_dir) / 'report.json'} and {len(report['figures'])} figures"
        f" in {report['timing_s']['total']:.1f} s"
    )
    print("\n".join(lines), file=file)
