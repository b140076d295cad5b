"""The bit-exact golden model of one crossbar: the executable specification of molxbar.

Arithmetic contract (every backend must give these integers):

* Each cell holds a level code ``0 <= g < levels``. A direct write sets it (plus the write
  error when write noise is on); ``n`` pulses move it by ``n``, saturating at ``0`` and
  ``levels - 1``; a rank-1 update adds ``round(a_i * b_j / 2**s)`` (half away from zero),
  saturating.
* A VMM of the signed input codes ``x`` gives, per column ``j``,
  ``acc_j = sum_i contrib(x_i, g_ij)`` exactly, where ``contrib(x, v) = x*v`` for
  ``x >= 0`` and, for ``x < 0``, ``(x*v) >> rect_shift`` (arithmetic shift) or ``0`` with
  ideal rectification.
* With read noise on, ``acc_fine_j = acc_j * 2**F + sum_i contrib(x_i, n_ij)`` where
  ``n_ij`` is the cell's noise (:mod:`~molxbar.emulator.noise`) and ``F = NOISE_FRAC_BITS``;
  with it off, ``acc_fine_j = acc_j`` and ``F = 0``.
* The ADC outputs ``saturate(round(acc_fine_j / 2**(adc_shift + F)), adc_bits)``: rounding
  half away from zero, saturation to ``adc_bits`` signed (none when ``adc_bits`` is None).

Bad arguments raise :class:`ValueError` naming the value and its limit, before anything
changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np

from .checks import check_codes, check_index, check_range
from .config import (
    MAX_ADC_BITS,
    NOISE_FRAC_BITS,
    SIGMA_SCALE_BITS,
    SIGMA_SEGMENTS,
    Z_MAX,
    CrossbarConfig,
)
from .fixedpoint import round_shift, saturate
from .noise import axis_words, cell_deviates

__all__ = ["Crossbar", "read_noise_path", "numpy_read_noise"]

_FLOAT_EXACT_BITS = 53
# Input vectors per chunk of a streamed batch: every temporary of a chunk (the float copy of
# its inputs, its products, its noise words) stays in the core's cache, and a batch of any
# length needs only its output array plus one chunk of scratch.
_CHUNK_VECTORS = 512
# Cells per sub-chunk of a noisy or leaky VMM: large enough to amortise NumPy's per-call
# overhead, small enough for the per-cell temporaries to stay in cache.
_CHUNK_CELLS = 1 << 15
# Largest popcount of a 64-bit noise word: the deviate is z = popcount - Z_MAX.
_POPCOUNT_MAX = 2 * Z_MAX
# Noisy VMMs go through the compiled kernel of :mod:`.noise_kernel` when numba is installed
# (the tests switch it off to compare it with the NumPy path).
_COMPILED_NOISE = True
_noise_kernel = None  # the kernel's entry point once imported; False without numba


def _compiled_read_noise():
    """:func:`.noise_kernel.noisy_accumulators`, or ``None`` (no numba, or switched off).

    Imported on the first noisy VMM: numba takes a while to import.
    """
    global _noise_kernel
    if not _COMPILED_NOISE:
        return None
    if _noise_kernel is None:
        try:
            from .noise_kernel import noisy_accumulators
        except ImportError:
            _noise_kernel = False
        else:
            _noise_kernel = noisy_accumulators
    return _noise_kernel or None


def read_noise_path() -> str:
    """How read noise is computed: ``"numba"`` (the compiled kernel) or ``"numpy"``."""
    return "numba" if _compiled_read_noise() is not None else "numpy"


@contextlib.contextmanager
def numpy_read_noise() -> Iterator[None]:
    """Inside the block, read noise goes through the NumPy path even with numba installed."""
    global _COMPILED_NOISE
    previous, _COMPILED_NOISE = _COMPILED_NOISE, False
    try:
        yield
    finally:
        _COMPILED_NOISE = previous


class Crossbar:
    """State and operations of one ``rows x cols`` crossbar.

    Parameters
    ----------
    config
        Shape, widths and the register values after reset. All levels start at 0.
    """

    def __init__(self, config: CrossbarConfig | None = None) -> None:
        self.config = config if config is not None else CrossbarConfig()
        if not isinstance(self.config, CrossbarConfig):
            raise TypeError(f"config must be a CrossbarConfig, not {self.config!r}")
        self._levels = np.zeros((self.config.rows, self.config.cols), dtype=np.int64)
        self._levels_changed()
        self.reset_registers()

    # Registers ----------------------------------------------------------------------------

    def reset_registers(self) -> None:
        """Put every register back to its configured value (levels are kept)."""
        c = self.config
        self.adc_bits: int | None = c.adc_bits
        self.adc_shift: int = c.adc_shift
        self.rect_shift: int | None = c.rect_shift
        self.update_shift: int = c.update_shift
        self.read_noise: bool = c.read_noise
        self.write_noise: bool = c.write_noise
        self.read_sigma_table: tuple[int, ...] = c.read_sigma_table
        self.write_sigma_table: tuple[int, ...] = c.write_sigma_table
        self.seed(c.seed)

    def seed(self, value: int) -> None:
        """Set the 32-bit noise seed and restart the operation counter at 0."""
        self.noise_seed = check_range("seed", value, 0, (1 << 32) - 1)
        self.noise_counter = 0

    def set_adc(self, bits: int | None, shift: int) -> None:
        """ADC output width (``None``: full precision) and pre-ADC right shift."""
        if bits is not None:
            bits = check_range("adc_bits", bits, 2, MAX_ADC_BITS)
        shift = check_range("adc_shift", shift, 0, self.config.max_shift)
        self.adc_bits, self.adc_shift = bits, shift

    def set_rectification(self, shift: int | None) -> None:
        """Reverse-leakage shift of negative inputs; ``None`` for ideal cells."""
        if shift is not None:
            shift = check_range("rect_shift", shift, 0, self.config.max_shift)
            if not self.config.leakage_hardware:
                raise ValueError(
                    f"rect_shift = {shift} needs a config with leakage_hardware = True "
                    "(None: ideal cells)"
                )
        self.rect_shift = shift

    def set_update_shift(self, shift: int) -> None:
        """Shift ``s`` of rank-1 updates, ``round(a_i*b_j / 2**s)``."""
        self.update_shift = check_range("update_shift", shift, 0, self.config.max_shift)

    def set_noise(
        self,
        *,
        read: bool | None = None,
        write: bool | None = None,
        read_table: Sequence[int] | None = None,
        write_table: Sequence[int] | None = None,
    ) -> None:
        """Switch read noise and write error on or off and set their amplitude tables.

        A table has ``SIGMA_SEGMENTS`` unsigned ``SIGMA_SCALE_BITS``-bit entries; entry ``m``
        scales the noise of levels ``g`` with ``g >> segment_shift == m``.
        """
        tables = {}
        for name, table in (("read_table", read_table), ("write_table", write_table)):
            if table is not None:
                codes = check_codes(name, table, 0, (1 << SIGMA_SCALE_BITS) - 1, (SIGMA_SEGMENTS,))
                tables[name] = tuple(int(v) for v in codes)
        for name, flag in (("read", read), ("write", write)):
            if flag is not None and not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, not {flag!r}")
            if flag and not self.config.noise_hardware:
                raise ValueError(f"{name} = True needs a config with noise_hardware = True")
        if read is not None:
            self.read_noise = bool(read)
        if write is not None:
            self.write_noise = bool(write)
        self.read_sigma_table = tables.get("read_table", self.read_sigma_table)
        self.write_sigma_table = tables.get("write_table", self.write_sigma_table)

    # Noise ----------------------------------------------------------------------------------

    def _take_counters(self, count: int) -> np.ndarray:
        counters = (self.noise_counter + np.arange(count, dtype=np.uint64)) & np.uint64(0xFFFFFFFF)
        self.noise_counter = (self.noise_counter + count) & 0xFFFFFFFF
        return counters

    def _write_errors(self, row: int, cols: np.ndarray, requested: np.ndarray) -> np.ndarray:
        """Whole-level write errors of one write operation to ``(row, cols)``."""
        (counter,) = self._take_counters(1)
        row_words, col_words = axis_words(self.noise_seed, counter, row + 1, self.config.cols)
        z = cell_deviates(row_words[row:], col_words[cols])[0].astype(np.int64)
        scale = np.asarray(self.write_sigma_table, dtype=np.int64)[
            requested >> self.config.segment_shift
        ]
        return round_shift(z * scale, NOISE_FRAC_BITS)

    # Programming -----------------------------------------------------------------------------

    @property
    def levels(self) -> np.ndarray:
        """A read-only view of all stored level codes, shape ``(rows, cols)``."""
        view = self._levels.view()
        view.flags.writeable = False
        return view

    def _levels_changed(self) -> None:
        """Drop the values derived from the levels; every change of ``_levels`` calls this."""
        self._levels_float: np.ndarray | None = None
        self._read_scale: tuple[tuple[int, ...], np.ndarray] | None = None

    def _float_levels(self) -> np.ndarray:
        """The levels as float64 (exact: ``g_bits <= 24``), converted once per change."""
        if self._levels_float is None:
            self._levels_float = self._levels.astype(np.float64)
        return self._levels_float

    def _read_noise_scale(self) -> np.ndarray:
        """Each cell's read-noise amplitude ``r[g >> segment_shift]``, int64 ``(rows, cols)``.

        Cached for the current levels and amplitude table.
        """
        table = tuple(self.read_sigma_table)
        if self._read_scale is None or self._read_scale[0] != table:
            scale = np.asarray(table, dtype=np.int64)[self._levels >> self.config.segment_shift]
            self._read_scale = (table, scale)
        return self._read_scale[1]

    def _store(self, row: int, cols: np.ndarray, requested: np.ndarray) -> None:
        if self.write_noise:
            requested = np.clip(
                requested + self._write_errors(row, cols, requested), 0, self.config.g_max
            )
        self._levels[row, cols] = requested
        self._levels_changed()

    def write_cell(self, row: int, col: int, level: int) -> None:
        """Direct write of one cell."""
        c = self.config
        row = check_index("row", row, c.rows)
        col = check_index("col", col, c.cols)
        level = check_range("level", level, 0, c.g_max)
        self._store(row, np.array([col]), np.array([level], dtype=np.int64))

    def write_row(self, row: int, levels) -> None:
        """Direct write of a whole row in one operation."""
        c = self.config
        row = check_index("row", row, c.rows)
        codes = check_codes("levels", levels, 0, c.g_max, (c.cols,))
        self._store(row, np.arange(c.cols), codes)

    def write_levels(self, levels) -> None:
        """Direct write of every cell, row by row (one write-row operation per row)."""
        c = self.config
        codes = check_codes("levels", levels, 0, c.g_max, (c.rows, c.cols))
        for row in range(c.rows):
            self._store(row, np.arange(c.cols), codes[row])

    def pulse_cell(self, row: int, col: int, count: int) -> None:
        """``count`` potentiation pulses (``count > 0``) or ``-count`` depression pulses."""
        c = self.config
        row = check_index("row", row, c.rows)
        col = check_index("col", col, c.cols)
        count = check_range("count", count, c.pulse_min, c.pulse_max)
        self._levels[row, col] = min(max(self._levels[row, col] + count, 0), c.g_max)
        self._levels_changed()

    def pulse(self, counts) -> None:
        """A pulse count for every cell at once, shape ``(rows, cols)``."""
        c = self.config
        counts = check_codes("counts", counts, c.pulse_min, c.pulse_max, (c.rows, c.cols))
        np.clip(self._levels + counts, 0, c.g_max, out=self._levels)
        self._levels_changed()

    def update_rank1(self, a, b, shift: int | None = None) -> None:
        """Rank-1 pulse update: ``g_ij += round(a_i * b_j / 2**shift)``, saturating.

        ``a`` (rows) and ``b`` (cols) are signed input codes; ``shift`` defaults to the
        update-shift register.
        """
        c = self.config
        a = check_codes("a", a, c.x_min, c.x_max, (c.rows,))
        b = check_codes("b", b, c.x_min, c.x_max, (c.cols,))
        if shift is None:
            shift = self.update_shift
        shift = check_range("shift", shift, 0, c.max_shift)
        delta = round_shift(a[:, None] * b[None, :], shift)
        np.clip(self._levels + delta, 0, c.g_max, out=self._levels)
        self._levels_changed()

    def read_cell(self, row: int, col: int) -> int:
        """The level code of one cell."""
        row = check_index("row", row, self.config.rows)
        col = check_index("col", col, self.config.cols)
        return int(self._levels[row, col])

    def read_row(self, row: int) -> np.ndarray:
        """The level codes of one row."""
        row = check_index("row", row, self.config.rows)
        return self._levels[row].copy()

    # Vector-matrix multiplication ---------------------------------------------------------

    def vmm(self, x) -> np.ndarray:
        """One VMM: input codes ``x`` (rows,) to the ``(cols,)`` ADC outputs."""
        x = check_codes("x", x, self.config.x_min, self.config.x_max, (self.config.rows,))
        return self._vmm(x[None])[0]

    def vmm_batch(self, inputs) -> np.ndarray:
        """A batch of VMMs: ``(batch, rows)`` input codes to ``(batch, cols)`` outputs.

        Identical to calling :meth:`vmm` on each row in turn (noise counters included). The
        batch streams through in chunks of ``_CHUNK_VECTORS`` vectors: besides the int64
        output, memory stays bounded by one chunk's scratch, whatever the batch length.
        """
        return self._vmm(self._batch_codes(np.asarray(inputs)))

    def accumulate(self, inputs) -> np.ndarray:
        """The exact noise-free column sums ``acc`` (before noise and ADC), ``(batch, cols)``.

        Reads no noise and changes nothing.
        """
        x = self._batch_codes(np.atleast_2d(inputs))
        out = np.empty((x.shape[0], self.config.cols), dtype=np.int64)
        scratch = self._scratch(x.shape[0])
        for start, chunk in self._chunks(x):
            self._accumulate(chunk, out[start : start + chunk.shape[0]], scratch)
        return out

    def _batch_codes(self, array: np.ndarray) -> np.ndarray:
        """A ``(batch, rows)`` batch of input codes, range-checked later chunk by chunk.

        Integer arrays pass as they are (no int64 copy); anything else goes through
        :func:`check_codes`, which converts whole-number floats and rejects the rest.
        """
        c = self.config
        if array.ndim != 2 or array.shape[1] != c.rows:
            raise ValueError(f"inputs has shape {array.shape}, expected (batch, {c.rows})")
        if np.issubdtype(array.dtype, np.integer):
            return array
        return check_codes("inputs", array, c.x_min, c.x_max, None)

    def _chunks(self, x: np.ndarray):
        """``(start, chunk)`` over the batch ``x`` after checking every chunk's range.

        Each chunk's minimum and maximum are checked while it is still in cache; an
        out-of-range code raises :func:`check_codes`'s error for the whole batch (first bad
        index) before the caller has changed any state.
        """
        c = self.config
        for start in range(0, x.shape[0], _CHUNK_VECTORS):
            chunk = x[start : start + _CHUNK_VECTORS]
            if chunk.size and (chunk.min() < c.x_min or chunk.max() > c.x_max):
                check_codes("inputs", x, c.x_min, c.x_max, None)
            yield start, chunk

    def _accumulate(
        self, x: np.ndarray, out: np.ndarray, scratch: np.ndarray | None = None
    ) -> np.ndarray | None:
        """``out = sum_i contrib(x_bi, g_ij)`` for one chunk of checked input codes.

        Returns the chunk's rectified inputs ``max(x, 0)`` as float64 when the float path
        was exact (the noise reuses them), else ``None``. ``scratch`` is an optional float64
        ``(2, chunk, max(rows, cols))`` buffer reused from chunk to chunk: fresh temporaries
        of a chunk's size would come from new pages, each first touch a page fault.
        """
        c = self.config
        positive = None
        if c.acc_bits <= _FLOAT_EXACT_BITS:
            if scratch is None:
                scratch = self._scratch(x.shape[0])
            n = x.shape[0]
            # Integers below 2**53 are exact in float64, and so is every partial sum: the
            # ideal rectification max(x, 0) happens in the same pass as the conversion.
            positive = np.maximum(x, 0, dtype=np.float64, out=scratch[0, :n, : c.rows])
            product = np.matmul(positive, self._float_levels(), out=scratch[1, :n, : c.cols])
            np.copyto(out, product, casting="unsafe")
        else:
            np.matmul(np.maximum(x.astype(np.int64, copy=False), 0), self._levels, out=out)
        if self.rect_shift is not None:
            x64 = x.astype(np.int64, copy=False)
            out += self._leakage(x64, self._levels[None], self.rect_shift)
        return positive

    def _scratch(self, vectors: int) -> np.ndarray:
        """Float64 scratch for :meth:`_accumulate` of up to ``vectors`` vectors a chunk."""
        c = self.config
        return np.empty((2, min(vectors, _CHUNK_VECTORS), max(c.rows, c.cols)))

    def _leakage(self, x: np.ndarray, weights: np.ndarray, shift: int) -> np.ndarray:
        """``sum_{i: x_bi < 0} (x_bi * w_bij) >> shift``.

        ``weights`` is ``(1, rows, cols)`` (shared) or ``(batch, rows, cols)``.
        """
        out = np.zeros((x.shape[0], weights.shape[2]), dtype=np.int64)
        negative_rows = np.flatnonzero((x < 0).any(axis=0))
        if negative_rows.size == 0:
            return out
        xn = np.minimum(x[:, negative_rows], 0)
        wn = weights[:, negative_rows]
        step = max(1, _CHUNK_CELLS // max(1, wn.shape[1] * wn.shape[2]))
        for start in range(0, x.shape[0], step):
            stop = start + step
            w = wn if wn.shape[0] == 1 else wn[start:stop]
            out[start:stop] = ((xn[start:stop, :, None] * w) >> shift).sum(axis=1)
        return out

    def _vmm(self, x: np.ndarray) -> np.ndarray:
        """ADC outputs of a batch of input codes, chunk by chunk; one noise counter a vector."""
        c = self.config
        out = np.empty((x.shape[0], c.cols), dtype=np.int64)
        shift = self.adc_shift + (NOISE_FRAC_BITS if self.read_noise else 0)
        first_counter = self.noise_counter
        compiled = _compiled_read_noise() if self.read_noise else None
        scratch = None if compiled else self._scratch(x.shape[0])
        cells = self._noise_scratch(x.shape[0]) if self.read_noise and not compiled else None
        for start, chunk in self._chunks(x):
            acc = out[start : start + chunk.shape[0]]
            if self.read_noise:
                counters = (first_counter + start + np.arange(chunk.shape[0], dtype=np.uint64)) & (
                    np.uint64(0xFFFFFFFF)
                )
            if compiled:
                scale = self._read_noise_scale()
                compiled(
                    self.noise_seed, counters, chunk, self._levels, scale, self.rect_shift, acc
                )
            else:
                positive = self._accumulate(chunk, acc, scratch)
                if self.read_noise:
                    acc <<= NOISE_FRAC_BITS
                    acc += self._read_noise(chunk, positive, counters, cells)
            if shift or self.adc_bits is not None:
                acc[...] = saturate(round_shift(acc, shift), self.adc_bits)
        if self.read_noise:
            self.noise_counter = (first_counter + x.shape[0]) & 0xFFFFFFFF
        return out

    def _noise_scratch(self, vectors: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-cell scratch of :meth:`_read_noise`: XOR words, popcounts, float weights."""
        c = self.config
        step = max(1, _CHUNK_CELLS // (c.rows * c.cols))
        shape = (min(step, vectors), c.rows, c.cols)
        return np.empty(shape, np.uint64), np.empty(shape, np.uint8), np.empty(shape)

    def _read_noise(
        self,
        x: np.ndarray,
        positive: np.ndarray | None,
        counters: np.ndarray,
        cells: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """``sum_i contrib(x_bi, n_bij)`` for one chunk; vector ``b`` uses ``counters[b]``.

        With ``z = popcount(R_i ^ C_j) - 32`` and ``n_ij = z_ij * s_ij``, the positive part is
        ``sum_i x_i s_ij popcount_ij - 32 * sum_i x_i s_ij``: the first term is one small
        matrix product per vector, the second a single product for the whole chunk.
        """
        c = self.config
        scale = self._read_noise_scale()
        row_words, col_words = axis_words(self.noise_seed, counters, c.rows, c.cols)
        leaky = self.rect_shift is not None and bool((x < 0).any())
        x64 = x.astype(np.int64, copy=False)
        # sum_i x_i * s_ij * popcount_ij is at most twice the noise sum's bound.
        exact_float = positive is not None and c.noise_acc_bits + 1 <= _FLOAT_EXACT_BITS
        if exact_float:
            scale_f = scale.astype(np.float64)
            total = np.empty((x.shape[0], 1, c.cols), dtype=np.float64)
        else:
            positive_int = np.maximum(x64, 0)
            out = np.empty((x.shape[0], c.cols), dtype=np.int64)
        if leaky:
            leak = np.empty((x.shape[0], c.cols), dtype=np.int64)
        # Scratch for one sub-chunk, allocated once: fresh large temporaries per sub-chunk
        # would cost page faults that take as long as the arithmetic.
        step = max(1, _CHUNK_CELLS // (c.rows * c.cols))
        if cells is None:
            cells = self._noise_scratch(x.shape[0])
        words, popcount, weights = cells
        for start in range(0, x.shape[0], step):
            stop = min(start + step, x.shape[0])
            n = stop - start
            np.bitwise_xor(
                row_words[start:stop, :, None], col_words[start:stop, None, :], out=words[:n]
            )
            np.bitwise_count(words[:n], out=popcount[:n])
            if exact_float:
                np.copyto(weights[:n], popcount[:n])
                np.multiply(weights[:n], scale_f, out=weights[:n])
                np.matmul(positive[start:stop, None, :], weights[:n], out=total[start:stop])
            if leaky or not exact_float:
                noise = (popcount[:n].astype(np.int64) - Z_MAX) * scale
            if not exact_float:
                out[start:stop] = np.einsum("bi,bij->bj", positive_int[start:stop], noise)
            if leaky:
                leak[start:stop] = self._leakage(x64[start:stop], noise, self.rect_shift)
        if exact_float:
            total = total[:, 0, :]
            total -= Z_MAX * (positive @ scale_f)
            out = total.astype(np.int64)
        if leaky:
            out += leak
        return out
