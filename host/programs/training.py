"""A least-squares classifier trained on a crossbar with rank-1 pulse updates
(:func:`train_classifier`), on Gaussian clusters (:func:`make_classes`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molxbar.emulator.mapping import MappedMatrix, TiledMatrix

from ..driver import CrossbarDriver
from .verify import program_and_verify

__all__ = ["make_classes", "TrainingResult", "train_classifier"]


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
