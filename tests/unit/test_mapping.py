"""Signed and complex matrices on crossbar tiles: mappings, two-phase inputs, tiling."""

import numpy as np
import pytest

from molxbar.emulator import CrossbarConfig, preset
from molxbar.emulator.mapping import (
    MappedMatrix,
    TiledMatrix,
    complex_to_real,
    quantize_inputs,
    split_signed,
)

SMALL = CrossbarConfig(rows=8, cols=8, g_bits=8, x_bits=8)


@pytest.mark.parametrize("scheme", ["offset", "differential"])
def test_dequantized_error_is_at_most_half_a_step(scheme):
    rng = np.random.default_rng(1)
    w = rng.uniform(-3, 3, size=(20, 13))
    mapped = MappedMatrix.from_real(w, preset("ideal14"), scheme)
    assert mapped.physical.min() >= 0 and mapped.physical.max() <= mapped.config.g_max
    assert np.max(np.abs(mapped.dequantized() - w)) <= mapped.step / 2 + 1e-12


def test_offset_levels_and_differential_pairs():
    w = np.array([[1.0, -1.0, 0.0, 0.5]])
    offset = MappedMatrix.from_real(w, SMALL, "offset")
    assert offset.offset == 127 and offset.step == pytest.approx(1 / 127)
    assert offset.physical.tolist() == [[254, 0, 127, 191]]
    diff = MappedMatrix.from_real(w, SMALL, "differential")
    assert diff.offset == 0 and diff.step == pytest.approx(1 / 255)
    assert diff.physical.tolist() == [[255, 0, 0, 255, 0, 0, 128, 0]]


@pytest.mark.parametrize("scheme", ["offset", "differential"])
@pytest.mark.parametrize("shape", [(8, 8), (5, 3), (19, 11), (8, 17)])
def test_tiled_integer_result_is_exact(scheme, shape):
    """Tiles, two phases and the baseline reproduce codes @ levels exactly."""
    seed = hash((scheme, shape)) % 2**32
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, size=shape)
    mapped = MappedMatrix.from_real(w, SMALL, scheme)
    tiled = TiledMatrix(mapped)
    codes = rng.integers(-SMALL.x_max, SMALL.x_max + 1, size=(6, shape[0]))
    expected = codes @ (mapped.dequantized() / mapped.step).round().astype(np.int64)
    np.testing.assert_array_equal(tiled.matmul_codes(codes), expected, err_msg=f"seed {seed}")
    rows_tiles = -(-shape[0] // 8)
    cols_tiles = -(-(shape[1] * (2 if scheme == "differential" else 1)) // 8)
    assert mapped.n_tiles == rows_tiles * cols_tiles
    assert tiled.vmm_count == 2 * 6 * mapped.n_tiles  # two phases of 6 vectors on every tile


def test_real_matmul_is_close_to_float():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((64, 40))
    x = rng.standard_normal((10, 64))
    tiled = TiledMatrix(MappedMatrix.from_real(w, preset("ideal14"), "offset"))
    y = tiled(x)
    assert y.shape == (10, 40)
    assert np.max(np.abs(y - x @ w)) < 1e-3 * np.max(np.abs(x @ w))
    np.testing.assert_allclose(tiled(x[0]), y[0])


def test_adc_shift_is_undone_by_the_output_gain():
    config = SMALL.replace(adc_shift=3)
    rng = np.random.default_rng(3)
    mapped = MappedMatrix.from_real(rng.uniform(0, 1, (8, 8)), config, "offset")
    codes = rng.integers(0, 128, size=(4, 8))
    exact = TiledMatrix(MappedMatrix.from_real(mapped.dequantized(), SMALL, "offset")).matmul_codes(
        codes
    )
    shifted = TiledMatrix(mapped).matmul_codes(codes)
    assert np.max(np.abs(shifted - exact)) <= 8  # one rounding of 2**3 per output


def test_quantize_inputs_uses_the_symmetric_range():
    codes, scale = quantize_inputs([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]], SMALL)
    assert codes.tolist() == [[64, -127, 32], [0, 0, 0]]
    assert scale.tolist() == [1 / 127, 1.0]
    phases = split_signed(codes)
    assert len(phases) == 2
    np.testing.assert_array_equal(phases[0] - phases[1], codes)
    assert len(split_signed(np.abs(codes))) == 1


def test_complex_to_real_computes_the_complex_product():
    rng = np.random.default_rng(4)
    m = rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))
    x = rng.standard_normal((2, 5)) + 1j * rng.standard_normal((2, 5))
    y = np.hstack([x.real, x.imag]) @ complex_to_real(m)
    np.testing.assert_allclose(y[:, :3] + 1j * y[:, 3:], x @ m)
    xr = x.real
    y = xr @ complex_to_real(m, complex_inputs=False)
    np.testing.assert_allclose(y[:, :3] + 1j * y[:, 3:], xr @ m)


@pytest.mark.parametrize(
    ("weights", "kwargs", "message"),
    [
        (np.ones(3), {}, "2-D"),
        ([[np.nan]], {}, "finite"),
        ([[1.0]], {"scheme": "bipolar"}, "scheme = 'bipolar'"),
        ([[1.0]], {"step": 0.0}, "step = 0.0"),
        ([[300.0]], {"step": 1.0}, "300 needs 300.0 levels at step 1, more than the 127"),
    ],
)
def test_mapping_errors_name_the_value(weights, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MappedMatrix.from_real(weights, SMALL, **kwargs)


def test_input_errors():
    tiled = TiledMatrix(MappedMatrix.from_real(np.eye(4), SMALL))
    with pytest.raises(ValueError, match=r"expected \(batch, 4\)"):
        tiled.matmul_codes(np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="finite"):
        tiled([np.inf, 0, 0, 0])
