"""Datasets as numpy arrays: `sgt.data.load("middle")`, `load("Moving_RareTime_CAR")`, `load("mnist", ...)`.

The synthetic sets are generated from `seed`:
- "middle";
- the 70 time-series benchmark sets `timeseries.NAMES` ("<Type>_<Gen>");
- the vanishing-saliency sets `timeseries.VANISHING`.
"""

from __future__ import annotations

import os
from pathlib import Path

from sgt.data import mnist, synthetic, timeseries
from sgt.data.base import Dataset, validation_split

DATASETS = ("middle", "mnist", *timeseries.NAMES, *timeseries.VANISHING)
DATA_DIR_ENV = "SGT_DATA_DIR"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """`path`, else $SGT_DATA_DIR, else ./data."""
    return Path(path or os.environ.get(DATA_DIR_ENV) or "data")


def load(name: str, *, data_dir_path: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
    """Dataset `name`; synthetic sets are generated from `seed`, real ones read from the data directory."""
    if name == "middle":
        return synthetic.middle(seed)
    if name == "mnist":
        return mnist.load(data_dir(data_dir_path))
    if name in timeseries.NAMES:
        return timeseries.benchmark(name, seed)
    if name in timeseries.VANISHING:
        return timeseries.vanishing(name, seed)
    raise ValueError(f"dataset: unknown dataset {name!r}; expected 'middle', 'mnist', a benchmark set "
                     f"<Type>_<Gen> with Type in {timeseries.TYPES} and Gen in {timeseries.GENERATORS}, "
                     f"or a vanishing-saliency set in {timeseries.VANISHING}")


__all__ = ["DATASETS", "Dataset", "data_dir", "load", "timeseries", "validation_split"]
