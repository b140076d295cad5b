"""Where a command stream runs: the golden engine or the gateware in a simulator."""

from __future__ import annotations

import os
from collections.abc import Callable

from .emulator.config import CrossbarConfig

__all__ = ["BACKENDS", "run_commands"]

#: Backend names for ``--backend``: the golden engine, the gateware in the Amaranth
#: simulator, and its generated Verilog under cocotb in Verilator or Icarus Verilog.
BACKENDS = ("golden", "amaranth", "verilator", "icarus")


def run_commands(
    config: CrossbarConfig,
    commands: bytes,
    backend: str = "golden",
    *,
    progress: Callable[[int], None] | None = None,
    waves: str | os.PathLike | None = None,
) -> bytes:
    """The response bytes of ``commands`` on a fresh engine of ``backend``.

    ``progress`` is called with the number of command bytes consumed so far. ``waves``
    writes a waveform of a simulator backend's run to that file: ``.vcd`` (``amaranth``,
    ``verilator``) or ``.fst`` (``icarus``). The ``verilator`` and ``icarus``
    backends raise :class:`molxbar.cosim.CosimError` when the simulator is not installed.
    """
    if waves is not None and backend == "golden":
        raise ValueError("waves need a simulator backend: amaranth, verilator or icarus")
    if backend == "golden":
        from .firmware.golden_engine import GoldenEngine

        responses = GoldenEngine(config).execute(commands)
        if progress is not None:
            progress(len(commands))
        return responses
    if backend == "amaranth":
        from .hdl.simulate import simulate_engine

        if waves is not None and not str(waves).lower().endswith(".vcd"):
            raise ValueError(f"waves = {str(waves)!r}: the amaranth backend writes .vcd files")
        return simulate_engine(config, commands, progress=progress, vcd=waves).responses
    if backend in ("verilator", "icarus"):
        from .cosim import run_commands as cosim_run_commands

        responses = cosim_run_commands(config, commands, backend, waves=waves)
        if progress is not None:
            progress(len(commands))
        return responses
    raise ValueError(f"backend = {backend!r} is unknown: choose one of {', '.join(BACKENDS)}")
