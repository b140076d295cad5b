"""The figures of ``molxbar demo``: the original, reconstructed and error images; SNR against
ADC bits and conductance levels; conductance against pulse number; energy per VMM against a
digital baseline. Drawn with matplotlib (imported when they are drawn, headless)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from molxbar.emulator.device import PAPER_SNR_DB, PAPER_TOPS_PER_W, RU_AZO_2024
from molxbar.emulator.metrics import snr_db

__all__ = ["PRIOR_ART_SNR_DB", "write_figures"]

#: Signal processing on earlier memristor crossbars: 5-8 bits, about 33 dB (Li et al. 2018).
PRIOR_ART_SNR_DB = 33.0


def write_figures(
    out: Path, image, recon, sweep, staircase, energy, config, block: int
) -> list[str]:
    """Write the demo's figures into ``out``; returns their file names. ``block`` is the
    side of the blocks the image is transformed in, for the images' title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = []
    figures = [
        ("images.png", _images_figure, (image, recon, block)),
        ("snr_sweep.png", _sweep_figure, (sweep,)),
        ("pulses.png", _pulses_figure, (staircase, config)),
        ("energy.png", _energy_figure, (energy, config)),
    ]
    for name, draw, data in figures:
        if any(d is None for d in data):
            continue
        fig = draw(plt, *data)
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names


def _images_figure(plt, image, recon, block):
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), constrained_layout=True)
    for ax, data, title in (
        (axes[0], image, "original"),
        (axes[1], recon, "reconstructed on the crossbar"),
    ):
        ax.imshow(data, cmap="magma", vmin=0, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    error = np.abs(recon - image)
    shown = axes[2].imshow(np.log10(np.maximum(error, 1e-9)), cmap="viridis")
    axes[2].set_title("|reconstructed - original|, per pixel")
    axes[2].axis("off")
    bar = fig.colorbar(shown, ax=axes[2], shrink=0.8)
    bar.set_label("log10 |error|, of the image's full scale (pixels 0 to 1)")
    fig.suptitle(f"2-D inverse DFT in {block}x{block} blocks: SNR {snr_db(recon, image):.1f} dB")
    return fig


def _sweep_figure(plt, sweep):
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True)
    bits = [b for b in sweep["adc_bits"] if b != "full"]
    full_x = bits[-1] + 3  # where the full-precision points go
    for label, curve in sweep["devices"].items():
        ys = curve["snr_db"][1:]
        if label == "ru_azo_2024":  # drawn over the 14-bit ideal device, which it follows
            style = {"color": "tab:red", "ls": "--", "marker": "x", "ms": 7, "lw": 1.2, "zorder": 4}
        elif curve["g_bits"] >= 14:
            style = {"color": "k", "ls": "-", "marker": "o", "ms": 8, "lw": 3.0, "alpha": 0.45}
        else:
            style = {"ls": "--", "marker": "."}
        (line,) = left.plot(bits, ys, label=f"{label} ({curve['levels']} levels)", **style)
        left.plot([bits[-1], full_x], [ys[-1], curve["snr_db"][0]], ls=":", color=line.get_color())
        left.plot([full_x], [curve["snr_db"][0]], marker="D", color=line.get_color(), ms=5)
    left.set_xticks([*bits, full_x], [*map(str, bits), "full"])
    left.axhline(PAPER_SNR_DB, color="k", lw=0.8, ls=":")
    left.text(bits[0], PAPER_SNR_DB + 1, f"paper > {PAPER_SNR_DB:.0f} dB", fontsize=8)
    ideal = sweep["devices"]["14-bit"]
    crest = 20 * math.log10(ideal["adc_full_scale"] / ideal["rms_output"])
    shared = 20 * math.log10(ideal["rms_output"] / ideal["rms_column_spread"])
    note = (
        f"ADC: signed, b bits; its full scale is the\n"
        f"largest tile output at full precision\n"
        f"({ideal['adc_full_scale']:.3g} in x*g units). The RMS output\n"
        f"is {crest:.0f} dB below it, and the part every\n"
        f"column shares (the mapping's offset) is\n"
        f"{shared:.0f} dB above the part that carries the\n"
        f"image: {bits[0]} bits give {ideal['snr_db'][1]:.0f} dB."
    )
    left.text(0.02, 0.86, note, transform=left.transAxes, va="top", fontsize=7)
    left.set_xlabel("ADC bits")
    left.set_ylabel("SNR of the 2-D inverse DFT (dB)")
    left.set_title(
        f"SNR against ADC resolution ({sweep['blocks']} {sweep['block']}x{sweep['block']} "
        f"block(s), golden model)"
    )
    left.legend(fontsize=7, loc="lower right")
    _levels_panel(right, sweep)
    return fig


def _levels_panel(ax, sweep) -> None:
    """SNR at full ADC precision against conductance bits, beside earlier devices."""
    ideal = {k: v for k, v in sweep["devices"].items() if k != "ru_azo_2024"}
    ax.plot(
        [v["g_bits"] for v in ideal.values()],
        [v["snr_db"][0] for v in ideal.values()],
        "-o",
        label="ideal device, full-precision ADC",
    )
    ru = sweep["devices"]["ru_azo_2024"]
    ax.plot([math.log2(ru["levels"])], [ru["snr_db"][0]], "r*", ms=12, label="ru_azo_2024")
    ax.axvspan(5, 8, color="0.88", label="prior memristors (5-8 bits)")
    prior = f"their signal processing, ~{PRIOR_ART_SNR_DB:.0f} dB (Li et al. 2018)"
    ax.hlines(PRIOR_ART_SNR_DB, 5, 8, color="0.4", lw=2, label=prior)
    paper = f"paper > {PAPER_SNR_DB:.0f} dB"
    ax.axhline(PAPER_SNR_DB, color="k", lw=0.8, ls=":", label=paper)
    ax.set_xlabel("conductance levels (bits)")
    ax.set_ylabel("SNR (dB)")
    ax.set_title("SNR against conductance levels")
    ax.legend(fontsize=7, loc="lower right")


def _pulses_figure(plt, staircase, config):
    fig, ax = plt.subplots(figsize=(8, 4.8), constrained_layout=True)
    pulses = np.asarray(staircase["pulse_number"])
    microsiemens = RU_AZO_2024.conductance(staircase["levels"], config) * 1e6
    top = len(pulses) // 2
    ax.plot(pulses[: top + 1], microsiemens[: top + 1], "-", color="tab:red", label="potentiation")
    ax.plot(pulses[top:], microsiemens[top:], "-", color="tab:blue", label="depression")
    ax.set_xlabel("pulse number")
    ax.set_ylabel("conductance (uS)")
    ax.set_title(
        f"{config.levels} levels, one level per pulse (read back from the engine every "
        f"{staircase['pulses_per_train']} pulses)",
        fontsize=10,
    )
    ax.legend(loc="upper right")
    # Inside the triangle, below both ramps.
    _single_levels_inset(ax.inset_axes([0.34, 0.1, 0.32, 0.33]), staircase, config)
    return fig


def _single_levels_inset(ax, staircase, config) -> None:
    """Single pulses from mid-scale, read after each, and the direct-write error."""
    levels = np.asarray(staircase["single_pulse_levels"])
    step_us = RU_AZO_2024.g_step_s * 1e6
    us = RU_AZO_2024.conductance(levels, config) * 1e6
    ax.step(np.arange(len(levels)), us, where="post", color="tab:red")
    write = staircase["write_error"]
    sigma_us = write["sigma_levels"] * step_us
    target_us = RU_AZO_2024.conductance(write["target"], config) * 1e6
    ax.axhspan(target_us - sigma_us, target_us + sigma_us, color="tab:green", alpha=0.4)
    hits = write["landed"].get(write["target"], 0)
    ax.set_title(
        f"one pulse = one level = {step_us:.3f} uS\n"
        f"green: direct-write error of {write['preset']}, ±{write['sigma_levels']:.2f} levels\n"
        f"({hits} of {sum(write['landed'].values())} direct writes landed on the level)",
        fontsize=6,
    )
    ax.set_xlabel("single pulses from mid-scale", fontsize=6)
    ax.tick_params(labelsize=6)
    ax.ticklabel_format(axis="y", useOffset=False)


def _energy_figure(plt, energy, config):
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    labels = ["this demo\n(device view)", "half-scale array,\nfull input"]
    labels += [f"paper\n({PAPER_TOPS_PER_W} TOPS/W)", "digital 45 nm\nMAC engine"]
    values = [
        energy["demo_device_energy_per_vmm_j"],
        energy["half_scale_device_energy_per_vmm_j"],
        energy["paper_energy_per_vmm_j"],
        energy["digital_energy_per_vmm_j"],
    ]
    bars = ax.bar(labels, np.asarray(values) * 1e9, color=["tab:red", "tab:orange", "0.6", "k"])
    ax.bar_label(bars, fmt="%#.3g nJ")
    ax.set_yscale("log")
    ax.set_ylabel(f"energy per {config.rows}x{config.cols} VMM (nJ)")
    ax.set_title("Energy per VMM: molecular crossbar against a digital baseline")
    ratio = energy["half_scale_device_energy_per_vmm_j"] / energy["demo_device_energy_per_vmm_j"]
    ax.text(
        0.02,
        0.98,
        f"device view: t_read * sum V_i^2 G_ij, read at V_read = {energy['v_read']:.2g} V "
        f"(full-scale input) for t_read = {energy['t_read_s'] * 1e9:.3g} ns\n"
        f"(t_read is chosen so that the half-scale array at full input costs the paper's "
        f"figure).\nThis demo's inputs average (V/V_read)^2 = "
        f"{energy['demo_mean_input_power']:.3g} and its conductances "
        f"{energy['demo_mean_conductance_over_half_scale']:.2f} of half scale:\n"
        f"{ratio:.0f}x less energy than that operating point. Periphery (DACs, ADCs) not "
        f"counted.",
        transform=ax.transAxes,
        va="top",
        fontsize=7,
    )
    ax.set_ylim(top=ax.get_ylim()[1] * 30)  # room for the note
    return fig
