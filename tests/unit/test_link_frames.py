"""The link's frames: CRC, SLIP, the incremental decoder, and the board's link model."""

import numpy as np
import pytest

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.link import (
    COMMAND_BUFFER_BYTES,
    SLIP_END,
    SLIP_ESC,
    FrameKind,
    LinkCounter,
    LinkStatus,
    max_payload,
)
from molxbar.protocol.link_frames import (
    MIN_RESPONSE_BYTES,
    BadFrame,
    Counters,
    FrameDecoder,
    command_frame,
    crc16,
    frame_overhead,
    parse_response,
    response_frame,
    slip_encode,
)
from molxbar.protocol.link_model import BoardLinkModel
from molxbar.protocol.spec import Layout, Opcode, encode_command

SMALL = CrossbarConfig(rows=8, cols=8, lanes=2, noise_hardware=False)


def test_crc_is_ccitt():
    assert crc16(b"123456789") == 0xD64E  # the catalogue's check value of CRC-16/GENIBUS
    assert crc16(b"") == 0x0000


def test_slip_round_trip_of_every_byte_value(rng):
    for _ in range(50):
        body = bytes(rng.integers(0, 256, int(rng.integers(4, 300)), dtype=np.uint8))
        body += bytes([SLIP_END, SLIP_ESC])
        body += crc16(body).to_bytes(2, "big")
        wire = slip_encode(body)
        assert wire[0] == wire[-1] == SLIP_END and SLIP_END not in wire[1:-1]
        assert FrameDecoder(min_body=0).feed(wire) == [body]


def test_frames_split_anywhere_decode_alike(rng):
    wire = b"".join(command_frame(k, bytes([k, SLIP_END, SLIP_ESC] * k)) for k in range(20))
    whole = FrameDecoder().feed(wire)
    decoder, pieces = FrameDecoder(), []
    cuts = sorted(rng.integers(0, len(wire), 30))
    for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        pieces += decoder.feed(wire[a:b])
    assert pieces == whole and len(whole) == 20
    assert [body[0] for body in whole] == list(range(20))


def test_bad_frames_are_reported_by_cause():
    good = command_frame(7, b"\x01\x02")
    assert FrameDecoder().feed(good) == [good[1:-1]]
    flipped = bytearray(good)
    flipped[3] ^= 0x10
    (bad,) = FrameDecoder().feed(bytes(flipped))
    assert bad == BadFrame(LinkStatus.BAD_CRC, bytes(flipped[1:-1])) and bad.seq == 7
    assert FrameDecoder().feed(b"\xc0\x05\x00\xc0") == [
        BadFrame(LinkStatus.BAD_LENGTH, b"\x05\x00")
    ]
    (escape,) = FrameDecoder().feed(b"\xc0\x05\xdb\x41\x00\x00\x00\xc0")
    assert escape.status is LinkStatus.BAD_ESCAPE
    (dangling,) = FrameDecoder().feed(b"\xc0\x05\x00\x00\x00\xdb\xc0")
    assert dangling.status is LinkStatus.BAD_ESCAPE
    (long,) = FrameDecoder(max_body=6).feed(command_frame(1, b"\x01\x02\x03"))
    assert long.status is LinkStatus.OVERFLOW and len(long.body) == 6
    assert FrameDecoder().feed(b"\xc0\xc0\xc0") == []  # empty frames are none


def test_a_good_frame_with_zero_bytes_after_it_is_refused():
    # Without the final XOR the CRC register is 0 after a good body, and stays 0 for zeros.
    for seq in range(256):
        body = command_frame(seq, b"\x10\x00")[1:-1]
        if body[-1] == 0:
            break
    assert body[-1] == 0
    for extra in (b"\x00", b"\x00\x00", b"\x00\x00\x00"):
        (bad,) = FrameDecoder().feed(slip_encode(body + extra))
        assert bad.status is LinkStatus.BAD_CRC


def test_timeout_drops_a_partial_frame():
    decoder = FrameDecoder()
    wire = command_frame(3, b"\x02")
    assert decoder.feed(wire[:4]) == [] and decoder.partial
    assert decoder.timeout() and not decoder.partial and not decoder.timeout()
    assert decoder.feed(wire) == [wire[1:-1]]


def test_response_fields_and_overhead():
    wire = response_frame(9, LinkStatus.OK, 510, b"\x02\x00abc")
    (body,) = FrameDecoder(min_body=MIN_RESPONSE_BYTES).feed(wire)
    assert parse_response(body) == parse_response(body)
    answer = parse_response(body)
    assert (answer.seq, answer.status, answer.payload, answer.credits) == (
        9,
        LinkStatus.OK,
        b"\x02\x00abc",
        510,
    )
    assert frame_overhead(b"\x21") == 6  # END seq kind crc crc END
    assert frame_overhead(bytes([SLIP_END, SLIP_ESC])) == 8
    with pytest.raises(ValueError, match="seq = 256"):
        command_frame(256)


# The board's link model ----------------------------------------------------------------------


def _answers(model: BoardLinkModel, wire: bytes):
    return [parse_response(b) for b in FrameDecoder(min_body=MIN_RESPONSE_BYTES).feed(wire)]


def test_model_runs_a_frame_once_and_replays_it():
    model = BoardLinkModel(SMALL)
    layout = Layout(SMALL)
    commands = encode_command(layout, Opcode.PULSE_CELL, row=1, col=2, count=5)
    commands += encode_command(layout, Opcode.READ_CELL, row=1, col=2)
    (first,) = _answers(model, model.feed(command_frame(0, commands)))
    assert first.status is LinkStatus.OK and first.seq == 0
    assert first.payload == GoldenEngine(SMALL).execute(commands)
    assert first.credits == max_payload(COMMAND_BUFFER_BYTES)
    (again,) = _answers(model, model.feed(command_frame(0, commands)))
    assert again.status is LinkStatus.REPLAY and again.payload == first.payload
    assert model.engine.crossbar.read_cell(1, 2) == 5  # pulsed once
    (other,) = _answers(model, model.feed(command_frame(1, commands)))
    assert other.status is LinkStatus.OK and model.engine.crossbar.read_cell(1, 2) == 10


def test_model_runs_frames_in_order_and_answers_the_last_two_again():
    model = BoardLinkModel(SMALL)
    layout = Layout(SMALL)
    pulse = encode_command(layout, Opcode.PULSE_CELL, row=0, col=0, count=1)
    pulse += encode_command(layout, Opcode.READ_CELL, row=0, col=0)

    def send(seq):
        (answer,) = _answers(model, model.feed(command_frame(seq, pulse)))
        return answer.status, answer.payload

    assert send(1) == (LinkStatus.OUT_OF_ORDER, b"")  # after a reset 0 comes first
    first = send(0)
    assert first[0] is LinkStatus.OK
    assert send(2) == (LinkStatus.OUT_OF_ORDER, b"")  # 1 must come first
    second = send(1)
    assert second[0] is LinkStatus.OK and second[1] != first[1]
    assert send(0) == (LinkStatus.REPLAY, first[1])  # the one before the last
    assert send(1) == (LinkStatus.REPLAY, second[1])
    assert send(2)[0] is LinkStatus.OK
    assert send(0) == (LinkStatus.OUT_OF_ORDER, b"")  # no longer kept
    assert model.engine.crossbar.read_cell(0, 0) == 3 and model.frames_run == 3
    assert model.counters[LinkCounter.BAD_FRAME] == 3


def test_model_drops_bad_frames_whole_and_counts_them():
    model = BoardLinkModel(SMALL)
    layout = Layout(SMALL)
    write = encode_command(layout, Opcode.WRITE_CELL, row=0, col=0, level=9)
    wire = bytearray(command_frame(1, write))
    wire[4] ^= 0x01  # a level bit
    (refused,) = _answers(model, model.feed(bytes(wire)))
    assert (refused.seq, refused.status, refused.payload) == (1, LinkStatus.BAD_CRC, b"")
    assert model.engine.crossbar.read_cell(0, 0) == 0
    (cleared,) = _answers(model, model.feed(command_frame(2, b"", FrameKind.CLEAR_COUNTERS)))
    assert cleared.status is LinkStatus.OK  # the counts, then cleared
    assert Counters.from_payload(cleared.payload).bad_crc == 1
    (unknown,) = _answers(model, model.feed(command_frame(3, b"", kind=9)))
    assert unknown.status is LinkStatus.BAD_KIND
    (payload,) = _answers(model, model.feed(command_frame(3, b"x", FrameKind.READ_COUNTERS)))
    assert payload.status is LinkStatus.BAD_KIND
    model.feed(command_frame(4, write)[:5])
    model.timeout()
    counters = Counters.from_payload(
        _answers(model, model.feed(command_frame(5, b"", FrameKind.READ_COUNTERS)))[0].payload
    )
    assert counters.values[LinkCounter.BAD_CRC] == 0  # cleared above
    assert (counters.bad_frame, counters.timeout, counters.last_seq) == (2, 1, None)


def test_model_refuses_a_frame_larger_than_its_buffer():
    model = BoardLinkModel(SMALL, buffer_bytes=16)
    sync = encode_command(Layout(SMALL), Opcode.SYNC, value=1)
    (fits,) = _answers(model, model.feed(command_frame(0, sync * 7)))  # 14 bytes and the CRC
    assert fits.status is LinkStatus.OK and fits.credits == 14
    (over,) = _answers(model, model.feed(command_frame(1, sync * 7 + b"\x02")))
    assert over.status is LinkStatus.OVERFLOW and model.last_seq == 0


def test_model_replay_lost_when_responses_overflow_it():
    model = BoardLinkModel(SMALL, replay_bytes=4)
    sync = encode_command(Layout(SMALL), Opcode.SYNC, value=1)
    (ran,) = _answers(model, model.feed(command_frame(0, sync * 2)))
    assert ran.status is LinkStatus.OK and len(ran.payload) == 6
    (lost,) = _answers(model, model.feed(command_frame(0, sync * 2)))
    assert lost.status is LinkStatus.REPLAY_LOST and lost.payload == b""
