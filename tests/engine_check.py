"""The engine in the Amaranth simulator against the golden engine, with the first differing
command named on a mismatch."""

from molxbar.firmware.golden_engine import GoldenEngine
from molxbar.firmware.protocol import Layout, split_commands
from molxbar.hdl.engine import Engine
from molxbar.hdl.simulate import simulate_engine

__all__ = ["check_against_golden"]


def check_against_golden(config, commands, seed=0, stream_bytes=None, product_stages=1, **stalls):
    """Run ``commands`` on both; on a mismatch, name the first command that differs."""
    engine = Engine(config, stream_bytes=stream_bytes, product_stages=product_stages)
    got = simulate_engine(config, commands, seed=seed, engine=engine, **stalls).responses
    want = GoldenEngine(config).execute(commands)
    if got == want:
        return got
    golden = GoldenEngine(config)
    pos = 0
    for index, command in enumerate(split_commands(Layout(config), commands)):
        expected = golden.execute(command)
        if got[pos : pos + len(expected)] != expected:
            raise AssertionError(
                f"seed {seed}: command {index} {command[:16].hex(' ')} answered "
                f"{got[pos : pos + len(expected)][:24].hex(' ')}, golden {expected[:24].hex(' ')}"
            )
        pos += len(expected)
    raise AssertionError(f"seed {seed}: {len(got)} response bytes, golden {len(want)}")
