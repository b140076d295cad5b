"""Tests too long for the default run, even among the ``slow`` ones: they run only when
``-m slow`` is asked for."""

import pytest


def only_with_slow(request: pytest.FixtureRequest, what: str) -> None:
    """Skip the calling test unless the run's ``-m`` expression names ``slow``; the reason
    says ``what`` it is."""
    if "slow" not in request.config.getoption("markexpr", ""):
        pytest.skip(f"{what}: run with -m slow")
