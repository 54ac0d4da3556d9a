"""The training loop: seeded shuffling, validation-based model selection, JSONL metrics,
atomic checkpoints every N steps and exact resumption."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from sgt import train
from sgt.checkpoint import Checkpointer
from sgt.data.base import Dataset, validation_split


@dataclasses.dataclass
class FitResult:
    """`best` holds the parameters with the highest validation accuracy (never chosen on test)."""

    state: train.TrainState
    best: dict
    history: list[dict]
    test: dict

    def classifier(self, model: nn.Module):
        """The selected model as an inference-mode classifier f(x) -> logits."""
        return train.classifier(model, self.best["params"], self.best["batch_stats"])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled sample order of `epoch`, a function of (seed, epoch) only, so resumption replays it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def evaluate(model: nn.Module, params, batch_stats, x: np.ndarray, y: np.ndarray, batch_size: int,
             mesh=None, eval_step=None) -> dict:
    """Mean cross-entropy and accuracy over (x, y), padding the last batch."""
    mesh = mesh or train.make_mesh()
    eval_step = eval_step or train.make_eval_step(model, mesh)
    variables = train.replicate(train.TrainState(jnp.zeros((), jnp.int32), params, batch_stats, None, None), mesh)
    loss_sum, correct = 0.0, 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        valid = np.ones(batch_size, np.float32)
        pad = batch_size - len(xb)
        if pad:
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
            valid[-pad:] = 0
        batch_loss, batch_correct = eval_step(variables, xb, yb, valid)
        loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
    return {"loss": float(loss_sum) / len(x), "accuracy": float(correct) / len(x)}


def _read_history(path: Path, upto_step: int) -> list[dict]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["step"] <= upto_step]


def _zero_sums(mesh) -> dict:
    return train.replicate({name: jnp.zeros((), jnp.float32) for name in (*train.METRICS, "steps")}, mesh)


def _snapshot(state: train.TrainState, val: dict, epoch: int) -> dict:
    """A copy of the model variables (the step donates the state's buffers) and their validation scores."""
    variables = jax.tree.map(jnp.copy, {"params": state.params, "batch_stats": state.batch_stats})
    return {**variables, "val_accuracy": jnp.float32(val["accuracy"]), "val_loss": jnp.float32(val["loss"]),
            "epoch": jnp.int32(epoch)}


def fit(
    model: nn.Module,
    dataset: Dataset,
    *,
    method: str = "sgt",
    config: train.SGTConfig | None = None,
    tx: optax.GradientTransformation | None = None,
    epochs: int = 10,
    batch_size: int = 50,
    val_fraction: float = 0.1,
    patience: int | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    mesh=None,
    progress: bool = True,
    on_step: Callable[[int, dict], None] | None = None,
) -> FitResult:
    """Train `model` on `dataset` with `method` "standard" or "sgt" and evaluate the selected model on test.

    A seeded `val_fraction` of the train split selects the epoch with the best validation accuracy
    (ties: lower validation loss).
    With `out_dir`, metrics go to `metrics.jsonl` and the state is checkpointed atomically at every
    epoch end and every `checkpoint_every` steps; `resume=True` continues from the newest
    checkpoint, replaying the same batches, so the result equals an uninterrupted run.
    """
    if epochs < 1:
        raise ValueError(f"epochs: must be >= 1, got {epochs}")
    mesh = mesh or train.make_mesh()
    n_dev = mesh.devices.size
    if batch_size < 1 or batch_size % n_dev:
        raise ValueError(f"batch_size: {batch_size} is not a positive multiple of the {n_dev} devices of the mesh")
    (x_train, y_train), (x_val, y_val) = validation_split(dataset.x_train, dataset.y_train, val_fraction, seed)
    steps_per_epoch = len(x_train) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size: {batch_size} exceeds the {len(x_train)} training samples")
    logits = jax.eval_shape(lambda x: model.init_with_output(jax.random.PRNGKey(0), x)[0], x_train[:1])
    if logits.shape[-1] != dataset.num_classes:
        raise ValueError(f"model: outputs {logits.shape[-1]} classes but dataset {dataset.name!r} "
                         f"has {dataset.num_classes}")
    tx = tx or optax.adam(1e-3)
    step_fn = train.make_train_step(model, tx, method=method, config=config, mesh=mesh)
    eval_step = train.make_eval_step(model, mesh)
    state = train.create_train_state(model, tx, x_train, seed, mesh)
    best = _snapshot(state, {"accuracy": -1.0, "loss": float("inf")}, -1)

    running = _zero_sums(mesh)  # this epoch's summed step metrics, checkpointed with the state
    checkpointer, history, log_path = None, [], None
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        log_path = out_dir / "metrics.jsonl"
        ckpt_dir = out_dir / "checkpoints"
        if not resume and ckpt_dir.exists():
            shutil.rmtree(ckpt_dir)  # a fresh run: do not mix with an older one
            log_path.unlink(missing_ok=True)
        checkpointer = Checkpointer(ckpt_dir)
        if resume and checkpointer.latest_step() is not None:
            restored = checkpointer.restore({"state": state, "best": best, "running": running})
            state, best, running = restored["state"], restored["best"], restored["running"]
            history = _read_history(log_path, int(state.step))
        log_path.write_text("".join(json.dumps(r) + "\n" for r in history))

    def save():
        if checkpointer is not None:
            checkpointer.save(int(state.step), {"state": state, "best": best, "running": running})

    start = int(state.step)
    bar = tqdm(total=epochs * steps_per_epoch, initial=start, disable=not progress, desc=method, unit="step")
    since_best = 0 if not history else int(history[-1]["epoch"]) - int(best["epoch"])
    for epoch in range(start // steps_per_epoch, epochs):
        if patience is not None and since_best >= patience:
            break
        tic = time.perf_counter()
        order = epoch_order(len(x_train), seed, epoch)
        for i in range(int(state.step) - epoch * steps_per_epoch, steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            state, metrics = step_fn(state, x_train[idx], y_train[idx])
            running = jax.tree.map(jnp.add, running, {**metrics, "steps": 1})
            bar.update(1)
            step = epoch * steps_per_epoch + i + 1
            if on_step is not None:
                on_step(step, metrics)
            if checkpoint_every and step % checkpoint_every == 0 and i + 1 < steps_per_epoch:
                save()
        steps_done = float(running.pop("steps"))
        train_metrics = {k: float(v) / steps_done for k, v in running.items()}
        running = _zero_sums(mesh)
        val = evaluate(model, state.params, state.batch_stats, x_val, y_val, batch_size, mesh, eval_step)
        if (val["accuracy"], -val["loss"]) > (float(best["val_accuracy"]), -float(best["val_loss"])):
            best = _snapshot(state, val, epoch)
            since_best = 0
        else:
            since_best += 1
        record = {"epoch": epoch, "step": int(state.step), "seconds": round(time.perf_counter() - tic, 3),
                  **{f"train_{k}": v for k, v in train_metrics.items()},
                  **{f"val_{k}": v for k, v in val.items()}}
        history.append(record)
        if log_path is not None:
            with log_path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
        save()
        bar.set_postfix(loss=f"{train_metrics.get('loss', float('nan')):.3f}", val_acc=f"{val['accuracy']:.3f}")
    bar.close()
    if checkpointer is not None:
        checkpointer.close()
    test = evaluate(model, best["params"], best["batch_stats"], dataset.x_test, dataset.y_test, batch_size,
                    mesh, eval_step)
    return FitResult(state=state, best=best, history=history, test=test)
