"""Synthetic time-series data with known informative features (timeseries-benchmark.md §1).

"Middle" with the Gaussian generator: each sample is [T=50, F=50] i.i.d. N(0, 1) noise, and the
box t ∈ [10, 40), f ∈ [10, 40) is redrawn from N(+1, 1) for class 1 and N(−1, 1) for class 0.
Each (t, f) cell is min-max scaled to [0, 1] with the train set's range.
"""

from __future__ import annotations

import numpy as np

from sgt.data.base import Dataset

T = F = 50
MIDDLE_BOX = (slice(10, 40), slice(10, 40))  # (time, feature), end exclusive


def gaussian_box_samples(rng: np.random.Generator, n: int, box=MIDDLE_BOX, mu: float = 1.0):
    """Raw samples [n, T, F], labels in {0, 1} and the ground-truth box masks."""
    labels = (rng.integers(-1, 1, size=n) + 1).astype(np.int32)  # randint(-1, 1): -1 → 0, 0 → 1
    x = rng.standard_normal((n, T, F))
    sign = np.where(labels == 1, mu, -mu)[:, None, None]
    truth = np.zeros((n, T, F), bool)
    truth[(slice(None), *box)] = True
    x = np.where(truth, rng.standard_normal((n, T, F)) + sign, x)
    return x, labels, truth


def minmax_fit(x_train: np.ndarray):
    """Per-cell (min, range) of the train set; constant cells get range 1."""
    lo, hi = x_train.min(axis=0), x_train.max(axis=0)
    return lo, np.where(hi > lo, hi - lo, 1.0)


def middle(seed: int = 0, n_train: int = 1000, n_test: int = 100) -> Dataset:
    """The embedded default: "Middle" box, Gaussian generator, generated from `seed`."""
    rng = np.random.default_rng(seed)
    x_train, y_train, _ = gaussian_box_samples(rng, n_train)
    x_test, y_test, truth = gaussian_box_samples(rng, n_test)
    lo, scale = minmax_fit(x_train)
    return Dataset(
        name="middle",
        x_train=((x_train - lo) / scale).astype(np.float32),
        y_train=y_train,
        x_test=((x_test - lo) / scale).astype(np.float32),
        y_test=y_test,
        num_classes=2,
        truth_test=truth,
    )
