"""Train many small models at once: one `jax.vmap`ped, `lax.scan`ned epoch for a whole group.

Tiny models (the time-series benchmark's LSTMs and TCNs) spend their time in per-step overhead,
not arithmetic; stacking G models (seeds, or datasets of equal shape) along a leading axis turns G
Python loops into one XLA program. Each model keeps its own data, shuffling, dropout keys and
early stopping: a model that has stopped is frozen (its state no longer changes) while the others
go on, so the result for model g does not depend on which other models share its group.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from sgt import adapters, loop, train, xla
from sgt.data.base import epoch_order


@dataclasses.dataclass
class ManyResult:
    """Stacked best-validation variables (leading axis G) and each model's selection record."""

    params: Any
    batch_stats: Any
    val_accuracy: np.ndarray  # [G] at the selected epoch
    epochs: np.ndarray  # [G] epochs trained before stopping
    best_epoch: np.ndarray  # [G] 0-based index of the selected epoch (as loop.fit's best["epoch"])

    def member(self, g: int) -> tuple[Any, Any]:
        """(params, batch_stats) of model g."""
        take = lambda t: jax.tree.map(lambda a: a[g], t)  # noqa: E731
        return take(self.params), take(self.batch_stats)


def _check_stack(x_train, y_train, x_val, y_val, seeds, batch_size):
    g = len(seeds)
    for name, a in (("x_train", x_train), ("y_train", y_train), ("x_val", x_val), ("y_val", y_val)):
        if a.shape[0] != g:
            raise ValueError(f"{name}: expected a leading axis of {g} models (one per seed), got shape {a.shape}")
    if x_train.shape[:2] != y_train.shape[:2] or x_val.shape[:2] != y_val.shape[:2]:
        raise ValueError(f"y_train/y_val: expected labels [G, N] matching the inputs, got {y_train.shape} "
                         f"for {x_train.shape} and {y_val.shape} for {x_val.shape}")
    if not 1 <= batch_size <= x_train.shape[1]:
        raise ValueError(f"batch_size: expected 1..{x_train.shape[1]} (train samples per model), got {batch_size}")


@functools.lru_cache(maxsize=16)
def make_epoch(model: nn.Module, tx: optax.GradientTransformation, *, method: str,
               config: train.SGTConfig | None = None, classification_loss: str = "logits"):
    """Jitted `epoch(states, active, x, y, order) -> (states, mean train metrics [G])`.

    `order` [G, steps, batch] holds each model's shuffled batch indices into its own x [G, N, ...];
    models with `active` False keep their state unchanged. `classification_loss`: the CE term
    (`sgt.train.train_step`). Cached per (model, tx, method, config, classification_loss), so
    successive groups of the same shape reuse the compiled program.
    """
    step = jax.vmap(train.train_step(model, tx, method=method, config=config,
                                     classification_loss=classification_loss))

    def epoch(states, active, x, y, order):
        def body(states, idx):
            xb = jax.vmap(lambda a, i: a[i])(x, idx)
            yb = jax.vmap(lambda a, i: a[i])(y, idx)
            new, metrics = step(states, xb, yb)
            keep = lambda n, o: jnp.where(active.reshape(-1, *[1] * (n.ndim - 1)), n, o)  # noqa: E731
            return jax.tree.map(keep, new, states), metrics

        states, metrics = jax.lax.scan(body, states, jnp.swapaxes(order, 0, 1))
        return states, jax.tree.map(lambda m: m.mean(0), metrics)

    return xla.jit(epoch, donate_argnums=0)


@functools.lru_cache(maxsize=16)
def make_evaluate(model: nn.Module):
    """Jitted `evaluate(params, batch_stats, x [G, N, ...], y [G, N]) -> (accuracy [G], mean CE [G])`,
    inference mode."""

    def one(params, batch_stats, x, y):
        logits = train.forward(model, params, batch_stats, x, train=False)[0]
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return jnp.mean(jnp.argmax(logits, -1) == y), ce

    return xla.jit(jax.vmap(one))


def fit_many(model: nn.Module, tx: optax.GradientTransformation, *, method: str,
             config: train.SGTConfig | None = None, x_train, y_train, x_val, y_val, seeds,
             epochs: int, batch_size: int, patience: int, stop_accuracy: float = 1.0,
             selection: str = "accuracy_then_loss", classification_loss: str = "logits", progress: bool = True,
             desc: str = "") -> ManyResult:
    """Train G = len(seeds) models, model g on (x_train[g], y_train[g]) from seed g, all at once.

    Each epoch, model g's train set is shuffled from (seeds[g], epoch) (`sgt.data.epoch_order`) and cut
    into full batches (the remainder is dropped). After each epoch the validation result selects model
    g's best parameters by `selection` (`sgt.loop.improves`, the same rule as `loop.fit`); model g stops
    when its best validation accuracy reaches `stop_accuracy` or has not improved for `patience`
    epochs; all stop after `epochs`. `classification_loss` names the training CE term
    (`sgt.losses.classification_loss`); the validation loss is always the CE on logits. Inputs keep
    their dtype (float64 inputs with a float64 model train in float64 under `jax_enable_x64`).
    """
    loop.improves(0.0, 0.0, 0.0, 0.0, selection)  # checks the rule
    model = adapters.adapt(model)  # once: the compiled epoch is cached per adapter
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    x_val, y_val = np.asarray(x_val), np.asarray(y_val)
    _check_stack(x_train, y_train, x_val, y_val, seeds, batch_size)
    g, n = x_train.shape[:2]
    steps = n // batch_size
    keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
    states = jax.vmap(lambda k: train.init_state(model, tx, x_train[0, :1], k))(keys)
    epoch_fn = make_epoch(model, tx, method=method, config=config, classification_loss=classification_loss)
    evaluate = make_evaluate(model)
    x_dev, y_dev, xv_dev, yv_dev = map(jnp.asarray, (x_train, y_train, x_val, y_val))

    best = jax.tree.map(jnp.copy, {"params": states.params, "batch_stats": states.batch_stats})  # states are donated
    best_acc, best_loss = np.full(g, -1.0), np.full(g, np.inf)
    best_epoch = np.full(g, -1)
    trained = np.zeros(g, int)
    active = np.ones(g, bool)
    bar = tqdm(range(epochs), desc=desc or method, disable=not progress, leave=False)
    for epoch in bar:
        order = np.stack([epoch_order(n, int(s), epoch)[:steps * batch_size].reshape(steps, batch_size)
                          for s in seeds])
        states, _ = epoch_fn(states, jnp.asarray(active), x_dev, y_dev, jnp.asarray(order))
        trained += active
        acc, loss = map(np.asarray, evaluate(states.params, states.batch_stats, xv_dev, yv_dev))
        improved = active & loop.improves(acc, loss, best_acc, best_loss, selection)
        mask = jnp.asarray(improved)
        pick = lambda new, old: jnp.where(mask.reshape(-1, *[1] * (new.ndim - 1)), new, old)  # noqa: E731
        best = jax.tree.map(pick, {"params": states.params, "batch_stats": states.batch_stats}, best)
        best_acc, best_loss = np.where(improved, acc, best_acc), np.where(improved, loss, best_loss)
        best_epoch = np.where(improved, epoch, best_epoch)
        active &= (best_acc < stop_accuracy) & (epoch - best_epoch < patience)
        bar.set_postfix(val=f"{best_acc.mean():.3f}", running=int(active.sum()))
        if not active.any():
            break
    bar.close()
    return ManyResult(best["params"], best["batch_stats"], best_acc, trained, best_epoch)
