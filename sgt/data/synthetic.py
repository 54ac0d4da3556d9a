"""The embedded default set "middle": the benchmark's `Middle_Box` (see `sgt.data.timeseries`)."""

from __future__ import annotations

import dataclasses

from sgt.data import timeseries
from sgt.data.base import Dataset


def middle(seed: int = 0, n_train: int = 1000, n_test: int = 100) -> Dataset:
    """`timeseries.benchmark("Middle_Box", ...)` renamed "middle".

    Each sample is [50, 50] N(0, 1) noise. The box t, f ∈ [10, 40) is redrawn from N(±1, 1).
    Each cell is min-max scaled with the train range.
    """
    return dataclasses.replace(timeseries.benchmark("Middle_Box", seed, n_train, n_test), name="middle")
