"""The plots of ``molxbar sweep``: a Pareto plot of builds (GMAC/s against LUTs) and heat
maps of a device sweep's SNR."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

__all__ = ["pareto_front", "pareto_plot", "device_plots", "MAX_PANELS"]

#: Most heat-map panels in one figure (one panel a combination of the other swept values).
MAX_PANELS = 12


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def pareto_front(rows: list[dict]) -> list[dict]:
    """The rows that no other row beats on both fewer LUTs and more GMAC/s, among the rows
    with both figures and no known timing failure, in order of LUTs."""
    usable = [
        row
        for row in rows
        if not row["error"]
        and row["lut"] is not None
        and row["gmac_per_s"] is not None
        and row["timing_met"] is not False
    ]
    front, best = [], -math.inf
    for row in sorted(usable, key=lambda r: (r["lut"], -r["gmac_per_s"])):
        if row["gmac_per_s"] > best:
            front.append(row)
            best = row["gmac_per_s"]
    return front


def pareto_plot(rows: list[dict], path: Path) -> list[str]:
    """GMAC/s against LUTs, one colour a board, filled where timing was met, a cross where it
    failed, hollow where it is unknown; the Pareto front joined. Returns ``[path.name]``, or
    ``[]`` when no point has both figures (a dry run)."""
    plotted = [row for row in rows if row["lut"] is not None and row["gmac_per_s"] is not None]
    if not plotted:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.6), constrained_layout=True)
    boards = sorted({row["board"] for row in plotted})
    for board, colour in zip(boards, itertools.cycle(plt.rcParams["axes.prop_cycle"])):
        colour = colour["color"]
        styles = (
            (True, {"marker": "o", "color": colour}, "timing met"),
            (False, {"marker": "x", "color": colour}, "timing failed"),
            (None, {"marker": "o", "facecolors": "none", "edgecolors": colour}, "timing unknown"),
        )
        for met, style, label in styles:
            chosen = [r for r in plotted if r["board"] == board and r["timing_met"] is met]
            if chosen:
                ax.scatter(
                    [r["lut"] for r in chosen],
                    [r["gmac_per_s"] for r in chosen],
                    label=f"{board}, {label}",
                    **style,
                )
    front = pareto_front(plotted)
    ax.plot([r["lut"] for r in front], [r["gmac_per_s"] for r in front], "k--", lw=0.8,
            label="Pareto front")  # fmt: skip
    for set_scale, key in ((ax.set_xscale, "lut"), (ax.set_yscale, "gmac_per_s")):
        values = [r[key] for r in plotted if r[key] > 0]
        if values and max(values) > 20 * min(values):  # (boards of different sizes)
            set_scale("log")
    ax.set_xlabel("LUTs")
    ax.set_ylabel("GMAC/s in the engine")
    ax.set_title("Builds: throughput against area")
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path.name]


def _label(value: object) -> str:
    return "full" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def device_plots(rows: list[dict], swept: list[str], out: Path) -> list[str]:
    """The SNR of a device sweep against its swept parameters: a line plot for one, heat maps
    for two or more (the first two as the axes, a panel for each combination of the others,
    at most ``MAX_PANELS``). Returns the names of the files written."""
    if not swept:
        return []
    plt = _pyplot()
    values = {name: list(dict.fromkeys(row[name] for row in rows)) for name in swept}

    def snr(row: dict) -> float:
        return math.nan if row["error"] or row["snr_db"] is None else float(row["snr_db"])

    if len(swept) == 1:
        (name,) = swept
        fig, ax = plt.subplots(figsize=(7, 4.4), constrained_layout=True)
        ax.plot([_label(r[name]) for r in rows], [snr(r) for r in rows], "o-")
        ax.set_xlabel(name)
        ax.set_ylabel("SNR (dB)")
        ax.set_title(f"SNR against {name}")
        fig.savefig(out / "snr.png", dpi=110)
        plt.close(fig)
        return ["snr.png"]
    y_name, x_name, *others = swept
    panels = list(itertools.product(*(values[name] for name in others)))[:MAX_PANELS]
    columns = min(len(panels), 3)
    lines = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        lines, columns, figsize=(4.6 * columns, 3.8 * lines), squeeze=False,
        constrained_layout=True,
    )  # fmt: skip
    finite = [snr(r) for r in rows if math.isfinite(snr(r))]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    for ax, panel in zip(axes.flat, panels, strict=False):
        fixed = dict(zip(others, panel, strict=True))
        grid = [[math.nan] * len(values[x_name]) for _ in values[y_name]]
        for row in rows:
            if all(row[k] == v for k, v in fixed.items()):
                i, j = values[y_name].index(row[y_name]), values[x_name].index(row[x_name])
                grid[i][j] = snr(row)
        shown = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=low, vmax=high)
        for (i, j), value in ((ij, grid[ij[0]][ij[1]]) for ij in itertools.product(
            range(len(values[y_name])), range(len(values[x_name]))
        )):  # fmt: skip
            dark = math.isnan(value) or value < (low + high) / 2  # (light text on dark cells)
            ax.text(j, i, "-" if math.isnan(value) else f"{value:.1f}", ha="center",
                    va="center", fontsize="x-small", color="w" if dark else "k")  # fmt: skip
        ax.set_xticks(range(len(values[x_name])), [_label(v) for v in values[x_name]])
        ax.set_yticks(range(len(values[y_name])), [_label(v) for v in values[y_name]])
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
        ax.set_title(", ".join(f"{k}={_label(v)}" for k, v in fixed.items()) or "SNR (dB)")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.colorbar(shown, ax=axes, label="SNR (dB)")
    fig.savefig(out / "snr_heatmap.png", dpi=110)
    plt.close(fig)
    return ["snr_heatmap.png"]
