import json

import numpy as np

from sgt import cli, models
from sgt.cli import main


def test_sgt_train_on_the_embedded_default(tmp_path, capsys):
    assert main(["train", "--epochs", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert set(report["results"]) == {"standard", "sgt"}
    for row in report["results"].values():
        assert 0.0 <= row["mass_in_box"] <= 1.0 and 0.0 <= row["test_accuracy"] <= 1.0
    assert report["mass_in_box_uniform"] == 0.36
    assert (tmp_path / "saliency.png").stat().st_size > 10_000
    assert (tmp_path / "sgt" / "metrics.jsonl").read_text().count("\n") == 2
    out = capsys.readouterr().out
    assert "saliency mass in true box" in out and "standard" in out and "sgt" in out


def test_cli_errors_name_the_argument(tmp_path, capsys):
    assert main(["train", "--dataset", "cifar100", "--out", str(tmp_path)]) == 2
    assert "dataset: unknown dataset 'cifar100'" in capsys.readouterr().err
    assert main(["train", "--model", "resnet9000", "--out", str(tmp_path)]) == 2
    assert "model: unknown model 'resnet9000'" in capsys.readouterr().err
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "train-images-idx3-ubyte" in capsys.readouterr().err
    assert main(["train", "--k", "0", "--out", str(tmp_path)]) == 2
    assert "k:" in capsys.readouterr().err
    assert main(["train", "--lam", "-1", "--out", str(tmp_path)]) == 2
    assert "lam:" in capsys.readouterr().err


def test_top_share_hand_computed():
    s = np.array([[10.0] + [0.0] * 9, [1.0] * 10])
    np.testing.assert_allclose(cli.top_share(s, 0.1), [1.0, 0.1])


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
