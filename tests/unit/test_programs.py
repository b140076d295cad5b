"""Programs over the driver: program-and-verify, tiled and complex matrices, DFTs, training."""

import numpy as np
import pytest

from molxbar.emulator import CrossbarConfig
from molxbar.emulator.mapping import MappedMatrix, TiledMatrix
from molxbar.emulator.metrics import snr_db
from molxbar.emulator.workloads import ComplexTransform, dft_matrix, idft2_blocks
from molxbar.host.driver import CrossbarDriver
from molxbar.host.programs import (
    CrossbarMatrix,
    dft_on_crossbars,
    idft2_on_crossbars,
    image_blocks,
    image_from_blocks,
    make_classes,
    program_and_verify,
    train_classifier,
)
from molxbar.host.transports import CheckedTransport, GoldenTransport
from molxbar.sim.transport import AmaranthTransport

SMALL = CrossbarConfig(rows=8, cols=8, lanes=2)
# Direct writes land about 1.5 levels off: many cells need correcting.
ROUGH = SMALL.replace(write_sigma=1.5, write_noise=True, seed=11)


def golden(config=SMALL, count=1):
    return [CrossbarDriver(GoldenTransport(config)) for _ in range(count)]


def test_program_and_verify_converges_with_write_noise():
    rng = np.random.default_rng(1)
    (driver,) = golden(ROUGH)
    target = rng.integers(10, ROUGH.levels - 10, (ROUGH.rows, ROUGH.cols))
    report = program_and_verify(driver, target)
    assert report.initial_errors > ROUGH.rows * ROUGH.cols // 4
    assert report.converged and report.rounds == 1 and report.max_error == 0
    assert report.pulse_commands == report.initial_errors
    assert np.array_equal(driver.read_levels(), target)


def test_program_and_verify_with_bounded_pulses_reports_what_is_left():
    rng = np.random.default_rng(2)
    target = rng.integers(10, ROUGH.levels - 10, (ROUGH.rows, ROUGH.cols))
    (driver,) = golden(ROUGH)
    short = program_and_verify(driver, target, max_rounds=1, max_step=1)
    stored = driver.read_levels()
    assert short.rounds == 1 and not short.converged
    assert short.remaining_errors == np.count_nonzero(stored != target) > 0
    assert short.max_error == np.abs(stored - target).max() >= 1
    (driver,) = golden(ROUGH)
    full = program_and_verify(driver, target, max_rounds=8, max_step=1)
    assert full.converged and 2 <= full.rounds <= 8
    assert full.pulses >= full.pulse_commands
    assert np.array_equal(driver.read_levels(), target)
    (driver,) = golden(ROUGH)
    none = program_and_verify(driver, target, max_rounds=0)
    assert none.rounds == 0 and none.remaining_errors == none.initial_errors > 0


@pytest.mark.parametrize("scheme", ["offset", "differential"])
def test_a_tiled_matrix_matches_the_emulator_on_one_or_many_crossbars(scheme):
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((20, 13))
    x = rng.standard_normal((5, 20))
    mapped = MappedMatrix.from_real(weights, SMALL, scheme)
    want = TiledMatrix(mapped)(x)  # the emulator's own golden crossbars
    many = CrossbarMatrix(weights, golden(count=mapped.n_tiles), scheme)
    one = CrossbarMatrix(weights, golden(), scheme)
    assert many.mapped.n_tiles == mapped.n_tiles == (6 if scheme == "offset" else 12)
    assert np.array_equal(many(x), want) and np.array_equal(one(x), want)
    assert many.tiles.programmings == mapped.n_tiles  # programmed once, each on its own
    assert one.tiles.programmings > mapped.n_tiles  # one crossbar, reprogrammed per tile
    assert snr_db(want, x @ weights) > 50
    assert np.array_equal(one(x[0]), want[0])


def test_an_adc_shift_other_than_the_configuration_is_refused():
    (driver,) = golden()
    driver.set_adc(None, 3)
    with pytest.raises(ValueError, match="ADC shift 3"):
        CrossbarMatrix(np.eye(4), [driver])
    adc = SMALL.replace(adc_bits=40, adc_shift=3)
    matrix = CrossbarMatrix(np.eye(4), golden(adc))
    assert np.allclose(matrix(np.arange(4.0)), np.arange(4.0), atol=1e-3)


def test_signed_and_complex_vmm_match_the_emulator():
    rng = np.random.default_rng(4)
    matrix = rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))
    x = rng.standard_normal((4, 6)) + 1j * rng.standard_normal((4, 6))
    on = CrossbarMatrix(matrix, golden(count=2), "differential")
    want = ComplexTransform(matrix, SMALL, "differential")(x)
    assert np.array_equal(on(x), want)
    assert snr_db(on(x), x @ matrix) > 50
    assert on.vmms > 0


def test_dft_and_image_idft_on_crossbars():
    rng = np.random.default_rng(5)
    signals = rng.standard_normal((6, 16))
    y, matrix = dft_on_crossbars(signals, golden(count=2))
    assert snr_db(y, np.fft.fft(signals, axis=1)) > 60
    assert matrix.mapped.shape == (16, 32)  # real inputs: [Mr, Mi] only
    inverse, _ = dft_on_crossbars(y, golden(), inverse=True)
    assert snr_db(inverse.real, signals) > 55

    image = rng.random((16, 24))
    blocks = image_blocks(image, 8)
    assert blocks.shape == (6, 8, 8)
    assert np.array_equal(blocks[1], image[:8, 8:16])
    assert np.array_equal(image_from_blocks(blocks, image.shape), image)
    spectra = np.fft.fft2(blocks)
    result, matrix = idft2_on_crossbars(spectra, golden())
    reference = idft2_blocks(spectra, ComplexTransform(dft_matrix(8, inverse=True), SMALL))
    assert np.array_equal(result, reference)
    assert snr_db(image_from_blocks(result.real, image.shape), image) > 55
    with pytest.raises(ValueError, match="8x8 blocks"):
        image_blocks(image[:, :20], 8)


def test_training_with_rank1_updates_reaches_least_squares_accuracy():
    config = CrossbarConfig(rows=16, cols=8, lanes=2)
    features, labels = make_classes(n_classes=3, n_features=6, per_class=60, seed=6)
    (driver,) = golden(config)
    result = train_classifier(driver, features, labels, epochs=6, batch=8)
    assert result.updates == 6 * 126
    assert result.loss[-1] < 0.7 * result.loss[0]
    assert result.test_accuracy >= result.float_test_accuracy - 0.05
    assert result.test_accuracy > 0.8
    assert result.weights.shape == (7, 3) and np.abs(result.weights).max() > 0.01
    assert driver.status()["update_shift"] == result.update_shift


def test_programs_run_bit_exact_on_the_gateware():
    rng = np.random.default_rng(7)
    config = ROUGH.replace(read_sigma=0.3, read_noise=True)
    checked = CheckedTransport(AmaranthTransport(config), GoldenTransport(config))
    driver = CrossbarDriver(checked)
    weights = rng.standard_normal((12, 5))
    matrix = CrossbarMatrix(weights, [driver], "offset")
    assert matrix.tiles.verify == [True]  # asked the engine: write error is on
    y = matrix(rng.standard_normal((2, 12)))
    assert y.shape == (2, 5)
    assert matrix.tiles.reports and all(r.converged for r in matrix.tiles.reports)
    assert checked.bit_exact and checked.bytes_compared > 1000
