"""The molxbar command line: vmm and dft, their outputs and their errors."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from molxbar.cli import main
from molxbar.emulator import Crossbar, preset


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(11)
    levels = rng.integers(0, 2**14, size=(16, 12))
    inputs = rng.integers(-(2**15), 2**15, size=(5, 16))
    paths = {"levels": tmp_path / "L.npy", "inputs": tmp_path / "X.npy", "out": tmp_path / "Y.npy"}
    np.save(paths["levels"], levels)
    np.save(paths["inputs"], inputs)
    return levels, inputs, paths


def run_vmm(paths, *extra):
    return main(
        [
            "vmm",
            "--levels",
            str(paths["levels"]),
            "--inputs",
            str(paths["inputs"]),
            "--out",
            str(paths["out"]),
            *extra,
        ]
    )


def test_vmm_ideal_rectification(arrays):
    levels, inputs, paths = arrays
    assert run_vmm(paths) == 0
    y = np.load(paths["out"])
    assert y.dtype == np.int64 and y.shape == (5, 12)
    np.testing.assert_array_equal(y, np.maximum(inputs, 0) @ levels)


def test_vmm_signed_inputs_give_the_exact_signed_product(arrays):
    levels, inputs, paths = arrays
    inputs = np.clip(inputs, -(2**15) + 1, None)
    np.save(paths["inputs"], inputs)
    assert run_vmm(paths, "--signed-inputs") == 0
    np.testing.assert_array_equal(np.load(paths["out"]), inputs @ levels)


def test_vmm_leakage_adc_and_single_vector(arrays):
    levels, inputs, paths = arrays
    np.save(paths["inputs"], inputs[0])
    assert run_vmm(paths, "--rect-shift", "3", "--adc-bits", "12", "--adc-shift", "10") == 0
    crossbar = Crossbar(preset("ideal14", rows=16, cols=12, lanes=4))
    crossbar.write_levels(levels)
    crossbar.set_rectification(3)
    crossbar.set_adc(12, 10)
    y = np.load(paths["out"])
    assert y.shape == (1, 12)
    np.testing.assert_array_equal(y[0], crossbar.vmm(inputs[0]))
    assert y.max() <= 2047 and y.min() >= -2048


def test_vmm_preset_noise_is_deterministic_and_can_be_switched_off(arrays):
    levels, inputs, paths = arrays
    levels = np.minimum(levels, 16519)
    np.save(paths["levels"], levels)
    runs = []
    for _ in range(2):
        assert run_vmm(paths, "--preset", "ru_azo_2024") == 0
        runs.append(np.load(paths["out"]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], np.maximum(inputs, 0) @ levels)
    assert run_vmm(paths, "--preset", "ru_azo_2024", "--no-noise") == 0
    np.testing.assert_array_equal(np.load(paths["out"]), np.maximum(inputs, 0) @ levels)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"levels": np.full((16, 12), 2**14)},
            r"levels value 16384 at index \(0, 0\) is out of range",
        ),
        ({"levels": np.zeros(4)}, r"levels must be a \(rows, cols\) array"),
        (
            {"inputs": np.zeros((2, 3), dtype=int)},
            r"inputs must have shape \(16,\) or \(batch, 16\)",
        ),
        ({"inputs": np.full(16, 2**15)}, r"inputs value 32768 at index \(0, 0\) is out of range"),
        (
            {"inputs": np.array([[3.0] * 16, [2.0] * 7 + [0.5] + [1.0] * 8])},
            r"inputs value 0.5 at index \(1, 7\) is not a whole number",
        ),
        ({"inputs": np.full(16, np.nan)}, r"inputs value NaN at index \(0, 0\)"),
        ({"inputs": np.array(["a"] * 16)}, "inputs must hold integers, not <U1 values"),
        ({"inputs": np.zeros((0, 16), dtype=int)}, r"inputs has no vectors \(shape \(0, 16\)\)"),
        ({"inputs": np.zeros(0, dtype=int)}, r"inputs has no vectors \(shape \(0,\)\)"),
    ],
)
def test_vmm_errors(arrays, capsys, change, message):
    _, _, paths = arrays
    for name, value in change.items():
        np.save(paths[name], value)
    with pytest.raises(SystemExit) as exit_info:
        run_vmm(paths)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("molxbar: error:") and re.search(message, err), err
    assert not paths["out"].exists()


def test_vmm_signed_inputs_reject_the_most_negative_code(arrays, capsys):
    _, _, paths = arrays
    np.save(paths["inputs"], np.full(16, -(2**15)))
    with pytest.raises(SystemExit):
        run_vmm(paths, "--signed-inputs")
    assert "input code -32768 has no positive counterpart" in capsys.readouterr().err


def test_vmm_accepts_floats_that_hold_whole_numbers(arrays):
    levels, inputs, paths = arrays
    np.save(paths["inputs"], inputs.astype(np.float64))
    assert run_vmm(paths) == 0
    np.testing.assert_array_equal(np.load(paths["out"]), np.maximum(inputs, 0) @ levels)


def test_vmm_names_a_file_that_is_not_npy(arrays, capsys):
    _, _, paths = arrays
    paths["inputs"].write_text("1 2 3\n")
    with pytest.raises(SystemExit) as stop:
        run_vmm(paths)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert "is not a .npy file (no NumPy header)" in err and "pickle" not in err


def test_vmm_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["vmm", "--levels", str(tmp_path / "no.npy"), "--inputs", "x", "--out", "y"])
    assert "levels file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "target", "message"),
    [
        ("--out", "missing/Y.npy", r"--out '.*missing/Y.npy': the folder '.*missing' does not"),
        ("--out", ".", r"--out '.*' is a folder, not a file"),
        ("--waves", "missing/run.vcd", r"--waves '.*missing/run.vcd': the folder .* does not"),
    ],
)
def test_vmm_checks_its_output_paths_first(arrays, capsys, monkeypatch, option, target, message):
    """A path that cannot be written stops the command before it loads or runs anything:
    one line, exit 2, nothing written."""
    _, _, paths = arrays
    monkeypatch.setattr("molxbar.commands.vmm.run_stream", lambda *a, **k: pytest.fail("it ran"))
    target = str(paths["out"].parent / target)
    args = ["vmm", "--levels", str(paths["levels"]), "--inputs", str(paths["inputs"])]
    args += ["--out", target if option == "--out" else str(paths["out"])]
    if option == "--waves":
        args += ["--backend", "amaranth", "--waves", target]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.match("molxbar: error: " + message, err), err
    assert not paths["out"].exists()


def test_vmm_writes_the_name_it_was_given(arrays, capsys):
    _, _, paths = arrays
    paths["out"] = paths["out"].with_suffix(".txt")
    assert run_vmm(paths) == 0
    assert paths["out"].is_file() and not paths["out"].with_suffix(".txt.npy").exists()
    assert np.load(paths["out"]).shape == (5, 12)
    assert f"wrote {paths['out']}" in capsys.readouterr().err


def test_generate_and_demo_check_their_output_paths_first(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["generate", "--rows", "4", "--cols", "4", "-o", str(tmp_path / "no" / "e.v")])
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--backend", "golden", "-o", str(tmp_path / "file")])
    assert stop.value.code == 2 and "is a file, not a folder" in capsys.readouterr().err


def test_dft_json(capsys):
    assert main(["dft", "--json", "--batch", "16"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 64 and report["paper_snr_db"] == 73.0
    assert abs(report["snr_db"] - report["predicted_snr_db"]) < 1.0
    assert report["config"]["g_bits"] == 14


def test_dft_text_and_module_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "molxbar", "dft", "--n", "32", "--preset", "ru_azo_2024"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "32-point DFT" in out and "SNR" in out and "> 73 dB" in out


def test_bench_quick_json(capsys):
    assert main(["bench", "--quick", "--repeats", "1", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "VMM/s" in captured.err
    assert [v["preset"] for v in report["vmm"]] == ["ideal14", "ru_azo_2024"]
    assert all(v["vmm_per_s"] > 0 for v in report["vmm"])
    assert all(d["snr_db"] > 73 for d in report["dft"])
    assert report["energy"]["device_energy_per_vmm_j"] > 0


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux)."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _interrupt(args: list[str], started) -> subprocess.CompletedProcess:
    """Run ``molxbar args`` and send it Ctrl-C (SIGINT) once ``started(pid)`` is true."""
    import signal
    import time

    with subprocess.Popen(
        [sys.executable, "-m", "molxbar", *args],
        stderr=subprocess.PIPE,
        text=True,
        # (a test worker may ignore SIGINT, and its children would inherit that)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as process:
        deadline = time.monotonic() + 120
        while process.poll() is None and not started(process.pid):
            if time.monotonic() > deadline:
                process.kill()
            time.sleep(0.01)
        running = process.poll() is None
        if running:
            process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert running, f"the run ended before it could be interrupted: {err}"
    return subprocess.CompletedProcess(args, process.returncode, None, err)


def test_ctrl_c_in_the_demo_removes_the_folder_it_made(tmp_path):
    out = tmp_path / "demo"
    run = _interrupt(["demo", "--backend", "golden", "-o", str(out)], lambda pid: out.exists())
    assert run.returncode == 130 and run.stderr.endswith("molxbar: interrupted\n"), run.stderr
    assert "Traceback" not in run.stderr
    assert not out.exists()


def test_ctrl_c_in_vmm_leaves_no_output(arrays, tmp_path):
    _, _, paths = arrays
    np.save(paths["inputs"], np.ones((200, 16), dtype=int))  # minutes in the simulator
    args = ["vmm", "--levels", str(paths["levels"]), "--inputs", str(paths["inputs"])]
    args += ["--out", str(paths["out"]), "--backend", "amaranth"]
    # Interrupted once it has used more CPU than its imports take: inside the command.
    run = _interrupt(args, lambda pid: _cpu_seconds(pid) > 4)
    assert run.returncode == 130 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.splitlines()[-1] == "molxbar: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["L.npy", "X.npy"]


def test_bench_link_quick_json(capsys):
    assert main(["bench", "--quick", "--repeats", "1", "--json", "--link"]) == 0
    captured = capsys.readouterr()
    link = json.loads(captured.out)["link"]
    assert "Fault injection" in captured.err and "silent wrong results" in captured.err
    assert [s["crossbar"] for s in link["sessions"]] == ["16x16", "64x64"]
    for session in link["sessions"]:
        assert session["faults"] > 100 and session["retries"] > 0
        assert session["silent_wrong_results"] == session["silent_level_changes"] == 0
        assert session["reported"] == 0
    sync = next(o for o in link["overheads"] if o["frame"] == "command: SYNC")
    assert (sync["engine_bytes"], sync["line_bytes"]) == (2, 8)
    # Measured on the bit-serial bridge: within 5 % of what the frame sizes give.
    rate = link["rate"]
    assert (rate["baud"], rate["output_bytes"]) == (12_000_000, 2)
    assert rate["vmm_per_s"] == pytest.approx(rate["modelled_vmm_per_s"], rel=0.05)
    assert "VMM/s measured on the bit-serial bridge" in captured.err


@pytest.mark.parametrize(
    "module",
    [
        "numpy",  # the command line's own imports
        "molxbar.demo",  # imported while the parser is built
        "molxbar.boards.commands",
    ],
)
def test_ctrl_c_during_the_imports(module):
    """Ctrl-C while ``molxbar`` is still importing (a second of a run): one line, 130."""
    # Ctrl-C arrives when the interpreter first looks for ``module``.
    code = f"""
import runpy, sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
sys.argv = ["molxbar", "dft", "--n", "8"]
runpy.run_module("molxbar", run_name="__main__", alter_sys=True)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (run.returncode, run.stderr, run.stdout) == (130, "molxbar: interrupted\n", "")


def test_demo_output_folder_that_cannot_be_made(capsys):
    """A folder whose parent exists and looks writable but refuses children (/proc)."""
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--backend", "golden", "--size", "8", "-o", "/proc/molxbar-demo"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("molxbar: error: -o '/proc/molxbar-demo' cannot be made:"), err


def test_build_names_its_phases_and_explains_the_fsm_warning(tmp_path):
    """A build's progress and build.log name each phase; Yosys's warning that re-encoded
    state machines lose their initial value is explained once and kept off the status line."""
    import io

    from molxbar.boards.clocks import POWER_ON_RESET_S
    from molxbar.boards.toolchain import FSM_INIT_NOTE, Progress, run_tools

    warning = [
        "Warning: Regarding the user-specified fsm_encoding attribute on top.a.fsm_state:",
        "    Initialization value on FSM state register is ignored. Possible "
        "simulation-synthesis mismatch!",
    ]
    tool = tmp_path / "fake-yosys"
    tool.write_text("#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in warning * 3))
    tool.chmod(0o755)
    commands = {"commands": [["yosys", "-q", "x.ys"], ["nextpnr-ice40", "--x"]]}
    (tmp_path / "build_molxbar.json").write_text(json.dumps(commands))
    stream = io.StringIO()
    with Progress(stream) as progress:
        run_tools(tmp_path, {"YOSYS": str(tool)}, progress, {}, stop_after="yosys")
        assert progress.last == ""  # the warning is not the status line's last tool line
    shown = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in shown] == ["synthesising with Yosys", FSM_INIT_NOTE]
    log = (tmp_path / "build.log").read_text()
    assert log.startswith("# synthesising with Yosys\n$ yosys -q x.ys\n")
    assert log.count(warning[1]) == 3 and log.count(FSM_INIT_NOTE) == 1
    assert "sync domain" in FSM_INIT_NOTE and f"{POWER_ON_RESET_S * 1e6:.0f} us" in FSM_INIT_NOTE
