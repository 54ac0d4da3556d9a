"""CIFAR-10 as numpy arrays, from one of three sources under `<data_dir>/cifar10/`.

- "tarball": the official python version `cifar-10-python.tar.gz` (pickled batches `data_batch_1` ..
  `data_batch_5`, `test_batch`, `batches.meta`), read straight from the archive (or from its extracted
  folder `cifar-10-batches-py/`). Exact pixels, official sample order.
- "folder": an image tree `<root>/{train,test}/<class>/*.png|jpg`, as a folder `images/` or an archive
  `cifar10-jpeg.tar.gz` read without extracting. Labels are the positions of the class folder names in
  sorted order; for CIFAR-10's names that is the official order (airplane, automobile, bird, cat,
  deer, dog, frog, horse, ship, truck). Samples are ordered by class, then file name. A JPEG copy is
  lossy: pixels are close to, not equal to, the official ones.
- "tfds": TensorFlow Datasets' `cifar10`, prepared under `<data_dir>` (so in `<data_dir>/cifar10/<version>/`);
  see `tfds_arrays`.

"auto" (the default) takes the tarball if present, else the image tree, else raises naming both paths.

Images are NHWC float32 [N, 32, 32, 3], normalised per channel with the CIFAR-10 training-set
statistics: mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616), the mean and standard deviation
of every pixel value / 255 of the 50,000 official training images, per RGB channel (a lossy JPEG copy
gives the same means to 3 decimals and standard deviations up to 0.002 lower). The authors' code normalised with the ImageNet statistics instead
(`IMAGENET_MEAN`, `IMAGENET_STD`). Labels are int32.

Decoding the 60,000 JPEGs of the image archive takes about 11 s of CPU time (Pillow, one core), so
nothing is cached; the data directory is only read.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from sgt.data.base import Dataset

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
PAD_BLACK = -MEAN / STD  # a black pixel after normalisation: the fill that pads as torchvision does before it

SOURCES = ("auto", "tarball", "folder", "tfds")
SPLITS = ("train", "test")
TARBALL = "cifar-10-python.tar.gz"
TARBALL_DIR = "cifar-10-batches-py"
IMAGE_DIR = "images"
IMAGE_ARCHIVE = "cifar10-jpeg.tar.gz"
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TFDS_NAME, TFDS_IMAGE_KEY, TFDS_LABEL_KEY = "cifar10", "image", "label"  # TFDS's cifar10 builder


class Arrays(NamedTuple):
    """One split: uint8 images [N, H, W, C], int32 labels [N], and the class names by label."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]


# --- the python version (pickled batches) ---------------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays only: a batch file cannot run code when read."""

    ALLOWED = frozenset({("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),  # bytes, protocol 2-3
                         *((f"numpy.{core}.multiarray", "_reconstruct") for core in ("core", "_core")),
                         *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core"))})  # protocol 5

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name}: not expected in a CIFAR-10 batch "
                                         "(only dicts, lists and numpy arrays are read)")
        return super().find_class(module, name)


def unpickle(raw: bytes) -> dict:
    """A CIFAR batch: a pickled dict with bytes keys (written by Python 2, hence encoding="bytes")."""
    return _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()


def _members(path: Path, names: set[str]) -> dict[str, bytes]:
    """The files called `names` (by base name) in a folder or a tar archive at `path`."""
    if path.is_dir():
        return {name: (path / name).read_bytes() for name in names if (path / name).is_file()}
    found = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            base = PurePosixPath(member.name).name
            if member.isfile() and base in names:
                found[base] = tar.extractfile(member).read()
    return found


def batch_images(data: np.ndarray) -> np.ndarray:
    """Rows of 3072 bytes (1024 red, 1024 green, 1024 blue, each 32×32 row-major) as NHWC [N, 32, 32, 3]."""
    return np.asarray(data, np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def read_python_version(path: str | os.PathLike) -> dict[str, Arrays]:
    """"train" (data_batch_1..5 in order) and "test" (test_batch) from `cifar-10-python.tar.gz` or its folder."""
    path = Path(path)
    wanted = {*BATCHES["train"], *BATCHES["test"], "batches.meta"}
    raw = _members(path, wanted)
    missing = sorted(wanted - set(raw))
    if missing:
        raise FileNotFoundError(f"{path}: missing {', '.join(missing)} (expected the official python version "
                                f"of CIFAR-10, {TARBALL})")
    names = tuple(n.decode() if isinstance(n, bytes) else n for n in unpickle(raw["batches.meta"])[b"label_names"])
    out = {}
    for split, batches in BATCHES.items():
        parts = [unpickle(raw[b]) for b in batches]
        images = np.concatenate([batch_images(p[b"data"]) for p in parts])
        labels = np.concatenate([np.asarray(p[b"labels"], np.int32) for p in parts])
        out[split] = Arrays(images, labels, names)
    return out


# --- an image tree (folder or archive) -------------------------------------------------------------

def _tree_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) of the image files under a folder or in a tar archive."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                yield file.relative_to(path).as_posix(), file.read_bytes()
        return
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile() and PurePosixPath(member.name).suffix.lower() in IMAGE_SUFFIXES:
                yield member.name, tar.extractfile(member).read()


def decode_image(raw: bytes) -> np.ndarray:
    """PNG or JPEG bytes as uint8 RGB [H, W, 3] (Pillow)."""
    from PIL import Image  # a dependency of matplotlib, which sgt requires
    with Image.open(io.BytesIO(raw)) as image:
        return np.asarray(image.convert("RGB"))


def read_image_tree(path: str | os.PathLike, splits: tuple[str, ...] = SPLITS) -> dict[str, Arrays]:
    """Each split of a tree `<root>/<split>/<class>/<image>` (a folder, or a .tar/.tar.gz of one; any
    folders above `<split>` are ignored). Labels index the sorted class names; samples run by class,
    then file name. All images must share one size."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no image folder or archive at {path}")
    files: dict[str, dict[str, list[tuple[str, bytes]]]] = {s: {} for s in splits}
    for name, raw in _tree_files(path):
        parts = PurePosixPath(name).parts
        if len(parts) >= 3 and parts[-3] in files:
            files[parts[-3]].setdefault(parts[-2], []).append((parts[-1], raw))
    classes = {s: tuple(sorted(files[s])) for s in splits}
    for split in splits:
        if not classes[split]:
            raise FileNotFoundError(f"{path}: no images under {split}/<class>/ (expected "
                                    f"<root>/{split}/<class>/*{'|*'.join(IMAGE_SUFFIXES)})")
        if classes[split] != classes[splits[0]]:
            raise ValueError(f"{path}: the classes of {split}/ {classes[split]} differ from those of "
                             f"{splits[0]}/ {classes[splits[0]]}")
    return {split: _decode_split(path, split, files[split], classes[split]) for split in splits}


def _decode_split(path: Path, split: str, by_class: dict, names: tuple[str, ...]) -> Arrays:
    images, labels = [], []
    for label, name in enumerate(names):
        for file, raw in sorted(by_class[name]):
            image = decode_image(raw)
            if images and image.shape != images[0].shape:
                raise ValueError(f"{path}: {split}/{name}/{file} is {image.shape}, the first image "
                                 f"{images[0].shape}; all images must share one size")
            images.append(image)
            labels.append(label)
    return Arrays(np.stack(images), np.asarray(labels, np.int32), names)


# --- TensorFlow Datasets ---------------------------------------------------------------------------

def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise ImportError("reading TFDS data (source='tfds') needs TensorFlow Datasets: pip install 'sgt[tfds]' "
                          "(or 'tensorflow-datasets>=4.9')") from err
    return tfds


def tfds_arrays(name: str, split: str, data_dir: str | os.PathLike, image_key: str = "image",
                label_key: str = "label") -> Arrays:
    """One split of a TFDS image data set already prepared under `data_dir` (nothing is downloaded).

    Stored as array_record (random access), it is read with `tfds.data_source`, which needs no
    TensorFlow for Tensor features (Image features are decoded with Pillow). Stored only as tfrecord
    (what `tfds.load` prepares by default), it is read with `tfds.load(..., batch_size=-1)` and
    `tfds.as_numpy`, which needs TensorFlow. Class names come from a ClassLabel `label_key`, else ().
    """
    tfds = _tfds()
    builder = tfds.builder(name, data_dir=os.fspath(data_dir))
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"TFDS data set {name!r} is not prepared under {data_dir} (looked in {builder.data_dir}); "
            f"prepare it there, e.g. `tfds build {name} --data_dir {data_dir} --file_format array_record`")
    random_access = builder.info.available_file_formats() & tfds.core.file_adapters.FileFormat.with_random_access()
    if random_access:
        source = tfds.data_source(name, split=split, data_dir=os.fspath(data_dir), download=False)
        records = source.__getitems__(range(len(source)))
        images, labels = _column(records, image_key), _column(records, label_key)
    elif importlib.util.find_spec("tensorflow") is not None:
        batch = tfds.as_numpy(tfds.load(name, split=split, data_dir=os.fspath(data_dir), batch_size=-1,
                                        download=False))
        images, labels = _column([batch], image_key)[0], _column([batch], label_key)[0]
    else:
        raise RuntimeError(f"TFDS data set {name!r} under {data_dir} is stored as "
                           f"{sorted(f.value for f in builder.info.available_file_formats())}, which needs "
                           "TensorFlow to read; install tensorflow, or prepare it with --file_format array_record")
    label_feature = builder.info.features[label_key]
    names = tuple(getattr(label_feature, "names", None) or ())
    return Arrays(np.asarray(images, np.uint8), np.asarray(labels, np.int32), names)


def _column(records, key: str) -> np.ndarray:
    if records and key not in records[0]:
        raise KeyError(f"no feature {key!r} in the TFDS records (features: {sorted(records[0])}); "
                       "pass image_key= / label_key=")
    return np.stack([r[key] for r in records])


# --- the registered loader -------------------------------------------------------------------------

def normalise(images: np.ndarray, mean: np.ndarray = MEAN, std: np.ndarray = STD) -> np.ndarray:
    """uint8 NHWC pixels to float32 (pixel / 255 − mean) / std, per channel."""
    scale = np.float32(255.0) * np.asarray(std, np.float32)
    return (images.astype(np.float32) - np.float32(255.0) * np.asarray(mean, np.float32)) / scale


def candidates(data_dir: str | os.PathLike) -> dict[str, tuple[Path, ...]]:
    """The paths each file source is looked for at, in order of preference."""
    folder = Path(data_dir) / "cifar10"
    return {"tarball": (folder / TARBALL, folder / TARBALL_DIR), "folder": (folder / IMAGE_DIR, folder / IMAGE_ARCHIVE)}


def resolve(data_dir: str | os.PathLike, source: str = "auto") -> tuple[str, Path]:
    """(source, path) that `load` reads: "auto" takes the tarball, else the image tree, else raises
    naming the paths looked at; "tfds" gives `data_dir` itself (TFDS's own data directory)."""
    if source not in SOURCES:
        raise ValueError(f"source: expected one of {SOURCES}, got {source!r}")
    if source == "tfds":
        return source, Path(data_dir)
    paths = candidates(data_dir)
    kinds = ("tarball", "folder") if source == "auto" else (source,)
    for kind in kinds:
        for path in paths[kind]:
            if path.exists():
                return kind, path
    folder = Path(data_dir) / "cifar10"
    raise FileNotFoundError(
        f"CIFAR-10 ({source}) not found: expected {' or '.join(str(p) for k in kinds for p in paths[k])}. "
        f"Put the official {TARBALL} (or an image tree train/<class>/*.png|jpg and test/<class>/..., as a "
        f"folder {IMAGE_DIR}/ or an archive {IMAGE_ARCHIVE}) in {folder}/ and point --data-dir or "
        f"SGT_DATA_DIR at {Path(data_dir)}; or use source='tfds'.")


def to_dataset(splits: dict[str, Arrays], name: str = "cifar10") -> Dataset:
    """Checked CIFAR-10 arrays (10 official classes, 32×32 RGB) as a normalised `Dataset`."""
    for split in SPLITS:
        arrays = splits[split]
        if tuple(arrays.class_names) != CLASSES:
            raise ValueError(f"{split}: expected the CIFAR-10 classes {CLASSES} in this order, "
                             f"got {tuple(arrays.class_names)}")
        if arrays.images.shape[1:] != (32, 32, 3):
            raise ValueError(f"{split}: expected 32×32 RGB images, got shape {arrays.images.shape[1:]}")
    return Dataset(name, normalise(splits["train"].images), splits["train"].labels,
                   normalise(splits["test"].images), splits["test"].labels, num_classes=len(CLASSES))


def load(data_dir: str | os.PathLike, *, source: str = "auto") -> Dataset:
    """CIFAR-10 from `source` under `data_dir`: "auto", "tarball", "folder" or "tfds" (module docstring)."""
    kind, path = resolve(data_dir, source)
    if kind == "tarball":
        splits = read_python_version(path)
    elif kind == "folder":
        splits = read_image_tree(path)
    else:
        splits = {s: tfds_arrays(TFDS_NAME, s, path, TFDS_IMAGE_KEY, TFDS_LABEL_KEY) for s in SPLITS}
    return to_dataset(splits)
