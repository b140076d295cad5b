"""``molxbar demo``: the 2-D inverse Fourier transform of a sky image on the crossbar twin.

The bundled synthetic astronomical image (:func:`~molxbar.emulator.workloads.astro_image`)
is cut into 64x64 blocks, each block's 2-D spectrum (``numpy.fft.fft2``) is transformed back
on the crossbar -- the inverse DFT matrix programmed (and verified) on a crossbar through the
host driver, rows then columns, signed and complex values through the offset or differential
mapping -- and the result is compared with the original image. Every response byte of the
chosen backend is checked against the golden engine.

Outputs in the report folder: ``report.json`` and four figures (original, reconstructed and
error images; SNR against ADC bits and conductance levels; conductance against pulse number;
energy per VMM against a digital baseline).
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from molxbar.emulator.device import (
    HOROWITZ_45NM,
    PAPER_SNR_DB,
    PAPER_TOPS_PER_W,
    RU_AZO_2024,
    energy_report,
)
from molxbar.emulator.mapping import MappedMatrix, complex_to_real
from molxbar.emulator.metrics import enob, snr_db
from molxbar.emulator.workloads import ComplexTransform, astro_image, dft_matrix, idft2_blocks
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

from .emulator import CrossbarConfig, preset

__all__ = ["DEFAULT_BACKEND", "run_demo", "print_summary"]

#: The backend ``molxbar demo`` uses unless told otherwise.
DEFAULT_BACKEND = "verilator"
#: Signal processing on earlier memristor crossbars: 5-8 bits, about 33 dB (Li et al. 2018).
PRIOR_ART_SNR_DB = 33.0
#: Crossbar side and DFT block size.
BLOCK = 64
#: Conductance-level widths of the SNR sweep: prior devices (5-8 bits) and this one.
SWEEP_G_BITS = (5, 6, 7, 8, 10, 12, 14)
SWEEP_ADC_BITS = (6, 8, 10, 12, 14, 16, 18, 20)


def _progress(total: int | None, desc: str, unit: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        disable=None if enabled else True,
        file=sys.stderr,
        leave=False,
    )


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
        with _progress(len(commands), f"{self.backend} replay", "B", self.progress) as bar:

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


def _pulse_staircase(driver: CrossbarDriver, steps: int = 64) -> dict:
    """Potentiate cell (0, 0) from level 0 to the top and depress it back, in ``steps``
    pulse trains each way, reading the level after each."""
    g_max = driver.config.g_max
    train = max(1, -(-g_max // steps))
    driver.write_cell(0, 0, 0)
    pulses, levels = [0], [driver.read_cell(0, 0)]
    for sign in (+1, -1):
        for _ in range(steps):
            driver.pulse(0, 0, sign * train)
            pulses.append(pulses[-1] + train)
            levels.append(driver.read_cell(0, 0))
    # The device view of the same pulses, one at a time: a linear, symmetric staircase.
    config = driver.config
    trace = RU_AZO_2024.pulse_trace(0, np.repeat([1, -1], steps * train), config)
    expected = np.concatenate([[RU_AZO_2024.g_min_s], trace[train - 1 :: train]])
    matches = np.array_equal(RU_AZO_2024.conductance(levels, config), expected)
    return {
        "pulses_per_train": train,
        "pulse_number": pulses,
        "levels": levels,
        "matches_device_view": bool(matches),
    }


def _idft_snr(config: CrossbarConfig, spectra, image, scheme: str, adc_bits) -> list[float]:
    """SNR of the golden-model 2-D inverse DFT for each ADC width (``None``: full precision);
    the ADC shift keeps the largest tile output just inside the ADC's range."""
    transform = ComplexTransform(dft_matrix(spectra.shape[1], inverse=True), config, scheme)
    peak = 0
    run = transform.tiled.runner

    def recording(tile: int, codes: np.ndarray) -> np.ndarray:
        nonlocal peak
        out = run(tile, codes)
        peak = max(peak, int(np.abs(out).max()))
        return out

    transform.tiled.runner = recording
    result = []
    for bits in adc_bits:
        if bits is not None:
            shift = max(0, peak.bit_length() + 1 - bits)
            for crossbar in transform.tiled.crossbars:
                crossbar.set_adc(bits, shift)
        blocks = idft2_blocks(spectra, transform).real
        result.append(snr_db(blocks, image))
    return result


def snr_sweep(spectra, image_blocks_, scheme: str, progress: bool) -> dict:
    """SNR of the golden-model 2-D inverse DFT against ADC bits and conductance levels."""
    adc = [None, *SWEEP_ADC_BITS]
    curves = {}
    with _progress(len(SWEEP_G_BITS) + 1, "SNR sweep", "device", progress) as bar:
        for g_bits in SWEEP_G_BITS:
            snrs = _idft_snr(CrossbarConfig(g_bits=g_bits), spectra, image_blocks_, scheme, adc)
            curves[f"{g_bits}-bit"] = {"g_bits": g_bits, "levels": 1 << g_bits, "snr_db": snrs}
            bar.update()
        ru_azo = preset("ru_azo_2024")
        snrs = _idft_snr(ru_azo, spectra, image_blocks_, scheme, adc)
        curves["ru_azo_2024"] = {"g_bits": ru_azo.g_bits, "levels": ru_azo.levels, "snr_db": snrs}
        bar.update()
    return {"adc_bits": ["full", *SWEEP_ADC_BITS], "devices": curves}


def _energy(config: CrossbarConfig, tiles: list[np.ndarray], batches: list) -> dict:
    """Device energy of the demo's VMMs (mean) and at the press calibration point, against
    the digital baseline."""
    total = count = 0.0
    for tile, codes in batches:
        energy = np.atleast_1d(RU_AZO_2024.vmm_energy(tiles[tile], codes, config))
        total += float(energy.sum())
        count += energy.size
    demo_j = total / count
    half = np.full((config.rows, config.cols), config.g_max // 2)
    press = energy_report(half, np.full(config.rows, config.x_max), config)
    ops = 2 * config.rows * config.cols
    return {
        "demo_device_energy_per_vmm_j": demo_j,
        "demo_device_tops_per_w": ops / demo_j / 1e12,
        "half_scale_device_energy_per_vmm_j": press["device_energy_per_vmm_j"],
        "digital_energy_per_vmm_j": HOROWITZ_45NM.vmm_energy(config.rows, config.cols),
        "paper_energy_per_vmm_j": ops / (PAPER_TOPS_PER_W * 1e12),
        "digital_over_demo_device": HOROWITZ_45NM.vmm_energy(config.rows, config.cols) / demo_j,
    }


# Figures -------------------------------------------------------------------------------


def _figures(out: Path, image, recon, sweep, staircase, energy, config) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = []

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), constrained_layout=True)
    error = np.abs(recon - image)
    for ax, data, title in (
        (axes[0], image, "original"),
        (axes[1], recon, "reconstructed on the crossbar"),
    ):
        ax.imshow(data, cmap="magma", vmin=0, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    shown = axes[2].imshow(np.log10(np.maximum(error, 1e-9)), cmap="viridis")
    axes[2].set_title("|error| (log10)")
    axes[2].axis("off")
    fig.colorbar(shown, ax=axes[2], shrink=0.8)
    fig.suptitle(f"2-D inverse DFT in {BLOCK}x{BLOCK} blocks: SNR {snr_db(recon, image):.1f} dB")
    fig.savefig(out / "images.png", dpi=110)
    plt.close(fig)
    names.append("images.png")

    if sweep is not None:
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
        adc = sweep["adc_bits"]
        for label, curve in sweep["devices"].items():
            bits = [b for b in adc if b != "full"]
            ys = [s for b, s in zip(adc, curve["snr_db"], strict=True) if b != "full"]
            style = "-o" if curve["g_bits"] >= 14 else "--."
            left.plot(bits, ys, style, label=f"{label} ({curve['levels']} levels)")
        left.axhline(PAPER_SNR_DB, color="k", lw=0.8, ls=":")
        left.text(6, PAPER_SNR_DB + 1, f"paper > {PAPER_SNR_DB:.0f} dB", fontsize=8)
        left.set_xlabel("ADC bits")
        left.set_ylabel("SNR of the 2-D inverse DFT (dB)")
        left.set_title("SNR against ADC resolution")
        left.legend(fontsize=7)
        ideal = {k: v for k, v in sweep["devices"].items() if k != "ru_azo_2024"}
        right.plot(
            [v["g_bits"] for v in ideal.values()],
            [v["snr_db"][0] for v in ideal.values()],
            "-o",
            label="ideal device, full-precision ADC",
        )
        ru = sweep["devices"]["ru_azo_2024"]
        right.plot([math.log2(ru["levels"])], [ru["snr_db"][0]], "r*", ms=12, label="ru_azo_2024")
        right.axhspan(0, PRIOR_ART_SNR_DB, color="0.85", label="prior memristors (5-8 bits)")
        paper = f"paper > {PAPER_SNR_DB:.0f} dB"
        right.axhline(PAPER_SNR_DB, color="k", lw=0.8, ls=":", label=paper)
        right.set_xlabel("conductance levels (bits)")
        right.set_ylabel("SNR (dB)")
        right.set_title("SNR against conductance levels")
        right.legend(fontsize=7)
        fig.savefig(out / "snr_sweep.png", dpi=110)
        plt.close(fig)
        names.append("snr_sweep.png")

    fig, ax = plt.subplots(figsize=(7, 4.4), constrained_layout=True)
    pulses = np.asarray(staircase["pulse_number"])
    siemens = RU_AZO_2024.conductance(staircase["levels"], config) * 1e3
    top = len(pulses) // 2
    ax.plot(pulses[: top + 1], siemens[: top + 1], "-", color="tab:red", label="potentiation")
    ax.plot(pulses[top:], siemens[top:], "-", color="tab:blue", label="depression")
    ax.set_xlabel("pulse number")
    ax.set_ylabel("conductance (mS)")
    ax.set_title(f"{config.levels} levels, one level per pulse (read back from the engine)")
    ax.legend()
    fig.savefig(out / "pulses.png", dpi=110)
    plt.close(fig)
    names.append("pulses.png")

    fig, ax = plt.subplots(figsize=(7, 4.4), constrained_layout=True)
    labels = ["this demo\n(device view)", "half-scale array,\nfull input", "paper\n(4.1 TOPS/W)"]
    labels.append("digital 45 nm\nMAC engine")
    values = [
        energy["demo_device_energy_per_vmm_j"],
        energy["half_scale_device_energy_per_vmm_j"],
        energy["paper_energy_per_vmm_j"],
        energy["digital_energy_per_vmm_j"],
    ]
    bars = ax.bar(labels, np.asarray(values) * 1e9, color=["tab:red", "tab:orange", "0.6", "k"])
    ax.bar_label(bars, fmt="%.3g")
    ax.set_yscale("log")
    ax.set_ylabel("energy per 64x64 VMM (nJ)")
    ax.set_title("Energy per VMM: molecular crossbar against a digital baseline")
    fig.savefig(out / "energy.png", dpi=110)
    plt.close(fig)
    names.append("energy.png")
    return names


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
    block = BLOCK if size >= BLOCK else size
    if size % block:
        raise ValueError(f"size = {size} must be a multiple of {BLOCK} or less than {BLOCK}")
    if crossbars < 1:
        raise ValueError(f"crossbars = {crossbars} must be >= 1")
    say = log or (lambda _text: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = preset(preset_name)
    if config.lanes & (config.lanes - 1):
        raise ValueError(f"preset {preset_name} has {config.lanes} lanes, not a power of two")

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
    batches: list = []
    expected = 2 * 2 * len(blocks) * block * n_tiles  # passes, input phases, vectors, tiles
    t0 = time.perf_counter()
    with _progress(expected, f"inverse DFT ({backend})", "VMM", progress) as bar:

        def update(done: int) -> None:
            bar.update(done - bar.n)

        result, matrix = idft2_on_crossbars(
            spectra,
            link.drivers,
            scheme,
            progress=update,
            observer=lambda tile, codes: batches.append((tile, codes)),
        )
    transform_s = time.perf_counter() - t0
    staircase = _pulse_staircase(link.drivers[0])
    t0 = time.perf_counter()
    check = link.check()
    check_s = time.perf_counter() - t0
    recon = image_from_blocks(result.real, image.shape)
    snr = snr_db(recon, image)

    sweep_data = None
    if sweep:
        count = min(len(blocks), 4)
        sweep_data = snr_sweep(spectra[:count], blocks[:count], scheme, progress)
    energy = _energy(config, matrix.mapped.tiles, batches)
    reports = matrix.tiles.reports
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
        "pulse_staircase": {k: staircase[k] for k in ("pulses_per_train", "matches_device_view")}
        | {"top_level": max(staircase["levels"]), "final_level": staircase["levels"][-1]},
        "energy": energy,
        "snr_sweep": sweep_data,
        "config": config.as_dict(),
        "timing_s": {"transform": transform_s, "check": check_s},
        "python": platform.python_version(),
    }
    report["figures"] = _figures(out, image, recon, sweep_data, staircase, energy, config)
    report["timing_s"]["total"] = time.perf_counter() - started
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    return report


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
