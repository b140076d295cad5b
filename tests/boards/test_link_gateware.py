"""The bridge's link gateware, bit-serial, against the host-level link model byte for byte:
hand-made line streams with every kind of bad frame, and sessions with faults on both
lines."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from molxbar.boards.bridge import UARTBridge
from molxbar.boards.link import LinkCounters, SerialCRC, SlipEncoder
from molxbar.emulator import CrossbarConfig
from molxbar.protocol.link import FrameKind, LinkStatus
from molxbar.protocol.link_frames import (
    MIN_RESPONSE_BYTES,
    Counters,
    FrameDecoder,
    command_frame,
    crc16,
    parse_response,
    slip_encode,
)
from molxbar.protocol.spec import Layout, Opcode, encode_command
from molxbar.sim.bridge import BridgePort, model_difference, simulate_bridge
from molxbar.sim.stimulus import program_rows, random_commands

QUIET = CrossbarConfig(rows=8, cols=8, lanes=2, noise_hardware=False)
BUFFER, REPLAY = 32, 16


def run_line(chunks, *, config=QUIET, buffer_bytes=BUFFER, replay_bytes=REPLAY):
    """Send each chunk, wait for the line to go quiet; the gateware's answers, decoded, after
    checking them against the model's on the same line."""
    dut = UARTBridge(
        config,
        divisor=4,
        buffer_bytes=buffer_bytes,
        replay_bytes=replay_bytes,
        timeout_bytes=16,
    )
    port = BridgePort(dut)
    for chunk in chunks:
        if chunk is None:  # a pause past the timeout
            for _ in range(12):
                port.read()
            continue
        port.write(chunk)
        port.drain()  # the whole frame sent, its answer complete
    port.close()
    difference = model_difference(
        config,
        port.line,
        bytes(port.answered),
        buffer_bytes=buffer_bytes,
        replay_bytes=replay_bytes,
    )
    assert difference is None, difference
    decoder = FrameDecoder(min_body=MIN_RESPONSE_BYTES)
    return [parse_response(body) for body in decoder.feed(bytes(port.answered))]


def test_every_kind_of_frame_answers_as_the_model():
    layout = Layout(QUIET)
    write = encode_command(layout, Opcode.WRITE_CELL, row=1, col=2, level=0x10C0)
    write += encode_command(layout, Opcode.WRITE_CELL, row=0, col=0, level=0x01DB)
    read = encode_command(layout, Opcode.READ_CELL, row=1, col=2)
    pulse = encode_command(layout, Opcode.PULSE_CELL, row=1, col=2, count=3)
    row = encode_command(layout, Opcode.READ_ROW, row=1)
    damaged = bytearray(command_frame(3, write))
    damaged[5] ^= 0x04
    chunks = [
        ("ran", command_frame(0, write + read)),  # escapes both ways (0xC0, 0xDB)
        ("again", command_frame(0, write + read)),  # the same seq: replayed, not run
        ("bad_crc", bytes(damaged)),
        ("bad_escape", b"\xc0\x07\xdb\x11\x00\x00\x00\xc0"),
        ("short", b"\xc0\x09\x00\xc0"),
        ("overflow", command_frame(4, encode_command(layout, Opcode.SYNC, value=5) * 16)),
        ("kind", command_frame(5, b"", kind=7)),
        ("skips", command_frame(2, pulse)),  # 1 must come first
        ("pulses", command_frame(1, pulse * 4)),  # responses 8 bytes: fit a replay slot
        ("before_last", command_frame(0, write + read)),  # still kept
        ("row", command_frame(2, row)),  # 18 bytes: do not
        ("row_again", command_frame(2, row)),  # its replay is lost; not run again
        ("pulses_again", command_frame(1, pulse * 4)),  # the one before the last
        ("too_old", command_frame(0, write + read)),  # no longer kept
        ("counters", command_frame(8, b"", FrameKind.READ_COUNTERS)),
        ("partial", command_frame(9, read)[:6]),  # a partial frame, then a pause
        (None, None),
        ("clear", command_frame(10, b"", FrameKind.CLEAR_COUNTERS)),
        ("read", command_frame(3, read)),
        ("after", command_frame(12, b"", FrameKind.READ_COUNTERS)),
    ]
    answered = [name for name, _ in chunks if name not in ("partial", None)]
    answers = dict(zip(answered, run_line([chunk for _, chunk in chunks]), strict=True))
    status = {name: answer.status for name, answer in answers.items()}
    assert status == {
        "ran": LinkStatus.OK,
        "again": LinkStatus.REPLAY,
        "bad_crc": LinkStatus.BAD_CRC,
        "bad_escape": LinkStatus.BAD_ESCAPE,
        "short": LinkStatus.BAD_LENGTH,
        "overflow": LinkStatus.OVERFLOW,
        "kind": LinkStatus.BAD_KIND,
        "skips": LinkStatus.OUT_OF_ORDER,
        "pulses": LinkStatus.OK,
        "before_last": LinkStatus.REPLAY,
        "row": LinkStatus.OK,
        "row_again": LinkStatus.REPLAY_LOST,
        "pulses_again": LinkStatus.REPLAY,
        "too_old": LinkStatus.OUT_OF_ORDER,
        "counters": LinkStatus.OK,
        "clear": LinkStatus.OK,
        "read": LinkStatus.OK,
        "after": LinkStatus.OK,
    }
    assert answers["ran"].payload[-2:] == b"\xc0\x10"  # the level read back
    assert answers["again"].payload == answers["before_last"].payload == answers["ran"].payload
    assert answers["pulses_again"].payload == answers["pulses"].payload
    # 4 pulses of 3, each run once.
    assert int.from_bytes(answers["read"].payload[-2:], "little") == 0x10C0 + 12
    counters = Counters.from_payload(answers["after"].payload)
    assert counters.values == (0, 0, 0, 0, 0) and counters.last_seq == 3
    before = Counters.from_payload(answers["clear"].payload)
    assert (before.bad_crc, before.bad_frame, before.timeout, before.last_seq) == (1, 6, 1, 2)


def test_frames_larger_than_the_buffer_are_refused_and_the_next_runs():
    layout = Layout(QUIET)
    sync = encode_command(layout, Opcode.SYNC, value=0xC0)
    answers = run_line([command_frame(0, sync * 15), command_frame(1, sync * 16)])
    assert [a.status for a in answers] == [LinkStatus.OK, LinkStatus.OVERFLOW]
    assert answers[0].credits == BUFFER - 2 == 30


def test_a_long_pause_inside_a_frame_drops_it_and_counts_a_timeout():
    wire = command_frame(0, encode_command(Layout(QUIET), Opcode.SYNC, value=1))
    answers = run_line(
        [wire[:3], None, wire[3:], wire, command_frame(2, b"", FrameKind.READ_COUNTERS)]
    )
    assert [a.status for a in answers] == [LinkStatus.BAD_CRC, LinkStatus.OK, LinkStatus.OK]
    counters = Counters.from_payload(answers[2].payload)
    assert (counters.bad_crc, counters.timeout, counters.last_seq) == (1, 1, 0)


@pytest.mark.parametrize(("seed", "ratio"), [(1, 1), (2, 1), (3, 2)])
def test_faults_on_both_lines_leave_the_bridge_exact(seed, ratio):
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, QUIET.levels, (QUIET.rows, QUIET.cols))
    commands = program_rows(QUIET, levels) + random_commands(QUIET, rng, 10, noise=False)
    result = simulate_bridge(
        QUIET, commands, buffer_bytes=64, replay_bytes=256, fault_rate=0.4, seed=seed,
        uart_clock_ratio=ratio,
    )  # fmt: skip
    # (A few faults a session at this rate, 4 to 20 over these seeds; the 10,000-fault
    # figure comes from the host-level model, test_link_transport.py.)
    assert sum(result.faults.values()) >= 3, result.faults
    assert result.difference is None, result.difference  # every response as the golden's
    assert result.model_difference is None, result.model_difference
    assert result.stats.retries > 0
    assert sum(result.counters.values) > 0


def test_serial_crc_is_the_protocols():
    dut = SerialCRC()
    data = bytes(np.random.default_rng(0).integers(0, 256, 40, dtype=np.uint8))

    async def bench(ctx):
        ctx.set(dut.init, 1)
        await ctx.tick()
        ctx.set(dut.init, 0)
        for byte in data:
            ctx.set(dut.byte, byte)
            ctx.set(dut.load, 1)
            await ctx.tick()
            ctx.set(dut.load, 0)
            for _ in range(8):
                assert ctx.get(dut.busy)
                await ctx.tick()
            assert not ctx.get(dut.busy)
        assert ctx.get(dut.crc) ^ 0xFFFF == crc16(data)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_counters_count_stop_at_their_top_and_clear():
    dut = LinkCounters()

    async def bench(ctx):
        ctx.set(dut.events, 0b00101)
        for _ in range(70_000):
            await ctx.tick()
        ctx.set(dut.events, 0b00010)
        await ctx.tick().repeat(3)
        ctx.set(dut.events, 0)
        await ctx.tick()
        assert [ctx.get(dut.counts[k]) for k in range(5)] == [65535, 3, 65535, 0, 0]
        ctx.set(dut.clear, 1)
        await ctx.tick()
        assert [ctx.get(dut.counts[k]) for k in range(5)] == [0] * 5

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_slip_encoder_escapes_and_delimits():
    dut = SlipEncoder()
    body = bytes([1, 0xC0, 2, 0xDB, 0xDB, 3])
    sent = bytearray()

    async def source(ctx):
        items = [(0, 1), *((b, 0) for b in body), (0, 1)]
        for byte, delimiter in items:
            ctx.set(dut.i.payload, {"byte": byte, "delimiter": delimiter})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        ready = 0
        while len(sent) < len(slip_encode(body)):
            ready ^= 1  # back-pressure every other cycle
            ctx.set(dut.o.ready, ready)
            _, _, valid, value = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                sent.append(value)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    assert bytes(sent) == slip_encode(body)


def test_bit_flips_on_the_line_itself_are_counted_and_corrected():
    """Flips of single bit times, start and stop bits included: the UART loses bytes or
    frames, the link refuses what they damage, the host sends it again."""
    rng = np.random.default_rng(3)
    levels = rng.integers(0, QUIET.levels, (QUIET.rows, QUIET.cols))
    commands = program_rows(QUIET, levels) + random_commands(QUIET, rng, 8, noise=False)
    result = simulate_bridge(
        QUIET, commands, buffer_bytes=64, replay_bytes=256, line_flips=0.02, seed=3
    )
    assert result.faults["line_bit"] >= 5 and not result.model_compared
    assert result.difference is None, result.difference
    counters = result.counters
    assert counters.bad_crc + counters.bad_frame + counters.timeout > 0
    assert result.stats.retries > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 8))
def test_many_faults_on_the_bit_serial_bridge(seed):
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, QUIET.levels, (QUIET.rows, QUIET.cols))
    commands = program_rows(QUIET, levels) + random_commands(QUIET, rng, 20, noise=False)
    result = simulate_bridge(
        QUIET,
        commands,
        buffer_bytes=64,
        replay_bytes=256,
        fault_rate=0.4,
        line_flips=0.005 * (seed % 2),
        seed=seed,
    )
    # (A few faults a session at this rate, 4 to 20 over these seeds; the 10,000-fault
    # figure comes from the host-level model, test_link_transport.py.)
    assert sum(result.faults.values()) >= 3, result.faults
    assert result.difference is None, result.difference
    assert result.model_difference is None, result.model_difference
