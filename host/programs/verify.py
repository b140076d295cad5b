"""Program and verify: levels written, read back and corrected with pulses until they are
the target's (:func:`program_and_verify`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..driver import CrossbarDriver

__all__ = ["VerifyReport", "program_and_verify"]


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :func:`program_and_verify`.

    ``initial_errors`` cells differed from their target after the direct writes;
    ``rounds`` read-and-pulse rounds ran, sending ``pulse_commands`` PULSE_CELL commands of
    ``pulses`` pulses in all; ``remaining_errors`` cells are still off, by at most
    ``max_error`` levels.
    """

    cells: int
    initial_errors: int
    rounds: int
    pulse_commands: int
    pulses: int
    remaining_errors: int
    max_error: int

    @property
    def converged(self) -> bool:
        return self.remaining_errors == 0

    def as_dict(self) -> dict:
        return asdict(self)


def program_and_verify(
    driver: CrossbarDriver,
    levels,
    *,
    max_rounds: int = 3,
    max_step: int | None = None,
) -> VerifyReport:
    """Write ``levels`` directly, then read back and correct with pulse trains.

    A direct write lands within its write error of the target; each round reads every
    level and sends each wrong cell its difference as pulses (at most ``max_step`` per
    round, when given), up to ``max_rounds`` rounds. Pulses move a cell by exactly one level
    each, so with no ``max_step`` one round corrects everything.
    """
    if max_rounds < 0:
        raise ValueError(f"max_rounds = {max_rounds} must be >= 0")
    if max_step is not None and max_step < 1:
        raise ValueError(f"max_step = {max_step} must be >= 1")
    target = np.asarray(levels, dtype=np.int64)
    driver.program_levels(target)
    stored = driver.read_levels()
    initial = int(np.count_nonzero(stored != target))
    rounds = commands = pulses = 0
    while rounds < max_rounds and (stored != target).any():
        diff = target - stored
        if max_step is not None:
            diff = np.clip(diff, -max_step, max_step)
        commands += driver.pulse_cells(diff)
        pulses += int(np.abs(diff).sum())
        rounds += 1
        stored = driver.read_levels()
    error = np.abs(stored - target)
    return VerifyReport(
        cells=int(target.size),
        initial_errors=initial,
        rounds=rounds,
        pulse_commands=commands,
        pulses=pulses,
        remaining_errors=int(np.count_nonzero(error)),
        max_error=int(error.max()),
    )
