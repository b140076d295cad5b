"""Batches against a slow reader, in the Amaranth simulator: every response byte arrives, in
order, equal to the golden engine's, whatever the array's shape, the lanes, the beat width,
the batch length and the back-pressure (independent or in long runs of ``ready`` low).

A batch's vectors are computed while earlier vectors' outputs wait to leave; on an array
with few columns the buffers behind the lanes hold several vectors, and a stalled or narrow
response stream must hold the computation back, never lose or repeat a response."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from molxbar.emulator import CrossbarConfig
from molxbar.hdl.datapath import HEADERS_QUEUED
from molxbar.hdl.engine import Engine
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import Layout, Opcode, encode_command
from molxbar.sim.stimulus import program_rows
from molxbar.sim.streams import EngineStreams
from tests.support.engine_check import check_against_golden

#: (rows, cols, lanes): narrow (few columns, the most vectors in the buffers), square, tall
#: and wide arrays, one lane per array up to one lane per column.
SHAPES = [(8, 8, 1), (8, 8, 2), (8, 8, 8), (16, 8, 2), (8, 16, 4), (4, 32, 8)]


def batch_stream(config, vectors, rng):
    """Program the array, a batch, SYNC, a second batch, RUN_VMM and STATUS: the commands
    after a batch must wait for every one of its responses."""
    c, layout = config, Layout(config)

    def batch():
        x = rng.integers(c.x_min, c.x_max + 1, (vectors, c.rows))
        return encode_command(layout, Opcode.RUN_BATCH, count=vectors, x=x)

    return b"".join(
        [
            program_rows(c, rng.integers(0, c.levels, (c.rows, c.cols))),
            batch(),
            encode_command(layout, Opcode.SYNC, value=0x5A),
            batch(),
            encode_command(layout, Opcode.RUN_VMM),
            encode_command(layout, Opcode.STATUS),
        ]
    )


def cycle_budget(config, commands, stall_out=0.0):
    """Cycles a run may take before it counts as a hang: four per byte in or out, scaled by
    the back-pressure, and twice each vector's compute time."""
    out = len(GoldenEngine(config).execute(commands))
    vmm = config.rows * config.cols // config.lanes
    return 20_000 + int(4 * (len(commands) + out) / (1 - stall_out)) + 2 * vmm * len(commands)


def shape_id(shape):
    return "{}x{}-{}lanes".format(*shape)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_long_batch_on_one_byte_beats_with_ready_high(shape, rng, seed):
    """One-byte beats (the UART bridge's width): the outputs leave slower than the lanes
    compute them even with ``ready`` always high."""
    rows, cols, lanes = shape
    c = CrossbarConfig(rows=rows, cols=cols, lanes=lanes)
    commands = batch_stream(c, 120, rng)
    check_against_golden(
        c, commands, seed=seed, stream_bytes=1, max_cycles=cycle_budget(c, commands)
    )


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize(
    ("stall_out", "stall_burst"),
    [(0.5, 1), (0.9, 1), (0.99, 1), (0.9, 200)],
    ids=["stall50", "stall90", "stall99", "stall90-bursts200"],
)
@pytest.mark.parametrize("stream_bytes", [1, None], ids=["1-byte", "balanced"])
def test_batches_under_backpressure(shape, stall_out, stall_burst, stream_bytes, rng, seed):
    rows, cols, lanes = shape
    c = CrossbarConfig(rows=rows, cols=cols, lanes=lanes)
    # 0.99 with one-byte beats is a hundred cycles a byte: shorter batches keep it quick.
    vectors = 3 if (stall_out > 0.95 and stream_bytes == 1) else 8
    commands = batch_stream(c, vectors, rng)
    check_against_golden(
        c,
        commands,
        seed=seed,
        stream_bytes=stream_bytes,
        stall_out=stall_out,
        stall_burst=stall_burst,
        idle_in=0.1,
        max_cycles=cycle_budget(c, commands, stall_out),
    )


def test_batch_then_sync_answers_every_vector_first(rng):
    """8x8 with 8 lanes and one-byte beats: a batch followed by SYNC answers all its vectors,
    then the SYNC, and only then goes idle."""
    c = CrossbarConfig(rows=8, cols=8, lanes=8)
    layout = Layout(c)
    x = rng.integers(0, c.x_max + 1, (20, c.rows))
    commands = program_rows(c, rng.integers(0, c.levels, (c.rows, c.cols)))
    commands += encode_command(layout, Opcode.RUN_BATCH, count=20, x=x)
    commands += encode_command(layout, Opcode.SYNC, value=0x33)
    got = check_against_golden(c, commands, stream_bytes=1, max_cycles=cycle_budget(c, commands))
    assert got.endswith(bytes([Opcode.SYNC, 0, 0x33]))
    lengths = [layout.response_length(op) for op in (Opcode.WRITE_ROW, Opcode.RUN_VMM)]
    assert len(got) == c.rows * lengths[0] + 20 * lengths[1] + 3


def test_a_started_vmm_always_has_a_header_place(rng):
    """The datapath lets a VMM start only while fewer than ``HEADERS_QUEUED`` started VMMs
    wait for their header: with ``ready`` held low the engine stops computing after that
    many vectors beyond the one being answered, and loses none when ``ready`` returns."""
    c = CrossbarConfig(rows=8, cols=8, lanes=8)
    commands = encode_command(Layout(c), Opcode.RUN_BATCH, count=12, x=np.ones((12, c.rows)))
    dut = Engine(c, stream_bytes=1)
    streams = EngineStreams(dut, rng)
    streams.send(commands)
    starts = []

    async def testbench(ctx):
        for cycle in range(4000):
            await streams.cycle(ctx, ready=cycle >= 2000)  # nothing leaves for 2000 cycles
            if ctx.get(dut.datapath.issue.start_vmm):
                starts.append(cycle)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    # While nothing leaves: the first vector's header is taken into the sender, then
    # HEADERS_QUEUED more vectors start, and no more.
    assert sum(cycle < 2000 for cycle in starts) == 1 + HEADERS_QUEUED
    assert len(starts) == 12
    assert bytes(streams.responses) == GoldenEngine(c).execute(commands)
