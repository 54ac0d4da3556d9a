"""The training loop, in pieces: a run directory (open / save / resume), one epoch, model selection,
evaluation; `fit` composes them. Shuffling is seeded per epoch, checkpoints are atomic, and a
resumed run replays the same batches, so it ends exactly where an uninterrupted run would."""

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
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from sgt import adapters, distributed, train
from sgt._checks import batch_message
from sgt.checkpoint import Checkpointer
from sgt.data.base import Dataset, epoch_order, validation_split

SELECTION_RULES = ("accuracy_then_loss", "first_best_accuracy")


def improves(accuracy, loss, best_accuracy, best_loss, rule: str = "accuracy_then_loss"):
    """Whether a validation result replaces the best so far (elementwise on numpy arrays).

    "accuracy_then_loss" (the default): higher accuracy, ties broken by lower loss.
    "first_best_accuracy": strictly higher accuracy only, so the earliest best epoch is kept.
    """
    if rule == "first_best_accuracy":
        return accuracy > best_accuracy
    if rule == "accuracy_then_loss":
        return (accuracy > best_accuracy) | ((accuracy == best_accuracy) & (loss < best_loss))
    raise ValueError(f"selection: expected one of {SELECTION_RULES}, got {rule!r}")


@dataclasses.dataclass
class FitResult:
    """`best` holds the parameters of the selected epoch (chosen on validation, never on test);
    `best["epoch"]` is its 0-based index, as `history[i]["epoch"]`."""

    state: train.TrainState
    best: dict
    history: list[dict]
    test: dict

    def classifier(self, model):
        """The selected model as an inference-mode classifier f(x) -> logits."""
        return train.classifier(model, self.best["params"], self.best["batch_stats"])


def evaluate(model: nn.Module, params, batch_stats, x: np.ndarray, y: np.ndarray, batch_size: int,
             mesh=None, eval_step=None) -> dict:
    """Mean cross-entropy and accuracy over (x, y), padding the last batch."""
    mesh = mesh or train.make_mesh()
    eval_step = eval_step or train.make_eval_step(model, mesh)
    variables = train.replicate(train.TrainState(jnp.zeros((), jnp.int32), params, batch_stats, None, None), mesh)
    sharded = NamedSharding(mesh, P(train.DATA_AXIS))
    loss_sum, correct = 0.0, 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        valid = np.ones(batch_size, np.float32)
        pad = batch_size - len(xb)
        if pad:
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
            valid[-pad:] = 0
        batch = distributed.global_tree((xb, yb, valid), sharded)  # unchanged with one process
        batch_loss, batch_correct = eval_step(variables, *batch)
        loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
    return {"loss": float(loss_sum) / len(x), "accuracy": float(correct) / len(x)}


# --------------------------------------------------------------------------------------------
# The run directory


class RunDir:
    """`out_dir/metrics.jsonl` (one line per epoch) and `out_dir/checkpoints/` of one training run.

    Opened fresh, an older run in the folder is removed; opened with `resume=True`, the newest
    checkpoint must exist (nothing to resume is an error, not a silent fresh start). With several
    processes, `out_dir` is one folder shared by all: process 0 removes, truncates and appends the
    log, and every process takes part in the Orbax checkpoints.
    """

    def __init__(self, out_dir: str | Path, resume: bool):
        self.out_dir = Path(out_dir)
        self.log_path = self.out_dir / "metrics.jsonl"
        ckpt_dir = self.out_dir / "checkpoints"
        if resume and not ckpt_dir.exists():
            raise ValueError(f"resume: nothing to resume in {self.out_dir} (no folder {ckpt_dir}); "
                             f"start without resume")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if not resume and distributed.is_primary():
            if ckpt_dir.exists():
                shutil.rmtree(ckpt_dir)  # a fresh run: do not mix with an older one
            self.log_path.write_text("")
        distributed.barrier("sgt.RunDir.open")  # the others wait for the cleared folder
        self.checkpointer = Checkpointer(ckpt_dir)
        if resume and self.checkpointer.latest_step() is None:
            self.checkpointer.close()
            raise ValueError(f"resume: nothing to resume in {self.out_dir} (no checkpoint in {ckpt_dir}); "
                             f"start without resume")

    def restore(self, template: dict) -> tuple[dict, list[dict]]:
        """The newest checkpoint (structured like `template`) and the epoch records up to its step."""
        restored = self.checkpointer.restore(template)
        step = int(restored["state"].step)
        history = []
        if self.log_path.exists():
            history = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
        history = [r for r in history if r["step"] <= step]
        distributed.barrier("sgt.RunDir.restore")  # every process has read the log before it is cut
        if distributed.is_primary():
            self.log_path.write_text("".join(json.dumps(r) + "\n" for r in history))
        return restored, history

    def save(self, tree: dict) -> None:
        self.checkpointer.save(int(tree["state"].step), tree)

    def log(self, record: dict) -> None:
        if not distributed.is_primary():
            return
        with self.log_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self.checkpointer.close()


# --------------------------------------------------------------------------------------------
# One epoch


def zero_sums(mesh) -> dict:
    """Running sums of the step metrics (and the step count), replicated on `mesh`."""
    return train.replicate({name: jnp.zeros((), jnp.float32) for name in (*train.METRICS, "steps")}, mesh)


def train_epoch(step_fn, state, running: dict, x: np.ndarray, y: np.ndarray, order: np.ndarray,
                batch_size: int, *, start: int = 0, after_step: Callable[[int, dict, dict], None] | None = None):
    """Steps `start` … of one epoch over the batches `order[i·batch : (i+1)·batch]`.

    `running` accumulates the step metrics (it is checkpointed with the state, so a resumed epoch
    reports the same means); `after_step(i, state, running)` runs after batch i.
    Returns (state, running).
    """
    for i in range(start, len(order) // batch_size):
        idx = order[i * batch_size:(i + 1) * batch_size]
        state, metrics = step_fn(state, x[idx], y[idx])
        running = jax.tree.map(jnp.add, running, {**metrics, "steps": 1})
        if after_step is not None:
            after_step(i, state, running, metrics)
    return state, running


def epoch_means(running: dict) -> dict:
    sums = dict(running)
    steps = float(sums.pop("steps"))
    return {k: float(v) / steps for k, v in sums.items()}


def _snapshot(state: train.TrainState, val: dict, epoch: int, mesh) -> dict:
    """A copy of the model variables (the step donates the state's buffers) and their validation scores
    (global arrays when several processes share the mesh, so that all of them checkpoint it)."""
    variables = jax.tree.map(jnp.copy, {"params": state.params, "batch_stats": state.batch_stats})
    scores = {"val_accuracy": jnp.float32(val["accuracy"]), "val_loss": jnp.float32(val["loss"]),
              "epoch": jnp.int32(epoch)}
    return {**variables, **distributed.global_tree(scores, NamedSharding(mesh, P()))}  # as is with one process


# --------------------------------------------------------------------------------------------
# The whole fit


def _check(model, dataset, epochs, batch_size, mesh, x_train) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: must be an int >= 1, got {epochs!r}")
    n_dev = mesh.devices.size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1 or batch_size % n_dev:
        raise ValueError(batch_message(batch_size, n_dev))
    if len(x_train) // batch_size == 0:
        raise ValueError(f"batch_size: {batch_size} exceeds the {len(x_train)} training samples")
    def logits_of(x):
        params, state = model.init(jax.random.PRNGKey(0), x)
        return model.apply(params, state, x, train=False)[0]

    logits = jax.eval_shape(logits_of, x_train[:1])
    if logits.shape[-1] != dataset.num_classes:
        raise ValueError(f"model: outputs {logits.shape[-1]} classes but dataset {dataset.name!r} "
                         f"has {dataset.num_classes}")


def fit(
    model,
    dataset: Dataset,
    *,
    method: str = "sgt",
    config: train.SGTConfig | None = None,
    tx: optax.GradientTransformation | None = None,
    epochs: int = 10,
    batch_size: int = 50,
    val_fraction: float = 0.1,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    patience: int | None = None,
    selection: str = "accuracy_then_loss",
    seed: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    mesh=None,
    progress: bool = True,
    on_step: Callable[[int, dict], None] | None = None,
    augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> FitResult:
    """Train `model` on `dataset` with `method` "standard" or "sgt" and evaluate the selected model on test.

    A seeded `val_fraction` of the train split, or the given `validation` pair (x_val, y_val) (then
    all of train is trained on), selects the epoch (`selection`, see `improves`);
    training stops early after `patience` epochs without a better one. With `out_dir`, metrics go to
    `metrics.jsonl` and the state is checkpointed atomically at every epoch end and every
    `checkpoint_every` steps; `resume=True` continues from the newest checkpoint, replaying the same
    batches, so the result equals an uninterrupted run. `on_step(step, metrics)` is called after
    every step (1-based global step). `augment(key, x) -> x` (e.g. `sgt.data.augment.augment`), when
    given, augments every training batch inside the jitted step (`sgt.train.train_step`); validation
    and test images are never augmented.
    """
    improves(0.0, 0.0, 0.0, 0.0, selection)  # checks the rule
    model = adapters.adapt(model)
    if resume and out_dir is None:
        raise ValueError("resume: needs out_dir, the folder of the run to continue")
    mesh = mesh or train.make_mesh()
    if validation is None:
        (x_train, y_train), (x_val, y_val) = validation_split(dataset.x_train, dataset.y_train, val_fraction, seed)
    else:
        (x_train, y_train), (x_val, y_val) = (dataset.x_train, dataset.y_train), validation
        if len(x_val) != len(y_val) or len(x_val) == 0:
            raise ValueError(f"validation: expected (x_val, y_val) of equal, non-zero length, "
                             f"got {len(x_val)} and {len(y_val)}")
    _check(model, dataset, epochs, batch_size, mesh, x_train)
    steps_per_epoch = len(x_train) // batch_size
    tx = tx or optax.adam(1e-3)
    step_fn = train.make_train_step(model, tx, method=method, config=config, mesh=mesh, augment=augment)
    eval_step = train.make_eval_step(model, mesh)
    state = train.create_train_state(model, tx, x_train, seed, mesh)
    best = _snapshot(state, {"accuracy": -1.0, "loss": float("inf")}, -1, mesh)
    running = zero_sums(mesh)  # this epoch's summed step metrics, checkpointed with the state

    run, history = None, []
    if out_dir is not None:
        run = RunDir(out_dir, resume)
        if resume:
            restored, history = run.restore({"state": state, "best": best, "running": running})
            state, best, running = restored["state"], restored["best"], restored["running"]

    done = int(state.step)
    bar = tqdm(total=epochs * steps_per_epoch, initial=done, disable=not progress or not distributed.is_primary(),
               desc=method, unit="step")

    def after_step(i, new_state, new_running, metrics):
        bar.update(1)
        step = epoch * steps_per_epoch + i + 1
        if on_step is not None:
            on_step(step, metrics)
        if run is not None and checkpoint_every and step % checkpoint_every == 0 and i + 1 < steps_per_epoch:
            run.save({"state": new_state, "best": best, "running": new_running})

    since_best = 0 if not history else int(history[-1]["epoch"]) - int(best["epoch"])
    for epoch in range(done // steps_per_epoch, epochs):
        if patience is not None and since_best >= patience:
            break
        tic = time.perf_counter()
        order = epoch_order(len(x_train), seed, epoch)
        state, running = train_epoch(step_fn, state, running, x_train, y_train, order, batch_size,
                                     start=int(state.step) - epoch * steps_per_epoch, after_step=after_step)
        train_metrics = epoch_means(running)
        running = zero_sums(mesh)
        val = evaluate(model, state.params, state.batch_stats, x_val, y_val, batch_size, mesh, eval_step)
        if improves(val["accuracy"], val["loss"], float(best["val_accuracy"]), float(best["val_loss"]), selection):
            best, since_best = _snapshot(state, val, epoch, mesh), 0
        else:
            since_best += 1
        record = {"epoch": epoch, "step": int(state.step), "seconds": round(time.perf_counter() - tic, 3),
                  **{f"train_{k}": v for k, v in train_metrics.items()},
                  **{f"val_{k}": v for k, v in val.items()}}
        history.append(record)
        if run is not None:
            run.log(record)
            run.save({"state": state, "best": best, "running": running})
        bar.set_postfix(loss=f"{train_metrics.get('loss', float('nan')):.3f}", val_acc=f"{val['accuracy']:.3f}")
    bar.close()
    if run is not None:
        run.close()
    test = evaluate(model, best["params"], best["batch_stats"], dataset.x_test, dataset.y_test, batch_size,
                    mesh, eval_step)
    return FitResult(state=state, best=best, history=history, test=test)


__all__ = ["FitResult", "RunDir", "SELECTION_RULES", "epoch_means", "epoch_order", "evaluate", "fit", "improves",
           "train_epoch", "zero_sums"]
