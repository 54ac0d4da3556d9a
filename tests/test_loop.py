import jax
import optax
import numpy as np
import pytest

from sgt import loop
from sgt.data.base import Dataset, epoch_order
from tests.models import MLP


def toy_dataset(n=200, classes=3, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n).astype(np.int32)
    x = rng.normal(size=(n, 6, 5)).astype(np.float32)
    x[:, :2, :2] += y[:, None, None]  # a learnable signal
    return Dataset("toy", x[:160], y[:160], x[160:], y[160:], num_classes=classes)


FIT = dict(epochs=3, batch_size=16, checkpoint_every=4, progress=False)


class Crash(Exception):
    pass


def test_a_crashed_run_resumed_from_checkpoints_equals_an_uninterrupted_run(tmp_path):
    ds, model = toy_dataset(), MLP(dropout=0.2)
    full = loop.fit(model, ds, out_dir=tmp_path / "full", **FIT)

    def crash(step, _):
        if step == 15:  # mid-epoch 1: the newest checkpoint is step 12 (9 steps per epoch)
            raise Crash

    with pytest.raises(Crash):
        loop.fit(model, ds, out_dir=tmp_path / "resumed", on_step=crash, **FIT)
    resumed = loop.fit(model, ds, out_dir=tmp_path / "resumed", resume=True, **FIT)

    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(full.best), jax.tree.leaves(resumed.best)):
        np.testing.assert_array_equal(a, b)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(full.history) == strip(resumed.history)
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == FIT["epochs"]
    assert full.test == resumed.test


def test_model_selection_uses_validation_and_reports_test_of_the_selected_model():
    ds, model = toy_dataset(), MLP()
    result = loop.fit(model, ds, method="standard", tx=optax.adam(1e-2), epochs=4, batch_size=16, progress=False)
    keys = [(r["val_accuracy"], -r["val_loss"]) for r in result.history]
    assert int(result.best["epoch"]) == keys.index(max(keys))  # best accuracy, ties: lower loss, then earliest
    again = loop.evaluate(model, result.best["params"], result.best["batch_stats"], ds.x_test, ds.y_test, 16)
    assert again == result.test
    assert result.test["accuracy"] > 0.6


def test_fit_rejects_inconsistent_arguments():
    ds = toy_dataset()
    with pytest.raises(ValueError, match="model: outputs 4 classes"):
        loop.fit(MLP(classes=4), ds, epochs=1, batch_size=16, progress=False)
    with pytest.raises(ValueError, match=r"batch_size: 12 cannot be split evenly over the 8 devices of the mesh; "
                                         r"use a multiple of 8 \(nearest: 8 or 16\)"):
        loop.fit(MLP(), ds, epochs=1, batch_size=12, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        loop.fit(MLP(), ds, epochs=0, batch_size=16, progress=False)
    with pytest.raises(ValueError, match="val_fraction"):
        loop.fit(MLP(), ds, epochs=1, batch_size=16, val_fraction=1.0, progress=False)


def test_shuffling_is_seeded_per_epoch():
    a, b = epoch_order(50, 0, 1), epoch_order(50, 0, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, epoch_order(50, 0, 2))
    assert sorted(a) == list(range(50))


def test_selection_rules_by_hand():
    acc, loss = np.array([0.5, 0.5, 0.6, 0.5]), np.array([1.0, 0.9, 2.0, 0.8])
    # against a best of (0.5, 1.0): equal accuracy counts only with a lower loss, and only for the default
    np.testing.assert_array_equal(loop.improves(acc, loss, 0.5, 1.0), [False, True, True, True])
    np.testing.assert_array_equal(loop.improves(acc, loss, 0.5, 1.0, "first_best_accuracy"),
                                  [False, False, True, False])
    with pytest.raises(ValueError, match="selection"):
        loop.improves(acc, loss, 0.5, 1.0, "last")


def test_resume_with_nothing_to_resume_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="resume: nothing to resume in"):
        loop.fit(MLP(), toy_dataset(), out_dir=tmp_path / "empty", resume=True, **FIT)
    with pytest.raises(ValueError, match="resume: needs out_dir"):
        loop.fit(MLP(), toy_dataset(), resume=True, **FIT)
