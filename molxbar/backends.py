"""Where a command stream runs: the golden engine or the gateware in a simulator."""

from __future__ import annotations

from collections.abc import Callable

from .emulator.config import CrossbarConfig

__all__ = ["BACKENDS", "run_commands"]

#: Backend names for ``--backend``.
BACKENDS = ("golden", "amaranth")


def run_commands(
    config: CrossbarConfig,
    commands: bytes,
    backend: str = "golden",
    *,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """The response bytes of ``commands`` on a fresh engine of ``backend``.

    ``progress`` is called with the number of command bytes consumed so far.
    """
    if backend == "golden":
        from .firmware.golden_engine import GoldenEngine

        responses = GoldenEngine(config).execute(commands)
        if progress is not None:
            progress(len(commands))
        return responses
    if backend == "amaranth":
        from .hdl.simulate import simulate_engine

        return simulate_engine(config, commands, progress=progress).responses
    raise ValueError(f"backend = {backend!r} is unknown: choose one of {', '.join(BACKENDS)}")
