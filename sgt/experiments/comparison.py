"""Ordinary vs saliency-guided training on one dataset, compared by accuracy and saliency quality.

This is what `sgt train` runs; notebooks and tests call `compare` directly. Each model is trained with
`sgt.loop.fit` (validation-based selection, checkpoints, resume), its test set is attributed with
the input gradient, and the maps are scored: by the share of |saliency| on the true features where
the dataset has ground truth (`sgt.metrics.mass_inside`), else by the share held by the top 10 %
of entries (`top_share`, a sparsity score).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sgt import data, loop, metrics, models, plots, train
from sgt.saliency import gradient

METHODS = ("standard", "sgt")
OPTIMIZERS = {"adam": optax.adam, "adadelta": optax.adadelta, "sgd": optax.sgd}
SCHEDULES = ("constant", "cosine", "step")
STEP_FRACTIONS = (0.5, 0.75)  # "step": ×0.1 here, as MultiStepLR at epochs 100 and 150 of 200 (authors' CIFAR code)
STEP_FACTOR = 0.1
DTYPES = ("float32", "bfloat16")


def compare_methods(method: str) -> tuple[str, ...]:
    """The CLI's --method: "standard", "sgt" or "both"."""
    return METHODS if method == "both" else (method,)


def learning_rate(lr: float, schedule: str, total_steps: int, milestones=STEP_FRACTIONS):
    """The rate at step t: "constant" lr; "cosine" lr·½(1 + cos(π·t/T)), from lr to 0 over T =
    `total_steps`; "step" lr·0.1^m with m the number of milestones ⌊f·T⌋ (f in `milestones`,
    fractions of the run) that t has reached (PyTorch's MultiStepLR with gamma 0.1)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return optax.cosine_decay_schedule(lr, total_steps)
    if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)) or total_steps < 1:
        raise ValueError(f"total_steps: expected an int >= 1 for the 'step' schedule, got {total_steps!r}")
    if not milestones or any(not 0.0 < f < 1.0 for f in milestones) or list(milestones) != sorted(milestones):
        raise ValueError(f"milestones: expected increasing fractions in (0, 1), got {milestones!r}")
    boundaries: dict[int, float] = {}
    for f in milestones:  # milestones that floor to the same step multiply there
        step = max(1, int(f * total_steps))
        boundaries[step] = boundaries.get(step, 1.0) * STEP_FACTOR
    return optax.piecewise_constant_schedule(lr, boundaries)


def optimizer(name: str, lr: float, schedule: str, total_steps: int, *, momentum: float = 0.0,
              weight_decay: float = 0.0, milestones=STEP_FRACTIONS) -> optax.GradientTransformation:
    """`name` at learning rate `lr` with `schedule` over `total_steps` (`learning_rate`).

    `momentum` (SGD only): PyTorch's heavy ball without dampening, b ← μ·b + g (b₀ = g), p ← p − η·b.
    `weight_decay` w: coupled L2 as PyTorch's `weight_decay`, g ← g + w·p on every parameter
    (BatchNorm scales and biases included) before the optimizer, so for SGD one step is
    b ← μ·b + (g + w·p), p ← p − η·b. With both 0 (the defaults) the optimizer is `name`'s own,
    unchanged.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {tuple(OPTIMIZERS)}, got {name!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {SCHEDULES}, got {schedule!r}")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: the learning rate must be a finite number > 0, got {lr}")
    if not np.isfinite(momentum) or not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum: expected a number in [0, 1), got {momentum}")
    if momentum and name != "sgd":
        raise ValueError(f"momentum: only the 'sgd' optimizer takes a momentum, got optimizer {name!r}")
    if not np.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay: expected a finite number >= 0, got {weight_decay}")
    rate = learning_rate(lr, schedule, total_steps, milestones)
    tx = OPTIMIZERS[name](rate, momentum=momentum) if momentum else OPTIMIZERS[name](rate)
    return optax.chain(optax.add_decayed_weights(weight_decay), tx) if weight_decay else tx


def top_share(saliency: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Per sample, the share of |saliency| held by its top `fraction` of entries (1 = perfectly sparse)."""
    s = np.sort(np.abs(saliency).reshape(len(saliency), -1), axis=1)[:, ::-1]
    top = max(1, int(fraction * s.shape[1]))
    total = s.sum(1)
    return np.divide(s[:, :top].sum(1), total, out=np.zeros_like(total), where=total > 0)


def gradient_maps(f, x: np.ndarray, y: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Input gradients of the true class for (x, y), `chunk` samples at a time."""
    attribute = gradient(f)
    return np.concatenate([np.asarray(attribute(jnp.asarray(x[i:i + chunk]), jnp.asarray(y[i:i + chunk])))
                           for i in range(0, len(x), chunk)])


def compare(dataset: str, *, methods: Sequence[str] = METHODS, model: str | None = None,
            config: train.SGTConfig | None = None, epochs: int | None = None, batch_size: int | None = None,
            optimizer_name: str | None = None, lr: float | None = None, schedule: str | None = None,
            dtype: str = "float32", val_fraction: float = 0.1, seed: int = 0, data_dir: str | Path | None = None,
            out: str | Path | None = None, resume: bool = False, checkpoint_every: int | None = None,
            progress: bool = True, show: int = 4, command: str | None = None) -> dict:
    """Train `dataset` with each of `methods` and score the saliency of the selected models.

    Unset training options, and SGT's k and λ when `config` is None, come from the dataset's
    registry defaults (`sgt.data.REGISTRY`). `dtype` (one of `DTYPES`) is the model's compute
    dtype; parameters, losses and saliency stay float32.
    With `out`, each method's run (metrics, checkpoints) goes to `out/<method>/`, and
    `out/results.json` and `out/saliency.png` (the first `show` test samples and their maps) are
    written. Returns the report written to results.json.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        raise ValueError(f"methods: expected some of {METHODS}, got {list(methods)}")
    defaults = data.get(dataset).defaults
    ds = data.load(dataset, data_dir_path=data_dir, seed=seed)
    model_name = model or defaults.model
    epochs = defaults.epochs if epochs is None else epochs
    batch_size = defaults.batch_size if batch_size is None else batch_size
    optimizer_name = optimizer_name or defaults.optimizer
    lr = defaults.lr if lr is None else lr
    schedule = schedule or defaults.schedule
    config = config or train.SGTConfig(k=defaults.k, lam=defaults.lam)
    # float32 is every model's default; only another compute dtype is passed (a user's model may take none)
    net = models.get(model_name, num_classes=ds.num_classes,
                     **({} if dtype == "float32" else {"dtype": jnp.dtype(dtype)}))
    n_val = max(1, int(round(val_fraction * len(ds.x_train))))
    total_steps = epochs * ((len(ds.x_train) - n_val) // max(batch_size, 1))
    tx = optimizer(optimizer_name, lr, schedule, total_steps)
    out = None if out is None else Path(out)

    results, maps = {}, {}
    for method in methods:
        print(f"[{method}] {model_name} on {dataset}: {epochs} epochs, batch {batch_size}, "
              f"{optimizer_name} lr {lr} ({schedule})" + (f", k={config.k} λ={config.lam} rank_by={config.rank_by}"
                                                         f" fill={config.fill}" if method == "sgt" else ""),
              flush=True)
        tic = time.perf_counter()
        fit = loop.fit(net, ds, method=method, config=config, tx=tx, epochs=epochs, batch_size=batch_size,
                       val_fraction=val_fraction, seed=seed, out_dir=None if out is None else out / method,
                       resume=resume, checkpoint_every=checkpoint_every, progress=progress)
        seconds = time.perf_counter() - tic
        saliency = gradient_maps(fit.classifier(net), ds.x_test, ds.y_test)
        row = {"test_accuracy": fit.test["accuracy"], "test_loss": fit.test["loss"],
               "best_epoch": int(fit.best["epoch"]), "val_accuracy": float(fit.best["val_accuracy"]),
               "top10_share": float(top_share(saliency).mean()), "train_seconds": round(seconds, 1)}
        if ds.truth_test is not None:
            row["mass_in_box"] = float(metrics.mass_inside(saliency, ds.truth_test).mean())
        results[method] = row
        maps[method] = saliency[:show]

    report = {"dataset": dataset, "model": model_name, "epochs": epochs, "batch_size": batch_size,
              "optimizer": optimizer_name, "lr": lr, "schedule": schedule, "seed": seed, "dtype": dtype,
              "devices": jax.device_count(), "sgt_config": vars(config) | {}, "command": command, "results": results}
    if ds.truth_test is not None:
        report["mass_in_box_uniform"] = float(ds.truth_test.mean())
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        plots.saliency_grid(ds.x_test[:show], {f"|grad| {m}": maps[m] for m in methods}, out / "saliency.png",
                            truth=None if ds.truth_test is None else ds.truth_test[:show],
                            titles=[f"label {y}" for y in ds.y_test[:show]])
    return report


def format_table(report: dict) -> str:
    """Test accuracy and saliency quality per method; the box mass where ground truth exists, else sparsity."""
    has_truth = "mass_in_box_uniform" in report
    quality = ("saliency mass in true box", "mass_in_box", "{:.3f}") if has_truth else \
        ("saliency share of top 10% pixels", "top10_share", "{:.3f}")
    columns = [("test accuracy", "test_accuracy", "{:.2%}"), quality, ("train seconds", "train_seconds", "{:.1f}")]
    header = f"{'method':<10}" + "".join(f"{name:>{len(name) + 3}}" for name, _, _ in columns)
    lines = [header, "-" * len(header)]
    for method, row in report["results"].items():
        cells = (f"{fmt.format(row[key]):>{len(name) + 3}}" for name, key, fmt in columns)
        lines.append(f"{method:<10}" + "".join(cells))
    if has_truth:
        lines.append(f"(a saliency map blind to the box puts {report['mass_in_box_uniform']:.3f} of its mass "
                     f"in it; higher is better)")
    return "\n".join(lines)


__all__ = ["METHODS", "OPTIMIZERS", "SCHEDULES", "compare", "compare_methods", "format_table", "gradient_maps",
           "optimizer", "top_share"]
