"""Run command streams through the :class:`~molxbar.hdl.engine.Engine` in the Amaranth
simulator: the ``amaranth`` backend and the first rung of the verification ladder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.engine import Engine

from .streams import EngineStreams

__all__ = ["SimResult", "simulate_engine"]


@dataclass(frozen=True)
class SimResult:
    """Responses of a simulated command stream, the cycles it took, and the engine's
    ``vmm_cycles`` count of its last VMM."""

    responses: bytes
    cycles: int
    vmm_cycles: int


def simulate_engine(
    config: CrossbarConfig,
    commands: bytes,
    *,
    idle_in: float = 0.0,
    stall_out: float = 0.0,
    stall_burst: int = 1,
    seed: int = 0,
    max_cycles: int | None = None,
    vcd: str | Path | None = None,
    engine: Engine | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimResult:
    """Feed ``commands`` to a fresh engine and collect every response byte.

    Parameters
    ----------
    idle_in, stall_out
        Probabilities of an idle cycle on the command stream (valid low) and of a stall on
        the response stream (ready low), drawn from ``np.random.default_rng(seed)``. With
        ``idle_in`` above zero the command beats are also cut at random lengths (1 to
        ``stream_bytes`` bytes); otherwise every beat but the last is full.
    stall_burst
        Mean length of a run of cycles with the same ``ready`` (:mod:`molxbar.sim.stalls`):
        1 draws each cycle on its own, more holds ``ready`` low for long runs.
    max_cycles
        Give up (``TimeoutError``) after this many cycles; the default scales with the
        stream length.
    vcd
        Write a waveform of the run to this file.
    progress
        Called with the number of command bytes taken, every 1024 cycles and at the end.
    """
    dut = engine if engine is not None else Engine(config)
    streams = EngineStreams(
        dut,
        np.random.default_rng(seed),
        idle_in=idle_in,
        stall_out=stall_out,
        stall_burst=stall_burst,
    )
    streams.send(commands)
    limit = max_cycles if max_cycles is not None else 10_000 + 2_000 * len(commands)
    result: dict = {}

    async def testbench(ctx):
        quiet = 0
        for cycle in range(limit):
            await streams.cycle(ctx)
            if progress is not None and cycle % 1024 == 0:
                progress(streams.taken)
            quiet = quiet + 1 if not streams.unsent and streams.idle else 0
            if quiet >= 2:
                if progress is not None:
                    progress(len(commands))
                result["cycles"] = cycle + 1
                return
        raise TimeoutError(
            f"the engine did not finish within {limit} cycles ({streams.taken} of "
            f"{len(commands)} command bytes taken, {len(streams.responses)} response bytes)"
        )

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    return SimResult(bytes(streams.responses), result["cycles"], streams.vmm_cycles)
