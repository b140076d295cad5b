"""Programs: high-level operations compiled into command streams, and their results decoded.

Two kinds:

* stream builders for one-pass backends (:func:`vmm_program`, :func:`decode_outputs`);
* programs over :class:`~molxbar.host.driver.CrossbarDriver` objects, so they run on any
  transport: program-and-verify (:func:`program_and_verify`), real and complex matrices on
  one or more crossbars (:class:`CrossbarMatrix`, with the mappings and tiling of
  :mod:`molxbar.emulator.mapping`), the 1-D DFT (:func:`dft_on_crossbars`), the 2-D inverse
  DFT of an image in blocks (:func:`idft2_on_crossbars`), and a least-squares classifier
  trained with rank-1 pulse updates (:func:`train_classifier`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.emulator.mapping import MappedMatrix, TiledMatrix
from molxbar.emulator.workloads import ComplexTransform, dft_matrix, idft2_blocks
from molxbar.protocol.errors import EngineError
from molxbar.protocol.spec import (
    MAX_BATCH,
    RECT_IDEAL,
    Layout,
    Opcode,
    decode_responses,
    encode_command,
)

from .driver import CrossbarDriver

__all__ = [
    "vmm_program",
    "decode_outputs",
    "VerifyReport",
    "program_and_verify",
    "CrossbarTiles",
    "CrossbarMatrix",
    "dft_on_crossbars",
    "image_blocks",
    "image_from_blocks",
    "idft2_on_crossbars",
    "make_classes",
    "TrainingResult",
    "train_classifier",
]

def vmm_program(
    config: CrossbarConfig,
    levels: np.ndarray,
    inputs: np.ndarray,
    *,
    adc_bits: int | None = None,
    adc_shift: int = 0,
    rect_shift: int | None = None,
) -> bytes:
    """Program ``levels`` row by row, set the ADC and rectification, run ``inputs`` as
    batches. The responses hold one OK per setting command, then one output vector per input.
    """
    layout = Layout(config)
    parts = [
        encode_command(layout, Opcode.WRITE_ROW, row=r, levels=levels[r])
        for r in range(config.rows)
    ]
    parts.append(encode_command(layout, Opcode.SET_ADC, bits=adc_bits or 0, shift=adc_shift))
    shift = RECT_IDEAL if rect_shift is None else rect_shift
    parts.append(encode_command(layout, Opcode.SET_RECT, shift=shift))
    for start in range(0, inputs.shape[0], MAX_BATCH):
        chunk = inputs[start : start + MAX_BATCH]
        parts.append(encode_command(layout, Opcode.RUN_BATCH, count=len(chunk), x=chunk))
    return b"".join(parts)


def decode_outputs(config: CrossbarConfig, responses: bytes) -> np.ndarray:
    """The ``(batch, cols)`` outputs of every VMM response; any error raises EngineError."""
    outputs = []
    for response in decode_responses(Layout(config), responses):
        if not response.ok:
            raise EngineError(response.opcode, response.status)
        if "y" in response.fields:
            outputs.append(response.fields["y"])
    return np.array(outputs, dtype=np.int64).reshape(-1, config.cols)


# Program and verify ---------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :func:`program_and_verify`.

    ``initial_errors`` cells differed from their target after the direct writes;
    ``rounds`` read-and-pulse rounds ran, sending ``pulse_commands`` PULSE_CELL commands of
    ``pulses`` pulses in all; ``remaining_errors`` cells are still off, by at most
    ``max_error`` levels.
    """

    cells: int
    initial_errors: int
    rounds: int
    pulse_commands: int
    pulses: int
    remaining_errors: int
    max_error: int

    @property
    def converged(self) -> bool:
        return self.remaining_errors == 0

    def as_dict(self) -> dict:
        return asdict(self)


def program_and_verify(
    driver: CrossbarDriver,
    levels,
    *,
    max_rounds: int = 3,
    max_step: int | None = None,
) -> VerifyReport:
    """Write ``levels`` directly, then read back and correct with pulse trains.

    A direct write lands within its write error of the target; each round reads every
    level and sends each wrong cell its difference as pulses (at most ``max_step`` per
    round, when given), up to ``max_rounds`` rounds. Pulses move a cell by exactly one level
    each, so with no ``max_step`` one round corrects everything.
    """
    if max_rounds < 0:
        raise ValueError(f"max_rounds = {max_rounds} must be >= 0")
    if max_step is not None and max_step < 1:
        raise ValueError(f"max_step = {max_step} must be >= 1")
    target = np.asarray(levels, dtype=np.int64)
    driver.program_levels(target)
    stored = driver.read_levels()
    initial = int(np.count_nonzero(stored != target))
    rounds = commands = pulses = 0
    while rounds < max_rounds and (stored != target).any():
        diff = target - stored
        if max_step is not None:
            diff = np.clip(diff, -max_step, max_step)
        commands += driver.pulse_cells(diff)
        pulses += int(np.abs(diff).sum())
        rounds += 1
        stored = driver.read_levels()
    error = np.abs(stored - target)
    return VerifyReport(
        cells=int(target.size),
        initial_errors=initial,
        rounds=rounds,
        pulse_commands=commands,
        pulses=pulses,
        remaining_errors=int(np.count_nonzero(error)),
        max_error=int(error.max()),
    )


# Matrices on crossbars ------------------------------------------------------------------


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


# Training with rank-1 updates -----------------------------------------------------------


def make_classes(
    n_classes: int = 4,
    n_features: int = 12,
    per_class: int = 150,
    *,
    separation: float = 2.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters, ``(n, n_features)`` features and ``(n,)`` labels, shuffled.

    Class centres lie ``separation`` standard deviations from the origin in random
    directions; the clusters overlap a little, so no classifier is perfect.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, n_features))
    centres *= separation / np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_classes), per_class)
    features = centres[labels] + rng.standard_normal((labels.size, n_features))
    order = rng.permutation(labels.size)
    return features[order], labels[order]


@dataclass(frozen=True)
class TrainingResult:
    """Outcome of :func:`train_classifier`: accuracies measured on the crossbar, the float64
    least-squares classifier on the same data, the mean squared error of each epoch, the
    rank-1 updates sent, and the trained weights as read back (``(n_features+1, classes)``,
    bias last)."""

    epochs: int
    train_accuracy: float
    test_accuracy: float
    float_test_accuracy: float
    loss: list[float]
    updates: int
    update_shift: int
    weights: np.ndarray

    def summary(self) -> dict:
        return {
            "epochs": self.epochs,
            "train_accuracy": round(self.train_accuracy, 4),
            "test_accuracy": round(self.test_accuracy, 4),
            "float_test_accuracy": round(self.float_test_accuracy, 4),
            "final_loss": round(self.loss[-1], 5),
            "updates": self.updates,
            "update_shift": self.update_shift,
        }


def train_classifier(
    driver: CrossbarDriver,
    features,
    labels,
    *,
    test_fraction: float = 0.3,
    epochs: int = 8,
    batch: int = 16,
    learning_rate: float = 0.02,
    weight_range: float = 2.0,
    error_clip: float = 2.0,
    seed: int = 0,
) -> TrainingResult:
    """Train a linear least-squares classifier on one crossbar with rank-1 pulse updates.

    The weights ``W`` (features and a bias row, one column per class) live on the crossbar
    in the offset mapping, ``weight_range`` at full scale, starting at 0. For each
    mini-batch the crossbar computes ``y = x W`` (two input phases), the host forms the
    error ``e = t - y`` against one-hot targets and sends, for every sample, the rank-1
    update ``g_ij += round(a_i b_j / 2**s)`` with ``a ~ x`` and ``b ~ e`` scaled so that
    ``W += learning_rate / batch * x^T e`` (the delta rule). Accuracy is the argmax of
    ``y`` measured on the crossbar.
    """
    c = driver.config
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    classes = int(labels.max()) + 1
    if x.ndim != 2 or x.shape[1] + 1 > c.rows or classes > c.cols:
        raise ValueError(
            f"{x.shape[1]} features + bias and {classes} classes do not fit a "
            f"{c.rows}x{c.cols} crossbar"
        )
    mean, std = x.mean(axis=0), x.std(axis=0)
    x = np.hstack([(x - mean) / np.where(std > 0, std, 1.0), np.ones((len(x), 1))])
    targets = np.eye(classes)[labels]
    n_test = int(round(test_fraction * len(x)))
    train, test = slice(n_test, None), slice(0, n_test)

    # Weights in the offset mapping, all zero to start.
    span = min(c.g_max // 2, c.g_max - c.g_max // 2)
    step = weight_range / span
    mapped = MappedMatrix.from_real(np.zeros((x.shape[1], classes)), c, "offset", step=step)
    program_and_verify(driver, mapped.tiles[0])
    forward = TiledMatrix(mapped, lambda _tile, codes: driver.vmm_batch(codes))

    # Update scaling: a = x / x_peak * x_max, b = e * k * 2**s with a*b / 2**s equal to
    # learning_rate / batch * x * e in levels; s as large as |b| <= x_max allows.
    x_peak = float(np.abs(x[train]).max())
    k = learning_rate / batch / step * x_peak / c.x_max
    shift = int(np.floor(np.log2(c.x_max / (error_clip * k))))
    if not 0 <= shift <= c.max_shift:
        raise ValueError(f"the update needs a shift of {shift}: change the learning rate")
    driver.set_update_shift(shift)
    a_codes = np.zeros((len(x), c.rows), dtype=np.int64)
    a_codes[:, : x.shape[1]] = np.round(x / x_peak * c.x_max)
    b_scale = k * 2.0**shift

    rng = np.random.default_rng(seed)
    train_index = np.arange(len(x))[train]
    loss, updates = [], 0
    for _ in range(epochs):
        rng.shuffle(train_index)
        squared = 0.0
        for start in range(0, len(train_index), batch):
            idx = train_index[start : start + batch]
            error = targets[idx] - forward(x[idx])
            squared += float(np.sum(error**2))
            b_codes = np.zeros((len(idx), c.cols), dtype=np.int64)
            b_codes[:, :classes] = np.round(np.clip(error, -error_clip, error_clip) * b_scale)
            driver.update_rank1_batch(a_codes[idx], b_codes)
            updates += len(idx)
        loss.append(squared / len(train_index))

    def accuracy(part: slice) -> float:
        return float(np.mean(np.argmax(forward(x[part]), axis=1) == labels[part]))

    solution = np.linalg.lstsq(x[train], targets[train], rcond=None)[0]
    float_accuracy = float(np.mean(np.argmax(x[test] @ solution, axis=1) == labels[test]))
    weights = (driver.read_levels()[: x.shape[1], :classes] - mapped.offset) * step
    return TrainingResult(
        epochs=epochs,
        train_accuracy=accuracy(train),
        test_accuracy=accuracy(test),
        float_test_accuracy=float_accuracy,
        loss=loss,
        updates=updates,
        update_shift=shift,
        weights=weights,
    )
