"""The host driver on every transport available here, against the golden model."""

import numpy as np
import pytest
import serial

from molxbar.emulator import Crossbar, CrossbarConfig
from molxbar.hdl.engine import Engine
from molxbar.host.driver import CrossbarDriver
from molxbar.host.link import SerialTransport
from molxbar.host.transports import (
    CheckedTransport,
    GoldenTransport,
    Mismatch,
    ReplayTransport,
    Transport,
)
from molxbar.protocol.errors import EngineError
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import STATUS_TEXT, Opcode, Status
from molxbar.sim.transport import AmaranthTransport

SMALL = CrossbarConfig(rows=8, cols=8, lanes=2)
NOISY = SMALL.replace(
    read_sigma=0.4,
    read_sigma_slope=1e-4,
    write_sigma=0.6,
    seed=99,
    read_noise=True,
    write_noise=True,
)

TRANSPORTS = {"golden": GoldenTransport, "amaranth": AmaranthTransport}


@pytest.fixture(params=sorted(TRANSPORTS))
def make(request):
    return TRANSPORTS[request.param]


def test_every_operation_matches_the_golden_model(make):
    rng = np.random.default_rng(3)
    c = NOISY
    driver, model = CrossbarDriver(make(c)), Crossbar(c)
    assert isinstance(driver.transport, Transport)
    driver.sync(0x3C)
    levels = rng.integers(0, c.levels, (c.rows, c.cols))
    driver.program_levels(levels)
    model.write_levels(levels)
    driver.write_row(2, levels[5])
    model.write_row(2, levels[5])
    driver.write_cell(1, 7, 1234)
    model.write_cell(1, 7, 1234)
    driver.pulse(3, 4, c.pulse_min)  # saturates at 0
    model.pulse_cell(3, 4, c.pulse_min)
    counts = rng.integers(-50, 50, (c.rows, c.cols)) * (rng.random((c.rows, c.cols)) < 0.2)
    driver.pulse_cells(counts)
    model.pulse(counts)
    a, b = rng.integers(-300, 300, c.rows), rng.integers(-300, 300, c.cols)
    driver.update_rank1(a, b, shift=4)
    model.set_update_shift(4)
    model.update_rank1(a, b)
    assert np.array_equal(driver.read_levels(), model.levels)
    assert driver.read_cell(1, 7) == model.read_cell(1, 7)
    assert np.array_equal(driver.read_row(3), model.read_row(3))

    x = rng.integers(-2000, 2000, (6, c.rows))
    assert np.array_equal(driver.vmm_batch(x, chunk=4), model.vmm_batch(x))
    driver.set_adc(12, 9)
    model.set_adc(12, 9)
    driver.set_rect(3)
    model.set_rectification(3)
    driver.seed(0xDEADBEEF)
    model.seed(0xDEADBEEF)
    assert np.array_equal(driver.vmm(x[0]), model.vmm(x[0]))
    driver.set_noise(read=False, write=True)
    model.set_noise(read=False, write=True)
    table = rng.integers(0, 4096, 16)
    driver.set_sigma("write", table)
    model.set_noise(write_table=table)
    driver.write_row(0, levels[0])
    model.write_row(0, levels[0])
    assert np.array_equal(driver.read_row(0), model.read_row(0))
    assert np.array_equal(driver.vmm_batch(x), model.vmm_batch(x))

    status = driver.status()
    assert status["rows"] == c.rows and status["lanes"] == c.lanes
    assert (status["adc_bits"], status["adc_shift"], status["rect_shift"]) == (12, 9, 3)
    assert (status["noise"], status["seed"]) == (2, 0xDEADBEEF)
    assert status["counter"] == model.noise_counter


def test_an_engine_error_raises_and_changes_nothing(make):
    rng = np.random.default_rng(4)
    c = SMALL
    driver = CrossbarDriver(make(c))
    levels = rng.integers(0, c.levels, (c.rows, c.cols))
    driver.program_levels(levels)
    before = driver.status()
    cases = [
        (lambda: driver.write_cell(0, 0, c.levels), Opcode.WRITE_CELL, Status.BAD_LEVEL),
        (lambda: driver.write_cell(c.rows, 0, 1), Opcode.WRITE_CELL, Status.BAD_ROW),
        (lambda: driver.pulse(0, c.cols, 1), Opcode.PULSE_CELL, Status.BAD_COL),
        (lambda: driver.write_row(1, [c.levels] * c.cols), Opcode.WRITE_ROW, Status.BAD_LEVEL),
        (lambda: driver.set_adc(1, 0), Opcode.SET_ADC, Status.BAD_VALUE),
        (lambda: driver.set_rect(64), Opcode.SET_RECT, Status.BAD_SHIFT),
        (lambda: driver.read_row(c.rows), Opcode.READ_ROW, Status.BAD_ROW),
    ]
    for call, opcode, status in cases:
        with pytest.raises(EngineError) as info:
            call()
        error = info.value
        assert (error.opcode, error.status, error.code) == (opcode, status, int(status))
        assert error.text == STATUS_TEXT[status] and error.text in str(error)
        assert opcode.name in str(error) and status.name in str(error)
    assert np.array_equal(driver.read_levels(), levels)
    assert driver.status() == before
    driver.sync()


def test_a_rejected_batch_vector_names_its_index(make):
    c = SMALL.replace(x_bits=12)
    driver = CrossbarDriver(make(c))
    x = np.zeros((5, c.rows), dtype=np.int64)
    x[3, 1] = c.x_max + 1  # fits the two-byte field, outside 12 bits
    with pytest.raises(EngineError, match=r"vector 3\).*BAD_INPUT") as info:
        driver.vmm_batch(x)
    assert info.value.status is Status.BAD_INPUT
    driver.sync()  # still in step
    assert np.array_equal(driver.vmm_batch(x[:3]), np.zeros((3, c.cols)))


def test_host_side_checks_send_nothing():
    driver = CrossbarDriver(GoldenTransport(SMALL))
    levels = np.zeros((SMALL.rows, SMALL.cols), dtype=np.int64)
    levels[7, 7] = SMALL.levels
    with pytest.raises(ValueError, match="levels"):
        driver.program_levels(levels)
    with pytest.raises(ValueError, match="does not fit"):
        driver.write_cell(0, 0, 1 << 16)  # wider than the field
    with pytest.raises(ValueError, match="table"):
        driver.set_sigma("both", [0] * 16)
    assert driver.bytes_sent == 0 and driver.commands_sent == 0


def test_the_configuration_is_discovered_from_status():
    config = CrossbarConfig(rows=16, cols=4, lanes=4, g_bits=10, x_bits=12)
    transport = GoldenTransport(config)
    transport.config = None
    driver = CrossbarDriver(transport)
    c = driver.config
    assert (c.rows, c.cols, c.lanes, c.g_bits, c.x_bits, c.levels) == (16, 4, 4, 10, 12, 1024)
    driver.program_levels(np.full((16, 4), 1000))
    assert np.array_equal(driver.vmm(np.ones(16, dtype=int)), np.full(4, 16000))


def test_amaranth_keeps_state_under_back_pressure_and_matches_golden():
    rng = np.random.default_rng(5)
    c = NOISY
    tested = AmaranthTransport(c, idle_in=0.3, stall_out=0.3, seed=5)
    checked = CheckedTransport(tested, GoldenTransport(c))
    driver = CrossbarDriver(checked)
    driver.program_levels(rng.integers(0, c.levels, (c.rows, c.cols)))
    cycles = tested.cycles
    y = driver.vmm_batch(rng.integers(-500, 500, (3, c.rows)))
    assert y.shape == (3, c.cols)
    assert tested.cycles > cycles and tested.vmm_cycles >= c.rows * c.cols // c.lanes
    driver.pulse(0, 0, 5)
    assert driver.read_cell(0, 0) == checked.reference.engine.crossbar.read_cell(0, 0)
    assert checked.bit_exact and checked.bytes_compared == driver.bytes_received > 0
    with pytest.raises(TimeoutError, match="idle"):
        tested.receive(1)  # nothing more will come


def test_amaranth_wide_beats():
    rng = np.random.default_rng(6)
    c = SMALL
    transport = AmaranthTransport(c, engine=Engine(c, stream_bytes=3), idle_in=0.2, seed=6)
    assert transport.stream_bytes == 3
    driver = CrossbarDriver(CheckedTransport(transport, GoldenTransport(c)))
    driver.program_levels(rng.integers(0, c.levels, (c.rows, c.cols)))
    driver.vmm_batch(rng.integers(-500, 500, (2, c.rows)))
    driver.sync()


def test_checked_transport_reports_a_difference():
    c = SMALL
    checked = CheckedTransport(GoldenTransport(c.replace(adc_bits=8)), GoldenTransport(c))
    driver = CrossbarDriver(checked)
    driver.program_levels(np.full((c.rows, c.cols), 5000))
    with pytest.raises(Mismatch, match="response byte"):
        driver.vmm(np.full(c.rows, 1000))
    assert checked.mismatches > 0 and not checked.bit_exact
    # 8 WRITE_ROW and one LOAD_INPUT answer (2 bytes each), then RUN_VMM's head: byte 20.
    assert checked.first_mismatch == 20


def test_replay_runs_the_recorded_session_on_a_backend():
    from molxbar.sim.backends import run_stream

    c = NOISY
    rng = np.random.default_rng(7)
    replay = ReplayTransport(c, lambda commands: run_stream(c, commands, "amaranth").responses)
    driver = CrossbarDriver(replay)
    driver.program_levels(rng.integers(0, c.levels, (c.rows, c.cols)))
    y = driver.vmm_batch(rng.integers(-100, 100, (2, c.rows)))
    assert y.shape == (2, c.cols)
    assert replay.check() and replay.bit_exact
    assert replay.bytes_compared == len(replay.responses) == driver.bytes_received
    broken = ReplayTransport(c, lambda commands: GoldenEngine(c.replace(seed=1)).execute(commands))
    other = CrossbarDriver(broken)
    other.program_levels(np.full((c.rows, c.cols), 10_000))
    other.vmm_batch(np.full((2, c.rows), 100))
    assert not broken.check() and broken.first_mismatch is not None


def test_serial_transport_on_an_open_port():
    port = serial.serial_for_url("loop://", timeout=0.01)
    transport = SerialTransport(port, baudrate=9600, timeout=0.1)
    assert transport.line_time(960) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="timeout"):
        SerialTransport(port, timeout=0)
    with CrossbarDriver(transport, SMALL):
        assert port.is_open
    assert not port.is_open
