"""The noisy accumulators of a chunk of VMMs in one compiled loop, when numba is installed.

:func:`noisy_accumulators` computes, for each vector ``b`` of a chunk with operation counter
``k_b``, the accumulator of docs/arithmetic.md before the ADC,
``acc_fine_bj = sum_i contrib(x_bi, g_ij) * 2**10 + sum_i contrib(x_bi, z_bij * s_ij)``: the
Speck64/128 words of the operation (:mod:`~molxbar.emulator.noise`, steps 1-2), the deviates
``z = popcount(R_i XOR C_j) - 32`` (step 3) and both sums, without a per-cell array. It gives
the integers of the NumPy path in :class:`~molxbar.emulator.golden.Crossbar` (the tests
compare the two), at several times its speed: NumPy passes over a chunk's blocks and cells
cost more in memory traffic and calls than the arithmetic itself.

numba is optional (``pip install molxbar[fast]``): without it importing this module raises
ImportError and the golden model uses its NumPy path. The kernel is compiled on first use
(about two seconds) and cached beside this module.
"""

from __future__ import annotations

import numba
import numpy as np

from .config import NOISE_FRAC_BITS, Z_MAX
from .noise import NOISE_KEY_DOMAIN, SPECK64_ROUNDS

__all__ = ["noisy_accumulators"]

_u32, _u64 = np.uint32, np.uint64


def noisy_accumulators(
    seed: int,
    counters: np.ndarray,
    x: np.ndarray,
    levels: np.ndarray,
    scale: np.ndarray,
    rect_shift: int | None,
    out: np.ndarray,
) -> None:
    """Write ``acc_fine`` of each vector ``b`` of a chunk into ``out``, int64 ``(batch, cols)``.

    Exact in int64: the configuration bounds every partial sum by ``acc_fine_bits <= 63``.

    Parameters
    ----------
    seed
        The 32-bit noise seed.
    counters
        The operation counter of each vector, ``(batch,)``, already reduced modulo ``2**32``.
    x
        Checked input codes, ``(batch, rows)``.
    levels
        The level codes, int64 ``(rows, cols)``.
    scale
        Each cell's read-noise amplitude ``r[g >> segment_shift]``, int64 ``(rows, cols)``.
    rect_shift
        Reverse-leakage shift of negative inputs, ``None`` for ideal cells.
    out
        int64 ``(batch, cols)``, C-contiguous rows (a row slice of a larger array will do).
    """
    _kernel(
        _u32(seed),
        np.ascontiguousarray(counters, dtype=np.uint64),
        np.ascontiguousarray(x, dtype=np.int64),
        np.ascontiguousarray(levels, dtype=np.int64),
        np.ascontiguousarray(scale, dtype=np.int64),
        -1 if rect_shift is None else rect_shift,
        out,
    )


@numba.njit(inline="always")
def _popcount(v):
    # The SWAR count: LLVM turns it into the processor's population count.
    v = v - ((v >> _u64(1)) & _u64(0x5555555555555555))
    v = (v & _u64(0x3333333333333333)) + ((v >> _u64(2)) & _u64(0x3333333333333333))
    v = (v + (v >> _u64(4))) & _u64(0x0F0F0F0F0F0F0F0F)
    return (v * _u64(0x0101010101010101)) >> _u64(56)


@numba.njit(cache=True)
def _kernel(seed, counters, x, levels, scale, rect_shift, out):
    u32, u64 = _u32, _u64
    rounds = SPECK64_ROUNDS
    batch, rows = x.shape
    cols = scale.shape[1]
    blocks = rows + cols
    keys = np.empty(rounds, np.uint32)
    schedule = np.empty(rounds + 2, np.uint32)
    high = np.empty(blocks, np.uint32)
    low = np.empty(blocks, np.uint32)
    row_words = np.empty(rows, np.uint64)
    col_words = np.empty(cols, np.uint64)
    acc = np.empty(cols, np.int64)
    for b in range(batch):
        # Key schedule of (l2, l1, l0, k0) = (domain, 0, seed, k). Every sum, shift and
        # rotation is truncated to 32 bits by u32(): numba widens them to 64.
        schedule[0], schedule[1], schedule[2] = seed, u32(0), u32(NOISE_KEY_DOMAIN)
        k = u32(counters[b])
        for r in range(rounds):
            keys[r] = k
            if r == rounds - 1:
                break
            rotated = u32((schedule[r] >> u32(8)) | (schedule[r] << u32(24)))
            schedule[r + 3] = u32(k + rotated) ^ u32(r)
            k = u32(u32((k << u32(3)) | (k >> u32(29))) ^ schedule[r + 3])
        # Blocks (0, i) for the rows and (1, j) for the columns; the rounds outside, the
        # blocks inside, so that the compiler vectorises over blocks.
        for n in range(blocks):
            high[n] = u32(0) if n < rows else u32(1)
            low[n] = u32(n) if n < rows else u32(n - rows)
        for r in range(rounds):
            key = keys[r]
            for n in range(blocks):
                y = low[n]
                xr = u32(u32((high[n] >> u32(8)) | (high[n] << u32(24))) + y) ^ key
                low[n] = u32(u32((y << u32(3)) | (y >> u32(29))) ^ xr)
                high[n] = xr
        for n in range(rows):
            row_words[n] = (u64(high[n]) << u64(32)) | u64(low[n])
        for n in range(cols):
            col_words[n] = (u64(high[rows + n]) << u64(32)) | u64(low[rows + n])
        acc[:] = 0
        for i in range(rows):
            xi = x[b, i]
            if xi == 0 or (xi < 0 and rect_shift < 0):
                continue
            word = row_words[i]
            if xi > 0:
                # x*g*2**F + x*n = x * (g*2**F + n)
                for j in range(cols):
                    z = np.int64(_popcount(word ^ col_words[j])) - Z_MAX
                    acc[j] += xi * ((levels[i, j] << NOISE_FRAC_BITS) + z * scale[i, j])
            else:
                # Leakage shifts each product on its own: ((x*g) >> s) * 2**F + (x*n) >> s
                for j in range(cols):
                    z = np.int64(_popcount(word ^ col_words[j])) - Z_MAX
                    leak = (xi * levels[i, j]) >> rect_shift
                    acc[j] += (leak << NOISE_FRAC_BITS) + ((xi * (z * scale[i, j])) >> rect_shift)
        out[b, :] = acc
