"""``molxbar verify``: random streams in segments, every byte against the golden engine."""

import json
from dataclasses import replace

import pytest

from molxbar.cli import main
from molxbar.verify import VERIFY_CONFIGS, run_verify
from tests.support.skips import need

NOISY = VERIFY_CONFIGS["8x8-noisy"]()


def test_a_run_matches_covers_and_replays(tmp_path, capsys):
    need("verilator")
    out = tmp_path / "summary.json"
    args = ["verify", "--commands", "200", "--segment", "50", "-q", "--seed", "5"]
    assert main([*args, "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    err = capsys.readouterr().err
    assert "every response byte matched the golden engine" in err
    assert summary["mismatch"] is None and summary["segments"] >= 3
    assert summary["commands"] >= 200 and summary["response_bytes"] > 0  # (resets or not)
    assert all(summary["coverage"]["command"].values())  # every opcode ran
    assert summary["coverage"]["stream"]["rsp_backpressure"] > 0
    again = run_verify("verilator", NOISY, commands=200, segment=50, seed=5, progress=False)
    assert again["command_bytes"] == summary["command_bytes"]  # the seed replays the run
    assert again["response_bytes"] == summary["response_bytes"]


def test_a_mismatch_names_its_segment():
    need("verilator")
    other = replace(NOISY, adc_bits=8)  # built with another power-on ADC width
    summary = run_verify(
        "verilator", NOISY, commands=200, segment=100, seed=1, progress=False, design=other
    )
    assert summary["mismatch"] is not None
    assert summary["mismatch"]["segment"] == 0 and "verilator" in summary["mismatch"]["error"]


def test_the_amaranth_backend():
    small = replace(NOISY, rows=4, cols=4, lanes=2)
    summary = run_verify("amaranth", small, commands=30, segment=30, progress=False)
    assert summary["mismatch"] is None and summary["commands"] >= 30


def test_bad_arguments_stop_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--commands", "0"])
    assert exit_.value.code == 2 and "0 must be >= 1" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "summary.json"
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--commands", "10", "--json", str(missing)])
    assert exit_.value.code == 2
    assert "does not exist" in capsys.readouterr().err and not missing.parent.exists()
