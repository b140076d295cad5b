"""SerialTransport over the board's link model: frames, credits, retries without running a
command twice, counters, and fault injection on both lines."""

import numpy as np
import pytest

from molxbar.emulator import Crossbar, CrossbarConfig
from molxbar.host.driver import CrossbarDriver
from molxbar.host.link import LinkError, SerialTransport
from molxbar.host.link_packer import frame_share
from molxbar.host.transports import CheckedTransport, GoldenTransport
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.link import (
    COMMAND_BUFFER_BYTES,
    FRAMES_IN_FLIGHT,
    REPLAY_SLOT_BYTES,
    max_payload,
)
from molxbar.protocol.link_frames import (
    MIN_RESPONSE_BYTES,
    FrameDecoder,
    parse_response,
    response_frame,
)
from molxbar.protocol.link_model import BoardLinkModel
from molxbar.protocol.spec import Layout, Opcode, Status, decode_responses, encode_command
from molxbar.sim.link_faults import FAULT_KINDS, FaultyLine, ModelPort, run_fault_session
from molxbar.sim.stimulus import program_rows, random_commands

BOARD = CrossbarConfig(noise_hardware=False)  # 64x64, what the boards build
SMALL = CrossbarConfig(rows=8, cols=8, lanes=2, x_bits=12, noise_hardware=False)
MEDIUM = CrossbarConfig(rows=16, cols=16, lanes=4, noise_hardware=False)


def transport_to(config, *, port_config=None, **kwargs):
    model = BoardLinkModel(config)
    port = ModelPort(model)
    kwargs.setdefault("timeout", 0.05)
    return SerialTransport(port, config=port_config, clock=port.clock, **kwargs), model, port


def test_a_long_batch_goes_in_frames_and_comes_back_exact():
    serial, model, _ = transport_to(BOARD, port_config=BOARD)
    checked = CheckedTransport(serial, GoldenTransport(BOARD))
    driver = CrossbarDriver(checked)
    rng = np.random.default_rng(1)
    levels = rng.integers(0, BOARD.levels, (BOARD.rows, BOARD.cols))
    driver.program_levels(levels)
    x = rng.integers(BOARD.x_min, BOARD.x_max + 1, (255, BOARD.rows))
    reference = Crossbar(BOARD)
    reference.write_levels(levels)
    assert np.array_equal(driver.vmm_batch(x), reference.vmm_batch(x))
    assert checked.bit_exact and serial.stats.retries == 0
    # 128-byte vectors: three to a frame's share of the buffer, 510 bytes; 386-byte
    # responses: one to a replay slot.
    share = frame_share(max_payload(), FRAMES_IN_FLIGHT)
    assert share == 510
    per_frame = min((share - 3) // (2 * BOARD.rows), REPLAY_SLOT_BYTES // (2 + 6 * BOARD.cols))
    assert per_frame == 1
    batch_frames = serial.stats.frames_sent - 1 - 64 // 3 - 1  # counters, rows, remainder
    assert batch_frames in range(255 // per_frame, 255 // per_frame + 3)
    assert serial.credits == max_payload(COMMAND_BUFFER_BYTES)


def test_without_a_config_the_status_gives_the_widths():
    serial, _, _ = transport_to(MEDIUM)
    driver = CrossbarDriver(serial)
    assert serial.config is not None and serial.config.rows == MEDIUM.rows
    x = np.arange(40 * MEDIUM.rows).reshape(40, MEDIUM.rows) % 100
    assert np.array_equal(driver.vmm_batch(x), Crossbar(MEDIUM).vmm_batch(x))


def mixed_stream(config: CrossbarConfig, rng: np.random.Generator) -> bytes:
    """Programming, random commands (errors and unknown opcodes among them), a bad row, a
    batch with a bad vector in the middle, a batch of none."""
    layout = Layout(config)
    levels = rng.integers(0, config.levels, (config.rows, config.cols))
    x = rng.integers(config.x_min, config.x_max + 1, (5, config.rows))
    x[2, 3] = config.x_max + 1
    return b"".join(
        [
            program_rows(config, levels),
            random_commands(config, rng, 60, max_batch=6),
            encode_command(layout, Opcode.READ_ROW, row=config.rows + 2),
            encode_command(layout, Opcode.RUN_BATCH, count=5, x=x),
            encode_command(layout, Opcode.RUN_BATCH, count=0, x=x[:0]),
            bytes([0x7F]),
            encode_command(layout, Opcode.UPDATE_RANK1, a=x[0] >> 6, b=x[1] >> 6),
            random_commands(config, rng, 60, max_batch=6),
            encode_command(layout, Opcode.READ_ROW, row=1),
        ]
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("buffer_bytes", [40, 96, COMMAND_BUFFER_BYTES])
def test_mixed_streams_in_random_pieces_stay_exact(seed, buffer_bytes):
    rng = np.random.default_rng(seed)
    commands = mixed_stream(SMALL, rng)
    responses = GoldenEngine(SMALL).execute(commands)
    found = {response.status for response in decode_responses(Layout(SMALL), responses)}
    assert {Status.BAD_INPUT, Status.BAD_ROW, Status.UNKNOWN_OPCODE, Status.BAD_COUNT} <= found
    model = BoardLinkModel(SMALL, buffer_bytes=buffer_bytes, replay_bytes=4 * buffer_bytes)
    port = ModelPort(model)
    serial = SerialTransport(
        port,
        config=SMALL,
        timeout=0.05,
        clock=port.clock,
        buffer_bytes=buffer_bytes,
        replay_bytes=4 * buffer_bytes,
    )
    golden = GoldenTransport(SMALL)
    checked = CheckedTransport(serial, golden)
    # Pieces end anywhere, inside commands too; each time some of the answers due are read.
    cuts = np.sort(rng.choice(np.arange(1, len(commands)), 40, replace=False))
    for piece in np.split(np.frombuffer(commands, np.uint8), cuts):
        checked.send(piece.tobytes())
        checked.receive(int(rng.integers(0, golden.pending + 1)))
    checked.receive(golden.pending)
    assert checked.bit_exact and checked.bytes_compared == len(responses), f"seed {seed}"
    assert serial.unsent == 0 and serial.stats.retries == 0
    assert model.engine.idle


def test_frames_too_large_are_refused_by_value_and_limit():
    wide = CrossbarConfig(rows=512, cols=4, lanes=4, noise_hardware=False)
    with pytest.raises(
        ValueError, match="UPDATE_RANK1 of 1033 bytes does not fit a frame: at most 1022"
    ):
        SerialTransport(ModelPort(BoardLinkModel(wide)), config=wide)
    tall = CrossbarConfig(rows=4, cols=200, lanes=4, noise_hardware=False)
    vmm = Layout(tall).response_length(Opcode.RUN_VMM)
    assert vmm > REPLAY_SLOT_BYTES
    with pytest.raises(ValueError, match=f"response to RUN_VMM, {vmm} bytes, .* buffer: 512"):
        SerialTransport(ModelPort(BoardLinkModel(tall)), config=tall)
    # Found out from the engine's STATUS.
    serial, _, _ = transport_to(wide)
    with pytest.raises(ValueError, match="of 1033 bytes does not fit a frame: at most 1022"):
        CrossbarDriver(serial)
    with pytest.raises(ValueError, match="retries = -1"):
        SerialTransport(ModelPort(BoardLinkModel(SMALL)), retries=-1)


class LoseFirst(FaultyLine):
    """A line that loses the first frame written to it, and no other."""

    def __init__(self):
        super().__init__(np.random.default_rng(0), 0.0, ("flip",))
        self.lost = []

    def corrupt(self, data):
        if self.lost:
            return [data]
        self.lost.append(data)
        return [b""]


def test_a_frame_runs_once_though_its_answer_is_lost():
    serial, model, port = transport_to(SMALL, port_config=SMALL)
    driver = CrossbarDriver(serial)
    driver.read_cell(0, 0)  # the counters, then one frame
    port.response_line = LoseFirst()
    driver.pulse(1, 1, 7)  # answered from the replay buffer after the timeout
    assert port.response_line.lost and serial.stats.timeouts == 1 and serial.stats.replays == 1
    assert model.frames_run == 2 and model.replays == 1
    assert driver.read_cell(1, 1) == 7  # pulsed once


def test_an_answer_not_to_its_frames_commands_is_asked_for_again():
    serial, model, port = transport_to(SMALL, port_config=SMALL)
    driver = CrossbarDriver(serial)
    driver.read_cell(0, 0)  # the counters, then one frame
    changed = []

    class LongerFirstAnswer(FaultyLine):
        """A byte more in the first answer, under a good CRC (as a byte sent twice where
        the CRC register stands still leaves it)."""

        def corrupt(self, data):
            if changed:
                return [data]
            (body,) = FrameDecoder(min_body=MIN_RESPONSE_BYTES).feed(data)
            answer = parse_response(body)
            changed.append(answer)
            payload = answer.payload + b"\x00"
            return [response_frame(answer.seq, answer.status, answer.credits, payload)]

    port.response_line = LongerFirstAnswer(np.random.default_rng(0), 0.0, ("flip",))
    driver.pulse(1, 1, 7)  # answered again from the replay buffer
    assert changed and serial.stats.bad_responses == 1 and serial.stats.replays == 1
    assert model.frames_run == 2 and driver.read_cell(1, 1) == 7  # pulsed once


def test_two_frames_in_flight_and_a_lost_first_one_sends_both_again():
    serial, model, port = transport_to(SMALL, port_config=SMALL)
    driver = CrossbarDriver(serial)
    levels = np.arange(SMALL.rows * SMALL.cols).reshape(SMALL.rows, SMALL.cols) * 97
    driver.program_levels(levels)
    port.command_line = LoseFirst()
    x = np.arange(40 * SMALL.rows).reshape(40, SMALL.rows) % 50
    reference = Crossbar(SMALL)
    reference.write_levels(levels)
    # The second frame arrives first: refused, not run; both go again, in order.
    assert np.array_equal(driver.vmm_batch(x), reference.vmm_batch(x))
    assert port.command_line.lost and serial.stats.timeouts == 1 and serial.stats.retries == 2
    assert serial.stats.replays == 0 and serial.stats.most_in_flight == 2
    assert serial.read_counters().bad_frame == 1  # OUT_OF_ORDER


def test_counters_count_and_clear():
    serial, model, port = transport_to(SMALL, port_config=SMALL, retries=3)
    driver = CrossbarDriver(serial)
    port.command_line = FaultyLine(np.random.default_rng(3), 1.0, ("flip",))
    with pytest.raises(LinkError, match=r"not answered after 4 tries \(retries = 3\)"):
        driver.sync(1)
    port.command_line = None
    counters = serial.read_counters()
    assert counters.bad_crc + counters.bad_frame + counters.timeout == 4
    assert counters.last_seq is None
    assert serial.clear_counters() == counters
    assert serial.read_counters().values == (0, 0, 0, 0, 0)
    driver.sync(2)  # the link goes on after the error
    assert serial.read_counters().last_seq == model.last_seq is not None


def test_over_an_echoing_line_every_try_fails_and_says_so():
    serial = SerialTransport("loop://", 1_000_000, timeout=0.05, config=SMALL, retries=2)
    with pytest.raises(
        LinkError, match=r"loop://: READ_COUNTERS frame 129 .* after 3 tries \(retries = 2\)"
    ):
        serial.send(bytes([Opcode.SYNC, 1]))  # the counters first: our own frame comes back
    serial.close()


def test_a_timeout_names_what_is_held_back():
    serial, _, _ = transport_to(MEDIUM, port_config=MEDIUM)
    serial.send(bytes([Opcode.SYNC, 1, Opcode.WRITE_ROW, 0]))
    assert serial.receive(3) == bytes([Opcode.SYNC, Status.OK, 1])
    with pytest.raises(TimeoutError, match="0 of 2 .* 2 command byte\\(s\\) of an incomplete"):
        serial.receive(2)


def test_faults_on_both_lines_are_corrected_or_reported():
    report = run_fault_session(MEDIUM, operations=500, rate=0.2, seed=11)
    assert report.injected >= 250 and set(report.faults) == set(FAULT_KINDS)
    assert report.silent_wrong_results == 0 and report.silent_level_changes == 0
    assert report.reported == 0  # every fault corrected by a retry
    assert report.retries > 0 and report.replays > 0
    assert report.counters[2] > 0  # bad CRCs seen by the board


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "operations"), [(MEDIUM, 17_000), (BOARD, 4_000)], ids=["16x16", "64x64"]
)
def test_ten_thousand_faults_leave_no_silent_error(config, operations):
    report = run_fault_session(config, operations=operations, rate=0.2, seed=5)
    assert report.injected >= (10_000 if config is MEDIUM else 2_500), report
    assert report.silent_wrong_results == 0 and report.silent_level_changes == 0, report
    assert report.reported == 0, report


def test_a_port_opened_by_name_needs_the_builds_rate():
    with pytest.raises(ValueError, match="port = '/dev/ttyUSB9': give baudrate"):
        SerialTransport("/dev/ttyUSB9", config=SMALL)
    port = ModelPort(BoardLinkModel(SMALL), baudrate=3_000_000)
    assert SerialTransport(port, config=SMALL).baudrate == 3_000_000  # the port's own
