"""Fourier transforms on the crossbar, test signals, the sky image and the SNR metrics."""

import math

import numpy as np
import pytest

from molxbar.emulator import preset
from molxbar.emulator.device import PAPER_SNR_DB
from molxbar.emulator.metrics import enob, snr_db
from molxbar.emulator.workloads import (
    ComplexTransform,
    astro_image,
    dft_matrix,
    idft2_blocks,
    make_signals,
    predicted_snr_db,
    run_dft,
)


def test_dft_matrix_matches_numpy():
    x = np.random.default_rng(0).standard_normal((3, 16)) + 0j
    np.testing.assert_allclose(x @ dft_matrix(16), np.fft.fft(x, axis=1), atol=1e-12)
    np.testing.assert_allclose(x @ dft_matrix(16, inverse=True), np.fft.ifft(x, axis=1), atol=1e-12)


def test_snr_and_enob():
    ref = np.array([3.0, 4.0])
    assert snr_db(ref, ref) == math.inf
    assert snr_db(ref + [0.0, 0.05], ref) == pytest.approx(10 * math.log10(25 / 0.0025))
    assert snr_db(np.array([1j]), np.array([1 + 0j])) == pytest.approx(-10 * math.log10(2))
    assert enob(74.0) == pytest.approx(12.0, abs=1e-3)
    with pytest.raises(ValueError, match="shape"):
        snr_db(np.zeros(2), np.zeros(3))


@pytest.mark.parametrize("kind", ["gaussian", "tones", "chirp"])
@pytest.mark.parametrize("scheme", ["offset", "differential"])
def test_ideal14_dft_snr_matches_the_prediction(kind, scheme):
    result = run_dft(preset("ideal14"), kind=kind, scheme=scheme, batch=64)
    assert abs(result.snr_db - result.predicted_snr_db) < 1.0, result.summary()
    assert result.snr_db > 80  # 14-bit weights, 16-bit inputs


@pytest.mark.parametrize("scheme", ["offset", "differential"])
def test_ru_azo_dft_snr_beats_the_paper(scheme):
    result = run_dft(preset("ru_azo_2024"), scheme=scheme, batch=64)
    assert result.snr_db > PAPER_SNR_DB, result.summary()
    # The prediction counts read noise too, so it stays close.
    assert abs(result.snr_db - result.predicted_snr_db) < 1.0, result.summary()


def test_fewer_levels_cost_six_db_per_bit():
    """Halving the levels (weights dominate) costs 4-7 dB (6 dB for uniform rounding
    errors; the few distinct DFT coefficients round less evenly); the prediction follows."""
    snrs = []
    for g_bits in (6, 7, 8):
        config = preset("ideal14", g_bits=g_bits)
        result = run_dft(config, batch=64)
        snrs.append(result.snr_db)
        assert abs(result.snr_db - result.predicted_snr_db) < 1.0, (g_bits, result.summary())
    steps = np.diff(snrs)
    assert np.all((steps > 4.0) & (steps < 7.5)), snrs


def test_adc_shift_lowers_snr_as_predicted():
    config = preset("ideal14", adc_shift=20)
    signals = make_signals(64, 64, "gaussian", seed=5)
    transform = ComplexTransform(dft_matrix(64), config, real_inputs=True)
    snr = snr_db(transform(signals), np.fft.fft(signals, axis=1))
    predicted = predicted_snr_db(transform, signals)
    assert predicted["adc"] < predicted["weights"]  # the ADC dominates at this shift
    assert abs(snr - predicted["total"]) < 1.0, (snr, predicted)


def test_complex_inputs_idft():
    rng = np.random.default_rng(6)
    spectra = rng.standard_normal((8, 64)) + 1j * rng.standard_normal((8, 64))
    transform = ComplexTransform(dft_matrix(64, inverse=True), preset("ideal14"))
    assert transform.mapped.n_tiles == 4  # 128 x 128 real matrix
    assert snr_db(transform(spectra), np.fft.ifft(spectra, axis=1)) > 75


def test_idft2_blocks_reconstructs_the_image():
    image = astro_image(128)
    blocks = image.reshape(2, 64, 2, 64).transpose(0, 2, 1, 3).reshape(4, 64, 64)
    transform = ComplexTransform(dft_matrix(64, inverse=True), preset("ideal14"))
    result = idft2_blocks(np.fft.fft2(blocks), transform)
    assert result.shape == blocks.shape
    assert snr_db(result.real, blocks) > 70
    with pytest.raises(ValueError, match="expected"):
        idft2_blocks(np.zeros((1, 32, 32)), transform)


def test_astro_image_is_a_deterministic_sky():
    image = astro_image(128, seed=1)
    assert image.shape == (128, 128)
    assert image.min() >= 0.0 and image.max() == 1.0
    np.testing.assert_array_equal(image, astro_image(128, seed=1))
    assert not np.array_equal(image, astro_image(128, seed=2))
    # Stars: a few very bright pixels above a dimmer nebula.
    assert np.mean(image > 0.9) < 0.02 and np.median(image) < 0.5
    with pytest.raises(ValueError, match="size"):
        astro_image(4)


def test_signals_kinds_and_errors():
    for kind in ("gaussian", "tones", "chirp"):
        s = make_signals(32, 4, kind, seed=1)
        assert s.shape == (4, 32) and np.all(np.isfinite(s))
        np.testing.assert_array_equal(s, make_signals(32, 4, kind, seed=1))
    with pytest.raises(ValueError, match="kind = 'square'"):
        make_signals(32, 4, "square")
