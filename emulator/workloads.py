"""Workloads: Fourier transforms on the crossbar, test signals and a synthetic sky image.

The paper's demonstration is the inverse Fourier transform of astronomical image data in
64x64 blocks; :func:`astro_image` draws a comparable scene (a star field over a nebula) in
code, so nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import NOISE_FRAC_BITS, CrossbarConfig
from .mapping import MappedMatrix, TiledMatrix, complex_to_real, quantize_inputs
from .metrics import enob, error_energy_snr_db, snr_db

__all__ = [
    "dft_matrix",
    "make_signals",
    "astro_image",
    "ComplexTransform",
    "DftResult",
    "run_dft",
    "idft2_blocks",
    "predicted_snr_db",
]

SIGNAL_KINDS = ("gaussian", "tones", "chirp")


def dft_matrix(n: int, inverse: bool = False) -> np.ndarray:
    """The ``n``-point DFT as a matrix ``F`` with ``x @ F == numpy.fft.fft(x)``.

    With ``inverse``, ``x @ F == numpy.fft.ifft(x)`` (includes the ``1/n``).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n = {n!r} must be a positive int")
    k = np.arange(n)
    sign = 1.0 if inverse else -1.0
    matrix = np.exp(sign * 2j * np.pi * np.outer(k, k) / n)
    return matrix / n if inverse else matrix


def make_signals(n: int, batch: int, kind: str = "gaussian", seed: int = 0) -> np.ndarray:
    """``(batch, n)`` real test signals.

    ``gaussian``: white noise; ``tones``: three sinusoids of random bin, phase and amplitude;
    ``chirp``: a linear frequency sweep with random start phase.
    """
    if kind not in SIGNAL_KINDS:
        raise ValueError(f"kind = {kind!r} is unknown: choose one of {SIGNAL_KINDS}")
    rng = np.random.default_rng(seed)
    t = np.arange(n) / n
    if kind == "gaussian":
        return rng.standard_normal((batch, n))
    if kind == "tones":
        bins = rng.integers(1, n // 2, size=(batch, 3, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(batch, 3, 1))
        amp = rng.uniform(0.2, 1.0, size=(batch, 3, 1))
        return np.sum(amp * np.cos(2 * np.pi * bins * t + phase), axis=1)
    phase = rng.uniform(0, 2 * np.pi, size=(batch, 1))
    return np.cos(np.pi * (n / 2) * t**2 + phase)


def astro_image(size: int = 256, seed: int = 2024) -> np.ndarray:
    """A synthetic astronomical image in ``[0, 1]``: a nebula of dusty columns and a star field.

    Parameters
    ----------
    size
        Side in pixels; a multiple of 64 fills whole crossbar blocks.
    seed
        Seed of the random scene.
    """
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size = {size!r} must be an int >= 8")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    # Nebula: smooth turbulence (power-law filtered noise) under a glowing envelope.
    freq = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(freq, freq, indexing="ij"))
    radius[0, 0] = 1.0
    spectrum = rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size))
    turbulence = np.real(np.fft.ifft2(spectrum / radius**1.8))
    turbulence = (turbulence - turbulence.min()) / np.ptp(turbulence)
    glow = np.exp(-((xx - 0.55) ** 2 + (yy - 0.45) ** 2) / 0.12)
    nebula = 0.55 * glow * turbulence**1.5
    # Three dark columns ("pillars") rising from the bottom edge, lit at their tips.
    for x0, width, top in ((0.3, 0.06, 0.35), (0.55, 0.05, 0.5), (0.78, 0.04, 0.6)):
        sway = 0.02 * np.sin(yy * 9 + x0 * 10)
        column = np.exp(-(((xx - x0 - sway) / width) ** 2)) * (yy > top)
        tip = np.exp(-(((xx - x0) / width) ** 2 + ((yy - top) / 0.03) ** 2))
        nebula = nebula * (1 - 0.8 * column) + 0.35 * tip * turbulence
    # Stars: power-law fluxes, Gaussian point-spread function.
    image = nebula
    count = size * size // 200
    sx, sy = rng.uniform(0, size, count), rng.uniform(0, size, count)
    flux = 0.15 * rng.pareto(1.5, count).clip(0, 6) + 0.05
    psf = 0.6 + 0.4 * rng.random(count)
    pix_y, pix_x = np.mgrid[0:size, 0:size]
    for x0, y0, f, s in zip(sx, sy, flux, psf, strict=True):
        lo_y, hi_y = max(int(y0) - 4, 0), min(int(y0) + 5, size)
        lo_x, hi_x = max(int(x0) - 4, 0), min(int(x0) + 5, size)
        dy = pix_y[lo_y:hi_y, lo_x:hi_x] - y0
        dx = pix_x[lo_y:hi_y, lo_x:hi_x] - x0
        image[lo_y:hi_y, lo_x:hi_x] += f * np.exp(-(dx**2 + dy**2) / (2 * s**2))
    return np.clip(image / np.percentile(image, 99.9), 0.0, 1.0)


class ComplexTransform:
    """A complex matrix ``M`` on crossbars: ``x @ M`` for complex (or real) ``x``.

    Parameters
    ----------
    matrix
        Complex ``(n_in, n_out)``.
    config
        The crossbar.
    scheme
        ``"offset"`` or ``"differential"`` (see :mod:`~molxbar.emulator.mapping`).
    real_inputs
        The inputs are real: only ``[Mr, Mi]`` is programmed (half the rows).
    runner
        Backend for the tiles; the golden model by default.
    """

    def __init__(
        self,
        matrix,
        config: CrossbarConfig,
        scheme: str = "offset",
        real_inputs: bool = False,
        runner=None,
    ) -> None:
        matrix = np.asarray(matrix, dtype=np.complex128)
        self.n_in, self.n_out = matrix.shape
        self.real_inputs = real_inputs
        self.real_matrix = complex_to_real(matrix, complex_inputs=not real_inputs)
        self.mapped = MappedMatrix.from_real(self.real_matrix, config, scheme)
        self.tiled = TiledMatrix(self.mapped, runner)

    def stack_inputs(self, x) -> np.ndarray:
        """Real rows ``[xr]`` or ``[xr, xi]`` for the programmed matrix."""
        x = np.atleast_2d(np.asarray(x))
        if x.shape[1] != self.n_in:
            raise ValueError(f"inputs have shape {x.shape}, expected (batch, {self.n_in})")
        if self.real_inputs:
            if np.iscomplexobj(x) and np.any(x.imag):
                raise ValueError("this transform was mapped for real inputs")
            return x.real.astype(np.float64)
        return np.hstack([x.real, x.imag]).astype(np.float64)

    def __call__(self, x) -> np.ndarray:
        y = self.tiled(self.stack_inputs(x))
        return y[:, : self.n_out] + 1j * y[:, self.n_out :]


def predicted_snr_db(transform: ComplexTransform, x) -> dict[str, float]:
    """The quantization-limited SNR of ``x @ M`` on ``transform``, and its parts.

    Error sources, independent and summed as energies over every output:

    * weights: the quantization error ``E = W_q - W`` of the programmed levels is known, so
      its contribution ``sum |x @ E|**2`` is computed exactly;
    * inputs: each vector is rounded to codes of step ``d = max|x| / x_max``, a uniform
      error of variance ``d**2 / 12`` per element, giving ``sum_j sum_i W_q[i, j]**2 d**2 / 12``;
    * ADC: a right shift by ``s`` adds a uniform error of variance ``(2**s)**2 / 12`` per
      output and input phase, in accumulator units.

    * read noise (when the configuration has it on): cell ``(i, j)`` adds
      ``x_i * n_ij`` with ``var(n_ij) = 16 * s[g_ij >> segment_shift]**2`` (``2**-F``
      level units, ``s`` the read amplitude table) in each input phase.

    Write errors and saturation are not included. Returns the SNR of each part, of the
    quantization alone (``quantization``) and of everything (``total``), in dB against
    ``sum |x @ M|**2``.
    """
    stacked = transform.stack_inputs(x)
    mapped = transform.mapped
    config = mapped.config
    exact = stacked @ transform.real_matrix
    w_q = mapped.dequantized()
    codes, scale = quantize_inputs(stacked, config)
    signal = float(np.sum(exact**2))
    weight_error = float(np.sum((stacked @ (w_q - transform.real_matrix)) ** 2))
    input_error = float(np.sum(scale**2) / 12 * np.sum(w_q**2))
    phases = 1 + (stacked < 0).any(axis=1)
    adc_lsb = (1 << config.adc_shift) * mapped.step
    per_output = 2 if mapped.scheme == "differential" else 1
    adc_error = float(np.sum(phases * scale**2) * mapped.shape[1] * per_output * adc_lsb**2 / 12)
    parts = {"weights": weight_error, "inputs": input_error, "adc": adc_error}
    result = {name: error_energy_snr_db(signal, e) for name, e in parts.items()}
    result["quantization"] = error_energy_snr_db(signal, sum(parts.values()))
    if config.read_noise:
        table = np.asarray(config.read_sigma_table, dtype=np.float64)
        variance = 16 * table[mapped.physical >> config.segment_shift] ** 2
        variance /= float(1 << (2 * NOISE_FRAC_BITS))
        noise = (scale**2) @ (codes.astype(np.float64) ** 2 @ variance)
        parts["read_noise"] = float(np.sum(noise)) * mapped.step**2
        result["read_noise"] = error_energy_snr_db(signal, parts["read_noise"])
    result["total"] = error_energy_snr_db(signal, sum(parts.values()))
    return result


@dataclass(frozen=True)
class DftResult:
    """Outcome of a DFT on the crossbar."""

    n: int
    batch: int
    snr_db: float
    enob: float
    predicted_snr_db: float
    tiles: int
    vmms: int
    output: np.ndarray
    reference: np.ndarray

    def summary(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "batch": self.batch,
            "snr_db": round(self.snr_db, 3),
            "enob": round(self.enob, 3),
            "predicted_snr_db": round(self.predicted_snr_db, 3),
            "tiles": self.tiles,
            "vmms": self.vmms,
        }


def run_dft(
    config: CrossbarConfig,
    n: int = 64,
    batch: int = 32,
    kind: str = "gaussian",
    scheme: str = "offset",
    seed: int = 0,
) -> DftResult:
    """The ``n``-point DFT of ``batch`` real test signals on the golden crossbar model,
    compared with ``numpy.fft.fft`` in float64."""
    signals = make_signals(n, batch, kind, seed)
    transform = ComplexTransform(dft_matrix(n), config, scheme, real_inputs=True)
    y = transform(signals)
    reference = np.fft.fft(signals, axis=1)
    snr = snr_db(y, reference)
    return DftResult(
        n=n,
        batch=batch,
        snr_db=snr,
        enob=enob(snr),
        predicted_snr_db=predicted_snr_db(transform, signals)["total"],
        tiles=transform.mapped.n_tiles,
        vmms=transform.tiled.vmm_count,
        output=y,
        reference=reference,
    )


def idft2_blocks(spectra, transform: ComplexTransform) -> np.ndarray:
    """2-D inverse DFT of each ``(n, n)`` block spectrum with the 1-D ``transform``
    (an ``n``-point inverse DFT for complex inputs): rows first, then columns.

    ``spectra`` is ``(blocks, n, n)`` complex; returns the complex ``(blocks, n, n)`` result.
    """
    spectra = np.asarray(spectra, dtype=np.complex128)
    blocks, n, n2 = spectra.shape
    if n != n2 or n != transform.n_in:
        raise ValueError(
            f"spectra have shape {spectra.shape}, "
            f"expected (blocks, {transform.n_in}, {transform.n_in})"
        )
    # ifft2(S) = IDFT over axis 1 of (IDFT over axis 2 of S): each a batch of row vectors.
    rows = transform(spectra.reshape(blocks * n, n)).reshape(blocks, n, n)
    cols = transform(rows.transpose(0, 2, 1).reshape(blocks * n, n))
    return cols.reshape(blocks, n, n).transpose(0, 2, 1)
