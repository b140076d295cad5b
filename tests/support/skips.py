"""Why a test skips: a simulator that is not installed (the reason says how to install it),
or a test too long for the default run, even among the ``slow`` ones, that runs only when
``-m slow`` is asked for."""

import pytest

from molxbar.sim.cosim import simulator_missing


def need(simulator: str) -> None:
    """Skip the calling test when ``simulator`` cannot run here, saying how to install it."""
    reason = simulator_missing(simulator)
    if reason is not None:
        pytest.skip(reason)


def only_with_slow(request: pytest.FixtureRequest, what: str) -> None:
    """Skip the calling test unless the run's ``-m`` expression names ``slow``; the reason
    says ``what`` it is."""
    if "slow" not in request.config.getoption("markexpr", ""):
        pytest.skip(f"{what}: run with -m slow")
