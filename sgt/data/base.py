"""The in-memory dataset record and the validation split."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one classification task.

    `truth_test` (optional) is a boolean array shaped like `x_test`, True on the features that
    carry the label (the ground truth of synthetic data).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    truth_test: np.ndarray | None = None

    def __post_init__(self):
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"y_{split}: expected {x.shape[0]} labels, got {y.shape[0]}")
            if not np.all(np.isfinite(x)):
                raise ValueError(f"x_{split}: contains non-finite values (NaN or inf)")
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(f"y_{split}: labels must lie in [0, {self.num_classes}), "
                                 f"got range [{y.min()}, {y.max()}]")
        if self.truth_test is not None and self.truth_test.shape != self.x_test.shape:
            raise ValueError(f"truth_test: expected the shape of x_test {self.x_test.shape}, "
                             f"got {self.truth_test.shape}")


def validation_split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """A seeded random `fraction` of (x, y) held out for model selection: ((x, y) train, (x, y) val)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction: must lie in (0, 1), got {fraction}")
    n_val = max(1, int(round(fraction * len(x))))
    order = np.random.default_rng([seed, 7]).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled sample order of `epoch`, a function of (seed, epoch) only, so a resumed run replays it."""
    return np.random.default_rng([seed, epoch]).permutation(n)
