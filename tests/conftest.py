"""Shared test fixtures: a seeded random generator that prints its seed, and ``--seed`` to
replay one.

Each test that takes ``rng`` gets a generator seeded from the test's id (the same on every
run, different between tests); ``pytest --seed N`` seeds every such test with ``N``. The
seed is printed, so a failure's captured output says how to replay it."""

import zlib

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--seed",
        type=int,
        default=None,
        help="seed of the random generator of every test that takes the rng fixture",
    )


@pytest.fixture
def seed(request) -> int:
    """The seed of this test: ``--seed`` if given, else one derived from the test's id."""
    chosen = request.config.getoption("--seed")
    value = zlib.crc32(request.node.nodeid.encode()) if chosen is None else chosen
    print(f"seed {value} (replay: pytest --seed {value} '{request.node.nodeid}')")
    return value


@pytest.fixture
def rng(seed) -> np.random.Generator:
    """``np.random.default_rng(seed)`` with the seed printed."""
    return np.random.default_rng(seed)
