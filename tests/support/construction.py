"""A component's constructor error, checked without Amaranth's warning about the half-built
object that is never elaborated."""

import gc
import warnings

import pytest


def assert_construction_fails(build, error: type[Exception], match: str) -> None:
    """``build()`` raises ``error`` matching ``match``. The half-built component is collected
    here, under a filter for Amaranth's "created but never used" warning only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".* created but never used")
        with pytest.raises(error, match=match):
            build()
        gc.collect()
