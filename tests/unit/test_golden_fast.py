"""The golden model's batched VMM against a straightforward one, over random configurations.

``Crossbar.vmm_batch`` streams a batch in chunks, goes through float64 products where they
are exact, and computes the per-cell read noise either in one compiled loop (numba) or with
NumPy, folded into one product per vector; each test runs both. The straightforward
VMM here restates docs/arithmetic.md cell by cell in int64 NumPy (the noise words come from
the plain-Python reference), so it shares no code with those fast paths. Configurations are
drawn from the seeded ``rng``: 1-row and 1-column arrays, the widest inputs and levels a
63-bit accumulator allows, every level at its maximum, ADC on and off with saturation,
leakage on and off, read and write noise, and chunks down to one vector.
"""

from __future__ import annotations

import numpy as np
import pytest

from molxbar.emulator import Crossbar, CrossbarConfig, golden
from molxbar.emulator.config import MAX_ADC_BITS, NOISE_FRAC_BITS
from tests.support import reference as ref

# Chunk sizes small enough for a batch of a few dozen vectors to cross several chunk and
# sub-chunk boundaries.
SMALL_CHUNKS = [(1, 1), (3, 64), (7, 1 << 10), (golden._CHUNK_VECTORS, golden._CHUNK_CELLS)]


@pytest.fixture(params=["numpy", "compiled"])
def noise_path(request, monkeypatch):
    """Run the test with the read noise of the NumPy path, then of the compiled kernel."""
    if request.param == "compiled":
        pytest.importorskip("numba")
        assert golden._compiled_read_noise() is not None
    monkeypatch.setattr(golden, "_COMPILED_NOISE", request.param == "compiled")
    return request.param


def random_config(rng: np.random.Generator) -> CrossbarConfig:
    """A random configuration the golden model accepts, biased toward the edges."""
    while True:
        rows = int(rng.choice([1, 2, int(rng.integers(3, 40)), 64]))
        cols = int(rng.choice([1, 2, int(rng.integers(3, 40))]))
        g_bits = int(rng.integers(4, 25))
        x_bits = int(rng.choice([2, int(rng.integers(3, 25)), 24]))
        noise = bool(rng.random() < 0.6)
        leakage = bool(rng.random() < 0.5)
        adc = rng.random() < 0.6
        changes = dict(
            rows=rows,
            cols=cols,
            lanes=1,
            g_bits=g_bits,
            levels=None if rng.random() < 0.5 else int(rng.integers(2, 2**g_bits + 1)),
            x_bits=x_bits,
            adc_bits=int(rng.choice([2, 3, int(rng.integers(4, MAX_ADC_BITS + 1))]))
            if adc
            else None,
            adc_shift=int(rng.choice([0, int(rng.integers(0, 24)), 63])),
            rect_shift=int(rng.choice([0, int(rng.integers(1, 20)), 63])) if leakage else None,
            read_noise=noise,
            write_noise=noise and bool(rng.random() < 0.5),
            seed=int(rng.integers(0, 2**32)),
        )
        try:
            config = CrossbarConfig(**changes)
        except ValueError:  # a 63-bit accumulator is too narrow: draw again
            continue
        if noise:
            top = config.sigma_max * float(rng.choice([0.01, 0.3, 1.0]))
            config = config.replace(read_sigma=top, write_sigma=top / 4)
        return config


def random_levels(rng: np.random.Generator, c: CrossbarConfig) -> np.ndarray:
    """Uniform levels, a sprinkling of 0 and g_max, or every cell at g_max."""
    if rng.random() < 0.2:
        return np.full((c.rows, c.cols), c.g_max)
    levels = rng.integers(0, c.levels, size=(c.rows, c.cols))
    pick = rng.random(levels.shape)
    levels[pick < 0.1] = 0
    levels[pick > 0.8] = c.g_max
    return levels


def random_inputs(rng: np.random.Generator, c: CrossbarConfig, batch: int) -> np.ndarray:
    """Uniform codes with x_min, x_max, 0 and -1 sprinkled, or whole vectors at x_min/x_max."""
    x = rng.integers(c.x_min, c.x_max + 1, size=(batch, c.rows))
    pick = rng.random(x.shape)
    x[pick < 0.15] = c.x_min
    x[(pick >= 0.15) & (pick < 0.3)] = c.x_max
    x[(pick >= 0.3) & (pick < 0.35)] = 0
    x[(pick >= 0.35) & (pick < 0.4)] = -1
    x[rng.random(batch) < 0.1] = c.x_max
    x[rng.random(batch) < 0.1] = c.x_min
    return x


def contrib(x: np.ndarray, v: np.ndarray, rect_shift: int | None) -> np.ndarray:
    """``x*v`` where ``x >= 0``; else ``(x*v) >> rect_shift``, or 0 for ideal cells."""
    product = x * v
    if rect_shift is None:
        return np.where(x >= 0, product, 0)
    return np.where(x >= 0, product, product >> rect_shift)


def straightforward_vmm(
    c: CrossbarConfig, levels: np.ndarray, inputs: np.ndarray, counter: int
) -> list[list[int]]:
    """The ADC outputs of ``inputs``, one vector and one cell at a time, per the contract."""
    segments = levels >> (c.g_bits - 4)
    outputs = []
    for b, x in enumerate(inputs):
        column = x[:, None]
        fine = contrib(column, levels, c.rect_shift).sum(axis=0)
        shift = c.adc_shift
        if c.read_noise:
            rows, cols = ref.operation_words(c.seed, (counter + b) % 2**32, c.rows, c.cols)
            z = np.array([[ref.deviate(r, w) for w in cols] for r in rows], dtype=np.int64)
            noise = z * np.array(c.read_sigma_table, dtype=np.int64)[segments]
            fine = fine * 2**NOISE_FRAC_BITS + contrib(column, noise, c.rect_shift).sum(axis=0)
            shift += NOISE_FRAC_BITS
        outputs.append([ref.saturate(ref.round_half_away(int(v), shift), c.adc_bits) for v in fine])
    return outputs


@pytest.mark.parametrize("chunks", SMALL_CHUNKS, ids=lambda v: f"{v[0]}v-{v[1]}c")
def test_batched_vmm_equals_the_straightforward_one(chunks, noise_path, rng, monkeypatch):
    monkeypatch.setattr(golden, "_CHUNK_VECTORS", chunks[0])
    monkeypatch.setattr(golden, "_CHUNK_CELLS", chunks[1])
    for trial in range(12):
        c = random_config(rng)
        xb = Crossbar(c)
        levels = random_levels(rng, c)
        xb.write_levels(levels)
        stored = xb.levels.copy()
        if not c.write_noise:
            np.testing.assert_array_equal(stored, levels)
        counter = xb.noise_counter
        inputs = random_inputs(rng, c, int(rng.integers(1, 24)))
        got = xb.vmm_batch(inputs)
        where = f"trial {trial}: {c}"
        assert got.dtype == np.int64, where
        assert got.tolist() == straightforward_vmm(c, stored, inputs, counter), where
        advanced = inputs.shape[0] if c.read_noise else 0
        assert xb.noise_counter == (counter + advanced) % 2**32, where
        np.testing.assert_array_equal(xb.levels, stored, err_msg=where)


def test_write_noise_and_vmm_equal_the_reference(noise_path, rng):
    """Write noise stores what the reference stores, and the VMMs that follow agree."""
    for trial in range(6):
        c = random_config(rng).replace(rows=int(rng.integers(1, 9)), cols=int(rng.integers(1, 9)))
        c = c.replace(
            write_noise=True, read_noise=bool(rng.random() < 0.5), write_sigma=c.sigma_max
        )
        xb, model = Crossbar(c), ref.RefCrossbar(c)
        levels = random_levels(rng, c)
        xb.write_levels(levels)
        model.write_levels(levels.tolist())
        where = f"trial {trial}: {c}"
        assert xb.levels.tolist() == model.g, where
        inputs = random_inputs(rng, c, 5)
        assert xb.vmm_batch(inputs).tolist() == model.vmm_batch(inputs.tolist()), where
        assert xb.noise_counter == model.noise_counter, where


@pytest.mark.parametrize("adc_bits", [None, 2, 24])
@pytest.mark.parametrize("rect_shift", [None, 0, 5])
@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (1, 37), (37, 1), (64, 64)])
def test_extremes_at_the_widest_accumulator(rows, cols, rect_shift, adc_bits, noise_path, rng):
    """Every level and input at its extreme, for the widest inputs a 63-bit accumulator
    allows: the sums that most need exact arithmetic, and outputs that saturate."""
    base = dict(rows=rows, cols=cols, lanes=1, g_bits=16, rect_shift=rect_shift)
    base.update(adc_bits=adc_bits, read_noise=True, read_sigma=4.0, seed=int(rng.integers(2**32)))
    x_bits = max(
        bits for bits in range(2, 25) if CrossbarConfig(**base, x_bits=bits).acc_fine_bits <= 63
    )
    c = CrossbarConfig(**base, x_bits=x_bits)
    xb = Crossbar(c)
    xb.write_levels(np.full((rows, cols), c.g_max))
    inputs = np.array(
        [[c.x_max] * rows, [c.x_min] * rows, [c.x_min, c.x_max] * (rows // 2) + [0] * (rows % 2)]
    )
    got = xb.vmm_batch(inputs)
    assert got.tolist() == straightforward_vmm(c, xb.levels, inputs, 0), f"{c}"
    if adc_bits is not None:
        assert got.max() == 2 ** (adc_bits - 1) - 1, "full-scale input must saturate"


def test_compiled_noise_equals_the_numpy_path(rng, monkeypatch):
    """Long batches, large and lopsided arrays, counters that wrap past 2**32 - 1."""
    pytest.importorskip("numba")
    shapes = [(1, 1), (1, 200), (200, 1), (64, 64), (300, 7), (5, 700)]
    for trial, (rows, cols) in enumerate(shapes):
        c = random_config(rng).replace(rows=rows, cols=cols, read_noise=True)
        c = c.replace(read_sigma=c.sigma_max * float(rng.choice([0.05, 1.0])))
        levels = random_levels(rng, c)
        inputs = random_inputs(rng, c, int(rng.integers(1, 1200)))
        counter = 2**32 - int(rng.integers(1, 600))
        table = rng.integers(0, 4096, size=16)
        table[rng.random(16) < 0.2] = 4095
        results = []
        for compiled in (False, True):
            monkeypatch.setattr(golden, "_COMPILED_NOISE", compiled)
            xb = Crossbar(c)
            xb.write_levels(levels)
            xb.noise_counter = counter
            xb.set_noise(read_table=table.tolist() if trial % 2 else None)
            results.append((xb.vmm_batch(inputs), xb.noise_counter))
        where = f"trial {trial}: {c}"
        np.testing.assert_array_equal(results[1][0], results[0][0], err_msg=where)
        assert results[1][1] == results[0][1], where


def test_numpy_read_noise_switches_the_path_for_its_block():
    pytest.importorskip("numba")
    assert golden.read_noise_path() == "numba"
    with golden.numpy_read_noise():
        assert golden.read_noise_path() == "numpy"
    assert golden.read_noise_path() == "numba"
