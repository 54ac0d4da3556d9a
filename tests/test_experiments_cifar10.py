"""`sgt reproduce cifar10`: aggregation by hand on fake records, the scaling and histograms, and the whole
CLI on a tiny CIFAR-format tarball with a tiny model (files written, rerun from the cache, --report-only), and
a training stopped mid-epoch that resumes from its checkpoints."""

import json
import pickle
import tarfile

import flax.linen as nn
import jax
import numpy as np
import pytest

from sgt import cli, models
from sgt.data import cifar10 as cifar10_data
from sgt.experiments import REGISTRY
from sgt.experiments import cifar10 as exp
from tests.test_data_cifar10 import add_file, batch_bytes


def _eval(regime, seed, gini, below10, correct=(1, 1, 0, 1), accuracy=0.5):
    n = len(correct)
    return {"regime": regime, "seed": seed, "gini": gini, "below10": below10, "subset_accuracy": accuracy, "n": 40,
            "correct": list(correct), "candidates": list(range(10, 10 + n)), "candidate_labels": [0] * n,
            "histogram": [1] * exp.HISTOGRAM_BINS, "pixel_means": [0.0, 0.1]}


def test_sparsity_rows_by_hand():
    evals = [_eval("ordinary", 0, 0.40, 0.50), _eval("sgt", 0, 0.60, 0.70),
             _eval("ordinary", 1, 0.50, 0.60), _eval("sgt", 1, 0.64, 0.66),
             _eval("ordinary", 2, 0.45, 0.55)]  # no SGT partner: in its regime, not in the pairs
    rows = {r["regime"]: r for r in exp.sparsity_rows(evals)}
    assert rows["ordinary"]["gini"] == pytest.approx(0.45) and rows["ordinary"]["seeds"] == 3
    assert rows["ordinary"]["gini_se"] == pytest.approx(0.05 / np.sqrt(3))  # std(ddof 1) = 0.05
    assert rows["sgt"]["gini"] == pytest.approx(0.62) and rows["sgt"]["gini_se"] == pytest.approx(0.02)
    diff = rows["sgt - ordinary"]  # paired: +0.20, +0.14 → mean 0.17, s.e. 0.0424/√2 = 0.03
    assert diff["seeds"] == 2 and diff["gini"] == pytest.approx(0.17) and diff["gini_se"] == pytest.approx(0.03)
    assert diff["below10"] == pytest.approx(0.13)  # +0.20, +0.06


def test_accuracy_rows_by_hand():
    records = [{"name": "ordinary_seed0", "test_accuracy": 0.80, "epochs": 10, "train_seconds": 600,
                "seconds_per_epoch": 60},
               {"name": "ordinary_seed1", "test_accuracy": 0.84, "epochs": 10, "train_seconds": 1200,
                "seconds_per_epoch": 120},
               {"name": "sgt_seed0", "test_accuracy": 0.78, "epochs": 8, "train_seconds": 1800,
                "seconds_per_epoch": 225}]
    rows = {r["regime"]: r for r in exp.accuracy_rows(records)}
    assert rows["ordinary"]["test_accuracy"] == pytest.approx(0.82) and rows["ordinary"]["test_accuracy_se"] == \
        pytest.approx(0.02)
    assert rows["ordinary"]["train_minutes"] == pytest.approx(15.0) and rows["ordinary"]["seconds_per_epoch"] == 90
    assert rows["sgt"]["seeds"] == 1 and np.isnan(rows["sgt"]["test_accuracy_se"])


def test_display_choice_takes_the_images_both_models_get_right():
    ordinary = _eval("ordinary", 1, 0.4, 0.5, correct=(1, 0, 1, 1, 1, 1))
    guided = _eval("sgt", 1, 0.6, 0.7, correct=(1, 1, 0, 1, 1, 1))
    other = _eval("sgt", 0, 0.6, 0.7)  # seed 0 lacks its ordinary partner: not used
    first, second, rows = exp.display_choice([other, guided, ordinary])
    assert first is ordinary and second is guided and rows == [0, 3, 4, 5][:exp.DISPLAY]
    assert exp.display_choice([other]) is None


def test_scaling_and_histograms_by_hand():
    s = np.array([[[2.0, -4.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    unit = exp.scaled(s)
    np.testing.assert_allclose(unit[0], [[0.5, -1.0], [0.25, 0.0]])
    np.testing.assert_array_equal(unit[1], 0.0)  # an all-zero map stays 0
    counts = exp.histograms(unit)
    assert counts.shape == (2, exp.HISTOGRAM_BINS) and counts.sum(1).tolist() == [4, 4]
    assert counts[0, 0] == 1 and counts[0, exp.HISTOGRAM_BINS // 2] == 1 and counts[1, exp.HISTOGRAM_BINS // 2] == 4


def test_settings_are_checked():
    with pytest.raises(ValueError, match="schedule: expected"):
        exp.Settings(schedule="linear")
    with pytest.raises(ValueError, match="momentum: expected"):
        exp.Settings(momentum=1.5)
    with pytest.raises(ValueError, match="source: expected"):
        exp.Settings(source="web")
    assert "_m0.9_wd0.0001_aug_" in exp.Settings().tag() and "cifar10" in REGISTRY


# --- the command line on a tiny tarball ----------------------------------------------------------------

def write_tarball(path, n_train=80, n_test=24):
    """A CIFAR-10 python tarball of n_train / n_test images: class c is dark noise with a bright square at a
    class-dependent place, so a tiny model learns something in one epoch."""
    rng = np.random.default_rng(0)

    def images(n):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, (n, 32, 32, 3), dtype=np.uint8)
        for i, c in enumerate(y):
            x[i, 3 * c:3 * c + 6, 4:28] = 250
        return x, y.tolist()

    x, y = images(n_train)
    x_test, y_test = images(n_test)
    meta = {b"label_names": [n.encode() for n in cifar10_data.CLASSES]}
    per = n_train // 5
    with tarfile.open(path, "w:gz") as tar:
        for i in range(5):
            add_file(tar, f"cifar-10-batches-py/data_batch_{i + 1}",
                     batch_bytes(x[per * i:per * (i + 1)], y[per * i:per * (i + 1)]))
        add_file(tar, "cifar-10-batches-py/test_batch", batch_bytes(x_test, y_test))
        add_file(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=2))


class TinyNet(nn.Module):
    """conv 4 (3×3, stride 2) → BatchNorm → ReLU → mean pool → dense: compiled in seconds, with batch statistics."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(4, (3, 3), strides=2)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        return nn.Dense(self.num_classes)(x.mean(axis=(1, 2)))


@pytest.fixture
def tiny_model():
    saved = dict(models.REGISTRY)
    models.REGISTRY["tiny_cifar"] = models.Entry(TinyNet, "tiny CNN", (32, 32, 3))
    yield "tiny_cifar"
    models.REGISTRY.clear()
    models.REGISTRY.update(saved)


def test_reproduce_cifar10_end_to_end_caches_and_reports(tmp_path, tiny_model, capsys):
    data_dir, out = tmp_path / "data", tmp_path / "out"
    (data_dir / "cifar10").mkdir(parents=True)
    write_tarball(data_dir / "cifar10" / cifar10_data.TARBALL)
    argv = ["reproduce", "cifar10", "--model", tiny_model, "--seeds", "0", "--epochs", "1", "--batch-size", "8",
            "--test-subset", "12", "--data-dir", str(data_dir), "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert "training ordinary_seed0" in first and "training sgt_seed0" in first and "trained in" in first
    for name in ("cifar10.md", "sparsity.csv", "maps.png", "gradients.png"):
        assert (out / name).stat().st_size > 0, name
    (root,) = (out / "cache").iterdir()
    assert root.name.startswith("cifar10-auto_tiny_cifar_e1_b8_sgd0.1-cosine_m0.9_wd0.0001_aug_k0.5_lam1")
    stored = {p.name for p in (root / "models").iterdir()}
    assert stored == {f"{m}_seed0.{ext}" for m in ("ordinary", "sgt") for ext in ("json", "msgpack")}
    record = json.loads((root / "models" / "sgt_seed0.json").read_text())
    assert record["source"] == "tarball" and record["steps_per_epoch"] == 9 and record["train_seconds"] > 0
    assert not (root / "runs" / "sgt_seed0" / "checkpoints").exists()  # the record replaces them
    evals = {p.stem: json.loads(p.read_text()) for p in (root / "test12_grad-logit").glob("*.json")}
    assert set(evals) == {"ordinary_seed0", "sgt_seed0"}
    one = evals["sgt_seed0"]
    assert one["n"] == 12 and len(one["correct"]) == 12 and sum(one["histogram"]) == 12 * 32 * 32
    assert 0 <= one["gini"] <= 1 and 0 <= one["below10"] <= 1 and len(one["pixel_means"]) == 32 * 32
    assert np.asarray(one["candidate_maps"]).shape == (12, 32, 32)
    assert np.asarray(one["candidate_pixels"]).shape == (12, 32, 32, 3)
    table = (out / "cifar10.md").read_text()
    assert "| ordinary |" in table and "| sgt - ordinary |" in table and "weight decay 0.0001" in table
    csv = (out / "sparsity.csv").read_text().splitlines()
    assert csv[0].startswith("regime,gini,gini_se") and len(csv) == 4

    assert cli.main(argv) == 0  # everything cached: nothing is trained again
    assert "training" not in capsys.readouterr().out
    (out / "cifar10.md").unlink()
    assert cli.main([*argv, "--report-only"]) == 0
    assert (out / "cifar10.md").read_text() == table


def test_a_stopped_training_resumes_from_its_checkpoints_and_ends_as_an_uninterrupted_one(tmp_path, tiny_model,
                                                                                           monkeypatch):
    data_dir = tmp_path / "data"
    (data_dir / "cifar10").mkdir(parents=True)
    write_tarball(data_dir / "cifar10" / cifar10_data.TARBALL)
    settings = exp.Settings(model=tiny_model, epochs=2, batch_size=8, test_subset=4)
    loaded = exp.load(settings, data_dir)

    def obtain(out):
        return exp.obtain_model(exp.Cache(out, settings), settings, "sgt_seed0", "sgt", 0, lambda: loaded, False,
                                True, checkpoint_every=4)

    class Stop(Exception):
        pass

    real_fit = exp.loop.fit

    def stopped_fit(*args, **kwargs):  # the process dies after step 14 (last checkpoint: step 12, mid-epoch)
        def on_step(step, metrics):
            if step == 14:
                raise Stop
        return real_fit(*args, **kwargs, on_step=on_step)

    monkeypatch.setattr(exp.loop, "fit", stopped_fit)
    with pytest.raises(Stop):
        obtain(tmp_path / "stopped")
    monkeypatch.setattr(exp.loop, "fit", real_fit)
    resumed_vars, resumed = obtain(tmp_path / "stopped")
    whole_vars, whole = obtain(tmp_path / "whole")
    assert resumed["resumed"] is True and whole["resumed"] is False
    assert resumed["test_accuracy"] == whole["test_accuracy"] and resumed["best_epoch"] == whole["best_epoch"]
    for a, b in zip(jax.tree.leaves(resumed_vars), jax.tree.leaves(whole_vars)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
