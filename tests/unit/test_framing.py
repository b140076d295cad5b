"""The command framer, response lengths and the first-difference report."""

import numpy as np
import pytest

from molxbar.emulator import CrossbarConfig
from molxbar.protocol.difference import first_difference
from molxbar.protocol.framing import CommandFramer, response_length, split_commands
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import Layout, Opcode, Status, encode_command
from molxbar.sim.stimulus import program_rows, random_commands

SMALL = CrossbarConfig(rows=8, cols=8, lanes=2, x_bits=12)


def stream(config, rng, count=200):
    levels = rng.integers(0, config.levels, (config.rows, config.cols))
    return program_rows(config, levels) + random_commands(config, rng, count, long_batch=6)


def response_spans(layout, responses):
    """Where each response of a stream begins, from the response lengths alone."""
    spans, pos = [], 0
    while pos < len(responses):
        length = response_length(layout, responses[pos], responses[pos + 1])
        spans.append((pos, pos + length))
        pos += length
    assert pos == len(responses)
    return spans


@pytest.mark.parametrize("run", range(3))
def test_each_unit_is_answered_by_one_response(run, rng):
    layout = Layout(SMALL)
    commands = stream(SMALL, rng)
    units = CommandFramer(layout).feed(commands)
    assert units[0].start == 0 and units[-1].end == len(commands)
    assert all(a.end == b.start for a, b in zip(units, units[1:], strict=False))
    golden = GoldenEngine(SMALL)
    widths = set()
    for unit in units:  # exactly one response per unit, to the unit's opcode, as long as said
        answer = golden.execute(commands[unit.start : unit.end])
        (span,) = response_spans(golden.layout, answer)
        assert answer[0] == unit.opcode and span == (0, len(answer))
        assert len(answer) == (unit.response if answer[1] == Status.OK else 2)
        widths.add(golden.layout.output_width)
    assert len(widths) > 1  # the stream set the ADC to more than one output width


@pytest.mark.parametrize("run", range(2))
def test_bytes_in_any_pieces_give_the_same_units(run, rng):
    layout = Layout(SMALL)
    commands = stream(SMALL, rng)
    whole = CommandFramer(layout).feed(commands)
    framer, pieces = CommandFramer(layout), []
    pos = 0
    while pos < len(commands):
        size = int(rng.integers(0, 40))
        pieces += framer.feed(commands[pos : pos + size])
        pos += size
    assert pieces == whole and framer.pending == b""


def test_batches_are_one_unit_a_vector_and_one_command():
    layout = Layout(SMALL)
    x = np.ones((3, SMALL.rows), dtype=int)
    batch = encode_command(layout, Opcode.RUN_BATCH, count=3, x=x)
    empty = encode_command(layout, Opcode.RUN_BATCH, count=0, x=np.zeros((0, SMALL.rows)))
    sync = encode_command(layout, Opcode.SYNC, value=9)
    data = batch + bytes([0x99]) + empty + sync + batch[:7]
    units = CommandFramer(layout).feed(data)
    vector = SMALL.rows * layout.input_bytes
    assert [(u.end - u.start, u.opcode, u.command) for u in units] == [
        (3 + vector, Opcode.RUN_BATCH, 0),
        (vector, Opcode.RUN_BATCH, 0),
        (vector, Opcode.RUN_BATCH, 0),
        (1, 0x99, 1),
        (3, Opcode.RUN_BATCH, 2),
        (2, Opcode.SYNC, 3),
    ]
    assert split_commands(layout, data) == [batch, bytes([0x99]), empty, sync, batch[:7]]
    # A partial vector at the end belongs to its batch.
    assert split_commands(layout, batch[:-1]) == [batch[:-1]]


def test_without_widths_the_fixed_commands_are_framed_and_the_rest_waits():
    layout = Layout(SMALL)
    sync = encode_command(layout, Opcode.SYNC, value=1)
    status = encode_command(layout, Opcode.STATUS)
    row = encode_command(layout, Opcode.WRITE_ROW, row=0, levels=np.zeros(SMALL.cols, int))
    framer = CommandFramer()
    units = framer.feed(sync + status + row + sync)
    assert [u.opcode for u in units] == [Opcode.SYNC, Opcode.STATUS]
    assert framer.needs_layout and framer.pending == row + sync
    framer.layout = layout
    assert [u.opcode for u in framer.feed()] == [Opcode.WRITE_ROW, Opcode.SYNC]
    assert not framer.needs_layout


def test_response_lengths_need_widths_only_for_wide_responses():
    layout = Layout(SMALL)
    assert response_length(None, Opcode.SYNC, Status.OK) == 3
    assert response_length(None, Opcode.RUN_VMM, Status.BAD_INPUT) == 2
    assert response_length(None, 0x99, Status.UNKNOWN_OPCODE) == 2
    assert response_length(None, Opcode.READ_ROW, Status.OK) is None
    assert response_length(layout, Opcode.READ_ROW, Status.OK) == 2 + SMALL.cols * 2
    with pytest.raises(ValueError, match="unknown status 0x7f"):
        response_length(layout, Opcode.SYNC, 0x7F)
    with pytest.raises(ValueError, match="OK response to unknown opcode 0x99"):
        response_length(layout, 0x99, Status.OK)


def test_first_difference_names_the_command(rng):
    commands = stream(SMALL, rng, count=60)
    want = GoldenEngine(SMALL).execute(commands)
    assert first_difference(SMALL, commands, want) is None
    layout = Layout(SMALL)
    commands_split = split_commands(layout, commands)
    # Corrupt the last byte of the 20th command's response.
    golden = GoldenEngine(SMALL)
    end = sum(len(golden.execute(c)) for c in commands_split[:21])
    bad = bytearray(want)
    bad[end - 1] ^= 0x40
    report = first_difference(SMALL, commands, bytes(bad))
    start = sum(len(c) for c in commands_split[:20])
    assert report.startswith(f"command 20 (command byte {start}: ")
    assert first_difference(SMALL, commands, want[:-3]) is not None
    assert first_difference(SMALL, commands, want[:-3], complete=False) is None
    assert "1 response byte(s) after the last" in first_difference(SMALL, commands, want + b"\0")
