"""Datasets by name, as numpy arrays: `sgt.data.load("middle")`, `load("Moving_RareTime_CAR", seed=1)`,
`load("mnist", data_dir_path=..., download=True)`, `load("cifar10", source="tfds")` (options go to the dataset's loader).

`REGISTRY` maps each name to its loader, its kind and the training defaults `sgt train` uses for it
(model, epochs, batch, optimizer, learning rate, schedule). Synthetic sets are generated from
`seed`; real ones are read from the data directory (`data_dir`). A new dataset is one loader and
one `register` call (docs/extending.md).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path
from typing import Callable

from sgt._registry import Registry
from sgt.data import cifar10, mnist, shapes, synthetic, timeseries
from sgt.data.base import Dataset, epoch_order, validation_split

DATA_DIR_ENV = "SGT_DATA_DIR"
KINDS = ("timeseries", "image", "text")


@dataclasses.dataclass(frozen=True)
class TrainDefaults:
    """What `sgt train` uses for a dataset unless a flag says otherwise; `k` and `lam` are saliency
    guided training's masked share and KL weight λ (`sgt.train.SGTConfig`) for this dataset."""

    model: str
    epochs: int
    batch_size: int
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "constant"
    k: float | int = 0.5
    lam: float = 1.0


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered dataset. `load(seed=..., data_dir=...) -> Dataset`; `files`: True when it reads
    files from the data directory (False: generated locally, no download)."""

    load: Callable[..., Dataset]
    kind: str
    description: str
    defaults: TrainDefaults
    files: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """`path`, else $SGT_DATA_DIR, else ./data."""
    return Path(path or os.environ.get(DATA_DIR_ENV) or "data")


TIMESERIES_DEFAULTS = TrainDefaults(model="lstm", epochs=15, batch_size=48)  # a multiple of 8 devices


def _generated(make: Callable[..., Dataset], name: str | None = None):
    """A loader for a generated set: `make(name, seed)` or `make(seed)`; the data directory is unused."""
    def load(*, seed: int = 0, data_dir: Path | None = None) -> Dataset:
        return make(seed) if name is None else make(name, seed)
    return load


REGISTRY = Registry("dataset", Entry, {
    "shapes": Entry(lambda *, seed=0, data_dir=None, **options: shapes.load(seed, **options), "image",
                    "embedded default: 28 × 28 images, 4 shape classes on clutter, with object masks, no download",
                    TrainDefaults(model="small_cnn", epochs=15, batch_size=64, lr=3e-3, k=0.85, lam=10.0)),
    "middle": Entry(_generated(synthetic.middle), "timeseries",
                    "embedded: the benchmark's Middle_Box time-series set, 50 × 50, no download",
                    TIMESERIES_DEFAULTS),
    "mnist": Entry(lambda *, seed=0, data_dir=None, download=False: mnist.load(data_dir, download=download), "image",
                   "MNIST from the IDX files in <data_dir>/mnist/ (download=True fetches them)",
                   TrainDefaults(model="mnist_cnn", epochs=2, batch_size=128), files=True),
    "cifar10": Entry(lambda *, seed=0, data_dir=None, source="auto": cifar10.load(data_dir, source=source), "image",
                     "CIFAR-10 from <data_dir>/cifar10/: the python tarball, an image tree or TFDS (source=)",
                     TrainDefaults(model="resnet20", epochs=200, batch_size=128, optimizer="sgd", lr=0.1,
                                   schedule="cosine"), files=True),
    **{name: Entry(_generated(timeseries.benchmark, name), "timeseries",
                   "time-series benchmark set (box layout × base signal)", TIMESERIES_DEFAULTS)
       for name in timeseries.NAMES},
    **{name: Entry(_generated(timeseries.vanishing, name), "timeseries",
                   "vanishing-saliency set, 100 × 100", TIMESERIES_DEFAULTS)
       for name in timeseries.VANISHING},
}, hint=(f"'shapes', 'middle', 'mnist', 'cifar10', a benchmark set <Type>_<Gen> with Type in {timeseries.TYPES} "
         f"and Gen in {timeseries.GENERATORS}, a vanishing-saliency set in {timeseries.VANISHING}, "
         "or another registered name"))
register, unregister, get = REGISTRY.register, REGISTRY.unregister, REGISTRY.lookup


def load(name: str, *, data_dir_path: str | os.PathLike | None = None, seed: int = 0, **options) -> Dataset:
    """Dataset `name`; synthetic sets are generated from `seed`, real ones read from `data_dir(data_dir_path)`.
    `options` go to the loader of sets that take them (e.g. `source=` for "cifar10")."""
    entry = get(name)
    params = inspect.signature(entry.load).parameters
    accepted = {k for k, p in params.items() if p.kind is not p.VAR_KEYWORD} - {"seed", "data_dir"}
    if set(options) - accepted and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise TypeError(f"{', '.join(sorted(set(options) - accepted))}: not an option of dataset {name!r} "
                        f"(its options: {sorted(accepted) or 'none'})")
    return entry.load(seed=seed, data_dir=data_dir(data_dir_path), **options)


DATASETS = tuple(REGISTRY)  # the built-in names (registered later: REGISTRY)

__all__ = ["DATASETS", "DATA_DIR_ENV", "Dataset", "Entry", "KINDS", "REGISTRY", "TrainDefaults", "data_dir",
           "epoch_order", "get", "load", "register", "timeseries", "unregister", "validation_split"]
