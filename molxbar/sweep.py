"""``molxbar sweep``: board builds and device models over a grid of parameters, on Dask.

The points of a grid (:mod:`~molxbar.sweep_grid`) run as tasks of a Dask ``distributed``
cluster: a :class:`~distributed.LocalCluster` of one single-threaded worker process a core
by default, or any running cluster (``--scheduler tcp://host:port``), whose workers need only
molxbar installed. Each point's result is kept in ``DIR/points/KEY.json`` as it arrives, so a
re-run skips the finished points and an interrupted sweep resumes; a point that fails (an
exception, a tool's crash, a timeout, its worker dying again and again) is a row with its
error, and is run again by the next re-run. The table goes to ``DIR/results.csv`` and
``DIR/results.json``, one row per point, its parameters then its figures, in grid order.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .commands.common import positive_int
from .sweep_grid import PARAMETERS, grid_points, parse_grid, point_key
from .sweep_points import (
    BUILD_FIGURES,
    DEFAULT_TIMEOUT_S,
    DEVICE_FIGURES,
    DFT_BATCH,
    DFT_N,
    IMAGE_SIZE,
    build_point,
    device_config,
    device_point,
)

__all__ = [
    "run_sweep",
    "dask_client",
    "write_results",
    "best_per_board",
    "cmd_sweep",
    "add_sweep_command",
]


def _run_point(kind: str, point: dict, build_dir: str, mode: str, timeout: float | None) -> dict:
    """A point's figures, or ``{"error": ...}``: runs on a worker and never raises."""
    try:
        if kind == "device":
            return device_point(point)
        return build_point(point, build_dir, mode, timeout)
    except Exception as error:  # a row with its error, not a lost sweep
        return {"error": f"{type(error).__name__}: {error}".splitlines()[0]}


def _extra(kind: str, mode: str) -> dict:
    """What besides its parameters decides a point's result (part of its cache key)."""
    if kind == "build":
        return {"mode": mode}
    return {"dft_n": DFT_N, "dft_batch": DFT_BATCH, "image_size": IMAGE_SIZE}


def _build_dir(out: Path, point: dict) -> Path:
    name = f"{point['board']}_lanes{point['lanes']}_{point['clock_mhz']:g}MHz_seed{point['seed']}"
    return (out / "builds" / name).resolve()


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def _finished(kind: str, points: list[dict], out: Path, mode: str) -> dict[str, dict]:
    """The figures of the points that ``out/points/`` holds finished, by cache key (a
    failed point is not finished: it runs again)."""
    results = {}
    for point in points:
        key = point_key(kind, point, _extra(kind, mode))
        path = out / "points" / f"{key}.json"
        if path.exists():
            figures = json.loads(path.read_text())["figures"]
            if "error" not in figures:
                results[key] = figures
    return results


def run_sweep(
    kind: str,
    points: list[dict],
    out: str | Path,
    client,
    *,
    mode: str = "full",
    timeout: float | None = None,
    progress: bool = True,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run ``points`` of a ``kind`` sweep on the Dask ``client`` and return one row per
    point, in the order of ``points``: the point's parameters, its figures, ``error``.

    Parameters
    ----------
    out
        The sweep folder: results already in ``out/points/`` are reused, new ones added as
        they arrive; build points build in ``out/builds/``.
    mode, timeout
        Build points only: ``"dry-run"``, ``"synth-only"`` or ``"full"``; seconds a build
        may take before it is stopped (``None``: no limit).
    progress
        Show points done, failed and running on a progress bar (standard error).
    on_result
        Called with each row as it arrives (in completion order).
    """
    from distributed import as_completed
    from tqdm import tqdm

    out = Path(out)
    cache = out / "points"
    cache.mkdir(parents=True, exist_ok=True)
    keys = [point_key(kind, point, _extra(kind, mode)) for point in points]
    results = _finished(kind, points, out, mode)
    # (the folder in the tasks' names: two sweeps of one point on a shared cluster each get
    # their own run)
    folder = point_key(kind, {}, {"out": str(out.resolve())})
    futures = {}
    for key, point in zip(keys, points, strict=True):
        if key not in results:
            build_dir = str(_build_dir(out, point)) if kind == "build" else ""
            task = f"sweep-{kind}-{key}-{folder}"
            future = client.submit(_run_point, kind, point, build_dir, mode, timeout, key=task)
            futures[future] = (key, point)
    failed = 0
    with tqdm(
        total=len(points),
        initial=len(points) - len(futures),
        desc=f"{kind} sweep",
        unit="point",
        disable=None if progress else True,
        file=sys.stderr,
    ) as bar:
        for future in as_completed(futures) if futures else ():
            key, point = futures[future]
            try:
                figures = future.result()
            except Exception as error:  # the worker died too often, or the task was lost
                figures = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
            results[key] = figures
            _write_atomic(cache / f"{key}.json", json.dumps({"point": point, "figures": figures}))
            failed += "error" in figures
            running = sum(len(tasks) for tasks in client.processing().values())
            bar.set_postfix(failed=failed, running=running, refresh=False)
            bar.update()
            if on_result is not None:
                on_result(_row(kind, point, figures))
    return [_row(kind, point, results[key]) for key, point in zip(keys, points, strict=True)]


def _columns(kind: str) -> list[str]:
    figures = DEVICE_FIGURES if kind == "device" else BUILD_FIGURES
    return [p.name for p in PARAMETERS[kind]()] + list(figures) + ["error"]


def _row(kind: str, point: dict, figures: dict) -> dict:
    row = {**point, **figures}
    return {name: row.get(name) for name in _columns(kind)}


def best_per_board(rows: list[dict]) -> dict[str, dict]:
    """The best point of each board: the highest GMAC/s among the points that fit and met
    timing, fewer LUTs breaking ties; where a point's fit or timing is unknown (a dry run,
    synthesis only), among those not known to fail."""
    best: dict[str, dict] = {}
    for row in rows:
        if row["error"] or row["fits"] is False or row["timing_met"] is False:
            continue
        score = (row["gmac_per_s"] or 0.0, -(row["lut"] or 0))
        current = best.get(row["board"])
        if current is None or score > (current["gmac_per_s"] or 0.0, -(current["lut"] or 0)):
            best[row["board"]] = row
    return best


def _plain(value: object) -> object:
    """A JSON value: an infinite SNR (an exact result) as the string ``"inf"``."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def write_results(kind: str, rows: list[dict], out: str | Path, meta: dict) -> list[str]:
    """Write ``results.csv``, ``results.json`` and the plots into ``out``; returns the
    names of the files written."""
    from .sweep_plots import device_plots, pareto_plot

    out = Path(out)
    columns = _columns(kind)
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    _write_atomic(out / "results.csv", text.getvalue())
    report = {
        "kind": kind,
        **meta,
        "points": len(rows),
        "failed": sum(bool(row["error"]) for row in rows),
        "columns": columns,
        "rows": [{k: _plain(v) for k, v in row.items()} for row in rows],
    }
    if kind == "build":
        report["best_per_board"] = best_per_board(rows)
    _write_atomic(out / "results.json", json.dumps(report, indent=2) + "\n")
    written = ["results.csv", "results.json"]
    if kind == "build":
        written += pareto_plot(rows, out / "pareto.png")
    else:
        swept = [name for name, values in meta["grid"].items() if len(values) > 1]
        written += device_plots(rows, swept, out)
    return written


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator:
    """A Dask client: of the running cluster at ``scheduler``, or of a ``LocalCluster`` of
    ``workers`` single-threaded worker processes (default: one a core), closed on exit."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler)
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(
                f"--scheduler {scheduler!r}: no Dask scheduler there ({error})"
            ) from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # (any free port: 8787 may be taken by another cluster)
            # (the sweep reports a point's failure in its row; the workers' own log lines,
            # a closed connection at shutdown, would only interleave with the progress bar)
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def cmd_sweep(args: argparse.Namespace) -> int:
    kind = args.kind
    grid = parse_grid(kind, args.grid, args.grid_file)  # (checked before anything is written)
    points = grid_points(kind, grid)
    if kind == "device":
        for point in points:
            try:
                device_config(point)
            except ValueError as error:
                values = ", ".join(f"{k}={v}" for k, v in point.items())
                raise ValueError(f"the device point {values} is not a crossbar: {error}") from None
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {args.output!r} is a file, not a folder")
    mode = getattr(args, "mode", None) or "full"
    started = time.monotonic()
    pending = len(points) - len(_finished(kind, points, out, mode))
    # (no cluster when every point is already in the cache)
    with (
        dask_client(args.workers, args.scheduler) if pending else contextlib.nullcontext() as client
    ):
        if pending:
            workers = len(client.scheduler_info()["workers"])
            print(
                f"{pending} of {len(points)} points to run on {workers} Dask worker(s) "
                f"(ready in {time.monotonic() - started:.1f} s)",
                file=sys.stderr,
            )
        else:
            print(f"all {len(points)} points are in {out / 'points'}", file=sys.stderr)
        rows = run_sweep(
            kind, points, out, client, mode=mode, timeout=getattr(args, "timeout", None)
        )
    seconds = time.monotonic() - started
    meta = {"grid": {k: [_plain(v) for v in vs] for k, vs in grid.items()}}
    if kind == "build":
        meta["mode"] = mode
    written = write_results(kind, rows, out, meta)
    failed = sum(bool(row["error"]) for row in rows)
    print(
        f"wrote {', '.join(str(out / name) for name in written)}: {len(rows)} points, "
        f"{failed} failed, {seconds:.1f} s",
        file=sys.stderr,
    )
    return 1 if failed else 0


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} s must be > 0")
    return value


def add_sweep_command(commands) -> None:
    """Add ``sweep build`` and ``sweep device`` to the subcommand set ``commands``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="values of one parameter (repeat for more; the sweep is their product)",
    )
    common.add_argument("--grid-file", metavar="FILE.toml", help="NAME = [V1, V2, ...] lines")
    where = common.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="worker processes of the local Dask cluster (default: one a core)",
    )
    where.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="run on this running Dask cluster"
    )
    common.add_argument("-o", "--output", required=True, metavar="DIR", help="sweep folder")
    sweep = commands.add_parser(
        "sweep",
        help="board builds or device models over a grid of parameters, on Dask",
        description="Run every point of a parameter grid on a Dask cluster and write "
        "DIR/results.csv, DIR/results.json and plots; finished points are kept in "
        "DIR/points/, so a re-run resumes. Exit status 1 if a point failed (its row says why).",
    )
    kinds = sweep.add_subparsers(dest="kind", required=True, metavar="KIND")

    def listing(kind: str) -> str:
        return "; ".join(
            f"{p.name}: {p.help}, {p.allowed}"
            + (
                ""
                if callable(p.default)
                else f", default {'full' if p.default is None else p.default}"
            )
            for p in PARAMETERS[kind]()
        )

    build = kinds.add_parser(
        "build",
        parents=[common],
        help="board x lanes x clock_mhz x seed: resources, Fmax, GMAC/s",
        description=f"Build each point with 'molxbar build'. Parameters: {listing('build')}. "
        "Writes a Pareto plot (GMAC/s against LUTs) and the best point of each board.",
    )
    stop = build.add_mutually_exclusive_group()
    stop.add_argument(
        "--dry-run", dest="mode", action="store_const", const="dry-run", help="build trees only"
    )
    stop.add_argument(
        "--synth-only", dest="mode", action="store_const", const="synth-only",
        help="synthesis only (cell counts; no timing)",
    )  # fmt: skip
    build.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="stop a build after this long: its row gets the error "
        f"(default {DEFAULT_TIMEOUT_S:g})",
    )
    build.set_defaults(run=cmd_sweep)
    device = kinds.add_parser(
        "device",
        parents=[common],
        help="levels x noise x ADC bits x mapping x workload: SNR and ENOB",
        description="SNR and ENOB of each point on the golden model, bit-exact from its seed. "
        f"Parameters: {listing('device')}. Writes heat maps of the SNR.",
    )
    device.set_defaults(run=cmd_sweep)
