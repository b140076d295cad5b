"""The deterministic, counter-based noise generator shared by the golden model and the gateware.

The noise of cell ``(i, j)`` in noisy operation ``k`` is a pure function of
``(seed, k, i, j)``; it depends neither on ``lanes`` nor on timing, so noisy runs are
bit-exact across every backend. The definition, step by step:

1. **Operation key.** Speck64/128 (Beaulieu et al., 2013: 32-bit words, rotations 8 and 3,
   27 rounds) keyed with the four words ``(l2, l1, l0, k0) = (0x6D6F6C78, 0, seed, k)``.
   The round keys depend only on ``(seed, k)``: the gateware computes them once per
   operation.
2. **Row and column words.** Row ``i`` gets the 64-bit word ``R_i = x' * 2**32 + y'``
   where ``(x', y')`` is the encryption of the block ``(x, y) = (0, i)``; column ``j``
   gets ``C_j`` from the block ``(1, j)``.
3. **Cell deviate.** ``z_ij = popcount(R_i XOR C_j) - 32``: a binomial integer in
   ``[-32, 32]`` with mean 0 and standard deviation 4 — an integer Gaussian approximation.
   Any two cells of one operation get independent deviates (the words are independent and
   uniform), which is what sums of noise need.
4. **Scaling.** With the amplitude table ``s`` (``SIGMA_SEGMENTS`` unsigned
   ``SIGMA_SCALE_BITS``-bit entries, see :class:`~molxbar.emulator.config.CrossbarConfig`)
   and ``m = g >> segment_shift``, the cell's noise is ``z_ij * s[m]`` in units of
   ``2**-NOISE_FRAC_BITS`` level. Read noise keeps that value; a direct write rounds it
   (half away from zero) to whole levels.

The counter ``k`` starts at 0 after reset and after a seed command; every operation that
draws noise (one VMM input vector with read noise on, one direct write of a cell or a row
with write noise on) uses the current ``k`` and then increments it (mod ``2**32``).
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = [
    "SPECK64_ROUNDS",
    "NOISE_KEY_DOMAIN",
    "speck64_round_keys",
    "speck64_encrypt",
    "axis_words",
    "AXIS_ROW",
    "AXIS_COL",
    "cell_deviates",
]

SPECK64_ROUNDS = 27
#: Constant top key word ("molx" in ASCII): separates molxbar's streams from other uses.
NOISE_KEY_DOMAIN = 0x6D6F6C78
AXIS_ROW = 0
AXIS_COL = 1

_U32 = np.uint32


def _ror(x: np.ndarray, r: int) -> np.ndarray:
    return (x >> _U32(r)) | (x << _U32(32 - r))


def _rol(x: np.ndarray, r: int) -> np.ndarray:
    return (x << _U32(r)) | (x >> _U32(32 - r))


def speck64_round_keys(l2, l1, l0, k0) -> np.ndarray:
    """Speck64/128 key schedule; the key words may be arrays (vectorised over keys).

    Returns an array of shape ``(SPECK64_ROUNDS, *key_shape)`` of ``uint32``.
    """
    with np.errstate(over="ignore"):
        shape = np.broadcast(l2, l1, l0, k0).shape
        ls = [np.broadcast_to(np.asarray(w, dtype=_U32), shape).copy() for w in (l0, l1, l2)]
        k = np.broadcast_to(np.asarray(k0, dtype=_U32), shape).copy()
        keys = np.empty((SPECK64_ROUNDS, *shape), dtype=_U32)
        for i in range(SPECK64_ROUNDS):
            keys[i] = k
            if i == SPECK64_ROUNDS - 1:
                break
            new_l = (k + _ror(ls[i], 8)) ^ _U32(i)
            ls.append(new_l)
            k = _rol(k, 3) ^ new_l
    return keys


def speck64_encrypt(round_keys: np.ndarray, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Encrypt the blocks ``(x, y)`` (``uint32``) with ``round_keys`` from
    :func:`speck64_round_keys`; everything broadcasts.

    Each round is computed in place on two ``uint32`` arrays (no temporaries per operation):
    the 27 rounds of a large batch of blocks are the noise generator's main cost.
    """
    shape = np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(round_keys)[1:])
    x = np.array(np.broadcast_to(np.asarray(x, dtype=_U32), shape))
    y = np.array(np.broadcast_to(np.asarray(y, dtype=_U32), shape))
    spare = np.empty(shape, dtype=_U32)
    eight, twenty_four, three, twenty_nine = _U32(8), _U32(24), _U32(3), _U32(29)
    for key in round_keys:
        # x = (ror(x, 8) + y) ^ key (additions wrap modulo 2**32 by definition)
        np.right_shift(x, eight, out=spare)
        np.left_shift(x, twenty_four, out=x)
        np.bitwise_or(x, spare, out=x)
        np.add(x, y, out=x)
        np.bitwise_xor(x, key, out=x)
        # y = rol(y, 3) ^ x
        np.left_shift(y, three, out=spare)
        np.right_shift(y, twenty_nine, out=y)
        np.bitwise_or(y, spare, out=y)
        np.bitwise_xor(y, x, out=y)
    return x, y


def axis_words(seed: int, counters, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit row and column words of the operations numbered ``counters``.

    Returns ``(row_words, col_words)`` of shapes ``(*counters.shape, rows)`` and
    ``(*counters.shape, cols)``, dtype ``uint64`` (views of one array).
    """
    counters = np.asarray(counters, dtype=np.uint64) & np.uint64(0xFFFFFFFF)
    keys = speck64_round_keys(NOISE_KEY_DOMAIN, 0, seed, counters.astype(_U32).ravel())
    # Blocks along the first axis and operations along the last: every round is a few long,
    # contiguous passes whose key row broadcasts over the blocks.
    axis = np.repeat(np.array([AXIS_ROW, AXIS_COL], dtype=_U32), (rows, cols))
    index = np.concatenate([np.arange(rows, dtype=_U32), np.arange(cols, dtype=_U32)])
    x, y = speck64_encrypt(keys, axis[:, None], index[:, None])
    # R = x' * 2**32 + y': the two halves are interleaved straight into the transposed
    # (operations, blocks) layout of native uint64 words, one strided copy each.
    halves = np.empty((keys.shape[1], rows + cols, 2), dtype=_U32)
    high, low = (0, 1) if sys.byteorder == "big" else (1, 0)
    halves[:, :, high] = x.T
    halves[:, :, low] = y.T
    words = halves.view(np.uint64).reshape(*counters.shape, rows + cols)
    return words[..., :rows], words[..., rows:]


def cell_deviates(row_words: np.ndarray, col_words: np.ndarray) -> np.ndarray:
    """``popcount(R_i XOR C_j) - 32`` for every cell: shape ``(..., rows, cols)``, ``int8``."""
    words = row_words[..., :, None] ^ col_words[..., None, :]
    return np.bitwise_count(words).astype(np.int8) - np.int8(32)
