import gzip

import numpy as np
import pytest

from sgt import data
from sgt.data import mnist, synthetic
from sgt.data.base import Dataset


def test_middle_is_deterministic_from_the_seed():
    a, b, c = synthetic.middle(3), synthetic.middle(3), synthetic.middle(4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


def test_middle_shapes_scaling_and_ground_truth():
    ds = synthetic.middle(0)
    assert ds.x_train.shape == (1000, 50, 50) and ds.x_test.shape == (100, 50, 50)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0  # per-cell min-max fitted on train
    np.testing.assert_allclose(ds.x_train.min(axis=0), 0.0)
    np.testing.assert_allclose(ds.x_train.max(axis=0), 1.0)
    expected = np.zeros((50, 50), bool)
    expected[10:40, 10:40] = True
    assert all(np.array_equal(t, expected) for t in ds.truth_test)
    assert 0.4 < ds.y_train.mean() < 0.6


def test_middle_carries_the_class_in_the_box_only():
    ds = data.load("middle", seed=1)
    assert ds.name == "middle" and ds.x_train.dtype == np.float32
    box = ds.truth_test[0]
    pos, neg = ds.x_train[ds.y_train == 1], ds.x_train[ds.y_train == 0]
    assert pos[:, box].mean() - neg[:, box].mean() > 0.2  # +1 vs −1 before scaling
    assert abs(pos[:, ~box].mean() - neg[:, ~box].mean()) < 0.01


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "a.gz"), array)


def test_mnist_loader_on_hand_made_files(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = np.zeros((3, 28, 28), np.uint8)
    images[1, 0, 0] = 255
    for stem, arr in [("train-images-idx3-ubyte", images), ("t10k-images-idx3-ubyte", images[:2]),
                      ("train-labels-idx1-ubyte", np.array([1, 7, 9])), ("t10k-labels-idx1-ubyte", np.array([0, 3]))]:
        write_idx(folder / f"{stem}.gz", arr)
    ds = mnist.load(tmp_path)
    assert ds.x_train.shape == (3, 28, 28, 1) and ds.x_test.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(ds.x_train[0, 0, 0, 0], -0.1307 / 0.3081, rtol=1e-6)
    np.testing.assert_allclose(ds.x_train[1, 0, 0, 0], (1 - 0.1307) / 0.3081, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, [1, 7, 9])


def _mirror(folder):
    """A local MNIST "mirror" of hand-made files; returns the arrays by stem."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28)), "t10k-images-idx3-ubyte":
              rng.integers(0, 256, (2, 28, 28)), "train-labels-idx1-ubyte": np.array([5, 0, 4, 1]),
              "t10k-labels-idx1-ubyte": np.array([7, 2])}
    for stem, array in arrays.items():
        write_idx(folder / f"{stem}.gz", array)
    return arrays


def test_mnist_download_fetches_the_missing_files_and_keeps_present_ones(tmp_path, monkeypatch):
    arrays = _mirror(tmp_path / "mirror")
    monkeypatch.setattr(mnist, "MIRROR", (tmp_path / "mirror").as_uri() + "/")
    home = tmp_path / "data"
    (home / "mnist").mkdir(parents=True)
    write_idx(home / "mnist" / "t10k-labels-idx1-ubyte.gz", np.array([3, 3]))  # present: not replaced
    ds = data.load("mnist", data_dir_path=home, download=True)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.y_test, [3, 3])
    np.testing.assert_allclose(ds.x_test[..., 0], (arrays["t10k-images-idx3-ubyte"] / 255 - 0.1307) / 0.3081, rtol=1e-5)
    assert sorted(p.name for p in (home / "mnist").iterdir()) == sorted(f"{s}.gz" for s in mnist.FILES.values())


def test_mnist_download_leaves_nothing_behind_a_corrupt_file(tmp_path):
    _mirror(tmp_path / "mirror")
    (tmp_path / "mirror" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"not an idx file"))
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        mnist.fetch(tmp_path / "data", mirror=(tmp_path / "mirror").as_uri() + "/")
    left = sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir())
    assert "t10k-images-idx3-ubyte.gz" not in left and not [n for n in left if n.startswith(".")]


def test_missing_mnist_file_says_which_file_goes_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.*mnist/.*SGT_DATA_DIR.*download=True"):
        data.load("mnist", data_dir_path=tmp_path)


def test_real_mnist(data_dir):
    ds = data.load("mnist", data_dir_path=data_dir)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(ds.y_train),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    np.testing.assert_array_equal(np.bincount(ds.y_test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert abs(ds.x_train.mean()) < 0.01 and abs(ds.x_train.std() - 1.0) < 0.01


def test_bad_datasets_are_rejected():
    x, y = np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="x_train: contains non-finite"):
        Dataset("d", np.full((4, 3), np.nan, np.float32), y, x, y, num_classes=2)
    with pytest.raises(ValueError, match=r"y_test: labels must lie in \[0, 2\)"):
        Dataset("d", x, y, x, y + 1, num_classes=2)
    with pytest.raises(ValueError, match="y_train: expected 4 labels"):
        Dataset("d", x, y[:3], x, y, num_classes=2)
    with pytest.raises(ValueError, match="dataset: unknown dataset 'cifar100'"):
        data.load("cifar100")
