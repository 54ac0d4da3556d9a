"""`sgt reproduce mnist-timeseries` (Fig. 5): the image → sequence conversion, the settings' checks,
and the CLI on a tiny 28×28 stand-in (report files, resumed from the cache without training)."""

import json

import numpy as np
import pytest

from sgt import cli, data, experiments
from sgt.experiments import mnist_timeseries as mts


def test_sequences_are_the_image_rows():
    images = np.random.default_rng(0).normal(size=(3, 28, 28, 1)).astype(np.float32)
    seq = mts.sequences(images)
    assert seq.shape == (3, 28, 28) and seq.dtype == np.float32
    for n in range(3):
        for t in range(28):
            for f in range(28):
                assert seq[n, t, f] == images[n, t, f, 0]  # time step = row, feature = column
    with pytest.raises(ValueError, match="one-channel images"):
        mts.sequences(np.zeros((2, 28, 28, 3)))
    ds = data.Dataset("d", images, np.zeros(3, np.int32), images[:2], np.ones(2, np.int32), num_classes=10)
    rows = mts.as_sequences(ds)
    np.testing.assert_array_equal(rows.x_test, images[:2, :, :, 0])
    np.testing.assert_array_equal(rows.y_test, ds.y_test)


def test_settings_and_model_options():
    with pytest.raises(ValueError, match="heads"):
        mts.Settings(heads=5)  # d_model = 28 features
    with pytest.raises(ValueError, match="epochs"):
        mts.Settings(epochs=0)
    with pytest.raises(ValueError, match="unknown architecture"):
        mts.model_options("gru", mts.Settings())
    s = mts.Settings()
    assert mts.model_options("lstm", s) == {"hidden": 64}
    assert mts.model_options("tcn", s) == {"channels": (32, 32, 32)}
    assert mts.model_options("transformer", s) == {"layers": 2, "heads": 4, "ff": 128}
    assert s.tag() != mts.Settings(hidden=32).tag()  # the sizes name the cache folder


def test_digit_mask_is_ink_of_at_least_half():
    raw = np.array([[0.0, 0.49, 0.5, 1.0]], np.float32)
    x = (raw - 0.1307) / 0.3081
    np.testing.assert_array_equal(mts.digit_mask(x), [[False, False, True, True]])


def test_paired_difference_by_hand():
    ordinary = [{"seed": 0, "gini_per_sample": [0.5, 0.6, 0.7]}]
    sgt = [{"seed": 0, "gini_per_sample": [0.6, 0.8, 0.7]}]
    mean, se, n, over = mts.paired_difference(ordinary, sgt)  # differences 0.1, 0.2, 0.0
    assert mean == pytest.approx(0.1) and se == pytest.approx(0.1 / np.sqrt(3)) and (n, over) == (3, "samples")
    two = mts.paired_difference(ordinary + [{"seed": 1, "gini_per_sample": [0.5]}],
                                sgt + [{"seed": 1, "gini_per_sample": [0.8]}])
    assert two[0] == pytest.approx(0.2) and two[2:] == (2, "seeds")  # per-seed means 0.1 and 0.3


def _tiny(*, seed=0, data_dir=None):
    """Three classes of 28×28 images in MNIST's input space: a bright bar at one of three rows (times)."""
    rng = np.random.default_rng(0)
    n = 128
    y = (np.arange(n) % 3).astype(np.int32)
    raw = rng.uniform(0, 0.2, (n, 28, 28, 1)).astype(np.float32)
    for i, c in enumerate(y):
        raw[i, 6 + 7 * c:9 + 7 * c, 4:24] = 1.0
    x = ((raw - 0.1307) / 0.3081).astype(np.float32)
    return data.Dataset("tiny_rows", x[:96], y[:96], x[96:], y[96:], num_classes=3)


@pytest.fixture
def tiny_dataset():
    saved = dict(data.REGISTRY)
    data.register("tiny_rows", data.Entry(_tiny, "image", "three bars", data.TrainDefaults("mnist_cnn", 1, 16)))
    yield "tiny_rows"
    data.REGISTRY.clear()
    data.REGISTRY.update(saved)


def test_reproduce_end_to_end_caches_and_resumes(tmp_path, tiny_dataset, monkeypatch, capsys):
    argv = ["reproduce", "mnist-timeseries", "--dataset", tiny_dataset, "--models", "lstm", "tcn", "--epochs", "1",
            "--batch-size", "16", "--hidden", "4", "--tcn-channels", "4", "--methods", "Grad", "DeepLIFT",
            "--test-subset", "8",
            "--out", str(tmp_path), "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "| LSTM | ordinary | 0 |" in out and "| TCN | sgt | 0 |" in out and "4 models, 8 map records" in out
    for name in ("mnist_timeseries.md", "mnist_timeseries.csv", "fig5.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    table = (tmp_path / "mnist_timeseries.csv").read_text().splitlines()
    assert table[0].startswith("architecture,regime,seed,test_accuracy,")
    assert {"gini_Grad", "gini_DeepLIFT_se", "on_digit_Grad", "on_digit_DeepLIFT_se"} <= set(table[0].split(","))
    assert [line.split(",")[:3] for line in table[1:]] == [["lstm", "ordinary", "0"], ["lstm", "sgt", "0"],
                                                          ["tcn", "ordinary", "0"], ["tcn", "sgt", "0"]]
    (root,) = (tmp_path / "cache").iterdir()
    assert {p.name for p in (root / "models").iterdir()} == {
        f"{a}_{r}_seed0.{ext}" for a in ("lstm", "tcn") for r in ("ordinary", "sgt") for ext in ("json", "msgpack")}
    evals = root / "test8_log_softmax"
    records = {p.stem: json.loads(p.read_text()) for p in evals.glob("*.json")}
    assert len(records) == 8
    grad = records["lstm_ordinary_seed0__Grad__maps"]
    assert grad["n"] == 8 and len(grad["gini_per_sample"]) == 8 and 0 <= grad["gini"] < 1
    assert len(grad["on_digit_per_sample"]) == 8 and 0 <= grad["on_digit"] <= 1 and 0 < grad["digit_share"] < 1
    assert np.asarray(grad["display"]).shape == (mts.DISPLAY, 28, 28)
    assert np.asarray(grad["display_inputs"]).shape == (mts.DISPLAY, 28, 28)
    model_record = (root / "models" / "tcn_sgt_seed0.json").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(mts, "train_model", no_training)
    (evals / "tcn_sgt_seed0__DeepLIFT__maps.json").unlink()  # a missing record is recomputed from the cached model
    assert cli.main(argv) == 0
    assert "4 models, 8 map records" in capsys.readouterr().out
    assert json.loads((evals / "lstm_ordinary_seed0__Grad__maps.json").read_text()) == grad
    assert (root / "models" / "tcn_sgt_seed0.json").read_text() == model_record
    assert (evals / "tcn_sgt_seed0__DeepLIFT__maps.json").exists()
    more = [*argv[:argv.index("--out")], "--seeds", "0", "1", *argv[argv.index("--out"):], "--report-only"]
    assert cli.main(more) == 0  # seed 1 is not cached: reported without it, nothing trained
    assert "4 models, 8 map records" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="trained again"):
        cli.main(more[:-1])


def test_bad_arguments_are_rejected(tmp_path, capsys):
    assert "mnist-timeseries" in experiments.REGISTRY
    assert cli.main(["reproduce", "mnist-timeseries", "--heads", "5", "--out", str(tmp_path)]) == 2
    assert "heads" in capsys.readouterr().err
    for bad in (["--epochs", "0"], ["--seeds", "-1"], ["--test-subset", "x"], ["--models", "gru"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["reproduce", "mnist-timeseries", *bad, "--out", str(tmp_path)])
        assert exit_.value.code == 2


def test_real_mnist_as_sequences(data_dir):
    ds = mts.load(mts.Settings(train_subset=256), data_dir)
    assert ds.x_train.shape == (256, 28, 28) and ds.x_test.shape == (10000, 28, 28)
