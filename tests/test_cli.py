import json

import numpy as np
import pytest

from sgt import data, models
from sgt.experiments import comparison
from sgt.cli import main


def _figures(monkeypatch):
    from sgt import plots

    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    return figures


def test_sgt_train_on_the_embedded_default(tmp_path, capsys, monkeypatch):
    figures = _figures(monkeypatch)
    assert main(["train", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert set(report["results"]) == {"standard", "sgt"}
    for row in report["results"].values():
        assert 0.0 <= row["mass_in_box"] <= 1.0 and 0.0 <= row["test_accuracy"] <= 1.0
    ds = data.load("shapes")
    assert report["dataset"] == "shapes" and report["mass_in_box_uniform"] == pytest.approx(ds.truth_test.mean())
    assert (report["batch_size"], report["epochs"], report["model"]) == (64, 1, "small_cnn")  # dataset defaults
    assert (report["sgt_config"]["k"], report["sgt_config"]["lam"]) == (0.85, 10.0)  # the dataset's, not global
    assert (tmp_path / "sgt" / "metrics.jsonl").read_text().count("\n") == 1
    out = capsys.readouterr().out
    assert "saliency mass in true box" in out and "k=0.85 λ=10.0" in out
    # the figure: 4 test images × (input, ground truth, |grad| of each model)
    (fig,) = figures
    assert len(fig.axes) == 16
    assert [ax.get_title() for ax in fig.axes[:4]] == ["input", "ground truth", "|grad| standard", "|grad| sgt"]
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), ds.x_test[0, :, :, 0])
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), ds.truth_test[0, :, :, 0].astype(float))


def test_sgt_train_on_the_embedded_time_series_set(tmp_path, capsys, monkeypatch):
    figures = _figures(monkeypatch)
    assert main(["train", "--dataset", "middle", "--method", "sgt", "--epochs", "1", "--lam", "2",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert set(report["results"]) == {"sgt"} and 0.0 <= report["results"]["sgt"]["mass_in_box"] <= 1.0
    assert report["mass_in_box_uniform"] == 0.36
    assert (report["batch_size"], report["epochs"], report["model"]) == (48, 1, "lstm")  # dataset defaults
    assert (report["sgt_config"]["k"], report["sgt_config"]["lam"]) == (0.5, 2.0)  # global k, flag λ
    assert "saliency mass in true box" in capsys.readouterr().out
    (fig,) = figures
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "ground truth", "|grad| sgt"]
    ds = data.load("middle")
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), ds.x_test[0].T)
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), ds.truth_test[0].T.astype(float))


def test_top_share_hand_computed():
    s = np.array([[10.0] + [0.0] * 9, [1.0] * 10])
    np.testing.assert_allclose(comparison.top_share(s, 0.1), [1.0, 0.1])


def test_unknown_model_in_registry():
    import pytest

    with pytest.raises(ValueError, match="model: unknown model"):
        models.get("nope")


def test_sgt_models_lists_every_registered_model_with_its_parameter_count(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in models.REGISTRY:
        assert name in out
    assert "464,154" in out  # ResNet-32 (CIFAR), the authors' default architecture


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "--batch-size: expected a positive integer, got 0"),
    (["--epochs", "0"], "--epochs: expected a positive integer, got 0"),
    (["--epochs", "two"], "--epochs: expected a positive integer, got 'two'"),
    (["--lr", "-1"], "--lr: expected a number > 0, got -1"),
    (["--lr", "nan"], "--lr: expected a finite number"),
    (["--lam", "-1"], "--lam: expected a number >= 0, got -1"),
    (["--k", "0"], "--k: expected a fraction in (0, 1) or a whole count >= 1, got 0"),
    (["--k", "1.5"], "--k: expected a fraction in (0, 1) or a whole count >= 1, got 1.5"),
    (["--val-fraction", "1"], "--val-fraction: expected a fraction in (0, 1), got 1"),
    (["--checkpoint-every", "-3"], "--checkpoint-every: expected a positive integer, got -3"),
    (["--fill", "zeros"], "--fill: invalid choice: 'zeros'"),
    (["--method", "sgd"], "--method: invalid choice: 'sgd'"),
])
def test_bad_flags_are_rejected_before_any_work(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", str(tmp_path), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "cifar100"], "dataset: unknown dataset 'cifar100'"),
    (["--model", "resnet9000"], "model: unknown model 'resnet9000'"),
    (["--resume"], "resume: nothing to resume in"),
    (["--batch-size", "50"], "batch_size: 50 cannot be split evenly over the 8 devices of the mesh; use a "
                             "multiple of 8 (nearest: 48 or 56)"),
    (["--batch-size", "4096"], "batch_size: 4096 exceeds the 1800 training samples"),
    (["--dataset", "mnist", "--data-dir", "{tmp}"], "train-images-idx3-ubyte"),
])
def test_errors_found_while_setting_up_name_the_argument(argv, message, capsys, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgt: error: ") and message in err


@pytest.mark.parametrize("argv, message", [
    (["timeseries", "--epochs", "0"], "--epochs: expected a positive integer, got 0"),
    (["timeseries", "--k", "1.2"], "--k: expected a fraction in (0, 1), got 1.2"),
    (["vanishing", "--group", "0"], "--group: expected a positive integer, got 0"),
    (["timeseries", "--methods", "LIME"], "--methods: invalid choice: 'LIME'"),
])
def test_reproduce_flags_are_validated(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", *argv])
    assert message in capsys.readouterr().err
