"""CIFAR-10 readers (python tarball, image tree, TFDS) on tiny files written here, and the augmentation."""

from __future__ import annotations

import functools
import io
import os
import pickle
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from sgt import data
from sgt.data import augment, cifar10

CLASSES = cifar10.CLASSES


# --- the official python version -------------------------------------------------------------------

def official_row(image: np.ndarray) -> np.ndarray:
    """One [32, 32, 3] image as the format's row: byte c·1024 + r·32 + k holds channel c at (r, k)."""
    row = np.empty(3072, np.uint8)
    for c in range(3):
        for r in range(32):
            row[c * 1024 + r * 32: c * 1024 + r * 32 + 32] = image[r, :, c]
    return row


def batch_bytes(images: np.ndarray, labels: list[int]) -> bytes:
    batch = {b"batch_label": b"tiny", b"labels": labels, b"data": np.stack([official_row(i) for i in images]),
             b"filenames": [b"f%d.png" % i for i in range(len(labels))]}
    return pickle.dumps(batch, protocol=2)


def add_file(tar: tarfile.TarFile, name: str, raw: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    tar.addfile(info, io.BytesIO(raw))


def tiny_python_version(path, seed=0):
    """A tarball in the official layout: 5 train batches of 2 images, a test batch of 3, batches.meta."""
    rng = np.random.default_rng(seed)
    train = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    y_train, y_test = [9, 0, 1, 8, 2, 7, 3, 6, 4, 5], [5, 0, 9]
    meta = {b"num_cases_per_batch": 2, b"label_names": [n.encode() for n in CLASSES], b"num_vis": 3072}
    with tarfile.open(path, "w:gz") as tar:
        for i in range(5):
            add_file(tar, f"cifar-10-batches-py/data_batch_{i + 1}",
                     batch_bytes(train[2 * i: 2 * i + 2], y_train[2 * i: 2 * i + 2]))
        add_file(tar, "cifar-10-batches-py/test_batch", batch_bytes(test, y_test))
        add_file(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=2))
    return train, np.array(y_train), test, np.array(y_test)


def test_row_layout_by_hand():
    image = np.zeros((32, 32, 3), np.uint8)
    image[2, 5, 0], image[31, 0, 2], image[0, 31, 1] = 200, 77, 9
    row = official_row(image)
    assert row[0 * 1024 + 2 * 32 + 5] == 200 and row[2 * 1024 + 31 * 32 + 0] == 77 and row[1024 + 31] == 9
    assert np.count_nonzero(row) == 3
    assert np.array_equal(cifar10.batch_images(row[None]), image[None])


def test_python_version_from_the_tarball(tmp_path):
    x_train, y_train, x_test, y_test = tiny_python_version(tmp_path / cifar10.TARBALL)
    splits = cifar10.read_python_version(tmp_path / cifar10.TARBALL)
    assert splits["train"].images.dtype == np.uint8 and splits["train"].images.shape == (10, 32, 32, 3)
    assert np.array_equal(splits["train"].images, x_train) and np.array_equal(splits["test"].images, x_test)
    assert splits["train"].labels.dtype == np.int32
    assert splits["train"].labels.tolist() == y_train.tolist() and splits["test"].labels.tolist() == y_test.tolist()
    assert splits["train"].class_names == CLASSES


def test_python_version_from_the_extracted_folder(tmp_path):
    x_train, _, _, y_test = tiny_python_version(tmp_path / "t.tar.gz")
    (tmp_path / cifar10.TARBALL_DIR).mkdir()
    with tarfile.open(tmp_path / "t.tar.gz") as tar:
        for member in tar:
            (tmp_path / member.name).write_bytes(tar.extractfile(member).read())
    splits = cifar10.read_python_version(tmp_path / cifar10.TARBALL_DIR)
    assert np.array_equal(splits["train"].images, x_train) and splits["test"].labels.tolist() == y_test.tolist()


def test_missing_batch_and_foreign_pickle_are_refused(tmp_path):
    with tarfile.open(tmp_path / "partial.tar.gz", "w:gz") as tar:
        add_file(tar, "cifar-10-batches-py/data_batch_1", batch_bytes(np.zeros((1, 32, 32, 3), np.uint8), [0]))
    with pytest.raises(FileNotFoundError, match="missing batches.meta, data_batch_2"):
        cifar10.read_python_version(tmp_path / "partial.tar.gz")

    class Payload:
        def __reduce__(self):
            return os.system, ("true",)
    with pytest.raises(pickle.UnpicklingError, match="not expected in a CIFAR-10 batch"):
        cifar10.unpickle(pickle.dumps({b"data": Payload()}))


def test_load_normalises_with_the_cifar10_statistics(tmp_path):
    (tmp_path / "cifar10").mkdir()
    x_train, y_train, x_test, _ = tiny_python_version(tmp_path / "cifar10" / cifar10.TARBALL)
    ds = data.load("cifar10", data_dir_path=tmp_path)
    assert ds.name == "cifar10" and ds.num_classes == 10 and ds.x_train.dtype == np.float32
    assert ds.x_train.shape == (10, 32, 32, 3) and ds.y_train.dtype == np.int32
    expected = (x_train / 255.0 - np.array([0.4914, 0.4822, 0.4465])) / np.array([0.2470, 0.2435, 0.2616])
    np.testing.assert_allclose(ds.x_train, expected, rtol=0, atol=2e-6)
    assert ds.x_train[0, 3, 4, 1] == pytest.approx((x_train[0, 3, 4, 1] / 255 - 0.4822) / 0.2435, abs=1e-6)
    np.testing.assert_allclose(cifar10.PAD_BLACK, cifar10.normalise(np.zeros((1, 1, 1, 3), np.uint8))[0, 0, 0])
    assert ds.y_train.tolist() == y_train.tolist() and len(ds.x_test) == len(x_test)


# --- an image tree ---------------------------------------------------------------------------------

def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_tree(root, classes=CLASSES, per_class=(2, 1), seed=0):
    """PNGs at root/{train,test}/<class>/NNNN.png, written in a shuffled class order; the expected arrays."""
    rng = np.random.default_rng(seed)
    expected = {}
    for split, n in zip(cifar10.SPLITS, per_class):
        images = rng.integers(0, 256, (len(classes), n, 32, 32, 3), dtype=np.uint8)
        for c in rng.permutation(len(classes)):
            (root / split / classes[c]).mkdir(parents=True)
            for i in reversed(range(n)):
                (root / split / classes[c] / f"{i:04d}.png").write_bytes(png(images[c, i]))
        order = np.argsort(classes)  # labels follow the sorted class names
        expected[split] = (images[order].reshape(-1, 32, 32, 3), np.repeat(np.arange(len(classes)), n))
    return expected


def tar_tree(root, archive, prefix="cifar10"):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=prefix)


def test_class_order_is_sorted_and_official():
    assert tuple(sorted(CLASSES)) == CLASSES
    assert CLASSES == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_image_tree_exact_pixels_from_folder_and_archive(tmp_path):
    expected = tiny_tree(tmp_path / "tree")
    tar_tree(tmp_path / "tree", tmp_path / "tree.tar.gz")
    for path in (tmp_path / "tree", tmp_path / "tree.tar.gz"):
        splits = cifar10.read_image_tree(path)
        for split, (images, labels) in expected.items():
            assert splits[split].class_names == CLASSES
            assert np.array_equal(splits[split].images, images), (path, split)
            assert splits[split].labels.tolist() == labels.tolist()


def test_image_tree_labels_follow_sorted_names(tmp_path):
    expected = tiny_tree(tmp_path, classes=("zebra", "ant", "mole"), per_class=(1, 1))
    splits = cifar10.read_image_tree(tmp_path)
    assert splits["train"].class_names == ("ant", "mole", "zebra")
    assert np.array_equal(splits["train"].images, expected["train"][0])
    with pytest.raises(ValueError, match="expected the CIFAR-10 classes"):
        cifar10.to_dataset(splits)


def test_image_tree_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: no image folder or archive"):
        cifar10.read_image_tree(tmp_path / "nowhere")
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "a.png").write_bytes(png(np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(FileNotFoundError, match="no images under test/<class>/"):
        cifar10.read_image_tree(tmp_path)
    (tmp_path / "test" / "cat").mkdir(parents=True)
    (tmp_path / "test" / "cat" / "a.png").write_bytes(png(np.zeros((32, 32, 3), np.uint8)))
    (tmp_path / "test" / "cat" / "b.png").write_bytes(png(np.zeros((16, 32, 3), np.uint8)))
    with pytest.raises(ValueError, match="test/cat/b.png is"):
        cifar10.read_image_tree(tmp_path)


def test_jpeg_tree_is_close_not_exact(tmp_path):
    smooth = np.broadcast_to(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (32, 32, 3)).copy()
    for split in cifar10.SPLITS:
        (tmp_path / split / "cat").mkdir(parents=True)
        Image.fromarray(smooth).save(tmp_path / split / "cat" / "0000.jpg", quality=75)
    decoded = cifar10.read_image_tree(tmp_path)["test"].images[0]
    assert decoded.shape == (32, 32, 3) and np.abs(decoded.astype(int) - smooth).max() < 16


# --- choosing the source ---------------------------------------------------------------------------

def test_auto_prefers_the_tarball_then_the_image_tree(tmp_path):
    folder = tmp_path / "cifar10"
    with pytest.raises(FileNotFoundError) as missing:
        data.load("cifar10", data_dir_path=tmp_path)
    for path in (folder / cifar10.TARBALL, folder / cifar10.IMAGE_ARCHIVE):
        assert str(path) in str(missing.value)
    with pytest.raises(FileNotFoundError) as only_tarball:
        cifar10.resolve(tmp_path, "tarball")
    assert str(folder / cifar10.TARBALL) in str(only_tarball.value)
    assert str(folder / cifar10.IMAGE_ARCHIVE) not in str(only_tarball.value)

    expected = tiny_tree(tmp_path / "tree", per_class=(1, 1))
    folder.mkdir()
    tar_tree(tmp_path / "tree", folder / cifar10.IMAGE_ARCHIVE, prefix=".")
    assert cifar10.resolve(tmp_path) == ("folder", folder / cifar10.IMAGE_ARCHIVE)
    from_tree = data.load("cifar10", data_dir_path=tmp_path)
    np.testing.assert_allclose(from_tree.x_test, cifar10.normalise(expected["test"][0]))

    x_train, *_ = tiny_python_version(folder / cifar10.TARBALL)
    assert cifar10.resolve(tmp_path) == ("tarball", folder / cifar10.TARBALL)
    assert np.allclose(data.load("cifar10", data_dir_path=tmp_path).x_train, cifar10.normalise(x_train))
    from_tree = data.load("cifar10", data_dir_path=tmp_path, source="folder")
    np.testing.assert_allclose(from_tree.x_train, cifar10.normalise(expected["train"][0]))


def test_registry_entry_and_options(tmp_path):
    entry = data.get("cifar10")
    assert entry.kind == "image" and entry.files
    assert (entry.defaults.model, entry.defaults.batch_size, entry.defaults.optimizer, entry.defaults.lr,
            entry.defaults.schedule) == ("resnet20", 128, "sgd", 0.1, "cosine")
    with pytest.raises(ValueError, match="source: expected one of"):
        data.load("cifar10", data_dir_path=tmp_path, source="web")
    with pytest.raises(TypeError, match="source: not an option of dataset 'mnist'"):
        data.load("mnist", data_dir_path=tmp_path, source="tfds")


# --- TensorFlow Datasets ---------------------------------------------------------------------------

TFDS_TRAIN = np.random.default_rng(3).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
TFDS_TEST = np.random.default_rng(4).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)


@functools.cache
def tiny_builder(image_feature: bool):
    """A TFDS builder class of the tiny set above, images as Tensor or (TensorFlow needed) Image features;
    TFDS registers it under the snake-case class name."""
    tfds = pytest.importorskip("tensorflow_datasets")

    def info(self):
        image = (tfds.features.Image(shape=(32, 32, 3)) if image_feature
                 else tfds.features.Tensor(shape=(32, 32, 3), dtype=np.uint8))
        return tfds.core.DatasetInfo(builder=self, disable_shuffling=True, features=tfds.features.FeaturesDict(
            {"pixels": image, "label": tfds.features.ClassLabel(names=CLASSES)}))  # kept in generation order

    def split_generators(self, dl_manager):
        return {"train": self._generate_examples(TFDS_TRAIN), "test": self._generate_examples(TFDS_TEST)}

    def generate_examples(self, images):
        for i, image in enumerate(images):
            yield i, {"pixels": image, "label": (3 * i + 1) % 10}

    return type("SgtTinyCifarImage" if image_feature else "SgtTinyCifarTensor", (tfds.core.GeneratorBasedBuilder,),
                {"VERSION": tfds.core.Version("1.0.0"), "_info": info, "_split_generators": split_generators,
                 "_generate_examples": generate_examples})


def prepare(tfds, builder_cls, data_dir, file_format):
    builder = builder_cls(data_dir=os.fspath(data_dir), file_format=file_format)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder.name


def test_tfds_tensor_features_via_data_source(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    name = prepare(tfds, tiny_builder(False), tmp_path, "array_record")
    split = cifar10.tfds_arrays(name, "test", tmp_path, image_key="pixels")
    assert np.array_equal(split.images, TFDS_TEST) and split.labels.tolist() == [1, 4]
    assert split.class_names == CLASSES and split.labels.dtype == np.int32

    monkeypatch.setattr(cifar10, "TFDS_NAME", name)  # the loader reads this set as if it were "cifar10"
    monkeypatch.setattr(cifar10, "TFDS_IMAGE_KEY", "pixels")
    ds = data.load("cifar10", data_dir_path=tmp_path, source="tfds")
    np.testing.assert_array_equal(ds.x_train, cifar10.normalise(TFDS_TRAIN))
    assert ds.y_train.tolist() == [1, 4, 7, 0, 3]
    with pytest.raises(KeyError, match="no feature 'image'.*pass image_key="):
        cifar10.tfds_arrays(name, "test", tmp_path)
    with pytest.raises(FileNotFoundError, match="is not prepared under"):
        cifar10.tfds_arrays(name, "test", tmp_path / "empty")


@pytest.mark.parametrize("file_format", ["array_record", "tfrecord"])
def test_tfds_image_features(tmp_path, file_format):
    tfds = pytest.importorskip("tensorflow_datasets")
    pytest.importorskip("tensorflow")  # encoding Image features (and reading tfrecord) needs TensorFlow
    name = prepare(tfds, tiny_builder(True), tmp_path, file_format)
    split = cifar10.tfds_arrays(name, "train", tmp_path, image_key="pixels")
    assert np.array_equal(split.images, TFDS_TRAIN) and split.labels.tolist() == [1, 4, 7, 0, 3]


# --- augmentation ----------------------------------------------------------------------------------

AUGMENT = jax.jit(augment.augment, static_argnames="padding")
X = jnp.arange(6 * 8 * 8 * 3, dtype=jnp.float32).reshape(6, 8, 8, 3) + 1  # all values distinct


def test_augment_is_deterministic_per_key_and_keeps_shapes():
    a, b = AUGMENT(jax.random.PRNGKey(0), X), AUGMENT(jax.random.PRNGKey(0), X)
    assert a.shape == X.shape and a.dtype == X.dtype and np.array_equal(a, b)
    assert not np.array_equal(a, AUGMENT(jax.random.PRNGKey(1), X))


def test_flip_is_an_involution_and_random_flip_mirrors_some():
    x, flipped = np.asarray(X), np.asarray(augment.flip(X))
    assert np.array_equal(augment.flip(flipped), x) and np.array_equal(flipped[:, :, 0], x[:, :, -1])
    y = np.asarray(jax.jit(augment.random_flip)(jax.random.PRNGKey(2), jnp.concatenate([X] * 8)))
    mirrored = [np.array_equal(y[i], flipped[i % 6]) for i in range(48)]
    kept = [np.array_equal(y[i], x[i % 6]) for i in range(48)]
    assert all(m != k for m, k in zip(mirrored, kept)) and 8 < sum(mirrored) < 40


def test_crop_semantics_by_hand():
    x = np.asarray(X[:2, :4, :4, :1])
    padded = augment.pad(x, 2)
    assert padded.shape == (2, 8, 8, 1) and float(padded[:, :2].sum()) == 0.0
    out = np.asarray(augment.crop(padded, jnp.array([[2, 2], [2, 2]]), 4, 4))
    assert np.array_equal(out, x)  # offset (padding, padding): no shift
    out = np.asarray(augment.crop(padded, jnp.array([[0, 3], [4, 2]]), 4, 4))
    # sample 0, offset (0, 3): rows shift down by 2 (two zero rows on top), columns left by 1 (last column 0)
    expected0 = np.zeros((4, 4))
    expected0[2:, :3] = x[0, :2, 1:, 0]
    # sample 1, offset (4, 2): rows shift up by 2 (two zero rows at the bottom), columns kept
    expected1 = np.zeros((4, 4))
    expected1[:2] = x[1, 2:, :, 0]
    assert np.array_equal(out[0, ..., 0], expected0) and np.array_equal(out[1, ..., 0], expected1)
    filled = np.asarray(augment.pad(X[:1, :2, :2], 1, fill=jnp.array([-1.0, -2.0, -3.0])))
    assert filled[0, 0, 0].tolist() == [-1.0, -2.0, -3.0] and np.array_equal(filled[:, 1:-1, 1:-1], X[:1, :2, :2])


def test_random_crop_windows_come_from_the_padded_image():
    out = np.asarray(jax.jit(augment.random_crop, static_argnames="padding")(jax.random.PRNGKey(5), X, padding=2))
    padded = np.asarray(augment.pad(X, 2))
    offsets = set()
    for i in range(6):  # labels stay valid: each output is a window of its own padded sample
        windows = [(r, c) for r in range(5) for c in range(5) if np.array_equal(padded[i, r:r + 8, c:c + 8], out[i])]
        assert len(windows) == 1, i
        offsets.add(windows[0])
    assert len(offsets) > 1
