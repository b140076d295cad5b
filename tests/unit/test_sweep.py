"""``molxbar sweep`` on real Dask ``LocalCluster``s of two workers: the tables match serial
runs of the same points, re-runs and interrupted sweeps reuse the cache, a failed point and
a killed worker still give every row, a killed worker's build stops, and bad grids stop
before anything is written."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from molxbar.cli import main
from molxbar.sweep import best_per_board, dask_client, run_sweep, write_results
from molxbar.sweep_grid import grid_points, parse_grid
from molxbar.sweep_plots import pareto_front, pareto_plot
from molxbar.sweep_points import BUILD_FIGURES, build_figures, device_point

#: Sixteen device points of a few milliseconds each: levels x ADC x mapping x read noise.
DEVICE_GRID = [
    "levels=32,256",
    "adc_bits=full,8",
    "mapping=offset,differential",
    "read_sigma=0,0.5",
]


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as client:
        yield client


def _figures(rows, names):
    return [{name: row[name] for name in names} for row in rows]


def test_device_sweep_matches_serial_runs(client, tmp_path):
    grid = parse_grid("device", DEVICE_GRID)
    points = grid_points("device", grid)
    assert len(points) == 16
    rows = run_sweep("device", points, tmp_path, client, progress=False)
    serial = [{**point, **device_point(point)} for point in points]
    names = ["levels", "adc_bits", "mapping", "read_sigma", "g_bits", "snr_db", "enob"]
    assert _figures(rows, names) == _figures(serial, names)
    assert not any(row["error"] for row in rows)
    # More levels, a better SNR; an 8-bit ADC, a worse one.
    by = {(r["levels"], r["adc_bits"], r["mapping"], r["read_sigma"]): r["snr_db"] for r in rows}
    assert by[256, None, "offset", 0.0] > by[32, None, "offset", 0.0] + 10
    assert by[256, 8, "offset", 0.0] < by[256, None, "offset", 0.0]

    written = write_results("device", rows, tmp_path, {"grid": grid})
    assert written == ["results.csv", "results.json", "snr_heatmap.png"]
    with open(tmp_path / "results.csv") as file:
        table = list(csv.DictReader(file))
    assert list(table[0])[:7] == ["levels", "read_sigma", "write_sigma", "adc_bits", "mapping",
                                  "workload", "seed"]  # fmt: skip
    assert [float(r["snr_db"]) for r in table] == [r["snr_db"] for r in serial]
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["points"] == 16 and report["failed"] == 0
    assert [r["snr_db"] for r in report["rows"]] == [r["snr_db"] for r in serial]


def test_the_command_runs_on_a_running_cluster(client, tmp_path, capsys):
    argv = ["sweep", "device", "--grid", "levels=32,64", "--grid", "write_sigma=0.25"]
    assert main([*argv, "--scheduler", client.scheduler.address, "-o", str(tmp_path)]) == 0
    assert "2 of 2 points to run on 2 Dask worker(s)" in capsys.readouterr().err
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    serial = [device_point(p) for p in grid_points("device", parse_grid("device", argv[3::2]))]
    assert [row["snr_db"] for row in rows] == [figures["snr_db"] for figures in serial]
    assert (tmp_path / "snr.png").exists()


def test_device_points_rerun_bit_exact_from_their_seeds():
    point = grid_points("device", parse_grid("device", ["read_sigma=1", "write_sigma=0.5"]))[0]
    first, again = device_point(point), device_point(point)
    assert first["snr_db"] == again["snr_db"]
    other = device_point({**point, "seed": 1})
    assert other["snr_db"] != first["snr_db"]


def test_image_workload_is_the_demos_sweep(client, tmp_path):
    from molxbar.demo import BLOCK
    from molxbar.demo_measurements import idft_snr
    from molxbar.emulator import CrossbarConfig
    from molxbar.emulator.workloads import astro_image
    from molxbar.host.programs import image_blocks
    from molxbar.sweep_points import IMAGE_SIZE

    points = grid_points("device", parse_grid("device", ["workload=image", "adc_bits=full,10"]))
    rows = run_sweep("device", points, tmp_path, client, progress=False)
    blocks = image_blocks(astro_image(IMAGE_SIZE), BLOCK)
    demo, _ = idft_snr(CrossbarConfig(), np.fft.fft2(blocks), blocks, "offset", [None, 10])
    assert [row["snr_db"] for row in rows] == [round(snr, 6) for snr in demo]


def test_rerun_skips_finished_points_and_retries_failed_ones(client, tmp_path):
    points = grid_points("device", parse_grid("device", ["levels=16,64,256,1024"]))
    first = run_sweep("device", points, tmp_path, client, progress=False)
    cached = sorted((tmp_path / "points").glob("*.json"))
    assert len(cached) == 4
    ran = []
    assert run_sweep("device", points, tmp_path, client, progress=False, on_result=ran.append)
    assert ran == []
    # An interrupted sweep: one point missing, one failed; only those two run again.
    cached[0].unlink()
    record = json.loads(cached[1].read_text())
    cached[1].write_text(json.dumps({**record, "figures": {"error": "TimeoutError: ..."}}))
    again = run_sweep("device", points, tmp_path, client, progress=False, on_result=ran.append)
    assert len(ran) == 2
    assert _figures(again, ["levels", "snr_db"]) == _figures(first, ["levels", "snr_db"])


def test_an_interrupted_sweep_resumes(tmp_path, capsys):
    argv = ["sweep", "device", "--grid", "workload=image", "--grid", "levels=32,1024,16384",
            "--grid", "read_sigma=0,1,2", "--workers", "1", "-o", str(tmp_path)]  # fmt: skip
    sweep = subprocess.Popen(
        [sys.executable, "-m", "molxbar", *argv],
        stderr=subprocess.PIPE,
        # (a test worker may ignore SIGINT, and its children would inherit that)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("points/*.json"))) < 2 and sweep.poll() is None:
            assert time.monotonic() < deadline, "no point finished in two minutes"
            time.sleep(0.05)
        sweep.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 130, err.decode()
    assert b"molxbar: interrupted" in err
    done = len(list(tmp_path.glob("points/*.json")))
    assert 2 <= done < 9 and not (tmp_path / "results.csv").exists()
    capsys.readouterr()
    assert main(argv) == 0
    assert f"{9 - done} of 9 points to run" in capsys.readouterr().err
    with open(tmp_path / "results.csv") as file:
        assert len(list(csv.DictReader(file))) == 9


def test_a_worker_killed_mid_sweep_still_gives_every_row(tmp_path):
    # Points of about a second each, so that the other worker is busy when one finishes.
    grid = parse_grid("device", ["workload=image", "levels=32,1024,16384", "read_sigma=0,1,2"])
    points = grid_points("device", grid)
    killed = []
    with dask_client(workers=2) as client:

        def kill_a_busy_worker(row):
            if killed:
                return
            busy = [worker for worker, tasks in client.processing().items() if tasks]
            assert busy, "no point was running when the first finished"
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        rows = run_sweep(
            "device", points, tmp_path, client, progress=False, on_result=kill_a_busy_worker
        )
    assert killed
    assert not any(row["error"] for row in rows), [row["error"] for row in rows]
    serial = [{**point, **device_point(point)} for point in points]
    assert _figures(rows, ["snr_db"]) == _figures(serial, ["snr_db"])


def test_build_sweep_of_dry_runs_matches_serial_builds(tmp_path, capsys):
    """The iCEBreaker three-seed sweep, as dry runs on two workers, against the report of
    one build run in this process."""
    from molxbar.boards.build import build_board

    out = tmp_path / "sweep"
    argv = ["sweep", "build", "--dry-run", "--grid", "board=icebreaker", "--grid", "seed=1,2,3"]
    assert main([*argv, "--workers", "2", "-o", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["mode"] == "dry-run" and report["failed"] == 0
    assert [row["seed"] for row in report["rows"]] == [1, 2, 3]
    serial = build_figures(build_board("icebreaker", tmp_path / "serial", dry_run=True).report)
    for row in report["rows"]:
        assert {name: row[name] for name in BUILD_FIGURES} == serial
        assert (row["board"], row["lanes"], row["clock_mhz"]) == ("icebreaker", 4, 24.0)
    assert serial["gmac_per_s"] > 0
    assert set(report["best_per_board"]) == {"icebreaker"}
    assert (out / "builds" / "icebreaker_lanes4_24MHz_seed3" / "report.json").exists()
    assert "3 points, 0 failed" in capsys.readouterr().err


@pytest.mark.slow
def test_build_sweep_of_synthesis_matches_a_serial_synthesis(client, tmp_path):
    """One iCEBreaker point through Yosys on the cluster and in this process (minutes)."""
    from molxbar.boards.build import build_board

    points = grid_points("build", parse_grid("build", ["board=icebreaker"]))
    (row,) = run_sweep("build", points, tmp_path, client, mode="synth-only", progress=False)
    serial = build_board("icebreaker", tmp_path / "serial", synth_only=True).report
    cells = ["fits", "lut", "ff", "dsp", "ram", "gmac_per_s"]
    assert row["error"] is None and row["lut"] > 1000 and row["tool_seconds"] > 0
    assert {name: row[name] for name in cells} == {k: build_figures(serial)[k] for k in cells}


def test_a_build_that_times_out_is_a_row_with_its_error(client, tmp_path):
    points = grid_points("build", parse_grid("build", ["board=icebreaker", "lanes=4"]))
    rows = run_sweep("build", points, tmp_path, client, mode="dry-run", timeout=0.5, progress=False)
    assert len(rows) == 1 and rows[0]["lanes"] == 4
    assert rows[0]["error"].startswith("TimeoutError: the build took longer than 0.5 s")
    write_results("build", rows, tmp_path, {"grid": {}, "mode": "dry-run"})
    assert json.loads((tmp_path / "results.json").read_text())["failed"] == 1


def test_a_build_stops_with_the_worker_that_ran_it(tmp_path):
    import psutil

    from molxbar.sweep_points import build_point

    point = grid_points("build", parse_grid("build", ["board=icebreaker"]))[0]
    with dask_client(workers=1) as client:
        (worker,) = client.run(os.getpid).values()
        client.submit(build_point, point, str(tmp_path), "dry-run", None)
        deadline = time.monotonic() + 60
        while not (
            builds := [p for p in psutil.Process(worker).children() if "build" in p.cmdline()]
        ):
            assert time.monotonic() < deadline, "the build did not start in a minute"
            time.sleep(0.05)
        (build,) = builds
        group = os.getpgid(build.pid)
        assert group != os.getpgid(worker)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 5  # (a dry run takes longer: the group was stopped)
        with pytest.raises(ProcessLookupError):  # no process of the build's group is left
            while time.monotonic() < deadline:
                os.killpg(group, 0)
                time.sleep(0.1)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["device", "--grid", "levels=1"], ["levels='1'", "from 2 to 2**24"]),
        (["device", "--grid", "adc_bits=8,x"], ["adc_bits='x'", "'full' or an integer"]),
        (["device", "--grid", "mapping=diagonal"], ["'diagonal'", "offset, differential"]),
        (["device", "--grid", "noise=1"], ["'noise'", "levels, read_sigma"]),
        (["device", "--grid", "read_sigma=-1"], ["read_sigma='-1'", ">= 0"]),
        (["device", "--grid", "read_sigma=60"], ["read_sigma=60.0", "above the limit"]),
        (["device", "--grid", "levels"], ["'levels'", "NAME=V1,V2"]),
        (["build", "--grid", "board=de10"], ["board='de10'", "icebreaker, ulx3s-85f"]),
        (["build", "--grid", "lanes=3"], ["lanes='3'", "power of two"]),
        (["build", "--grid", "clock_mhz=0"], ["clock_mhz='0'", "above 0"]),
        (["build", "--grid", "levels=32"], ["'levels'", "board, lanes, clock_mhz, seed"]),
    ],
)
def test_bad_grids_stop_with_one_line_and_write_nothing(tmp_path, capsys, argv, named):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(["sweep", *argv, "-o", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("molxbar: error: ") and err.count("\n") == 1, err
    for text in named:
        assert text in err
    assert not out.exists()


def test_grid_file_with_the_command_line_winning(tmp_path, capsys):
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text('levels = [32, 64]\nadc_bits = ["full", 8]\nmapping = "differential"\n')
    grid = parse_grid("device", ["levels=128"], str(grid_file))
    assert grid == {"levels": [128], "adc_bits": [None, 8], "mapping": ["differential"]}
    grid_file.write_text("levels = [32, 1]\n")
    with pytest.raises(SystemExit):
        main(["sweep", "device", "--grid-file", str(grid_file), "-o", str(tmp_path / "o")])
    assert "levels=1 is not allowed" in capsys.readouterr().err


def _build_row(board, lut, gmac, met, error=None):
    row = dict.fromkeys(("lanes", "clock_mhz", "seed", *BUILD_FIGURES))
    return {**row, "board": board, "lut": lut, "gmac_per_s": gmac, "timing_met": met,
            "fits": True, "error": error}  # fmt: skip


def test_best_point_per_board_and_the_pareto_front(tmp_path):
    rows = [
        _build_row("icebreaker", 4000, 0.24, True),
        _build_row("icebreaker", 4400, 0.48, False),  # faster, but timing failed
        _build_row("icebreaker", 3000, 0.12, True),
        _build_row("ulx3s-85f", 30000, 3.0, True),
        _build_row("ulx3s-85f", 20000, 3.0, True),  # as fast, fewer LUTs
        _build_row("ulx3s-85f", 10000, 9.0, None, error="RuntimeError: crashed"),
    ]
    best = best_per_board(rows)
    assert best["icebreaker"]["lut"] == 4000 and best["ulx3s-85f"]["lut"] == 20000
    assert [row["lut"] for row in pareto_front(rows)] == [3000, 4000, 20000]
    assert pareto_plot(rows, tmp_path / "pareto.png") == ["pareto.png"]
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
