"""Accuracy metrics: signal-to-noise ratio and effective number of bits."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["snr_db", "enob", "error_energy_snr_db"]


def snr_db(y, y_ref) -> float:
    """``10 log10(sum |y_ref|**2 / sum |y - y_ref|**2)`` in decibels.

    ``y`` and ``y_ref`` may be real or complex arrays of the same shape; an exact result
    gives ``inf``.
    """
    y = np.asarray(y)
    y_ref = np.asarray(y_ref)
    if y.shape != y_ref.shape:
        raise ValueError(f"y has shape {y.shape}, y_ref has shape {y_ref.shape}: must match")
    signal = float(np.sum(np.abs(y_ref.astype(np.complex128)) ** 2))
    error = float(np.sum(np.abs(y.astype(np.complex128) - y_ref) ** 2))
    return error_energy_snr_db(signal, error)


def error_energy_snr_db(signal_energy: float, error_energy: float) -> float:
    """SNR in decibels from the two energies (``inf`` when the error is zero)."""
    if signal_energy <= 0:
        raise ValueError(f"signal energy = {signal_energy} must be > 0")
    if error_energy <= 0:
        return math.inf
    return 10.0 * math.log10(signal_energy / error_energy)


def enob(snr: float) -> float:
    """Effective number of bits of an SNR in decibels: ``(snr - 1.76) / 6.02``."""
    return (snr - 1.76) / 6.02
