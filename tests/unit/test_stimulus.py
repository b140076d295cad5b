"""The random command streams of the simulator runs (``molxbar.sim.stimulus``)."""

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.framing import split_commands
from molxbar.protocol.spec import Layout, Opcode
from molxbar.sim.stimulus import random_commands


def test_full_width_inputs_stay_encodable_when_a_phase_takes_their_magnitude():
    """With 16-bit inputs |x_min| = 32768 does not fit the field: a one-phase vector (the
    magnitudes of a signed one) holding x_min stays in range. Thousands of vectors meet the
    case: before the fix this seed stopped on ``x = 32768``."""
    config = CrossbarConfig(rows=64, cols=8, lanes=8, x_bits=16)
    rng = np.random.default_rng(3)
    stream = random_commands(config, rng, 3000, vmm_weight=6.0, long_batch=24)
    commands = split_commands(Layout(config), stream)
    assert sum(c[0] == Opcode.RUN_BATCH for c in commands) > 300
