"""SerialTransport's command window, over a model of the boards' bridge whose engine is the
golden engine: a command FIFO that drops what it cannot hold, and a response line that sets
the pace."""

import inspect
import time
from collections import deque

import numpy as np
import pytest

from molxbar.emulator import Crossbar, CrossbarConfig
from molxbar.host.driver import CrossbarDriver
from molxbar.host.transports import (
    CheckedTransport,
    GoldenTransport,
    SerialTransport,
    longest_command,
)
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.link import BOARD_FIFO_DEPTH
from molxbar.protocol.spec import Layout, Opcode, Status, decode_response, encode_command
from tests.support.stimulus import program_rows, random_commands

BOARD = CrossbarConfig(noise_hardware=False)  # 64x64, what the boards build
SMALL = CrossbarConfig(rows=8, cols=8, lanes=2, x_bits=12)  # room for bad input codes
MEDIUM = CrossbarConfig(rows=16, cols=16, lanes=4)
LONG = 255  # vectors: a 32 kB RUN_BATCH on the boards' crossbar


class BridgeLink:
    """A serial port whose far end is the boards' UART bridge, in ticks of one byte time.

    Written bytes cross the command line, one per ``command_period`` ticks, into a FIFO of
    ``fifo_depth`` bytes; a byte that finds it full is dropped (``dropped``), as on the
    board. The golden engine takes bytes out of the FIFO one at a time, and only while it
    has no response bytes left to send: the gateware's executor also waits for its response
    to go out (it reads a little ahead, which only empties the FIFO sooner). Responses cross
    the response line, one byte per ``response_period`` ticks, unless ``mute``. Time passes
    while the host waits: in ``flush`` (until the command line is empty, as ``tcdrain``) and
    in ``read``.
    """

    name = "bridge model"

    def __init__(
        self,
        config: CrossbarConfig,
        *,
        fifo_depth: int = BOARD_FIFO_DEPTH,
        command_period: int = 1,
        response_period: int = 1,
        mute: bool = False,
    ) -> None:
        self.engine = GoldenEngine(config)
        self.fifo_depth = fifo_depth
        self.command_period, self.response_period = command_period, response_period
        self.mute = mute
        self.timeout: float | None = 0.002
        self.line: deque[int] = deque()
        self.fifo: deque[int] = deque()
        self.out: deque[int] = deque()
        self.arrived = bytearray()
        self.ticks = self.written = self.dropped = self.peak_fill = 0
        self.is_open = True

    def write(self, data: bytes) -> int:
        self.line.extend(data)
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        while self.line:
            self._tick()

    def read(self, size: int) -> bytes:
        while len(self.arrived) < size and self._moving():
            self._tick()
        data = bytes(self.arrived[:size])
        del self.arrived[:size]
        if len(data) < size:
            time.sleep(self.timeout)  # a read timeout: nothing more is coming
        return data

    def close(self) -> None:
        self.is_open = False

    def _moving(self) -> bool:
        return bool(self.line or (self.fifo and not self.out) or (self.out and not self.mute))

    def _tick(self) -> None:
        self.ticks += 1
        if self.line and self.ticks % self.command_period == 0:
            byte = self.line.popleft()
            if len(self.fifo) < self.fifo_depth:
                self.fifo.append(byte)
            else:
                self.dropped += 1
        self.peak_fill = max(self.peak_fill, len(self.fifo))
        while self.fifo and not self.out:
            self.out.extend(self.engine.execute(bytes([self.fifo.popleft()])))
        if self.out and not self.mute and self.ticks % self.response_period == 0:
            self.arrived.append(self.out.popleft())


def batch_inputs(config: CrossbarConfig, count: int = LONG, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(config.x_min, config.x_max + 1, (count, config.rows))


def test_the_default_window_is_the_bridge_fifo():
    from molxbar.boards.bridge import DEFAULT_FIFO_DEPTH

    assert BOARD_FIFO_DEPTH == DEFAULT_FIFO_DEPTH
    default = inspect.signature(SerialTransport).parameters["window"].default
    assert default == BOARD_FIFO_DEPTH
    assert SerialTransport(BridgeLink(BOARD)).window == BOARD_FIFO_DEPTH
    # The boards' 64x64 crossbar: UPDATE_RANK1 is the longest command, and it fits.
    assert longest_command(BOARD) == (257, Opcode.UPDATE_RANK1)


def test_without_a_window_a_long_batch_overruns_the_bridge():
    link = BridgeLink(BOARD)
    driver = CrossbarDriver(SerialTransport(link, timeout=0.2, config=BOARD, window=None))
    with pytest.raises(TimeoutError, match="response byte"):
        driver.vmm_batch(batch_inputs(BOARD))
    assert link.written == 3 + LONG * 128  # the whole batch at once
    assert link.dropped > 0


@pytest.mark.parametrize("response_period", [1, 3])
def test_with_the_default_window_a_long_batch_comes_back_exact(response_period):
    link = BridgeLink(BOARD, response_period=response_period)
    serial = SerialTransport(link, timeout=0.5, config=BOARD)
    checked = CheckedTransport(serial, GoldenTransport(BOARD))
    driver = CrossbarDriver(checked)
    levels = np.random.default_rng(1).integers(0, BOARD.levels, (BOARD.rows, BOARD.cols))
    driver.program_levels(levels)
    x = batch_inputs(BOARD)
    model = Crossbar(BOARD)
    model.write_levels(levels)
    assert np.array_equal(driver.vmm_batch(x), model.vmm_batch(x))
    assert checked.bit_exact  # every response byte as the golden transport's
    assert checked.bytes_compared == 2 * BOARD.rows + LONG * 386
    assert link.dropped == 0
    # The window was what held the bytes back: the FIFO filled up to within a vector.
    assert BOARD_FIFO_DEPTH - 131 < link.peak_fill <= BOARD_FIFO_DEPTH
    assert serial.unsent == serial.unanswered == 0


def test_the_window_waits_for_the_widths_from_status():
    link = BridgeLink(MEDIUM, fifo_depth=80)
    serial = SerialTransport(link, timeout=0.5, window=80)  # no config: the driver asks
    driver = CrossbarDriver(serial)
    assert serial.config is None and driver.config.rows == MEDIUM.rows
    x = batch_inputs(MEDIUM, 40)
    assert np.array_equal(driver.vmm_batch(x), Crossbar(MEDIUM).vmm_batch(x))
    assert link.dropped == 0 and link.peak_fill > 32


def statuses(responses: bytes) -> set[Status]:
    found, offset = set(), 0
    while offset < len(responses):
        response, offset = decode_response(Layout(SMALL), responses, offset)
        found.add(response.status)
    return found


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
@pytest.mark.parametrize(
    ("window", "command_period", "response_period"), [(34, 1, 1), (34, 1, 4), (64, 2, 1)]
)
def test_mixed_streams_in_random_pieces_stay_exact(seed, window, command_period, response_period):
    rng = np.random.default_rng(seed)
    commands = mixed_stream(SMALL, rng)
    responses = GoldenEngine(SMALL).execute(commands)
    assert {Status.BAD_INPUT, Status.BAD_ROW, Status.UNKNOWN_OPCODE} <= statuses(responses)
    link = BridgeLink(
        SMALL,
        fifo_depth=window,
        command_period=command_period,
        response_period=response_period,
    )
    serial = SerialTransport(link, timeout=0.5, config=SMALL, window=window)
    golden = GoldenTransport(SMALL)
    checked = CheckedTransport(serial, golden)
    # Pieces end anywhere, inside commands too; each time some of the answers due are read.
    cuts = np.sort(rng.choice(np.arange(1, len(commands)), 40, replace=False))
    for piece in np.split(np.frombuffer(commands, np.uint8), cuts):
        checked.send(piece.tobytes())
        assert serial.unanswered <= window
        checked.receive(int(rng.integers(0, golden.pending + 1)))
    checked.receive(golden.pending)
    assert checked.bit_exact and checked.bytes_compared == len(responses), f"seed {seed}"
    assert link.dropped == 0, f"seed {seed}"
    assert serial.unsent == serial.unanswered == 0
    # Without the window the same stream overruns the same bridge.
    if (command_period, response_period) == (1, 4):
        bare = BridgeLink(SMALL, fifo_depth=window, response_period=response_period)
        SerialTransport(bare, config=SMALL, window=None).send(commands)
        assert bare.dropped > 0, f"seed {seed}"


@pytest.mark.parametrize(
    ("config", "window", "limit"),
    [
        (BOARD, 0, "257"),
        (BOARD, 256, "257"),
        (BOARD, -512, "257"),
        (BOARD, True, "257"),
        (BOARD, 512.0, "257"),
        (BOARD, "512", "257"),
        (None, 33, "34"),
        (SMALL, 33, "34"),
    ],
)
def test_bad_windows_are_refused_and_change_nothing(config, window, limit):
    link = BridgeLink(BOARD)
    link.timeout = None
    with pytest.raises(ValueError, match=rf"window = {window!r} must be None or an int >= {limit}"):
        SerialTransport(link, config=config, window=window)
    assert link.timeout is None and link.written == 0


def test_a_window_too_small_for_the_config_found_later_is_refused():
    transport = SerialTransport(BridgeLink(BOARD), window=256)  # enough for any SET_SIGMA
    with pytest.raises(ValueError, match="window = 256 .* >= 257: the 64x64 crossbar's UPDATE_R"):
        transport.config = BOARD
    assert transport.config is None
    transport.config = MEDIUM  # 16x16: UPDATE_RANK1 is 65 bytes
    assert transport.config is MEDIUM and transport.window == 256
    # Without a config, the engine's STATUS response reports it.
    with pytest.raises(ValueError, match="window = 256 .* >= 257"):
        CrossbarDriver(SerialTransport(BridgeLink(BOARD), timeout=0.2, window=256))


def test_a_timeout_says_how_many_bytes_are_still_unsent():
    layout = Layout(MEDIUM)
    batch = encode_command(layout, Opcode.RUN_BATCH, count=40, x=batch_inputs(MEDIUM, 40))
    link = BridgeLink(MEDIUM, mute=True)  # the response line is cut
    transport = SerialTransport(link, timeout=0.1, config=MEDIUM)
    transport.send(batch)
    assert link.written == BOARD_FIFO_DEPTH and transport.unsent == len(batch) - 512
    unsent = f"{len(batch) - 512} command byte\\(s\\) still unsent"
    with pytest.raises(TimeoutError, match=f"0 of 2 response byte\\(s\\).*; {unsent}"):
        transport.receive(2)
    # Without a config and no STATUS first, the batch's vectors cannot be followed.
    transport = SerialTransport(BridgeLink(MEDIUM), timeout=0.1)
    transport.send(batch)
    with pytest.raises(TimeoutError, match=f"{unsent}.*the field widths are unknown"):
        transport.receive(40 * layout.response_length(Opcode.RUN_BATCH))


def test_a_config_set_later_lets_the_window_move():
    layout = Layout(MEDIUM)
    x = batch_inputs(MEDIUM, 40)
    batch = encode_command(layout, Opcode.RUN_BATCH, count=40, x=x)
    link = BridgeLink(MEDIUM, fifo_depth=100)
    transport = SerialTransport(link, timeout=0.2, window=100)
    transport.send(batch)
    width = layout.response_length(Opcode.RUN_BATCH)
    first = transport.receive(width)  # answered, but not counted: the widths are unknown
    assert link.written == 100 and transport.unanswered == 100
    transport.config = MEDIUM
    rest = transport.receive(39 * width)
    assert first + rest == GoldenEngine(MEDIUM).execute(batch)
    assert link.dropped == 0 and transport.unsent == transport.unanswered == 0


def test_a_stream_out_of_step_stops_the_writing():
    link = BridgeLink(MEDIUM)
    link.engine.execute(bytes([Opcode.WRITE_ROW]))  # a command cut short before we came
    transport = SerialTransport(link, timeout=0.1, config=MEDIUM, window=80)
    batch = encode_command(Layout(MEDIUM), Opcode.RUN_BATCH, count=40, x=batch_inputs(MEDIUM, 40))
    transport.send(batch)
    with pytest.raises(TimeoutError, match="one to 0x22 was due .*out of step"):
        transport.receive(40 * Layout(MEDIUM).response_length(Opcode.RUN_BATCH))
    assert link.written == 80  # the window, and nothing after the stray response
