"""`sgt reproduce shapes`: aggregation by hand on fake records, the ground-truth scores and attribution
conventions, and the CLI end to end on a tiny configuration (files written, --report-only reads the cache
and writes the same table without training)."""

import json

import flax.linen as nn
import numpy as np
import pytest

from sgt import cli, experiments, models
from sgt.experiments import shapes


def _record(regime, seed, method, mass, auc=0.3, aup=0.5, aur=0.5):
    return {"regime": regime, "seed": seed, "method": method, "mass_inside": mass, "aup": aup, "aur": aur, "auc": auc}


def test_paired_difference_by_hand():
    records = [_record("ordinary", 0, "Grad", 0.50, auc=0.30), _record("sgt", 0, "Grad", 0.70, auc=0.20),
               _record("ordinary", 1, "Grad", 0.40, auc=0.30), _record("sgt", 1, "Grad", 0.64, auc=0.40),
               _record("ordinary", 2, "Grad", 0.45)]  # no SGT partner: in its regime's mean, not in the pairs
    mass = shapes.paired(records, "Grad", "mass_inside")
    # ordinary 0.50, 0.40, 0.45: mean 0.45, s.e. = 0.05/√3; SGT 0.70, 0.64: mean 0.67, s.e. = 0.03
    assert mass["ordinary"] == pytest.approx(0.45) and mass["ordinary_se"] == pytest.approx(0.05 / np.sqrt(3))
    assert mass["ordinary_n"] == 3 and mass["sgt"] == pytest.approx(0.67) and mass["sgt_se"] == pytest.approx(0.03)
    # paired differences +0.20, +0.24: mean +0.22, s.e. = std(ddof 1)/√2 = 0.02 → beyond 2 s.e., better (higher)
    assert mass["diff"] == pytest.approx(0.22) and mass["diff_se"] == pytest.approx(0.02) and mass["pairs"] == 2
    assert mass["beyond_2se"] is True and mass["sgt_better"] is True
    # removal area, lower is better: −0.10, +0.10 → mean 0, s.e. 0.1: not beyond 2 s.e.
    area = shapes.paired(records, "Grad", "auc")
    assert area["diff"] == pytest.approx(0.0) and area["diff_se"] == pytest.approx(0.1)
    assert area["beyond_2se"] is False and area["sgt_better"] is False
    worse = shapes.paired([_record("ordinary", s, "IG", 0.5, auc=0.2) for s in (0, 1)]
                          + [_record("sgt", 0, "IG", 0.5, auc=0.30), _record("sgt", 1, "IG", 0.5, auc=0.32)], "IG", "auc")
    assert worse["diff"] == pytest.approx(0.11) and worse["beyond_2se"] is True and worse["sgt_better"] is False
    one = shapes.paired(records[:2], "Grad", "mass_inside")  # one seed: no standard error, no verdict
    assert one["pairs"] == 1 and np.isnan(one["diff_se"]) and one["beyond_2se"] is None
    rows = shapes.table_rows(records, ["Grad"])
    assert [r["method"] for r in rows] == ["Grad", shapes.BLIND] and rows[1]["mass_inside_pairs"] == 0
    assert rows[0]["mass_inside_diff"] == pytest.approx(0.22) and rows[0]["auc_sgt"] == pytest.approx(0.30)


def test_ground_truth_scores_and_conventions():
    truth = np.zeros((2, 6, 6), bool)
    truth[:, 1:3, 1:3] = True
    perfect = np.where(truth, 2.0, 0.0)
    scores = shapes.ground_truth_scores(perfect, truth)
    assert scores["mass_inside"] == pytest.approx(1.0) and scores["aup"] == pytest.approx(0.8)
    half = perfect + np.where(truth, 0.0, 0.25)  # inside 4 × 2 = 8, outside 32 × 0.25 = 8
    assert shapes.ground_truth_scores(half, truth)["mass_inside"] == pytest.approx(8 / 16)
    with pytest.raises(ValueError, match="shape"):
        shapes.ground_truth_scores(perfect, truth[..., None])
    assert shapes.method_options("SmoothGrad")["sigma"] == pytest.approx(0.3081)
    assert shapes.method_options("GradSHAP")["sigma"] == pytest.approx(0.09 * 0.3081)
    assert shapes.method_options("IG") == {"steps": 50, "batch_size": 10}
    x = np.random.default_rng(0).random((40, 4, 4, 1), np.float32)
    pool = shapes.shap_pool(x)
    np.testing.assert_array_equal(pool, shapes.shap_pool(x))
    assert pool.shape == (shapes.POOL, 4, 4, 1) and all(any((p == xi).all() for xi in x) for p in pool)
    with pytest.raises(ValueError, match="at least 10"):
        shapes.shap_pool(x[:5])


class TinyCNN(nn.Module):
    """conv 4 (3×3) → ReLU → max-pool 4 → dense: compiled in seconds, unlike the 3-layer small_cnn."""

    num_classes: int = 4

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.max_pool(nn.relu(nn.Conv(4, (3, 3), padding="VALID")(x)), (4, 4), strides=(4, 4))
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


@pytest.fixture
def tiny_model():
    models.REGISTRY["tiny_shapes_cnn"] = models.Entry(TinyCNN, "tiny CNN", (28, 28, 1))
    yield "tiny_shapes_cnn"
    del models.REGISTRY["tiny_shapes_cnn"]


def test_reproduce_shapes_end_to_end_and_report_only(tmp_path, tiny_model, monkeypatch, capsys):
    argv = ["reproduce", "shapes", "--model", tiny_model, "--seeds", "0", "--epochs", "1", "--batch-size", "16",
            "--train-subset", "96", "--test-subset", "32", "--methods", "Grad", "IG", "--out", str(tmp_path),
            "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "mass inside the object" in out and "| Grad |" in out and "| Blind |" in out
    for name in ("shapes.md", "shapes.csv", "accuracy.csv", "shapes.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    (root,) = (tmp_path / "cache").iterdir()
    assert {p.name for p in (root / "models").iterdir()} == {f"{m}_seed0.{e}" for m in ("ordinary", "sgt")
                                                             for e in ("json", "msgpack")}
    (evals,) = [p for p in root.iterdir() if p.name.startswith("test32_")]
    records = {p.stem: json.loads(p.read_text()) for p in evals.glob("*.json")}
    assert set(records) == {f"{r}_seed0__{m}" for r in ("ordinary", "sgt") for m in ("Grad", "IG", "Blind")}
    grad = records["sgt_seed0__Grad"]
    assert grad["n"] == 32 and len(grad["accuracy"]) == 10 and 0 <= grad["mass_inside"] <= 1
    assert 0 <= grad["aup"] <= 0.8 and 0 <= grad["aur"] <= 0.8 and len(grad["display_truth"]) == 4
    assert grad["auc"] == pytest.approx(np.trapezoid(grad["accuracy"], grad["fractions"]))
    blind = [records[f"{r}_seed0__Blind"] for r in ("ordinary", "sgt")]
    assert blind[0]["mass_inside"] == blind[1]["mass_inside"]  # one random map for both models
    assert abs(blind[0]["mass_inside"] - blind[0]["object_share"]) < 0.05
    table = (tmp_path / "shapes.csv").read_text()
    lines = table.splitlines()
    assert lines[0].startswith("method,mass_inside_ordinary,mass_inside_ordinary_se,") and [line.split(",")[0] for line in lines[1:]] == [
        "Grad", "IG", "Blind"]
    md = (tmp_path / "shapes.md").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(shapes, "train_model", no_training)
    for name in ("shapes.md", "shapes.csv"):
        (tmp_path / name).unlink()
    assert cli.main([*argv, "--report-only"]) == 0
    assert "2 models, 6 records" in capsys.readouterr().out
    assert (tmp_path / "shapes.csv").read_text() == table and (tmp_path / "shapes.md").read_text() == md
    with pytest.raises(SystemExit):  # argparse rejects a bad choice
        cli.main(["reproduce", "shapes", "--score", "nope", "--out", str(tmp_path)])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert cli.main(["reproduce", "shapes", "--model", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert "shapes" in experiments.REGISTRY
