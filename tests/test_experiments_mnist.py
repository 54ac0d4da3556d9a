"""`sgt reproduce mnist`: aggregation by hand, the fixed subset and baselines, and the whole CLI on a tiny
28×28 stand-in (files written, resumed from the cache without training, --report-only)."""

import json

import flax.linen as nn
import numpy as np
import pytest

from sgt import cli, data, experiments, models
from sgt.experiments import mnist


def _curve(regime, seed, method, auc, replacement="background", fractions=None, accuracy=None, **extra):
    return {"regime": regime, "seed": seed, "method": method, "replacement": replacement, "auc": auc,
            "fractions": fractions or [0.0, 0.1], "accuracy": accuracy or [1.0, 0.5], **extra}


def test_area_rows_by_hand():
    curves = [_curve("ordinary", 0, "Grad", 0.50), _curve("sgt", 0, "Grad", 0.40),
              _curve("ordinary", 1, "Grad", 0.60), _curve("sgt", 1, "Grad", 0.44),
              _curve("ordinary", 2, "Grad", 0.55),  # no SGT partner: counted in its regime, not in the pairs
              _curve("ordinary", 0, "Random", 0.70), _curve("sgt", 0, "Random", 0.71)]
    rows = {r["method"]: r for r in mnist.area_rows(curves, ["Grad"])}
    grad = rows["Grad"]
    # differences −0.10, −0.16: mean −0.13, s.e. = std(ddof 1)/√2 = 0.0424/1.414 = 0.03
    assert grad["diff"] == pytest.approx(-0.13) and grad["diff_se"] == pytest.approx(0.03)
    assert grad["below_zero_2se"] is True and grad["pairs"] == 2  # −0.13 + 2·0.03 < 0
    assert grad["ordinary"] == pytest.approx(0.55) and grad["ordinary_n"] == 3
    assert grad["sgt"] == pytest.approx(0.42) and grad["sgt_se"] == pytest.approx(0.02)
    assert rows["Random"]["pairs"] == 1 and rows["Random"]["below_zero_2se"] is None  # one seed: no s.e.
    assert np.isnan(rows["Random"]["diff_se"]) and rows["Random"]["diff"] == pytest.approx(0.01)
    not_clear = mnist.area_rows([_curve("ordinary", 0, "Grad", 0.5), _curve("sgt", 0, "Grad", 0.4),
                                 _curve("ordinary", 1, "Grad", 0.5), _curve("sgt", 1, "Grad", 0.6)], ["Grad"])[0]
    assert not_clear["below_zero_2se"] is False


def test_fig4_and_curve_rows_by_hand():
    fractions = [0.0, *mnist.FIG4_FRACTIONS]
    curves = [_curve("ordinary", s, "Grad", 0.3, fractions=[0.0, 0.1, 0.3], accuracy=[1.0, 0.8 - s / 10, 0.4])
              for s in (0, 1)]
    curves += [_curve("ordinary", 0, "Grad", None, "mean", fractions, [1.0, 0.9, 0.7, 0.5, 0.3, 0.1])]
    curves += [_curve("ordinary", 0, "Grad", None, "roar", [0.3], [0.6])]
    rows = {r["fraction"]: r for r in mnist.fig4_rows(curves)}
    assert rows[0.1]["background"] == pytest.approx(0.75) and rows[0.1]["background_n"] == 2
    assert rows[0.3]["mean"] == pytest.approx(0.7) and rows[0.3]["roar"] == pytest.approx(0.6)
    assert np.isnan(rows[0.5]["roar"]) and rows[0.5]["roar_n"] == 0
    points = mnist.curve_rows(curves, ["Grad"])
    assert [(p["fraction"], p["accuracy"]) for p in points] == [(0.0, 1.0), (0.1, pytest.approx(0.75)), (0.3, 0.4)]


def test_subset_and_baselines_are_fixed():
    ds = data.Dataset("d", np.zeros((4, 28, 28, 1), np.float32), np.zeros(4, np.int32),
                      np.zeros((5000, 28, 28, 1), np.float32), np.zeros(5000, np.int32), num_classes=10)
    a = mnist.subset_indices(ds, 2000)
    np.testing.assert_array_equal(a, mnist.subset_indices(ds, 2000))
    assert len(np.unique(a)) == 2000 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(mnist.subset_indices(ds, 9000), np.arange(5000))
    base, pool = mnist.baselines((6, 28, 28, 1), "raw")
    assert base.shape == (6, 28, 28, 1) and pool.shape == (mnist.POOL, 28, 28, 1)
    raw_base, raw_pool = mnist.baselines((6, 28, 28, 1), "input")  # the same draws, not normalised
    np.testing.assert_allclose(base, (raw_base - 0.1307) / 0.3081, rtol=1e-5)
    assert 0 <= raw_pool.min() and raw_pool.max() < 1
    assert mnist.BACKGROUND == pytest.approx(-0.4242, abs=1e-4)


def _tiny(*, seed=0, data_dir=None):
    """Three classes of 28×28 images in MNIST's input space: a bright bar at one of three rows."""
    rng = np.random.default_rng(0)
    n = 112
    y = (np.arange(n) % 3).astype(np.int32)
    raw = rng.uniform(0, 0.2, (n, 28, 28, 1)).astype(np.float32)
    for i, c in enumerate(y):
        raw[i, 6 + 7 * c:9 + 7 * c, 4:24] = 1.0
    x = ((raw - 0.1307) / 0.3081).astype(np.float32)
    return data.Dataset("tiny_digits", x[:80], y[:80], x[80:], y[80:], num_classes=3)


class TinyCNN(nn.Module):
    """conv 4 (3×3) → ReLU → max-pool 4 → dense: the MNIST CNN's kinds of layers, compiled in seconds."""

    num_classes: int = 3

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.max_pool(nn.relu(nn.Conv(4, (3, 3), padding="VALID")(x)), (4, 4), strides=(4, 4))
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


@pytest.fixture
def tiny_dataset():
    """The stand-in dataset and model, registered for the test only."""
    saved_data, saved_models = dict(data.REGISTRY), dict(models.REGISTRY)
    data.register("tiny_digits", data.Entry(_tiny, "image", "three bars", data.TrainDefaults("tiny_cnn", 1, 16)))
    models.REGISTRY["tiny_cnn"] = models.Entry(TinyCNN, "tiny CNN", (28, 28, 1))
    yield "tiny_digits"
    for registry, saved in ((data.REGISTRY, saved_data), (models.REGISTRY, saved_models)):
        registry.clear()
        registry.update(saved)


def test_reproduce_mnist_end_to_end_caches_and_resumes(tmp_path, tiny_dataset, monkeypatch, capsys):
    argv = ["reproduce", "mnist", "--dataset", tiny_dataset, "--model", "tiny_cnn", "--seeds", "0", "--epochs", "1", "--batch-size", "16",
            "--optimizer", "adam", "--lr", "1e-3", "--test-subset", "12", "--roar-fractions", "0.5", "--out", str(tmp_path), "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Fig. 3" in out and "| Grad |" in out and "ROAR" in out
    for name in ("mnist.md", "fig3_curves.csv", "fig3_areas.csv", "fig4.csv", "sparsity.csv", "fig3.png", "fig4.png",
                 "maps.png", "gradients.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    (root,) = (tmp_path / "cache").iterdir()
    stored = {p.name for p in (root / "models").iterdir()}
    expected = {"ordinary_seed0", "sgt_seed0", "roar0.5_seed0"}
    assert stored == {f"{m}.{ext}" for m in expected for ext in ("json", "msgpack")}
    (evals,) = [p for p in root.iterdir() if p.name.startswith("test12_")]
    curves = {p.stem: json.loads(p.read_text()) for p in evals.glob("*.json")}
    names = [*mnist.METHODS, "Random"]
    assert set(curves) == ({f"{r}_seed0__{m}__background" for r in ("ordinary", "sgt") for m in names}
                           | {"ordinary_seed0__Grad__mean"}
                           | {"ordinary_seed0__Grad__roar0.5"})
    grad = curves["ordinary_seed0__Grad__background"]
    assert grad["fractions"] == [i / 10 for i in range(10)] and len(grad["accuracy"]) == 10 and grad["n"] == 12
    assert 0 <= grad["gini"] < 1 and sum(grad["histogram"]) == 12 * 28 * 28 and len(grad["display"]) == 4
    assert grad["auc"] == pytest.approx(np.trapezoid(grad["accuracy"], grad["fractions"]))
    table = (tmp_path / "fig3_areas.csv").read_text().splitlines()
    assert table[0].startswith("method,") and len(table) == 1 + len(names)

    def no_training(*args, **kwargs):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(mnist, "train_model", no_training)
    (evals / "sgt_seed0__IG__background.json").unlink()  # a missing curve is recomputed from the cached model
    assert cli.main(argv) == 0
    assert "3 models, 16 curves" in capsys.readouterr().out
    assert (evals / "sgt_seed0__IG__background.json").exists()
    again = json.loads((evals / "ordinary_seed0__Grad__background.json").read_text())
    assert again == grad
    for weights in (root / "models").glob("*.msgpack"):  # as in a committed results folder: records only
        weights.unlink()
    assert cli.main(argv) == 0  # every record is cached: nothing is trained, nothing recomputed
    assert "3 models, 16 curves" in capsys.readouterr().out
    assert json.loads((evals / "ordinary_seed0__Grad__background.json").read_text()) == grad
    (evals / "sgt_seed0__IG__background.json").unlink()  # now a missing curve needs the missing model
    with pytest.raises(AssertionError, match="trained again"):
        cli.main(argv)
    more = [*argv[:argv.index("--seeds") + 1], "0", "1", *argv[argv.index("--seeds") + 2:], "--report-only"]
    assert cli.main(more) == 0  # seed 1 is not cached: reported without it, nothing trained
    assert "3 models, 15 curves" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="trained again"):
        cli.main(more[:-1])


def test_bad_options_are_rejected(tmp_path, capsys):
    assert cli.main(["reproduce", "mnist", "--dataset", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert "mnist" in experiments.REGISTRY


def test_real_mnist_subset_and_background(data_dir):
    ds = mnist.load(mnist.Settings(train_subset=500), data_dir)
    assert len(ds.x_train) == 500 and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.x_test.min() == pytest.approx(mnist.BACKGROUND, abs=1e-5)  # a black pixel is the background
    idx = mnist.subset_indices(ds, mnist.TEST_SUBSET)
    assert len(idx) == 2000 and len(np.unique(ds.y_test[idx])) == 10
