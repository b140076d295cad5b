"""Checking a component's arguments in its constructor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["checking_arguments"]


@contextmanager
def checking_arguments(component) -> Iterator[None]:
    """Run a constructor's argument checks: when one raises ``TypeError`` or ``ValueError``,
    the half-built component is not reported later as an unused elaboratable (a warning that
    would surface at some later garbage collection, far from the bad argument)."""
    try:
        yield
    except (TypeError, ValueError):
        component._MustUse__silence = True
        raise
