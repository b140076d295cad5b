"""Real and complex matrices on one or more crossbars (:class:`CrossbarMatrix`, with the
mappings and tiling of :mod:`molxbar.emulator.mapping`), the 1-D DFT
(:func:`dft_on_crossbars`) and the 2-D inverse DFT of an image in blocks
(:func:`idft2_on_crossbars`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from molxbar.emulator.mapping import MappedMatrix, TiledMatrix
from molxbar.emulator.workloads import ComplexTransform, dft_matrix, idft2_blocks
from molxbar.protocol.spec import MAX_BATCH

from ..driver import CrossbarDriver
from .verify import VerifyReport, program_and_verify

__all__ = [
    "CrossbarTiles",
    "CrossbarMatrix",
    "dft_on_crossbars",
    "image_blocks",
    "image_from_blocks",
    "idft2_on_crossbars",
]


class CrossbarTiles:
    """The tiles of a :class:`~molxbar.emulator.mapping.MappedMatrix` on crossbars behind
    drivers: the tile runner of :class:`~molxbar.emulator.mapping.TiledMatrix`.

    With as many crossbars as tiles each holds one tile for good; with fewer, crossbar
    ``t % len(drivers)`` is reprogrammed when tile ``t`` is needed (one crossbar serves a
    matrix of any size, one tile at a time).

    Parameters
    ----------
    drivers
        The crossbars, all of the same shape and widths, their ADC shift registers at the
        configuration's value (the tiles' outputs are scaled back by it).
    verify
        Program and verify each tile (:func:`program_and_verify`); ``None``: when the
        engine's write error is on (asked once per crossbar).
    max_rounds, max_step
        For :func:`program_and_verify`.
    chunk, progress
        Vectors per RUN_BATCH; ``progress(vectors)`` is called as batches complete.
    observer
        Called as ``observer(tile, codes)`` with every batch of input codes a tile runs
        (for energy reports).
    """

    def __init__(
        self,
        drivers: Sequence[CrossbarDriver],
        *,
        verify: bool | None = None,
        max_rounds: int = 3,
        max_step: int | None = None,
        chunk: int = MAX_BATCH,
        progress: Callable[[int], None] | None = None,
        observer: Callable[[int, np.ndarray], None] | None = None,
    ) -> None:
        from molxbar.protocol.spec import NOISE_WRITE

        self.drivers = list(drivers)
        if not self.drivers:
            raise ValueError("at least one crossbar driver is needed")
        first = self.drivers[0].config
        for d in self.drivers[1:]:
            c = d.config
            if (c.rows, c.cols, c.g_bits, c.levels, c.x_bits) != (
                first.rows,
                first.cols,
                first.g_bits,
                first.levels,
                first.x_bits,
            ):
                raise ValueError("every crossbar must have the same shape and widths")
        self.config = first
        statuses = [d.status() for d in self.drivers]
        for index, status in enumerate(statuses):
            # Tile outputs are scaled back by the configuration's ADC shift.
            if status["adc_shift"] != first.adc_shift:
                raise ValueError(
                    f"crossbar {index} has ADC shift {status['adc_shift']}, its configuration "
                    f"{first.adc_shift}: set_adc() to the configuration's values first"
                )
        if verify is None:
            self.verify = [bool(s["noise"] & NOISE_WRITE) for s in statuses]
        else:
            self.verify = [bool(verify)] * len(self.drivers)
        self.max_rounds, self.max_step = max_rounds, max_step
        self.chunk, self.progress, self.observer = chunk, progress, observer
        self.mapped: MappedMatrix | None = None
        self.loaded: list[int | None] = [None] * len(self.drivers)
        #: One report per verified tile programming.
        self.reports: list[VerifyReport] = []
        self.programmings = 0
        self.vmms = 0

    def bind(self, mapped: MappedMatrix) -> None:
        """Take the tiles of ``mapped``; program them now when every tile has a crossbar."""
        if (mapped.config.rows, mapped.config.cols) != (self.config.rows, self.config.cols):
            raise ValueError("the matrix was mapped for crossbars of another shape")
        self.mapped = mapped
        self.loaded = [None] * len(self.drivers)
        if mapped.n_tiles <= len(self.drivers):
            for tile in range(mapped.n_tiles):
                self._load(tile)

    def _load(self, tile: int) -> CrossbarDriver:
        index = tile % len(self.drivers)
        driver = self.drivers[index]
        if self.loaded[index] != tile:
            levels = self.mapped.tiles[tile]
            if self.verify[index]:
                self.reports.append(
                    program_and_verify(
                        driver, levels, max_rounds=self.max_rounds, max_step=self.max_step
                    )
                )
            else:
                driver.program_levels(levels)
            self.loaded[index] = tile
            self.programmings += 1
        return driver

    def __call__(self, tile: int, codes: np.ndarray) -> np.ndarray:
        if self.mapped is None:
            raise RuntimeError("no matrix is bound to these crossbars")
        driver = self._load(tile)
        if self.observer is not None:
            self.observer(tile, codes)
        done = self.vmms

        def progress(vectors: int) -> None:
            if self.progress is not None:
                self.progress(done + vectors)

        out = driver.vmm_batch(codes, chunk=self.chunk, progress=progress)
        self.vmms += len(codes)
        return out


class CrossbarMatrix:
    """A real or complex matrix on crossbars: ``x @ M`` through the drivers.

    A real ``M`` (``(n_in, n_out)``) is quantized with the ``offset`` or ``differential``
    mapping and tiled (:mod:`molxbar.emulator.mapping`); a complex one becomes the real
    matrix that acts on stacked real and imaginary parts
    (:class:`~molxbar.emulator.workloads.ComplexTransform`). Signed inputs run in two
    phases. Results are real (complex for a complex ``M``), in the units of ``M`` and ``x``.

    Parameters
    ----------
    matrix
        Real or complex ``(n_in, n_out)``.
    drivers
        One or more crossbars (see :class:`CrossbarTiles`).
    scheme
        ``"offset"`` or ``"differential"``.
    real_inputs
        For a complex matrix: the inputs are real, only ``[Mr, Mi]`` is programmed.
    tiles
        Options of :class:`CrossbarTiles` (``verify``, ``max_rounds``, ``progress``, ...).
    """

    def __init__(
        self,
        matrix,
        drivers: Sequence[CrossbarDriver],
        scheme: str = "offset",
        *,
        real_inputs: bool = False,
        **tiles,
    ) -> None:
        self.tiles = CrossbarTiles(drivers, **tiles)
        config = self.tiles.config
        matrix = np.asarray(matrix)
        self.complex = np.iscomplexobj(matrix)
        if self.complex:
            self.transform = ComplexTransform(
                matrix, config, scheme, real_inputs=real_inputs, runner=self.tiles
            )
            self.mapped = self.transform.mapped
            self.tiled = self.transform.tiled
        else:
            self.transform = None
            self.mapped = MappedMatrix.from_real(matrix, config, scheme)
            self.tiled = TiledMatrix(self.mapped, self.tiles)
        self.shape = matrix.shape
        self.tiles.bind(self.mapped)

    def __call__(self, x) -> np.ndarray:
        """``x @ M`` for ``(batch, n_in)`` inputs (or one ``(n_in,)`` vector)."""
        if self.complex:
            x = np.asarray(x)
            y = self.transform(x)
            return y[0] if x.ndim == 1 else y
        return self.tiled(x)

    #: NumPy arrays leave ``x @ W`` to :meth:`__rmatmul__`.
    __array_ufunc__ = None

    def __rmatmul__(self, x) -> np.ndarray:
        """``x @ W``: the same as ``W(x)``."""
        return self(x)

    @property
    def vmms(self) -> int:
        """VMMs run on the crossbars so far (every tile and input phase counted)."""
        return self.tiles.vmms


def dft_on_crossbars(
    signals,
    drivers: Sequence[CrossbarDriver],
    scheme: str = "offset",
    *,
    inverse: bool = False,
    **tiles,
) -> tuple[np.ndarray, CrossbarMatrix]:
    """The ``n``-point DFT (or inverse DFT) of each row of ``signals`` on the crossbars.

    Real signals use the half-size mapping for real inputs. Returns the complex
    ``(batch, n)`` result (``numpy.fft.fft`` convention) and the programmed matrix.
    """
    signals = np.atleast_2d(np.asarray(signals))
    matrix = CrossbarMatrix(
        dft_matrix(signals.shape[1], inverse=inverse),
        drivers,
        scheme,
        real_inputs=not np.iscomplexobj(signals),
        **tiles,
    )
    return matrix(signals), matrix


def image_blocks(image, n: int = 64) -> np.ndarray:
    """The ``(blocks, n, n)`` blocks of a 2-D image whose sides are multiples of ``n``,
    row-major."""
    image = np.asarray(image)
    if image.ndim != 2 or image.shape[0] % n or image.shape[1] % n:
        raise ValueError(f"image of shape {image.shape} is not made of {n}x{n} blocks")
    by, bx = image.shape[0] // n, image.shape[1] // n
    return image.reshape(by, n, bx, n).transpose(0, 2, 1, 3).reshape(by * bx, n, n)


def image_from_blocks(blocks, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`image_blocks`."""
    blocks = np.asarray(blocks)
    n = blocks.shape[1]
    by, bx = shape[0] // n, shape[1] // n
    return blocks.reshape(by, bx, n, n).transpose(0, 2, 1, 3).reshape(shape)


def idft2_on_crossbars(
    spectra,
    drivers: Sequence[CrossbarDriver],
    scheme: str = "offset",
    **tiles,
) -> tuple[np.ndarray, CrossbarMatrix]:
    """2-D inverse DFT of each ``(n, n)`` block spectrum (``(blocks, n, n)`` complex, as
    ``numpy.fft.fft2`` gives) on the crossbars: rows, then columns, with one ``n``-point
    inverse DFT matrix. Returns the complex ``(blocks, n, n)`` result and the matrix."""
    spectra = np.asarray(spectra, dtype=np.complex128)
    if spectra.ndim != 3 or spectra.shape[1] != spectra.shape[2]:
        raise ValueError(f"spectra must be (blocks, n, n), not shape {spectra.shape}")
    matrix = CrossbarMatrix(dft_matrix(spectra.shape[1], inverse=True), drivers, scheme, **tiles)
    return idft2_blocks(spectra, matrix.transform), matrix
