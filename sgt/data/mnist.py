"""MNIST from the standard IDX files (gzipped or not) in `<data_dir>/mnist/`; `fetch` downloads them."""

from __future__ import annotations

import gzip
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from sgt.data.base import Dataset

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
MEAN, STD = 0.1307, 0.3081  # the normalisation of the authors' code
# The gzipped IDX files as the original site published them, on the mirror TFDS and torchvision also use.
MIRROR = "https://storage.googleapis.com/cvdf-datasets/mnist/"


def read_idx(path: Path) -> np.ndarray:
    """An IDX array: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian int32 dims, then data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {tuple(dims)} but holds {data.size} values (truncated file?)")
    return data.reshape(tuple(dims))


def find_file(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"MNIST file missing: {folder / stem}.gz (or uncompressed). Put the four standard IDX files "
        f"({', '.join(FILES.values())}, gzipped or not) in {folder}/, and point --data-dir or "
        f"SGT_DATA_DIR at {folder.parent}; or fetch them with sgt.data.load('mnist', download=True).")


def fetch(data_dir: str | os.PathLike, mirror: str | None = None) -> Path:
    """Fetch the four gzipped IDX files that `<data_dir>/mnist/` lacks from `mirror` (a URL ending in
    "/"; default `MIRROR`); returns that folder. Each file is checked (`read_idx`) before it takes
    its final name, so an interrupted or corrupt download leaves nothing behind."""
    mirror = mirror or MIRROR
    folder = Path(data_dir) / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for stem in FILES.values():
        if any((folder / name).exists() for name in (stem, f"{stem}.gz")):
            continue
        fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".gz")
        os.close(fd)
        try:
            urllib.request.urlretrieve(f"{mirror}{stem}.gz", partial)
            read_idx(Path(partial))
            os.replace(partial, folder / f"{stem}.gz")
        finally:
            Path(partial).unlink(missing_ok=True)
    return folder


def load(data_dir: Path, *, download: bool = False) -> Dataset:
    """Images NHWC [N, 28, 28, 1] normalised with mean 0.1307 and std 0.3081; labels int32.
    `download=True` first fetches the files the folder lacks (`fetch`)."""
    if download:
        fetch(data_dir)
    folder = Path(data_dir) / "mnist"
    arrays = {name: read_idx(find_file(folder, stem)) for name, stem in FILES.items()}
    images = {k: ((arrays[k][..., None] / 255.0 - MEAN) / STD).astype(np.float32) for k in ("x_train", "x_test")}
    return Dataset("mnist", images["x_train"], arrays["y_train"].astype(np.int32),
                   images["x_test"], arrays["y_test"].astype(np.int32), num_classes=10)
