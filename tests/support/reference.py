"""An independent plain-Python reference of molxbar's arithmetic contract.

Written from the documentation only (DESIGN.md §3, the docstrings of
``molxbar.emulator.golden`` and ``molxbar.emulator.noise``), never from the golden model's
code: Python ints and loops, no NumPy. The tests compare the golden model with it exactly.

It is slow on purpose (obviously correct rather than fast): keep the arrays it sees small.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "NOISE_FRAC_BITS",
    "SIGMA_SEGMENTS",
    "Z_MAX",
    "SPECK64_ROUNDS",
    "NOISE_KEY_DOMAIN",
    "round_half_away",
    "round_half_away_fraction",
    "floor_shift",
    "saturate",
    "clamp",
    "contrib",
    "speck64_key_schedule",
    "speck64_encrypt_block",
    "axis_word",
    "operation_words",
    "deviate",
    "cell_deviate",
    "RefCrossbar",
]

# Constants as documented (the tests check that the package agrees with them).
NOISE_FRAC_BITS = 10  # read noise is in units of 2**-10 level
SIGMA_SEGMENTS = 16  # one amplitude per value of the top 4 bits of a level
Z_MAX = 32  # |popcount(64-bit word) - 32| <= 32
SPECK64_ROUNDS = 27
NOISE_KEY_DOMAIN = int.from_bytes(b"molx", "big")  # 0x6D6F6C78
_MASK32 = (1 << 32) - 1


# Integer arithmetic ------------------------------------------------------------------------


def round_half_away(value: int, shift: int) -> int:
    """``value / 2**shift`` rounded to the nearest integer, ties away from zero."""
    if shift == 0:
        return value
    divisor = 1 << shift
    quotient, remainder = divmod(abs(value), divisor)
    if 2 * remainder >= divisor:
        quotient += 1
    return quotient if value >= 0 else -quotient


def round_half_away_fraction(value: Fraction) -> int:
    """A rational rounded to the nearest integer, ties away from zero (a second, slower
    definition used to cross-check :func:`round_half_away`)."""
    magnitude = abs(value)
    rounded = (magnitude + Fraction(1, 2)).__floor__()
    return rounded if value >= 0 else -rounded


def floor_shift(value: int, shift: int) -> int:
    """``floor(value / 2**shift)`` (an arithmetic right shift), by floor division."""
    return value // (1 << shift)


def saturate(value: int, bits: int | None) -> int:
    """Clamp to the signed two's-complement range of ``bits`` (``None``: unchanged)."""
    if bits is None:
        return value
    return clamp(value, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def clamp(value: int, low: int, high: int) -> int:
    if value < low:
        return low
    if value > high:
        return high
    return value


def contrib(x: int, v: int, rect_shift: int | None) -> int:
    """What input code ``x`` on a cell of value ``v`` adds to its column.

    ``x*v`` for ``x >= 0``; for ``x < 0`` the reverse leakage ``floor(x*v / 2**rect_shift)``,
    or nothing when the cell is ideal (``rect_shift is None``).
    """
    if x >= 0:
        return x * v
    if rect_shift is None:
        return 0
    return floor_shift(x * v, rect_shift)


# Speck64/128 (Beaulieu et al., "The SIMON and SPECK families of lightweight block
# ciphers", 2013): 32-bit words, alpha = 8, beta = 3, 27 rounds, 4 key words -----------------


def _rotate_right(word: int, amount: int) -> int:
    return ((word >> amount) | (word << (32 - amount))) & _MASK32


def _rotate_left(word: int, amount: int) -> int:
    return ((word << amount) | (word >> (32 - amount))) & _MASK32


def speck64_key_schedule(l2: int, l1: int, l0: int, k0: int) -> tuple[int, ...]:
    """The 27 round keys of the key written, as in the paper, ``(l2, l1, l0, k0)``."""
    l_words = [l0, l1, l2]
    round_keys = [k0]
    for i in range(SPECK64_ROUNDS - 1):
        l_words.append(((round_keys[i] + _rotate_right(l_words[i], 8)) & _MASK32) ^ i)
        round_keys.append(_rotate_left(round_keys[i], 3) ^ l_words[i + 3])
    return tuple(round_keys)


def speck64_encrypt_block(round_keys: Sequence[int], x: int, y: int) -> tuple[int, int]:
    """Encrypt the block ``(x, y)`` (``x`` the high word)."""
    for key in round_keys:
        x = ((_rotate_right(x, 8) + y) & _MASK32) ^ key
        y = _rotate_left(y, 3) ^ x
    return x, y


# The counter-based noise generator (noise.py module docstring) -------------------------------


@lru_cache(maxsize=4096)
def _operation_keys(seed: int, counter: int) -> tuple[int, ...]:
    return speck64_key_schedule(NOISE_KEY_DOMAIN, 0, seed, counter & _MASK32)


def axis_word(seed: int, counter: int, axis: int, index: int) -> int:
    """The 64-bit word of row ``index`` (``axis = 0``) or column ``index`` (``axis = 1``)
    in noisy operation ``counter``: the encryption of ``(axis, index)``, high word first."""
    x, y = speck64_encrypt_block(_operation_keys(seed, counter), axis, index)
    return (x << 32) | y


def operation_words(seed: int, counter: int, rows: int, cols: int) -> tuple[list, list]:
    """The row words ``R_0 .. R_{rows-1}`` and column words ``C_0 .. C_{cols-1}``."""
    return (
        [axis_word(seed, counter, 0, i) for i in range(rows)],
        [axis_word(seed, counter, 1, j) for j in range(cols)],
    )


def deviate(row_word: int, col_word: int) -> int:
    """``popcount(R XOR C) - 32``."""
    return (row_word ^ col_word).bit_count() - 32


def cell_deviate(seed: int, counter: int, i: int, j: int) -> int:
    """The deviate ``z_ij`` of cell ``(i, j)`` in operation ``counter``."""
    return deviate(axis_word(seed, counter, 0, i), axis_word(seed, counter, 1, j))


# The crossbar ---------------------------------------------------------------------------------


class RefCrossbar:
    """The contract of :class:`molxbar.emulator.Crossbar`, cell by cell, without validation.

    Takes from the configuration only its documented field values and amplitude tables;
    every derived quantity is recomputed here.
    """

    def __init__(self, config) -> None:
        self.rows = config.rows
        self.cols = config.cols
        self.g_bits = config.g_bits
        self.g_max = (config.levels if config.levels is not None else 2**config.g_bits) - 1
        self.adc_bits = config.adc_bits
        self.adc_shift = config.adc_shift
        self.rect_shift = config.rect_shift
        self.update_shift = config.update_shift
        self.read_noise = config.read_noise
        self.write_noise = config.write_noise
        self.read_table = list(config.read_sigma_table)
        self.write_table = list(config.write_sigma_table)
        self.noise_seed = config.seed
        self.noise_counter = 0
        self.g = [[0] * self.cols for _ in range(self.rows)]

    # Registers

    def seed(self, value: int) -> None:
        self.noise_seed = value
        self.noise_counter = 0

    def set_adc(self, bits: int | None, shift: int) -> None:
        self.adc_bits, self.adc_shift = bits, shift

    def set_rectification(self, shift: int | None) -> None:
        self.rect_shift = shift

    def set_update_shift(self, shift: int) -> None:
        self.update_shift = shift

    def set_noise(self, *, read=None, write=None, read_table=None, write_table=None) -> None:
        if read is not None:
            self.read_noise = bool(read)
        if write is not None:
            self.write_noise = bool(write)
        if read_table is not None:
            self.read_table = [int(v) for v in read_table]
        if write_table is not None:
            self.write_table = [int(v) for v in write_table]

    def segment(self, level: int) -> int:
        """The amplitude-table entry of a level: its top 4 of ``g_bits`` bits."""
        return level // 2 ** (self.g_bits - 4)

    def _next_counter(self) -> int:
        counter = self.noise_counter
        self.noise_counter = (counter + 1) % 2**32
        return counter

    # Programming

    def _write(self, row: int, cols: Iterable[int], levels: Iterable[int]) -> None:
        cols, levels = list(cols), [int(v) for v in levels]
        if self.write_noise:
            counter = self._next_counter()
            row_word = axis_word(self.noise_seed, counter, 0, row)
            for n, (col, level) in enumerate(zip(cols, levels, strict=True)):
                z = deviate(row_word, axis_word(self.noise_seed, counter, 1, col))
                error = round_half_away(z * self.write_table[self.segment(level)], 10)
                levels[n] = clamp(level + error, 0, self.g_max)
        for col, level in zip(cols, levels, strict=True):
            self.g[row][col] = level

    def write_cell(self, row: int, col: int, level: int) -> None:
        self._write(row, [col], [level])

    def write_row(self, row: int, levels: Sequence[int]) -> None:
        self._write(row, range(self.cols), levels)

    def write_levels(self, levels: Sequence[Sequence[int]]) -> None:
        for row in range(self.rows):
            self.write_row(row, levels[row])

    def pulse_cell(self, row: int, col: int, count: int) -> None:
        self.g[row][col] = clamp(self.g[row][col] + int(count), 0, self.g_max)

    def pulse(self, counts: Sequence[Sequence[int]]) -> None:
        for i in range(self.rows):
            for j in range(self.cols):
                self.pulse_cell(i, j, counts[i][j])

    def update_rank1(self, a: Sequence[int], b: Sequence[int], shift: int | None = None) -> None:
        if shift is None:
            shift = self.update_shift
        for i in range(self.rows):
            for j in range(self.cols):
                step = round_half_away(int(a[i]) * int(b[j]), shift)
                self.g[i][j] = clamp(self.g[i][j] + step, 0, self.g_max)

    def read_cell(self, row: int, col: int) -> int:
        return self.g[row][col]

    # Vector-matrix multiplication

    def accumulate(self, x: Sequence[int]) -> list[int]:
        """``acc_j = sum_i contrib(x_i, g_ij)``, exact."""
        x = [int(v) for v in x]
        return [
            sum(contrib(x[i], self.g[i][j], self.rect_shift) for i in range(self.rows))
            for j in range(self.cols)
        ]

    def vmm(self, x: Sequence[int]) -> list[int]:
        """The ADC outputs of one input vector (draws one noise counter with read noise)."""
        x = [int(v) for v in x]
        fine = self.accumulate(x)
        shift = self.adc_shift
        if self.read_noise:
            counter = self._next_counter()
            row_words, col_words = operation_words(self.noise_seed, counter, self.rows, self.cols)
            for j in range(self.cols):
                noise = 0
                for i in range(self.rows):
                    z = deviate(row_words[i], col_words[j])
                    n = z * self.read_table[self.segment(self.g[i][j])]
                    noise += contrib(x[i], n, self.rect_shift)
                fine[j] = fine[j] * 2**NOISE_FRAC_BITS + noise
            shift += NOISE_FRAC_BITS
        return [saturate(round_half_away(v, shift), self.adc_bits) for v in fine]

    def vmm_batch(self, inputs: Sequence[Sequence[int]]) -> list[list[int]]:
        return [self.vmm(x) for x in inputs]
