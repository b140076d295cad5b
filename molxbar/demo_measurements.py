"""The measurements of ``molxbar demo`` besides the transform itself: the pulse staircase of a
cell and the write error of direct writes, the SNR of the 2-D inverse DFT against ADC bits and
conductance levels on the golden model, and the device energy of the demo's VMMs."""

from __future__ import annotations

import math
import sys

import numpy as np

from molxbar.emulator import Crossbar, CrossbarConfig, preset
from molxbar.emulator.device import HOROWITZ_45NM, PAPER_TOPS_PER_W, RU_AZO_2024, energy_report
from molxbar.emulator.metrics import snr_db
from molxbar.emulator.workloads import ComplexTransform, dft_matrix, idft2_blocks
from molxbar.host.driver import CrossbarDriver

__all__ = [
    "SWEEP_G_BITS",
    "SWEEP_ADC_BITS",
    "progress_bar",
    "pulse_staircase",
    "write_error",
    "idft_snr",
    "snr_sweep",
    "energy_per_vmm",
]

#: Conductance-level widths of the SNR sweep: prior devices (5-8 bits) and this one.
SWEEP_G_BITS = (5, 6, 7, 8, 10, 12, 14)
SWEEP_ADC_BITS = (6, 8, 10, 12, 14, 16, 18, 20)


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool):
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


def pulse_staircase(driver: CrossbarDriver, steps: int = 64, single: int = 16) -> dict:
    """Potentiate cell (0, 0) from level 0 to the top and depress it back, in ``steps``
    pulse trains each way, reading the level after each; then, from mid-scale, ``single``
    single pulses up, reading after each (one level a pulse)."""
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
    start = g_max // 2
    driver.write_cell(0, 0, start)
    single_levels = [driver.read_cell(0, 0)]
    for _ in range(single):
        driver.pulse(0, 0, 1)
        single_levels.append(driver.read_cell(0, 0))
    return {
        "pulses_per_train": train,
        "pulse_number": pulses,
        "levels": levels,
        "matches_device_view": bool(matches),
        "single_pulse_levels": single_levels,
        "write_error": write_error(start + single),
    }


def write_error(target: int, cells: int = 256) -> dict:
    """Direct writes of ``target`` on a golden ``ru_azo_2024`` crossbar (write error on),
    read back: the levels they land on and how often."""
    config = preset("ru_azo_2024", rows=16, cols=cells // 16, lanes=1)
    crossbar = Crossbar(config)
    crossbar.write_levels(np.full((config.rows, config.cols), target))
    landed = np.concatenate([crossbar.read_row(r) for r in range(config.rows)])
    values, counts = np.unique(landed, return_counts=True)
    sigma = config.write_sigma + config.write_sigma_slope * target
    return {
        "preset": "ru_azo_2024",
        "target": target,
        "sigma_levels": sigma,
        "landed": {int(v): int(c) for v, c in zip(values, counts, strict=True)},
    }


def idft_snr(
    config: CrossbarConfig, spectra, image, scheme: str, adc_bits
) -> tuple[list[float], dict]:
    """SNR of the golden-model 2-D inverse DFT for each ADC width (``None``: full precision),
    and what the ADC sees at full precision: its full scale (the largest tile output, which
    the ADC shift keeps just inside the ADC's range), the RMS of the tile outputs and the
    RMS of their spread across a tile's columns (what is left once the part every column
    shares, such as the offset mapping's ``x * g_mid``, is taken out)."""
    transform = ComplexTransform(dft_matrix(spectra.shape[1], inverse=True), config, scheme)
    peak, square, spread, count = 0, 0.0, 0.0, 0
    measuring = False  # during the first full-precision pass
    run = transform.tiled.runner

    def recording(tile: int, codes: np.ndarray) -> np.ndarray:
        nonlocal peak, square, spread, count
        out = run(tile, codes)
        if measuring:
            values = out.astype(np.float64)
            peak = max(peak, int(np.abs(out).max()))
            square += float((values * values).sum())
            spread += float(values.var(axis=-1).sum() * values.shape[-1])
            count += values.size
        return out

    transform.tiled.runner = recording
    result = []
    for bits in adc_bits:
        measuring = bits is None and count == 0
        if bits is not None:
            shift = max(0, peak.bit_length() + 1 - bits)
            for crossbar in transform.tiled.crossbars:
                crossbar.set_adc(bits, shift)
        blocks = idft2_blocks(spectra, transform).real
        result.append(snr_db(blocks, image))
    stats = {
        "adc_full_scale": peak,
        "rms_output": math.sqrt(square / count),
        "rms_column_spread": math.sqrt(spread / count),
    }
    return result, stats


def snr_sweep(spectra, image_blocks_, scheme: str, progress: bool) -> dict:
    """SNR of the golden-model 2-D inverse DFT against ADC bits and conductance levels.

    The ADC is signed, ``b`` bits, its full scale the largest tile output of the run at
    full precision (the ADC shift is the fewest bits that keep that output in range).
    """
    adc = [None, *SWEEP_ADC_BITS]
    curves = {}
    with progress_bar(len(SWEEP_G_BITS) + 1, "SNR sweep", "device", progress) as bar:
        for g_bits in SWEEP_G_BITS:
            config = CrossbarConfig(g_bits=g_bits)
            snrs, stats = idft_snr(config, spectra, image_blocks_, scheme, adc)
            curves[f"{g_bits}-bit"] = {"g_bits": g_bits, "levels": 1 << g_bits, "snr_db": snrs}
            curves[f"{g_bits}-bit"].update(stats)
            bar.update()
        ru_azo = preset("ru_azo_2024")
        snrs, stats = idft_snr(ru_azo, spectra, image_blocks_, scheme, adc)
        curves["ru_azo_2024"] = {"g_bits": ru_azo.g_bits, "levels": ru_azo.levels, "snr_db": snrs}
        curves["ru_azo_2024"].update(stats)
        bar.update()
    return {
        "adc_bits": ["full", *SWEEP_ADC_BITS],
        "block": spectra.shape[1],
        "blocks": len(spectra),
        "devices": curves,
    }


def energy_per_vmm(config: CrossbarConfig, tiles: list[np.ndarray], batches: list) -> dict:
    """Device energy of the demo's VMMs (mean) and at the press calibration point (a
    half-scale array read at full input), against the digital baseline; and the two
    factors that set their ratio: the mean of ``(V/v_read)**2`` over the conducting
    inputs, and the mean conductance relative to half scale."""
    total = count = power = 0.0
    full = 1 << (config.x_bits - 1)
    for tile, codes in batches:
        energy = np.atleast_1d(RU_AZO_2024.vmm_energy(tiles[tile], codes, config))
        total += float(energy.sum())
        count += energy.size
        power += float(np.mean((np.maximum(codes, 0) / full) ** 2, axis=-1).sum())
    demo_j = total / count
    half = np.full((config.rows, config.cols), config.g_max // 2)
    used = sorted({tile for tile, _ in batches})
    conductance = np.mean([RU_AZO_2024.conductance(tiles[t], config).mean() for t in used])
    press = energy_report(half, np.full(config.rows, config.x_max), config)
    ops = 2 * config.rows * config.cols
    return {
        "demo_device_energy_per_vmm_j": demo_j,
        "demo_device_tops_per_w": ops / demo_j / 1e12,
        "half_scale_device_energy_per_vmm_j": press["device_energy_per_vmm_j"],
        "digital_energy_per_vmm_j": HOROWITZ_45NM.vmm_energy(config.rows, config.cols),
        "paper_energy_per_vmm_j": ops / (PAPER_TOPS_PER_W * 1e12),
        "digital_over_demo_device": HOROWITZ_45NM.vmm_energy(config.rows, config.cols) / demo_j,
        "demo_mean_input_power": power / count,
        "demo_mean_conductance_over_half_scale": float(
            conductance / RU_AZO_2024.conductance(config.g_max // 2, config)
        ),
        "v_read": RU_AZO_2024.v_read,
        "t_read_s": RU_AZO_2024.t_read,
    }
