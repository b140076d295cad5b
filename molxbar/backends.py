"""Where a command stream runs: the golden engine or the gateware in a simulator."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .emulator.config import CrossbarConfig

__all__ = ["BACKENDS", "RunResult", "run_commands", "run_stream"]

#: Backend names for ``--backend``: the golden engine, the gateware in the Amaranth
#: simulator, and its generated Verilog under cocotb in Verilator or Icarus Verilog.
BACKENDS = ("golden", "amaranth", "verilator", "icarus")


@dataclass(frozen=True)
class RunResult:
    """The response bytes of a command stream and, on a simulator, the clock cycles the run
    took and the engine's ``vmm_cycles`` count of its last VMM (``None`` on ``golden``)."""

    responses: bytes
    cycles: int | None = None
    vmm_cycles: int | None = None


def run_commands(
    config: CrossbarConfig,
    commands: bytes,
    backend: str = "golden",
    *,
    progress: Callable[[int], None] | None = None,
    waves: str | os.PathLike | None = None,
) -> bytes:
    """The response bytes of ``commands`` on a fresh engine of ``backend``
    (:func:`run_stream` without the cycle counts)."""
    return run_stream(config, commands, backend, progress=progress, waves=waves).responses


def run_stream(
    config: CrossbarConfig,
    commands: bytes,
    backend: str = "golden",
    *,
    progress: Callable[[int], None] | None = None,
    waves: str | os.PathLike | None = None,
) -> RunResult:
    """Run ``commands`` on a fresh engine of ``backend``.

    ``progress`` is called with the number of command bytes consumed so far. ``waves``
    writes a waveform of a simulator backend's run to that file: ``.vcd`` (``amaranth``,
    ``verilator``) or ``.fst`` (``verilator``, ``icarus``). The ``verilator`` and ``icarus``
    backends raise :class:`molxbar.cosim.CosimError` when the simulator is not installed.
    """
    if waves is not None and backend == "golden":
        raise ValueError("waves need a simulator backend: amaranth, verilator or icarus")
    if backend == "golden":
        from .firmware.golden_engine import GoldenEngine

        responses = GoldenEngine(config).execute(commands)
        if progress is not None:
            progress(len(commands))
        return RunResult(responses)
    if backend == "amaranth":
        from .hdl.simulate import simulate_engine

        if waves is not None and not str(waves).lower().endswith(".vcd"):
            raise ValueError(f"waves = {str(waves)!r}: the amaranth backend writes .vcd files")
        result = simulate_engine(config, commands, progress=progress, vcd=waves)
        return RunResult(result.responses, result.cycles, result.vmm_cycles)
    if backend in ("verilator", "icarus"):
        from .cosim.job import Job, Segment
        from .cosim.simulators import run_job

        result = run_job(Job(config, [Segment(commands)]), backend, waves=waves)
        if progress is not None:
            progress(len(commands))
        return RunResult(result.responses, result.cycles, result.vmm_cycles)
    raise ValueError(f"backend = {backend!r} is unknown: choose one of {', '.join(BACKENDS)}")
