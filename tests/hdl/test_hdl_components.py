"""The engine's components, each on its own bench: the job enumerations, the registers and
their STATUS image, the response sender, the level banks, the rank-1 unit and the noise
words. The whole engine is checked against the golden engine in test_hdl_engine.py."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from molxbar.emulator import noise
from molxbar.emulator.config import CrossbarConfig
from molxbar.emulator.fixedpoint import round_shift
from molxbar.hdl import jobs
from molxbar.hdl.banks import LEVEL_LATENCY, LevelBanks
from molxbar.hdl.noise_words import NoiseWords, generator_ways
from molxbar.hdl.rank1 import Rank1Unit
from molxbar.hdl.registers import REGISTERS, EngineRegisters, status_length
from molxbar.hdl.sender import ResponseSender
from molxbar.hdl.write_error import WriteError
from molxbar.protocol import spec
from molxbar.protocol.golden_engine import GoldenEngine

SMALL = CrossbarConfig(rows=8, cols=8, lanes=2)


def simulate(dut, testbench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("name", ["Opcode", "Status"])
def test_job_enumerations_are_the_protocols(name: str) -> None:
    protocol, shaped = getattr(spec, name), getattr(jobs, name)
    assert [(m.name, m.value) for m in shaped] == [(m.name, m.value) for m in protocol]
    assert shaped.as_shape().width == 8


# Registers ----------------------------------------------------------------------------------


def _status_bytes(ctx, dut: EngineRegisters) -> bytes:
    return ctx.get(dut.status).to_bytes(status_length(dut.config), "little")


@pytest.mark.parametrize(
    "config",
    [SMALL, CrossbarConfig(rows=16, cols=8, lanes=4, adc_bits=9, adc_shift=3, rect_shift=2,
                           read_noise=True, seed=77)],  # fmt: skip
    ids=["small", "settings"],
)
def test_registers_reset_to_the_configuration_and_report_like_the_golden_engine(config) -> None:
    dut = EngineRegisters(config)
    layout = spec.Layout(config)
    want = GoldenEngine(config).execute(spec.encode_command(layout, spec.Opcode.STATUS))

    async def bench(ctx):
        assert _status_bytes(ctx, dut) == want
        for r in REGISTERS:
            value = ctx.get(getattr(dut, r.name))
            init = r.init(config)
            assert (list(value) if isinstance(init, list) else value) == init, r.name

    simulate(dut, bench)


# Each write as the executor makes it: the job (checked OK) with its fields, for one cycle.
WRITES = [
    (spec.Opcode.SET_ADC, {"bits": 12, "shift": 5}),
    (spec.Opcode.SET_RECT, {"shift": 3}),
    (spec.Opcode.SET_RECT, {"shift": spec.RECT_IDEAL}),
    (spec.Opcode.SET_UPDATE_SHIFT, {"shift": 9}),
    (spec.Opcode.SET_NOISE, {"flags": spec.NOISE_READ | spec.NOISE_WRITE}),
    (spec.Opcode.SET_NOISE, {"flags": spec.NOISE_WRITE}),
    (spec.Opcode.SEED, {"seed": 0xC0FFEE42}),
]


def test_register_writes_match_the_golden_engines_status() -> None:
    config = SMALL
    layout = spec.Layout(config)
    dut = EngineRegisters(config)
    golden = GoldenEngine(config)
    status = spec.encode_command(layout, spec.Opcode.STATUS)

    async def bench(ctx):
        for opcode, fields in WRITES:
            golden.execute(spec.encode_command(layout, opcode, **fields))
            ctx.set(dut.port.job.opcode, jobs.Opcode[opcode.name])
            ctx.set(dut.port.job.ok, 1)
            for name, value in fields.items():
                ctx.set(dut.fields[name], value)
            ctx.set(dut.port.write, 1)
            await ctx.tick()
            ctx.set(dut.port.write, 0)
            # A job that is not written (the executor's ``write`` low) changes nothing.
            ctx.set(dut.fields.shift, 1)
            ctx.set(dut.fields.bits, 2)
            await ctx.tick()
            assert _status_bytes(ctx, dut) == golden.execute(status), opcode.name
        # The counter counts noisy operations; SEED restarts it.
        for _ in range(3):
            ctx.set(dut.port.advance, 1)
            await ctx.tick()
        ctx.set(dut.port.advance, 0)
        assert ctx.get(dut.counter) == 3

    simulate(dut, bench)


def test_sigma_tables_are_written_whole_and_by_selector() -> None:
    dut = EngineRegisters(SMALL)
    table = [(37 * k + 5) % 4096 for k in range(16)]

    async def bench(ctx):
        ctx.set(dut.port.job.opcode, jobs.Opcode.SET_SIGMA)
        ctx.set(dut.port.job.ok, 1)
        ctx.set(dut.sigma, table)
        ctx.set(dut.fields.table, spec.TABLE_WRITE)
        ctx.set(dut.port.write, 1)
        await ctx.tick()
        assert list(ctx.get(dut.write_table)) == table
        assert list(ctx.get(dut.read_table)) == list(SMALL.read_sigma_table)
        assert list(ctx.get(dut.port.write_table)) == table

    simulate(dut, bench)


# Response sender ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_bytes", [1, 2, 4])
def test_sender_sends_short_and_long_responses_and_passes_vmm_bytes(chunk_bytes, rng) -> None:
    short, long = 7, 23
    dut = ResponseSender(chunk_bytes, short, long)
    message = rng.integers(0, 256, short).astype(np.uint8).tobytes()
    image = rng.integers(0, 256, long).astype(np.uint8).tobytes()

    async def take(ctx, port_states) -> bytes:
        """Send until the last chunk, refusing one cycle in three; returns the bytes."""
        got = bytearray()
        cycle = 0
        while True:
            ready = cycle % 3 != 2
            cycle += 1
            ctx.set(dut.o.ready, ready)
            ctx.set(dut.port.send, 1)
            await ctx.delay(1e-9)
            if ready:
                assert ctx.get(dut.o.valid) and ctx.get(dut.port.taken)
                count = ctx.get(dut.o.payload.count) or chunk_bytes
                data = ctx.get(dut.o.payload.data).to_bytes(chunk_bytes, "little")
                got += data[:count]
                last = ctx.get(dut.port.last)
                await port_states(ctx, last)
                if last:
                    ctx.set(dut.port.send, 0)
                    return bytes(got)
            else:
                assert not ctx.get(dut.port.taken)
                await ctx.tick()

    async def plain(ctx, last):
        await ctx.tick()

    async def long_chunks(ctx, last):
        await ctx.tick()
        if not last:  # the next chunk of the image, a cycle before it is sent
            ctx.set(dut.port.send, 0)
            ctx.set(dut.port.next_long, 1)
            await ctx.tick()
            ctx.set(dut.port.next_long, 0)

    async def bench(ctx):
        ctx.set(dut.port.load, 1)
        ctx.set(dut.port.data, int.from_bytes(message, "little"))
        ctx.set(dut.port.length, short)
        await ctx.tick()
        ctx.set(dut.port.load, 0)
        assert await take(ctx, plain) == message

        ctx.set(dut.long, int.from_bytes(image, "little"))
        ctx.set(dut.port.load_long, 1)
        await ctx.tick()
        ctx.set(dut.port.load_long, 0)
        ctx.set(dut.port.next_long, 1)
        await ctx.tick()
        ctx.set(dut.port.next_long, 0)
        assert await take(ctx, long_chunks) == image

        # The datapath's bytes pass as they are, with their ready.
        ctx.set(dut.vmm.valid, 1)
        ctx.set(dut.vmm.payload.data, 0xA5)
        ctx.set(dut.vmm.payload.count, 1)
        for ready in (0, 1):
            ctx.set(dut.o.ready, ready)
            await ctx.delay(1e-9)
            assert ctx.get(dut.o.valid) and ctx.get(dut.vmm.ready) == ready
            assert ctx.get(dut.o.payload.data) == 0xA5

    simulate(dut, bench)


# Level banks --------------------------------------------------------------------------------


def write_cells(ctx, dut, levels) -> None:
    """Write every cell of ``levels`` through the cell port, one a cycle (async helper)."""

    async def run():
        for i, j in np.ndindex(levels.shape):
            ctx.set(dut.cell.row, i)
            ctx.set(dut.cell.col, j)
            ctx.set(dut.cell.new_level, int(levels[i, j]))
            ctx.set(dut.cell.write, 1)
            await ctx.tick()
        ctx.set(dut.cell.write, 0)
        await ctx.tick()  # (the write is stored in the cycle after)

    return run()


async def ready_after(ctx, dut) -> int:
    """Cycles until the banks are ready."""
    cycles = 0
    while not ctx.get(dut.ready):
        await ctx.tick()
        cycles += 1
    return cycles


@pytest.mark.parametrize("single_port", [False, True])
@pytest.mark.parametrize("lanes", [1, 2, 8, 16])
def test_banks_store_cells_and_read_rows_by_group(lanes, single_port, rng) -> None:
    """Each cell written through the cell port reads back: its group's levels a cycle after
    the address, the cell's own :data:`LEVEL_LATENCY` cycles after it (16 lanes: the choice
    of a bank in two steps). Single-port banks are ready after clearing every address."""
    config = CrossbarConfig(rows=4, cols=16, lanes=lanes)
    dut = LevelBanks(config, single_port=single_port)
    levels = rng.integers(0, config.levels, (config.rows, config.cols))

    async def bench(ctx):
        clear_cycles = config.rows * config.cols // lanes if single_port else 0
        assert await ready_after(ctx, dut) == clear_cycles
        await write_cells(ctx, dut, levels)
        for i in range(config.rows):
            for j in range(config.cols):
                ctx.set(dut.cell.row, i)
                ctx.set(dut.cell.col, j)
                await ctx.tick()
                # ``levels``: the group of column j, one cycle after the address.
                row = ctx.get(dut.levels)
                group = j - j % lanes
                for p in range(lanes):
                    want = int(levels[i, group + p])
                    assert (row >> (p * config.g_bits)) & (config.levels - 1) == want
                for _ in range(LEVEL_LATENCY - 1):
                    await ctx.tick()
                assert ctx.get(dut.cell.level) == levels[i, j], (i, j)

    simulate(dut, bench)


def test_single_port_banks_clear_every_level_after_reset(rng) -> None:
    """An SPRAM keeps its contents through a reset and has none at power-up: after each reset
    the banks write 0 everywhere before they are ready, as the other banks start."""
    config = CrossbarConfig(rows=4, cols=8, lanes=2)
    banks = LevelBanks(config, single_port=True)
    reset = Signal()
    dut = ResetInserter({"sync": reset})(banks)
    levels = rng.integers(1, config.levels, (config.rows, config.cols))

    async def bench(ctx):
        await ready_after(ctx, banks)
        await write_cells(ctx, banks, levels)
        ctx.set(reset, 1)
        await ctx.tick()
        ctx.set(reset, 0)
        assert not ctx.get(banks.ready)
        assert await ready_after(ctx, banks) == config.rows * config.cols // config.lanes
        for i, j in np.ndindex(levels.shape):
            ctx.set(banks.cell.row, i)
            ctx.set(banks.cell.col, j)
            await ctx.tick().repeat(LEVEL_LATENCY)
            assert ctx.get(banks.cell.level) == 0, (i, j)

    simulate(dut, bench)


# Rank-1 unit --------------------------------------------------------------------------------


def test_rank1_unit_rounds_like_the_golden_model(rng) -> None:
    config = CrossbarConfig(rows=4, cols=4, lanes=1)
    dut = Rank1Unit(config)
    limit = 1 << (config.x_bits - 1)
    cases = [(-limit, -limit, 0), (-limit, limit - 1, 63), (-3, 5, 1), (3, -5, 1), (0, 7, 4)]
    for _ in range(60):
        a, b = (int(v) for v in rng.integers(-limit, limit, 2))
        cases.append((a, b, int(rng.integers(0, config.max_shift + 1))))

    async def bench(ctx):
        for a, b, shift in cases:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            ctx.set(dut.shift, shift)
            ctx.set(dut.port.start, 1)
            await ctx.tick()
            ctx.set(dut.port.start, 0)
            ctx.set(dut.a, 0)  # (taken at start)
            cycles = 1
            while not ctx.get(dut.port.done):
                await ctx.tick()
                cycles += 1
            assert cycles == config.x_bits + 4  # (the documented latency)
            await ctx.tick()
            assert ctx.get(dut.port.delta) == int(round_shift(a * b, shift)), (a, b, shift)

    simulate(dut, bench)


# Noise words --------------------------------------------------------------------------------


@pytest.mark.parametrize(("lanes", "pipelined"), [(1, False), (4, False), (1, True), (4, True)])
def test_noise_words_are_the_golden_words_made_ahead(lanes, pipelined) -> None:
    """Requests for successive counters, as noisy operations make them: each is answered
    with the golden words; one made while the previous operation ran is answered in the
    next cycle; a seed changed while words are made gives the new seed's words."""
    config = CrossbarConfig(rows=8, cols=8, lanes=lanes)
    dut = NoiseWords(config, unroll=9, pipelined=pipelined)
    # (seed, counter, idle cycles before the request: 0 = at once, 400 = made ahead)
    requests = [(0x1234, 5, 0), (0x1234, 6, 400), (0x1234, 7, 0), (0xBEEF, 0, 0), (0xBEEF, 1, 400)]

    async def bench(ctx):
        waits = []
        for k, (seed, counter, idle) in enumerate(requests):
            ctx.set(dut.seed, seed)
            ctx.set(dut.counter, counter)
            if k == 3:  # a new seed while the words of the old one's next counter are made
                await ctx.tick().repeat(3)
            if idle:
                await ctx.tick().repeat(idle)
            ctx.set(dut.port.start, 1)
            await ctx.tick()
            ctx.set(dut.port.start, 0)
            wait = 1
            while not ctx.get(dut.port.done):
                assert wait < 2000, f"request {k}: no words"
                await ctx.tick()
                wait += 1
            waits.append(wait)
            await ctx.tick()
            rows_want, cols_want = noise.axis_words(seed, counter, config.rows, config.cols)
            for i in range(config.rows):
                ctx.set(dut.row_addr, i)
                await ctx.tick()
                assert ctx.get(dut.port.row_word) == int(rows_want[i]), (k, i)
            for group in range(config.cols // lanes):
                ctx.set(dut.group, group)
                await ctx.tick()
                words = ctx.get(dut.port.col_words)
                for p in range(lanes):
                    want = int(cols_want[group * lanes + p])
                    assert (words >> (64 * p)) & (2**64 - 1) == want, (k, group, p)
        # Made ahead: answered in the cycle after the request; otherwise made on demand.
        assert waits[1] == waits[4] == 1, waits
        assert min(waits[0], waits[3]) > 8, waits

    simulate(dut, bench)


@pytest.mark.parametrize(
    ("lanes", "pipelined", "ways"), [(64, True, 2), (32, True, 1), (1, True, 1), (64, False, 1)]
)
def test_noise_words_take_a_second_way_only_to_keep_pace(lanes, pipelined, ways) -> None:
    """64x64: one way makes an operation's words in 64 + 27 cycles, slower than the 64
    cycles of a VMM on 64 lanes but not than the 128 on 32."""
    assert generator_ways(CrossbarConfig(lanes=lanes), pipelined) == ways


# Write error --------------------------------------------------------------------------------


@pytest.mark.parametrize("multiplier", [False, True])
def test_write_error_is_the_contract(multiplier: bool) -> None:
    """Random levels, words and amplitudes, and both ends of the level range, where the
    clamp holds the level, against ``clamp(L + round(z * w / 2**10))``; noise off stores L.
    The product ``z * w`` in logic or in a multiplier."""
    config = CrossbarConfig(g_bits=15, levels=16520)
    dut = WriteError(config, multiplier=multiplier)
    rng = np.random.default_rng(7)
    table = [int(v) for v in rng.integers(0, 1 << 12, size=16)]
    table[0] = table[-1] = (1 << 12) - 1
    ones = (1 << 64) - 1
    cases = [(0, 0, True), (config.g_max, ones, True), (0, ones, True), (config.g_max, 0, True)]
    for _ in range(200):
        word = ones if rng.random() < 0.05 else int(rng.integers(0, 1 << 63)) << 1
        level = int(rng.choice([0, 1, config.g_max, int(rng.integers(0, config.levels))]))
        cases.append((level, word, bool(rng.random() < 0.8)))

    def unclamped(level: int, word: int, noise_en: bool) -> int:
        z = word.bit_count() - 32
        error = int(round_shift(z * table[level >> config.segment_shift], 10))
        return level + error if noise_en else level

    async def bench(ctx):
        ctx.set(dut.table, table)
        moved = clamped = 0
        for level, word, noise_en in cases:
            ctx.set(dut.start, 1)
            ctx.set(dut.level, level)
            ctx.set(dut.word, word)
            ctx.set(dut.noise_en, noise_en)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for cycle in range(1, WriteError.LATENCY):
                assert not ctx.get(dut.done), cycle
                await ctx.tick()
            assert ctx.get(dut.done)
            total = unclamped(level, word, noise_en)
            want = min(max(total, 0), config.g_max)
            assert ctx.get(dut.written) == want, (level, hex(word), noise_en)
            moved += want != level
            clamped += want != total
        assert moved > len(cases) // 3 and clamped >= 2, (moved, clamped)

    simulate(dut, bench)
