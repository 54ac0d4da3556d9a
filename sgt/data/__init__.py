"""Datasets as numpy arrays: `sgt.data.load("middle")`, `sgt.data.load("mnist", data_dir=...)`."""

from __future__ import annotations

import os
from pathlib import Path

from sgt.data import mnist, synthetic
from sgt.data.base import Dataset, validation_split

DATASETS = ("middle", "mnist")
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
    raise ValueError(f"dataset: unknown dataset {name!r}; expected one of {DATASETS}")


__all__ = ["Dataset", "DATASETS", "load", "data_dir", "validation_split"]
