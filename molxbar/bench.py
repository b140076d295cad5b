"""``molxbar bench``: throughput of the golden model and accuracy of the crossbar DFT.

Figures are medians over repeated runs; these machines are shared and noisy. Each golden
throughput is printed beside an in-run baseline, a float64 matrix product of the same codes
timed alternately with it, so the ratio survives a busy machine. BLAS is pinned to one thread
while the throughput is measured (and the pinned count printed): the golden model's chunks
are too small for BLAS threads, the baseline's matrix is not, and the ratio compares the two
on equal terms.
"""

from __future__ import annotations

import contextlib
import ctypes
import statistics
import sys
import time
from collections.abc import Iterator

import numpy as np

from molxbar.emulator.device import PAPER_SNR_DB, energy_report
from molxbar.emulator.workloads import run_dft

from .emulator import Crossbar, preset

__all__ = ["run_benchmarks", "vmm_throughput", "blas_threads"]

# Thread-count functions of the OpenBLAS builds NumPy ships with (scipy-openblas: ILP64 names).
_OPENBLAS_PREFIXES = ("scipy_openblas_", "openblas_")
_OPENBLAS_SUFFIXES = ("64_", "")


def _openblas_thread_functions() -> tuple[object, object] | None:
    """``(get_num_threads, set_num_threads)`` of the OpenBLAS loaded by NumPy, or ``None``."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _OPENBLAS_PREFIXES:
            for suffix in _OPENBLAS_SUFFIXES:
                get = getattr(library, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(library, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    return get, put
    return None


@contextlib.contextmanager
def blas_threads(count: int = 1) -> Iterator[dict[str, object]]:
    """Limit BLAS to ``count`` threads inside the block; yields what was done.

    Uses threadpoolctl when installed, else the thread functions of NumPy's own OpenBLAS.
    The yielded dict has ``threads`` (the pinned count, ``None`` if pinning failed),
    ``previous`` and ``via``.
    """
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        pass
    else:
        previous = [pool.get("num_threads") for pool in threadpool_info()]
        with threadpool_limits(count, user_api="blas"):
            yield {
                "threads": count,
                "previous": max(previous, default=None),
                "via": "threadpoolctl",
            }
        return
    functions = _openblas_thread_functions()
    if functions is None:
        yield {"threads": None, "previous": None, "via": "none (set OPENBLAS_NUM_THREADS=1)"}
        return
    get, put = functions
    previous = get()
    put(count)
    try:
        yield {"threads": get(), "previous": previous, "via": "OpenBLAS"}
    finally:
        put(previous)


def vmm_throughput(name: str, batch: int, repeats: int, seed: int = 0) -> dict[str, float]:
    """Median batched VMMs per second of the golden model for preset ``name``, and of the
    in-run baseline: ``x.astype(float64) @ g.astype(float64)`` of the same codes, timed
    alternately with the golden model so that both see the same machine."""
    config = preset(name)
    rng = np.random.default_rng(seed)
    crossbar = Crossbar(config)
    crossbar.write_levels(rng.integers(0, config.levels, size=(config.rows, config.cols)))
    inputs = rng.integers(config.x_min, config.x_max + 1, size=(batch, config.rows))
    levels = crossbar.levels
    # Warm up at full size: the allocator settles on where arrays of this size live (fresh
    # pages, whose first touch costs a page fault each, or reused ones) before the timing.
    inputs.astype(np.float64) @ levels.astype(np.float64)
    crossbar.vmm_batch(inputs)
    times, baseline_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        inputs.astype(np.float64) @ levels.astype(np.float64)
        baseline_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        crossbar.vmm_batch(inputs)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    baseline = statistics.median(baseline_times)
    return {
        "preset": name,
        "read_noise": config.read_noise,
        "batch": batch,
        "repeats": repeats,
        "median_s": median,
        "vmm_per_s": batch / median,
        "best_vmm_per_s": batch / min(times),
        "baseline_median_s": baseline,
        "baseline_vmm_per_s": batch / baseline,
        "ratio_to_baseline": baseline / median,
    }


def run_benchmarks(quick: bool = False, repeats: int = 5, out=sys.stdout) -> dict:
    """Run every benchmark, print a table to ``out`` and return the figures."""
    batch = 4096 if quick else 65536
    repeats = min(repeats, 3) if quick else repeats
    report: dict[str, object] = {"vmm": [], "dft": []}
    with blas_threads(1) as pinned:
        report["blas_threads"] = pinned
        if pinned["threads"] is None:
            threads = f"BLAS threads not pinned: {pinned['via']}"
        else:
            threads = (
                f"BLAS pinned to {pinned['threads']} thread(s) via {pinned['via']} "
                f"(was {pinned['previous']})"
            )
        print(
            f"golden model, batched {preset('ideal14').rows}x{preset('ideal14').cols} VMMs "
            f"(median of {repeats}, batch {batch}; {threads}):",
            file=out,
        )
        for name in ("ideal14", "ru_azo_2024"):
            figures = vmm_throughput(name, batch, repeats)
            report["vmm"].append(figures)
            noise = "read noise on" if figures["read_noise"] else "no noise"
            print(
                f"  {name:12s} {noise:14s} {figures['vmm_per_s']:12,.0f} VMM/s "
                f"= {figures['ratio_to_baseline']:5.2f} x float64 matmul of the same codes "
                f"({figures['baseline_vmm_per_s']:,.0f} VMM/s in the same run; "
                f"golden best {figures['best_vmm_per_s']:,.0f})",
                file=out,
            )
    print(
        "64-point DFT of 64 Gaussian signals on the golden model "
        f"(paper: > {PAPER_SNR_DB:.0f} dB):",
        file=out,
    )
    for name in ("ideal14", "ru_azo_2024"):
        for scheme in ("offset", "differential"):
            summary = run_dft(preset(name), scheme=scheme, batch=64).summary()
            report["dft"].append({"preset": name, "scheme": scheme, **summary})
            print(
                f"  {name:12s} {scheme:12s} SNR {summary['snr_db']:6.2f} dB  "
                f"ENOB {summary['enob']:5.2f}  predicted {summary['predicted_snr_db']:6.2f} dB",
                file=out,
            )
    rng = np.random.default_rng(0)
    config = preset("ru_azo_2024")
    levels = rng.integers(0, config.levels, size=(config.rows, config.cols))
    inputs = rng.integers(0, config.x_max + 1, size=(256, config.rows))
    energy = energy_report(levels, inputs, config)
    report["energy"] = energy
    print("energy per 64x64 VMM, random levels and non-negative inputs (device view):", file=out)
    print(
        f"  device  {energy['device_energy_per_vmm_j'] * 1e9:8.3f} nJ  "
        f"{energy['device_tops_per_w']:6.2f} TOPS/W   (paper: {energy['paper_tops_per_w']} TOPS/W)",
        file=out,
    )
    print(
        f"  digital {energy['digital_energy_per_vmm_j'] * 1e9:8.3f} nJ  "
        f"{energy['digital_tops_per_w']:6.2f} TOPS/W   ratio {energy['energy_ratio']:.0f}x "
        f"(paper: {energy['paper_energy_ratio']:.0f}x)",
        file=out,
    )
    return report


def gateware_cycles(lanes: int, batch: int = 4, seed: int = 0) -> dict[str, float]:
    """Cycles of the 64x64 engine with ``lanes`` lanes in the Amaranth simulator, streams
    never stalled: one VMM's accumulation, and the steady-state cycles per batch vector."""
    from molxbar.hdl.engine import Engine
    from molxbar.protocol.golden_engine import GoldenEngine
    from molxbar.protocol.spec import Layout, Opcode, encode_command
    from molxbar.sim.simulate import simulate_engine

    from .emulator import CrossbarConfig

    config = CrossbarConfig(lanes=lanes)
    layout = Layout(config)
    rng = np.random.default_rng(seed)
    x = rng.integers(config.x_min, config.x_max + 1, (batch, config.rows))
    single = encode_command(layout, Opcode.LOAD_INPUT, x=x[0]) + encode_command(
        layout, Opcode.RUN_VMM
    )
    one = encode_command(layout, Opcode.RUN_BATCH, count=1, x=x[:1])
    many = encode_command(layout, Opcode.RUN_BATCH, count=batch, x=x)
    engine = Engine(config)
    results = {}
    for name, commands in (("single", single), ("one", one), ("many", many)):
        result = simulate_engine(config, commands, engine=engine)
        if result.responses != GoldenEngine(config).execute(commands):
            raise AssertionError(f"lanes {lanes}: the gateware disagrees with the golden engine")
        results[name] = result
    ideal = config.rows * config.cols // lanes
    per_vector = (results["many"].cycles - results["one"].cycles) / (batch - 1)
    return {
        "lanes": lanes,
        "stream_bytes": engine.stream_bytes,
        "ideal_cycles": ideal,
        "vmm_cycles": results["single"].vmm_cycles,
        "batch_cycles_per_vector": per_vector,
        "batch_efficiency": ideal / per_vector,
        "response_bytes_per_vector": layout.response_length(Opcode.RUN_VMM),
    }


def gateware_table(lanes_list, out=sys.stdout) -> list[dict]:
    """Print and return :func:`gateware_cycles` for each lane count."""
    print("64x64 engine in the Amaranth simulator, streams never stalled:", file=out)
    print("  lanes  bytes/beat  ideal  VMM cycles  batch cycles/vector  efficiency", file=out)
    rows = []
    for lanes in lanes_list:
        figures = gateware_cycles(lanes)
        rows.append(figures)
        print(
            f"  {lanes:5d}  {figures['stream_bytes']:10d}  {figures['ideal_cycles']:5d}  "
            f"{figures['vmm_cycles']:10d}  "
            f"{figures['batch_cycles_per_vector']:19.1f}  {figures['batch_efficiency']:9.1%}",
            file=out,
        )
    return rows
