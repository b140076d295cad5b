"""The engine in the Amaranth simulator against the golden engine, with the first differing
command named on a mismatch."""

from molxbar.hdl.engine import Engine
from molxbar.protocol.difference import first_difference
from molxbar.sim.simulate import simulate_engine

__all__ = ["check_against_golden"]


def check_against_golden(
    config, commands, seed=0, stream_bytes=None, product_stages=1, options=None, **stalls
):
    """Run ``commands`` on both (the engine built with ``options`` and the two named ones);
    on a mismatch, name the first command that differs."""
    engine = Engine(config, options, stream_bytes=stream_bytes, product_stages=product_stages)
    got = simulate_engine(config, commands, seed=seed, engine=engine, **stalls).responses
    difference = first_difference(config, commands, got)
    if difference is not None:
        raise AssertionError(f"seed {seed}: {difference}")
    return got
