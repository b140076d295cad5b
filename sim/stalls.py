"""Random idle and back-pressure patterns of the simulated streams, one definition for every
simulator bench (the Amaranth runs, the Amaranth transport and the cocotb benches).

A pattern is a probability ``p`` and a mean run length ``burst``: the cycles come in runs of
1 to ``2 * burst - 1`` cycles (uniform, so ``burst`` on average), and each run is a stall
with probability ``p``, independently. About a fraction ``p`` of the cycles stall whatever
``burst`` is; ``burst = 1`` draws every cycle on its own, a large ``burst`` gives long runs of
``ready`` (or ``valid``) held low, the kind of stall that fills every buffer behind it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["MAX_BURST", "check_stalls", "stall_draws"]

#: The longest mean run a pattern may ask for, in cycles.
MAX_BURST = 1 << 16
#: Draws are made this many runs at a time.
_BLOCK = 4096


def check_stalls(name: str, probability: float, burst: int = 1) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``0 <= probability < 1`` and ``burst`` is an
    int in ``[1, MAX_BURST]``."""
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        raise ValueError(f"{name} = {probability!r} must be a probability in [0, 1)")
    if not 0.0 <= probability < 1.0:
        raise ValueError(f"{name} = {probability!r} must be in [0, 1)")
    if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= MAX_BURST:
        raise ValueError(f"{name} burst = {burst!r} must be an int in [1, {MAX_BURST}]")


def stall_draws(rng: np.random.Generator, probability: float, burst: int = 1) -> Iterator[bool]:
    """Endless draws, one per cycle: ``True`` for a stalled cycle (see the module)."""
    check_stalls("probability", probability, burst)
    if probability == 0.0:
        while True:
            yield False
    while True:
        if burst == 1:
            yield from (rng.random(_BLOCK) < probability).tolist()
        else:
            lengths = rng.integers(1, 2 * burst, _BLOCK)
            stalled = rng.random(_BLOCK) < probability
            yield from np.repeat(stalled, lengths).tolist()
