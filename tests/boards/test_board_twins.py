"""The boards' twins of the device, noise on, against the golden engine byte for byte: on
Verilator (the cocotb bench) and end to end through the board's UART bridge and link.

The stream of each run programs rows with the write error on, runs noisy VMMs (alone and in
a batch), reseeds, changes the noise tables and the rectification, and ends with random
commands; the engine is the board's, built with its options (the ULX3S's pipelined noise
generator and second product register), and the bridge has the board's buffers. The 32-lane
ULX3S twin takes minutes on either path: those runs are slow and run only with ``-m slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from molxbar.boards.targets import BOARDS, board_config
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.link import COMMAND_BUFFER_BYTES, REPLAY_BUFFER_BYTES
from molxbar.protocol.spec import NOISE_READ, NOISE_WRITE, Layout, Opcode, encode_command
from molxbar.sim.bridge import simulate_bridge
from molxbar.sim.cosim.job import Job, Segment
from molxbar.sim.cosim.simulators import run_job
from molxbar.sim.stimulus import random_commands
from tests.support.skips import need, only_with_slow


def twin_stream(config, rng: np.random.Generator, *, rows: int, vectors: int, extra: int) -> bytes:
    """Noise on (the preset's tables and switches), ``rows`` rows written with their write
    error, noisy VMMs, a reseed and new tables, then ``extra`` random commands."""
    c, layout = config, Layout(config)

    def command(op, **fields) -> bytes:
        return encode_command(layout, op, **fields)

    def tables() -> bytes:
        return b"".join(
            command(Opcode.SET_SIGMA, table=t, scale=rng.integers(0, 1 << 12, 16)) for t in (0, 1)
        )

    out = [
        command(Opcode.SEED, seed=int(rng.integers(0, 1 << 32))),
        command(Opcode.SET_SIGMA, table=0, scale=c.read_sigma_table),
        command(Opcode.SET_SIGMA, table=1, scale=c.write_sigma_table),
        command(Opcode.SET_NOISE, flags=NOISE_READ | NOISE_WRITE),
    ]
    for row in rng.choice(c.rows, rows, replace=False):
        out.append(
            command(Opcode.WRITE_ROW, row=int(row), levels=rng.integers(0, c.levels, c.cols))
        )
    out.append(command(Opcode.WRITE_CELL, row=1, col=c.cols - 1, level=c.g_max))
    x = rng.integers(c.x_min, c.x_max + 1, (vectors, c.rows))
    out += [command(Opcode.LOAD_INPUT, x=x[0]), command(Opcode.RUN_VMM)]
    out.append(command(Opcode.RUN_BATCH, count=vectors, x=x))
    out += [command(Opcode.SEED, seed=int(rng.integers(0, 1 << 32))), tables()]
    if c.leakage_hardware:
        out.append(command(Opcode.SET_RECT, shift=3))
    out.append(command(Opcode.SET_ADC, bits=16, shift=10))
    out.append(command(Opcode.RUN_BATCH, count=2, x=x[:2]))
    out.append(command(Opcode.READ_ROW, row=1))
    out.append(command(Opcode.STATUS))
    out.append(random_commands(c, rng, extra, max_batch=2))
    return b"".join(out)


BOARD_RUNS = [
    pytest.param("icebreaker", 4, 3, 40, id="icebreaker"),
    pytest.param("ulx3s-85f", 8, 4, 40, id="ulx3s-85f", marks=pytest.mark.slow),
]


def only_when_asked(request, board: str) -> None:
    """The ULX3S runs take 2 minutes on Verilator and a quarter of an hour through the bridge
    in the Amaranth simulator: only with ``-m slow``."""
    if board == "ulx3s-85f":
        only_with_slow(request, "the ULX3S twin")


@pytest.mark.parametrize(("board", "rows", "vectors", "extra"), BOARD_RUNS)
def test_board_twin_on_verilator(board, rows, vectors, extra, request):
    only_when_asked(request, board)
    need("verilator")
    crossbar = BOARDS[board].crossbar_named("twin")
    config = board_config(BOARDS[board], crossbar="twin")
    assert config.noise_hardware and config.read_noise and config.write_noise
    rng = np.random.default_rng(15)
    commands = twin_stream(config, rng, rows=rows, vectors=vectors, extra=extra)
    job = Job(config, [Segment(commands)], idle_in=0.1, stall_out=0.3, seed=15)
    result = run_job(job, "verilator", options=crossbar.options)  # (compares every byte)
    assert result.segments[0].responses == GoldenEngine(config).execute(commands)


@pytest.mark.parametrize(("board", "rows", "vectors", "extra"), BOARD_RUNS)
def test_board_twin_through_the_uart_bridge(board, rows, vectors, extra, request):
    only_when_asked(request, board)
    crossbar = BOARDS[board].crossbar_named("twin")
    config = board_config(BOARDS[board], crossbar="twin")
    rng = np.random.default_rng(16)
    commands = twin_stream(config, rng, rows=rows // 2, vectors=2, extra=extra // 4)
    result = simulate_bridge(
        config,
        commands,
        divisor=4,
        buffer_bytes=COMMAND_BUFFER_BYTES,
        replay_bytes=REPLAY_BUFFER_BYTES,
        options=crossbar.options,
    )
    assert result.difference is None, result.difference
    assert result.responses == GoldenEngine(config).execute(commands)
    assert not result.frame_error and not result.overrun
