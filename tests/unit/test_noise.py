"""The counter-based noise generator: Speck64/128, words, deviates and their statistics."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molxbar.emulator import noise
from tests.support import reference as ref

# Beaulieu et al. 2013, appendix C: Speck64/128 test vector.
KEY = (0x1B1A1918, 0x13121110, 0x0B0A0908, 0x03020100)  # (l2, l1, l0, k0)
PLAINTEXT = (0x3B726574, 0x7475432D)
CIPHERTEXT = (0x8C6FA548, 0x454E028B)

u32 = st.integers(0, 2**32 - 1)


def test_documented_constants():
    assert noise.SPECK64_ROUNDS == ref.SPECK64_ROUNDS == 27
    assert noise.NOISE_KEY_DOMAIN == ref.NOISE_KEY_DOMAIN == 0x6D6F6C78
    assert (noise.AXIS_ROW, noise.AXIS_COL) == (0, 1)


def test_speck_published_vector():
    keys = noise.speck64_round_keys(*KEY)
    assert keys.shape == (27,) and keys.dtype == np.uint32
    assert int(keys[0]) == KEY[3]
    x, y = noise.speck64_encrypt(keys, *PLAINTEXT)
    assert (int(x), int(y)) == CIPHERTEXT


def test_reference_speck_published_vector():
    keys = ref.speck64_key_schedule(*KEY)
    assert len(keys) == 27
    assert ref.speck64_encrypt_block(keys, *PLAINTEXT) == CIPHERTEXT


def test_speck_vectorised_over_keys_and_blocks():
    seed = 20240805
    rng = np.random.default_rng(seed)
    n = 64
    key_words = [rng.integers(0, 2**32, size=n, dtype=np.uint64) for _ in range(4)]
    blocks_x = rng.integers(0, 2**32, size=(n, 5), dtype=np.uint64)
    blocks_y = rng.integers(0, 2**32, size=(n, 5), dtype=np.uint64)
    keys = noise.speck64_round_keys(*key_words)
    assert keys.shape == (27, n) and keys.dtype == np.uint32
    x, y = noise.speck64_encrypt(keys[..., None], blocks_x, blocks_y)
    assert x.shape == y.shape == (n, 5)
    for k in range(n):
        key = [int(w[k]) for w in key_words]
        ref_keys = ref.speck64_key_schedule(*key)
        assert [int(v) for v in keys[:, k]] == list(ref_keys), f"seed={seed} key={key}"
        for b in range(5):
            want = ref.speck64_encrypt_block(ref_keys, int(blocks_x[k, b]), int(blocks_y[k, b]))
            assert (int(x[k, b]), int(y[k, b])) == want, f"seed={seed} key={key} block={b}"


@settings(max_examples=100, deadline=None)
@given(u32, u32, u32, u32, u32, u32)
def test_speck_scalar_agrees_with_reference(l2, l1, l0, k0, bx, by):
    keys = noise.speck64_round_keys(l2, l1, l0, k0)
    want_keys = ref.speck64_key_schedule(l2, l1, l0, k0)
    assert [int(v) for v in keys] == list(want_keys)
    x, y = noise.speck64_encrypt(keys, bx, by)
    assert (int(x), int(y)) == ref.speck64_encrypt_block(want_keys, bx, by)


@settings(max_examples=60, deadline=None)
@given(u32, st.integers(0, 2**40), st.integers(1, 12), st.integers(1, 12))
def test_axis_words_agree_with_definition(seed, counter, rows, cols):
    """``R_i`` encrypts ``(0, i)`` and ``C_j`` encrypts ``(1, j)`` under the key
    ``(0x6D6F6C78, 0, seed, k mod 2**32)``; a word is ``x' * 2**32 + y'``."""
    row_words, col_words = noise.axis_words(seed, counter, rows, cols)
    assert row_words.shape == (rows,) and col_words.shape == (cols,)
    assert row_words.dtype == col_words.dtype == np.uint64
    k = counter % 2**32
    keys = ref.speck64_key_schedule(0x6D6F6C78, 0, seed, k)
    for i in range(rows):
        x, y = ref.speck64_encrypt_block(keys, 0, i)
        assert int(row_words[i]) == (x << 32) | y == ref.axis_word(seed, k, 0, i)
    for j in range(cols):
        x, y = ref.speck64_encrypt_block(keys, 1, j)
        assert int(col_words[j]) == (x << 32) | y == ref.axis_word(seed, k, 1, j)
    deviates = noise.cell_deviates(row_words, col_words)
    assert deviates.shape == (rows, cols) and deviates.dtype == np.int8
    want = [[ref.cell_deviate(seed, k, i, j) for j in range(cols)] for i in range(rows)]
    assert deviates.tolist() == want


def test_axis_words_batched_over_counters():
    seed, counters = 0xDEADBEEF, np.array([[0, 1, 2], [2**32 - 1, 2**32, 7]], dtype=np.uint64)
    row_words, col_words = noise.axis_words(seed, counters, 5, 3)
    assert row_words.shape == (2, 3, 5) and col_words.shape == (2, 3, 3)
    for index, counter in np.ndenumerate(counters):
        single_r, single_c = noise.axis_words(seed, int(counter), 5, 3)
        np.testing.assert_array_equal(row_words[index], single_r)
        np.testing.assert_array_equal(col_words[index], single_c)
    # The counter is taken mod 2**32.
    np.testing.assert_array_equal(row_words[1, 1], row_words[0, 0])
    deviates = noise.cell_deviates(row_words, col_words)
    assert deviates.shape == (2, 3, 5, 3)


@pytest.mark.parametrize("seed", [0, 1, 0x2024, 2**32 - 1])
def test_deviate_of_a_cell_does_not_depend_on_the_array_shape(seed):
    for counter in (0, 1, 12345, 2**32 - 1):
        small = noise.cell_deviates(*noise.axis_words(seed, counter, 8, 8))
        large = noise.cell_deviates(*noise.axis_words(seed, counter, 64, 64))
        tall = noise.cell_deviates(*noise.axis_words(seed, counter, 64, 3))
        np.testing.assert_array_equal(small, large[:8, :8], err_msg=f"{seed=} {counter=}")
        np.testing.assert_array_equal(tall, large[:, :3], err_msg=f"{seed=} {counter=}")
        # and a single cell, from the documented definition
        assert large[37, 5] == ref.cell_deviate(seed, counter, 37, 5)
        assert small[7, 0] == ref.cell_deviate(seed, counter, 7, 0)


def test_same_inputs_same_deviates_and_different_seeds_differ():
    a = noise.cell_deviates(*noise.axis_words(7, 3, 16, 16))
    b = noise.cell_deviates(*noise.axis_words(7, 3, 16, 16))
    np.testing.assert_array_equal(a, b)
    # Another seed or counter gives another pattern (equal with probability ~0).
    assert not np.array_equal(a, noise.cell_deviates(*noise.axis_words(8, 3, 16, 16)))
    assert not np.array_equal(a, noise.cell_deviates(*noise.axis_words(7, 4, 16, 16)))


# Statistics ------------------------------------------------------------------------------------
#
# Over K operations of a 64 x 64 array there are N = 64*64*K deviates. Within one operation the
# deviates are pairwise independent (z_ij and z_kl share at most one word, and R XOR C is
# uniform whatever the shared word is), so the sample mean has standard error 4/sqrt(N) and
# the sample variance sqrt((mu4 - sigma**4)/N) with mu4 = sigma**4 (3 - 2/64) for a
# binomial(64, 1/2): the standard error of the sample std is about sqrt(504/N)/8. Tolerances
# are 6 standard errors: a correct generator fails with probability ~1e-9 per check, and the
# data are fixed by the seeds anyway (the test is deterministic).

K_OPS = 64
N_CELLS = 64 * 64 * K_OPS


@pytest.fixture(scope="module")
def many_deviates():
    seed = 0x5EED
    row_words, col_words = noise.axis_words(seed, np.arange(K_OPS), 64, 64)
    return seed, noise.cell_deviates(row_words, col_words).astype(np.int64)


def test_deviates_range_mean_and_std(many_deviates):
    seed, z = many_deviates
    assert z.shape == (K_OPS, 64, 64)
    assert z.min() >= -32 and z.max() <= 32
    mean_tolerance = 6 * 4 / np.sqrt(N_CELLS)  # ~0.047
    std_tolerance = 6 * np.sqrt(504 / N_CELLS) / 8  # ~0.033
    assert abs(z.mean()) < mean_tolerance, f"seed={seed} mean={z.mean()}"
    assert abs(z.std() - 4.0) < std_tolerance, f"seed={seed} std={z.std()}"


def test_deviates_follow_the_binomial_distribution(many_deviates):
    """Pearson chi-square against binomial(64, 1/2) - 32 over the bins |z| <= 12 (expected
    count >= ~60 each) plus the two tails: 27 bins, 26 degrees of freedom. With pairwise
    independent samples the statistic has mean ~26 and std ~sqrt(52) ~ 7.2; the bound is
    26 + 8 * 7.2 ~ 84."""
    seed, z = many_deviates
    p = np.array([comb(64, k) / 2**64 for k in range(65)])
    counts = np.bincount(z.ravel() + 32, minlength=65)
    low, high = 32 - 12, 32 + 12

    def pooled(values: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [[values[:low].sum()], values[low : high + 1], [values[high + 1 :].sum()]]
        )

    observed = pooled(counts)
    expected = N_CELLS * pooled(p)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 84, f"seed={seed} chi2={chi2:.1f} over {len(observed)} bins"


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_neighbouring_cells_and_consecutive_operations_are_uncorrelated(many_deviates):
    """Under independence a sample correlation over n pairs has standard error 1/sqrt(n).
    Neighbour pairs in the same columns share a rectangle of cells whose four words XOR to
    zero (E[z1 z2 z3 z4] = 4 = sigma**4/64), which inflates the error by at most
    sqrt(1 + 63/64) < 1.5; tolerance 6 * 1.5/sqrt(n) (~0.018)."""
    seed, z = many_deviates
    pairs = {
        "right neighbour": (z[:, :, :-1], z[:, :, 1:]),
        "lower neighbour": (z[:, :-1, :], z[:, 1:, :]),
        "diagonal neighbour": (z[:, :-1, :-1], z[:, 1:, 1:]),
        "next operation": (z[:-1], z[1:]),
    }
    for name, (a, b) in pairs.items():
        tolerance = 6 * 1.5 / np.sqrt(a.size)
        c = _corr(a, b)
        assert abs(c) < tolerance, f"seed={seed} {name}: corr={c:.4f} tolerance={tolerance:.4f}"


def test_column_sums_have_the_variance_of_independent_noise(many_deviates):
    """A VMM sums a column of deviates: its variance must be rows * 16, as for independent
    deviates. Over 64 columns x K operations (4096 sums) the sample variance of a sum of 64
    deviates (true variance 1024) has relative standard error ~sqrt(2/4096) ~ 2.2 %;
    tolerance 6 standard errors (13 %)."""
    seed, z = many_deviates
    sums = z.sum(axis=1)  # (K, cols)
    variance = float(sums.var())
    assert abs(variance / (64 * 16) - 1) < 6 * np.sqrt(2 / sums.size), f"seed={seed} {variance=}"


def test_axis_word_bits_are_balanced():
    """Each of the 64 bits of 64 x 64 x 64 row and column words is set with probability
    1/2: over n = 8192 words the frequency has standard error 0.5/sqrt(n) ~ 0.0055;
    tolerance 6 standard errors (0.033)."""
    seed = 99
    row_words, col_words = noise.axis_words(seed, np.arange(64), 64, 64)
    words = np.concatenate([row_words.ravel(), col_words.ravel()])
    bits = (words[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    frequency = bits.mean(axis=0)
    tolerance = 6 * 0.5 / np.sqrt(words.size)
    worst = float(np.abs(frequency - 0.5).max())
    assert worst < tolerance, f"seed={seed} worst bit frequency deviation {worst:.4f}"
