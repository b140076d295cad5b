"""Run command streams through the :class:`~molxbar.hdl.engine.Engine` in the Amaranth
simulator: the ``amaranth`` backend and the first rung of the verification ladder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from molxbar.emulator.config import CrossbarConfig
from molxbar.firmware.beats import pack_beats, unpack_beats
from molxbar.firmware.stalls import check_stalls, stall_draws

from .engine import Engine

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
        Mean length of a run of cycles with the same ``ready`` (:mod:`molxbar.firmware.stalls`):
        1 draws each cycle on its own, more holds ``ready`` low for long runs.
    max_cycles
        Give up (``TimeoutError``) after this many cycles; the default scales with the
        stream length.
    vcd
        Write a waveform of the run to this file.
    progress
        Called with the number of command bytes taken, every 1024 cycles and at the end.
    """
    check_stalls("idle_in", idle_in)
    check_stalls("stall_out", stall_out, stall_burst)
    dut = engine if engine is not None else Engine(config)
    width = dut.stream_bytes
    rng = np.random.default_rng(seed)
    limit = max_cycles if max_cycles is not None else 10_000 + 2_000 * len(commands)
    beats, ends = [], []  # payloads, and the command bytes sent once each is taken
    pos = 0
    while pos < len(commands):
        size = int(rng.integers(1, width + 1)) if idle_in > 0 else width
        beats.extend(pack_beats(commands[pos : pos + size], width))
        pos = min(pos + size, len(commands))
        ends.append(pos)
    result: dict = {}

    async def testbench(ctx):
        sent = 0
        out = []
        quiet = 0
        idle_draws = stall_draws(rng, idle_in)
        stall_draws_out = stall_draws(rng, stall_out, stall_burst)
        cmd_payload = dut.cmd.payload.as_value()
        for cycle in range(limit):
            offer = sent < len(beats) and not next(idle_draws)
            ready = not next(stall_draws_out)
            ctx.set(dut.cmd.valid, offer)
            if offer:
                ctx.set(cmd_payload, beats[sent])
            ctx.set(dut.rsp.ready, ready)
            # One settle per cycle: the values just before the clock edge.
            _, _, took, valid, beat, idle, vmm_cycles = await ctx.tick().sample(
                dut.cmd.ready, dut.rsp.valid, dut.rsp.payload.as_value(), dut.idle,
                dut.vmm_cycles,
            )
            took = offer and took
            if ready and valid:
                out.append(beat)
            sent += bool(took)
            if progress is not None and cycle % 1024 == 0:
                progress(ends[sent - 1] if sent else 0)
            quiet = quiet + 1 if sent == len(beats) and idle and not valid else 0
            if quiet >= 2:
                if progress is not None:
                    progress(len(commands))
                result["cycles"] = cycle + 1
                result["vmm_cycles"] = vmm_cycles
                result["out"] = unpack_beats(out, width)
                return
        taken = ends[sent - 1] if sent else 0
        raise TimeoutError(
            f"the engine did not finish within {limit} cycles "
            f"({taken} of {len(commands)} command bytes taken, {len(out)} response beats)"
        )

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    return SimResult(result["out"], result["cycles"], result["vmm_cycles"])
