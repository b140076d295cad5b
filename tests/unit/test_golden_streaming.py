"""The golden model's fast paths give the integers of its plain paths.

A batch streams through ``vmm_batch`` in chunks, the levels are cached as float64, and exact
float64 products stand in for int64 ones. None of that may change a result: these tests pin
each fast path to a slow one (smaller chunks, the int64 path, a fresh crossbar, the
plain-Python reference), with the read noise of the NumPy path and of the compiled kernel.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from molxbar.emulator import Crossbar, CrossbarConfig, golden, preset
from tests.support import reference as ref
from tests.unit.test_golden_fast import noise_path  # noqa: F401 (a fixture: both noise paths)

CONFIGS = [
    pytest.param(preset("ideal14"), id="ideal14"),
    pytest.param(preset("ru_azo_2024", write_noise=False), id="ru_azo_2024"),
    pytest.param(
        preset("ru_azo_2024", write_noise=False, rect_shift=5, adc_bits=24, adc_shift=3),
        id="ru_azo_2024-leaky-adc",
    ),
    pytest.param(
        CrossbarConfig(rows=5, cols=3, lanes=1, g_bits=16, x_bits=16, rect_shift=0),
        id="5x3-rect0",
    ),
    pytest.param(
        CrossbarConfig(
            rows=7, cols=2, lanes=1, g_bits=6, x_bits=3, read_noise=True, read_sigma=0.5
        ),
        id="7x2-noisy",
    ),
]


def loaded(c: CrossbarConfig, rng: np.random.Generator) -> Crossbar:
    xb = Crossbar(c)
    xb.write_levels(rng.integers(0, c.levels, size=(c.rows, c.cols)))
    return xb


def codes(c: CrossbarConfig, rng: np.random.Generator, batch: int) -> np.ndarray:
    x = rng.integers(c.x_min, c.x_max + 1, size=(batch, c.rows))
    x[rng.random(x.shape) < 0.1] = c.x_min
    return x


@pytest.mark.parametrize("c", CONFIGS)
@pytest.mark.parametrize("chunk", [1, 3, 64])
@pytest.mark.usefixtures("noise_path")
def test_chunked_batch_equals_one_chunk(c, chunk, rng, monkeypatch):
    levels = rng.integers(0, c.levels, size=(c.rows, c.cols))
    inputs = codes(c, rng, 200)
    whole, chunked = Crossbar(c), Crossbar(c)
    whole.write_levels(levels)
    chunked.write_levels(levels)
    want = whole.vmm_batch(inputs)  # 200 vectors: one chunk
    monkeypatch.setattr(golden, "_CHUNK_VECTORS", chunk)
    got = chunked.vmm_batch(inputs)
    np.testing.assert_array_equal(got, want)
    assert chunked.noise_counter == whole.noise_counter
    np.testing.assert_array_equal(chunked.accumulate(inputs), whole.accumulate(inputs))


@pytest.mark.parametrize("c", CONFIGS)
@pytest.mark.usefixtures("noise_path")
def test_int64_paths_equal_the_float_paths(c, rng, monkeypatch):
    """With float64 declared inexact, every product goes through int64 arithmetic."""
    levels = rng.integers(0, c.levels, size=(c.rows, c.cols))
    inputs = codes(c, rng, 40)
    fast, slow = Crossbar(c), Crossbar(c)
    fast.write_levels(levels)
    slow.write_levels(levels)
    want = fast.vmm_batch(inputs)
    monkeypatch.setattr(golden, "_FLOAT_EXACT_BITS", 0)
    np.testing.assert_array_equal(slow.vmm_batch(inputs), want)
    np.testing.assert_array_equal(slow.accumulate(inputs), fast.accumulate(inputs))


@pytest.mark.parametrize("c", CONFIGS)
def test_every_change_of_levels_reaches_the_next_vmm(c, rng):
    """The cached float64 levels and noise amplitudes follow writes, pulses and updates."""
    rg = rng
    xb = loaded(c, rg)
    model = ref.RefCrossbar(c)
    model.write_levels(xb.levels.tolist())
    x = codes(c, rg, 1)[0]
    changes = [
        ("write_cell", (c.rows - 1, 0, c.g_max)),
        ("write_row", (0, rg.integers(0, c.levels, size=c.cols))),
        ("write_levels", (rg.integers(0, c.levels, size=(c.rows, c.cols)),)),
        ("pulse_cell", (0, c.cols - 1, -3)),
        ("pulse", (rg.integers(-5, 6, size=(c.rows, c.cols)),)),
        ("update_rank1", (codes(c, rg, 1)[0], rg.integers(c.x_min, c.x_max + 1, c.cols), 2)),
        ("set_noise", ()),
    ]
    for name, args in changes:
        if name == "set_noise":
            if not c.noise_hardware:
                continue
            table = rg.integers(0, 4096, size=16).tolist()
            xb.set_noise(read_table=table)
            model.set_noise(read_table=table)
        else:
            getattr(xb, name)(*args)
            getattr(model, name)(*(a.tolist() if isinstance(a, np.ndarray) else a for a in args))
        assert xb.vmm(x).tolist() == model.vmm(x.tolist()), name
        fresh = Crossbar(c)
        fresh.write_levels(xb.levels)
        np.testing.assert_array_equal(fresh.accumulate(x), xb.accumulate(x), err_msg=name)


def test_integer_dtypes_are_taken_as_they_are(rng):
    c = preset("ru_azo_2024", write_noise=False, rect_shift=3)
    levels = rng.integers(0, c.levels, size=(c.rows, c.cols))
    inputs = codes(c, rng, 30)
    results = []
    for dtype in (np.int64, np.int32, np.int16, np.float64):
        xb = Crossbar(c)
        xb.write_levels(levels)
        results.append(xb.vmm_batch(inputs.astype(dtype)))
    for got in results[1:]:
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, results[0])
    non_negative = Crossbar(c)
    non_negative.write_levels(levels)
    reference = Crossbar(c)
    reference.write_levels(levels)
    np.testing.assert_array_equal(
        non_negative.vmm_batch(np.abs(inputs).clip(0, c.x_max).astype(np.uint16)),
        reference.vmm_batch(np.abs(inputs).clip(0, c.x_max)),
    )


@pytest.mark.parametrize("bad", [preset("ideal14").x_max + 1, preset("ideal14").x_min - 1])
def test_a_bad_code_in_a_late_chunk_changes_nothing(bad, rng, monkeypatch):
    monkeypatch.setattr(golden, "_CHUNK_VECTORS", 8)
    c = preset("ru_azo_2024", write_noise=False)
    xb = loaded(c, rng)
    xb.vmm(codes(c, rng, 1)[0])
    counter = xb.noise_counter
    inputs = codes(c, rng, 50)
    inputs[41, 5] = bad
    inputs[45, 0] = bad
    message = rf"inputs value {bad} at index \(41, 5\) is out of range"
    with pytest.raises(ValueError, match=message):
        xb.vmm_batch(inputs)
    with pytest.raises(ValueError, match=message):
        xb.accumulate(inputs)
    assert xb.noise_counter == counter


@pytest.mark.parametrize("name", ["ideal14", "ru_azo_2024"])
@pytest.mark.usefixtures("noise_path")
def test_a_long_batch_needs_little_more_than_its_output(name, rng):
    c = preset(name, write_noise=False)
    xb = loaded(c, rng)
    inputs = codes(c, rng, 20_000)
    xb.vmm_batch(inputs[:10])
    tracemalloc.start()
    try:
        out = xb.vmm_batch(inputs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The int64 output plus one chunk's scratch (a few MB), never copies of the batch.
    assert peak < out.nbytes + (8 << 20), f"peak {peak / 2**20:.1f} MiB"
