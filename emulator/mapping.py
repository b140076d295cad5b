"""Real and complex matrices on crossbars of unsigned conductance levels.

A logical matrix ``W`` of shape ``(n_in, n_out)`` computes ``y = x @ W`` (inputs on rows,
outputs on columns, like the crossbar). It is stored as level codes in one of two ways:

* **offset**: ``g = offset + round(W / step)`` with ``offset = (levels - 1) // 2``; the
  output is ``(sum_i x_i g_ij - offset * sum_i x_i) * step``, the baseline ``offset * sum x``
  being subtracted digitally (it is exact: the host knows the input codes).
* **differential**: columns come in pairs, ``g+ = round(max(W, 0) / step)`` and
  ``g- = round(max(-W, 0) / step)``; the output is ``(y+ - y-) * step``. Twice the columns,
  one more bit of resolution.

A physical matrix wider or taller than one crossbar is cut into ``rows x cols`` tiles, each
programmed on its own crossbar; partial sums of the tiles in a column band are added
digitally (exactly, in int64). Inputs are real vectors quantized per vector to the DAC's
symmetric range ``[-x_max, x_max]``; negative inputs are applied in a second phase (the
cells conduct one way), so ``y = VMM(x+) - VMM(x-)``.

Complex matrices become real ones: ``(xr + i xi) @ (Mr + i Mi)`` is
``[xr, xi] @ [[Mr, Mi], [-Mi, Mr]]``, whose outputs are ``[yr, yi]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .config import CrossbarConfig
from .golden import Crossbar

__all__ = [
    "SCHEMES",
    "quantize_inputs",
    "split_signed",
    "MappedMatrix",
    "TiledMatrix",
    "complex_to_real",
]

SCHEMES = ("offset", "differential")

#: Runs one tile: ``(tile_index, input_codes (batch, rows)) -> output codes (batch, cols)``.
TileRunner = Callable[[int, np.ndarray], np.ndarray]


def _round_half_away(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def quantize_inputs(x, config: CrossbarConfig) -> tuple[np.ndarray, np.ndarray]:
    """Real vectors ``(batch, n)`` to input codes, each vector scaled to the full DAC range.

    Returns ``(codes, scale)``: ``x ~= codes * scale[:, None]``, codes in
    ``[-x_max, x_max]`` (the symmetric range, so that both phases of a signed input fit).
    An all-zero vector gets scale 1.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"inputs must be 2-D (batch, n), not shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("inputs must be finite")
    peak = np.max(np.abs(x), axis=1)
    scale = np.where(peak > 0, peak / config.x_max, 1.0)
    codes = _round_half_away(x / scale[:, None]).astype(np.int64)
    return codes, scale


def split_signed(codes: np.ndarray) -> list[np.ndarray]:
    """The phases of a signed input: ``[x+]`` when nothing is negative, else ``[x+, x-]``."""
    positive = np.maximum(codes, 0)
    if not (codes < 0).any():
        return [positive]
    return [positive, np.maximum(-codes, 0)]


def complex_to_real(matrix: np.ndarray, complex_inputs: bool = True) -> np.ndarray:
    """The real matrix that computes ``x @ matrix`` on stacked real and imaginary parts.

    With ``complex_inputs`` the result is ``[[Mr, Mi], [-Mi, Mr]]`` (inputs ``[xr, xi]``);
    without, ``[Mr, Mi]`` (real inputs). The outputs are ``[yr, yi]`` in both cases.
    """
    matrix = np.asarray(matrix)
    top = np.hstack([matrix.real, matrix.imag])
    if not complex_inputs:
        return top
    return np.vstack([top, np.hstack([-matrix.imag, matrix.real])])


@dataclass(frozen=True, eq=False)
class MappedMatrix:
    """A real matrix quantized to level codes and cut into crossbar tiles.

    Build it with :meth:`from_real`. ``physical`` holds the level codes of the whole
    (untiled) physical matrix; :attr:`tiles` those of each crossbar, padded with level 0
    (padded rows receive input 0, padded columns are dropped).
    """

    config: CrossbarConfig
    scheme: str
    step: float
    offset: int
    shape: tuple[int, int]
    physical: np.ndarray
    tiles: list[np.ndarray] = field(repr=False)
    tile_grid: tuple[int, int]

    @classmethod
    def from_real(
        cls,
        weights,
        config: CrossbarConfig,
        scheme: str = "offset",
        step: float | None = None,
    ) -> MappedMatrix:
        """Quantize ``weights`` (``(n_in, n_out)``, real) onto crossbars of ``config``.

        ``step`` is the real value of one level; by default the largest ``|W|`` takes the
        whole range.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or 0 in w.shape:
            raise ValueError(f"weights must be a non-empty 2-D matrix, not shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite")
        if scheme not in SCHEMES:
            raise ValueError(f"scheme = {scheme!r} is unknown: choose one of {SCHEMES}")
        if scheme == "offset":
            offset = config.g_max // 2
            span = min(offset, config.g_max - offset)
        else:
            offset = 0
            span = config.g_max
        peak = float(np.max(np.abs(w)))
        if step is None:
            step = peak / span if peak > 0 else 1.0
        if not step > 0:
            raise ValueError(f"step = {step} must be > 0")
        if peak / step > span + 0.5:
            raise ValueError(
                f"max |W| = {peak:g} needs {peak / step:.1f} levels at step {step:g}, "
                f"more than the {span} available"
            )
        if scheme == "offset":
            physical = offset + _round_half_away(w / step).astype(np.int64)
        else:
            physical = np.empty((w.shape[0], 2 * w.shape[1]), dtype=np.int64)
            physical[:, 0::2] = _round_half_away(np.maximum(w, 0) / step)
            physical[:, 1::2] = _round_half_away(np.maximum(-w, 0) / step)
        physical = np.clip(physical, 0, config.g_max)
        grid = (-(-physical.shape[0] // config.rows), -(-physical.shape[1] // config.cols))
        padded = np.zeros((grid[0] * config.rows, grid[1] * config.cols), dtype=np.int64)
        padded[: physical.shape[0], : physical.shape[1]] = physical
        tiles = [
            padded[r * config.rows : (r + 1) * config.rows, c * config.cols : (c + 1) * config.cols]
            for r in range(grid[0])
            for c in range(grid[1])
        ]
        return cls(
            config=config,
            scheme=scheme,
            step=float(step),
            offset=offset,
            shape=(w.shape[0], w.shape[1]),
            physical=physical,
            tiles=tiles,
            tile_grid=grid,
        )

    @property
    def n_tiles(self) -> int:
        return len(self.tiles)

    def dequantized(self) -> np.ndarray:
        """The real matrix the levels represent (``W`` plus its quantization error)."""
        if self.scheme == "offset":
            return (self.physical - self.offset) * self.step
        return (self.physical[:, 0::2] - self.physical[:, 1::2]) * self.step

    def combine(self, physical_out: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Logical integer outputs from the physical column sums of one input phase.

        ``physical_out`` is ``(batch, n_phys_cols)`` in accumulator units, ``codes`` the
        phase's ``(batch, n_in)`` input codes (for the offset baseline).
        """
        if self.scheme == "offset":
            return physical_out - self.offset * codes.sum(axis=1, keepdims=True)
        return physical_out[:, 0::2] - physical_out[:, 1::2]


class TiledMatrix:
    """A :class:`MappedMatrix` programmed on crossbars, computing ``x @ W`` for real ``x``.

    Parameters
    ----------
    mapped
        The quantized matrix.
    runner
        Runs one tile's VMM batch. The default programs one golden :class:`Crossbar` per
        tile; other backends provide their own (same codes in, same codes out).
    """

    def __init__(self, mapped: MappedMatrix, runner: TileRunner | None = None) -> None:
        self.mapped = mapped
        self.crossbars: list[Crossbar] = []
        if runner is None:
            for levels in mapped.tiles:
                crossbar = Crossbar(mapped.config)
                crossbar.write_levels(levels)
                self.crossbars.append(crossbar)
            runner = self._run_golden
        self.runner = runner
        self.vmm_count = 0

    def _run_golden(self, tile: int, codes: np.ndarray) -> np.ndarray:
        return self.crossbars[tile].vmm_batch(codes)

    def _output_gain(self, tile: int) -> int:
        """Accumulator units per output code of a tile (its ADC shift)."""
        if self.crossbars:
            return 1 << self.crossbars[tile].adc_shift
        return 1 << self.mapped.config.adc_shift

    def matmul_codes(self, codes: np.ndarray) -> np.ndarray:
        """Integer logical outputs ``(batch, n_out)`` for input codes ``(batch, n_in)``,
        in units of one level times one input code (exact at full precision)."""
        m, c = self.mapped, self.mapped.config
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != m.shape[0]:
            raise ValueError(
                f"input codes have shape {codes.shape}, expected (batch, {m.shape[0]})"
            )
        batch = codes.shape[0]
        grid_rows, grid_cols = m.tile_grid
        n_phys = m.physical.shape[1]
        result = np.zeros((batch, m.shape[1]), dtype=np.int64)
        for phase, sign in zip(split_signed(codes), (1, -1), strict=False):
            padded = np.zeros((batch, grid_rows * c.rows), dtype=np.int64)
            padded[:, : m.shape[0]] = phase
            physical = np.zeros((batch, grid_cols * c.cols), dtype=np.int64)
            for r in range(grid_rows):
                x_tile = padded[:, r * c.rows : (r + 1) * c.rows]
                if not x_tile.any():
                    continue
                for col in range(grid_cols):
                    tile = r * grid_cols + col
                    out = self.runner(tile, x_tile) * self._output_gain(tile)
                    physical[:, col * c.cols : (col + 1) * c.cols] += out
                    self.vmm_count += batch
            result += sign * m.combine(physical[:, :n_phys], phase)
        return result

    def __call__(self, x) -> np.ndarray:
        """``x @ W`` for real inputs ``(batch, n_in)`` (or one vector ``(n_in,)``)."""
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        codes, scale = quantize_inputs(np.atleast_2d(x), self.mapped.config)
        y = self.matmul_codes(codes) * (self.mapped.step * scale[:, None])
        return y[0] if single else y
