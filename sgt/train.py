"""Train state and the fused, jitted, data-parallel train steps (ordinary and saliency-guided).

The step is written for the global batch and compiled with `sgt.xla.jit` (`jax.jit` with the
backend's compile options) over a 1-D device mesh (axis "data"): the batch is split along the
mesh, parameters and optimizer state are replicated, and XLA inserts the cross-device reductions
(gradient means, BatchNorm batch statistics).
Random numbers are drawn for the global batch, so 1 device and 8 devices give the same run.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sgt import adapters, distributed, losses, masking, text, xla
from sgt._checks import check_finite
from sgt.saliency.gradient import target_score

DATA_AXIS = "data"
TARGETS = ("label", "predicted")
SALIENCY_PASSES = ("inference", "shared")
METRICS = ("loss", "ce", "kl", "accuracy")  # what every step reports


@dataclasses.dataclass(frozen=True)
class SGTConfig:
    """Options of saliency guided training (paper §3); docs/conventions.md gives each default's source.

    k: units masked per sample, a fraction in (0, 1) or a count. lam: KL weight λ ≥ 0.
    rank_by: "magnitude" (paper text) or "signed" (authors' code). fill: "uniform" in the sample's
    own [min, max], "mean" or "constant" (`fill_value`). target: saliency of the true "label" or the
    "predicted" class. saliency_pass: "inference" (separate eval-mode pass, as the authors) or
    "shared" (input gradient through the clean training forward; exact without dropout/BatchNorm).
    selection: how the k lowest units are found (`sgt.masking.SELECTIONS`); None = the backend's
    default (`sgt.masking.default_selection()`: "radix" on CPU, "top_k" on GPU/TPU); all give the
    same mask (except "approx_min_k" on TPU, which is approximate).
    low_memory: keep no activations of the clean and masked training forwards for the backward
    pass. The two branches meet only at the logits, so the backward recomputes the clean branch
    and takes its parameter gradient, then (made to depend on that gradient) the masked branch,
    so that the activations of only one branch are alive at a time, for the price of two more
    training forwards per step (one more with saliency_pass="shared"). Same loss, gradients and
    BatchNorm statistics. XLA's CPU `memory_analysis()` at batch 128: the ResNet-20 step's peak is
    1.02x the ordinary step's (default SGT 1.97x), the MNIST CNN's 1.09x (1.59x);
    benchmarks/README.md has the times.
    pad_id, sep_id: for token-id inputs only (`sgt.text`): the padding id, never ranked or masked,
    and the separator of pair texts `query, SEP, document` (None: single texts), after which the
    tokens are ranked. For token ids saliency is taken at the embedding output and each masked
    token is replaced by the nearest preceding kept token (`fill` and `selection` do not apply).
    """

    k: float | int = 0.5
    lam: float = 1.0
    rank_by: str = "magnitude"
    fill: str = "uniform"
    fill_value: float = 0.0
    target: str = "label"
    saliency_pass: str = "inference"
    selection: str | None = None
    low_memory: bool = False
    pad_id: int = 0
    sep_id: int | None = None

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, (int, float)):
            raise ValueError(f"k: expected an int or a float fraction, got {self.k!r}")
        if isinstance(self.k, float) and not 0.0 < self.k < 1.0:
            raise ValueError(f"k: a fraction must lie in (0, 1), got {self.k}")
        if isinstance(self.k, int) and self.k < 1:
            raise ValueError(f"k: a count must be >= 1, got {self.k}")
        if not np.isfinite(self.lam) or self.lam < 0:
            raise ValueError(f"lam: the KL weight must be a finite number >= 0, got {self.lam}")
        for name, allowed in (("rank_by", masking.RANKINGS), ("fill", masking.FILLS),
                              ("target", TARGETS), ("saliency_pass", SALIENCY_PASSES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        if self.selection is not None and self.selection not in masking.SELECTIONS:
            raise ValueError(f"selection: expected None or one of {masking.SELECTIONS}, got {self.selection!r}")
        if not isinstance(self.low_memory, bool):
            raise ValueError(f"low_memory: expected a bool, got {self.low_memory!r}")
        for name in ("pad_id", "sep_id"):
            value = getattr(self, name)
            if not (value is None and name == "sep_id") and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name}: expected an int token id, got {value!r}")
        if self.sep_id is not None and self.sep_id == self.pad_id:
            raise ValueError(f"sep_id: must differ from pad_id ({self.pad_id})")


@flax.struct.dataclass
class TrainState:
    """Everything a step changes; a plain pytree, so Orbax can save it."""

    step: jax.Array
    params: Any
    batch_stats: Any  # {} for models without BatchNorm
    opt_state: Any
    key: jax.Array  # base key: step s uses fold_in(key, s)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, example_x, seed: int,
                       mesh: Mesh | None = None) -> TrainState:
    """Parameters initialised from `seed` on one example, replicated over `mesh` (default: all devices)."""
    return replicate(init_state(model, tx, example_x, jax.random.PRNGKey(seed)), mesh or make_mesh())


def init_state(model, tx: optax.GradientTransformation, example_x, key: jax.Array) -> TrainState:
    """A fresh train state from `key`, unplaced (`jax.vmap` it over keys to start many models).

    `model`: anything `sgt.adapters.adapt` accepts (Linen with or without `train`, NNX, a pure apply).
    """
    init_key, run_key = jax.random.split(key)
    params, state = adapters.adapt(model).init(init_key, jnp.asarray(example_x[:1]))
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=state,
        opt_state=tx.init(params),
        key=run_key,
    )


def replicate(tree, mesh: Mesh):
    """Place every leaf of `tree` on all devices of `mesh` (the layout the steps expect)."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def forward(model, params, batch_stats, x, *, train: bool, key=None):
    """Logits and the (possibly updated) model state (BatchNorm statistics), through `sgt.adapters`."""
    return adapters.adapt(model).apply(params, batch_stats, x, train=train, key=key)


def classifier(model, params, batch_stats=None) -> Callable[[jax.Array], jax.Array]:
    """The inference-mode classifier f(x) -> logits, parameters closed over."""
    adapter = adapters.adapt(model)
    return lambda x: adapter.apply(params, batch_stats or {}, x, train=False)[0]


def _metrics(loss, ce, kl, logits, labels):
    return {"loss": loss, "ce": ce, "kl": kl, "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}


def standard_loss_fn(model, classification_loss: str = "logits"):
    """CE(f(x), y), with CE named by `classification_loss` (`sgt.losses.classification_loss`)."""
    cross_entropy = losses.classification_loss(classification_loss)

    def loss_fn(params, state, x, y, key):
        logits, batch_stats = forward(model, params, state.batch_stats, x, train=True, key=key)
        ce = cross_entropy(logits, y)
        return ce, (batch_stats, _metrics(ce, ce, jnp.zeros(()), logits, y))

    return loss_fn


def sgt_loss_fn(model, config: SGTConfig, classification_loss: str = "logits"):
    """CE(f(x), y) + λ KL(f(x) ‖ f(x̃)), with x̃ masked from this step's saliency.

    `classification_loss` names CE (`sgt.losses.classification_loss`); the KL term and the
    saliency target do not depend on it.
    """
    cross_entropy = losses.classification_loss(classification_loss)

    def saliency_target(logits, y):
        return y if config.target == "label" else jnp.argmax(logits, -1)

    both_branches = _low_memory_branches(model) if config.low_memory else None

    def loss_fn(params, state, x, y, key):
        k_fill, k_clean, k_masked = jax.random.split(key, 3)
        tokens = text.is_tokens(x)
        if config.saliency_pass == "inference":
            frozen = jax.lax.stop_gradient(params)
            if tokens:
                zeros = text.zero_perturbations(model, frozen, state.batch_stats, x)
                eval_logits, f_vjp = jax.vjp(
                    lambda p: text.apply_perturbed(model, frozen, state.batch_stats, x, p, train=False)[0], zeros)
            else:
                eval_logits, f_vjp = jax.vjp(classifier(model, frozen, state.batch_stats), x)
            target = saliency_target(eval_logits, y)
            saliency = f_vjp(jax.grad(target_score)(eval_logits, target))[0]
            if not config.low_memory:
                clean, batch_stats = forward(model, params, state.batch_stats, x, train=True, key=k_clean)
        else:
            # In low-memory mode this clean forward only serves the saliency (its parameter
            # gradient comes from `both_branches`, which recomputes it with the same key).
            weights = jax.lax.stop_gradient(params) if config.low_memory else params
            if tokens:
                def clean_forward(p):
                    return text.apply_perturbed(model, weights, state.batch_stats, x, p, train=True, key=k_clean)

                point = text.zero_perturbations(model, weights, state.batch_stats, x)
            else:
                def clean_forward(x):
                    return forward(model, weights, state.batch_stats, x, train=True, key=k_clean)

                point = x
            clean, f_vjp, batch_stats = jax.vjp(clean_forward, point, has_aux=True)
            target = saliency_target(clean, y)
            saliency = f_vjp(jax.grad(target_score)(jax.lax.stop_gradient(clean), target))[0]
        saliency = jax.lax.stop_gradient(jax.tree.leaves(saliency)[0])
        if tokens:
            x_masked = text.mask_tokens(x, saliency, config.k, rank_by=config.rank_by, pad_id=config.pad_id,
                                        sep_id=config.sep_id)
        else:
            x_masked = jax.lax.stop_gradient(masking.mask_lowest(
                x, saliency, config.k, key=k_fill, rank_by=config.rank_by, fill=config.fill,
                value=config.fill_value, selection=config.selection))
        if config.low_memory:
            clean, masked, batch_stats = both_branches(params, state.batch_stats, x, x_masked, k_clean, k_masked)
        else:
            masked, batch_stats = forward(model, params, batch_stats, x_masked, train=True, key=k_masked)
        ce = cross_entropy(clean, y)
        kl = losses.kl_divergence(clean, masked)
        loss = ce + config.lam * kl
        return loss, (batch_stats, _metrics(loss, ce, kl, clean, y))

    return loss_fn


def _low_memory_branches(model):
    """(params, batch_stats, x, x̃, key_clean, key_masked) -> (clean logits, masked logits, statistics)
    with a gradient for `params` that holds the activations of one branch at a time.

    The forward keeps no activations (only the inputs), and starts only once the mask is made, so
    that it never runs beside the saliency pass (the masked branch after the clean one; with
    XLA's CPU convolutions the overlap cost 0.36x the ordinary step's memory at batch 128). The
    backward recomputes the clean branch and takes its parameter gradient, then recomputes the
    masked branch and takes its gradient; the sum is the gradient of the loss through both
    branches. Each recomputation starts from parameters made to depend (`_after`) on what must
    come first: the clean one on its cotangent (so it is not run early, next to the forward pass),
    the masked one on the whole clean gradient (so the two are never alive together). In
    training mode a branch's logits do not depend on the BatchNorm running statistics it is
    given, so both recomputations may start from the incoming ones; the returned statistics are
    updated by the clean pass, then the masked pass.
    """

    def logits(params, batch_stats, x, key):
        return forward(model, params, batch_stats, x, train=True, key=key)[0]

    def run(params, batch_stats, x, x_masked, k_clean, k_masked):
        params = _after(params, x_masked)
        clean, stats = forward(model, params, batch_stats, x, train=True, key=k_clean)
        masked, stats = forward(model, _after(params, clean), stats, x_masked, train=True, key=k_masked)
        return clean, masked, stats

    @jax.custom_vjp
    def both(params, batch_stats, x, x_masked, k_clean, k_masked):
        return run(params, batch_stats, x, x_masked, k_clean, k_masked)

    def both_fwd(params, batch_stats, x, x_masked, k_clean, k_masked):
        return run(params, batch_stats, x, x_masked, k_clean, k_masked), (params, batch_stats, x, x_masked,
                                                                          k_clean, k_masked)

    def both_bwd(residuals, cotangents):
        params, batch_stats, x, x_masked, k_clean, k_masked = residuals
        g_clean, g_masked, _ = cotangents
        _, clean_vjp = jax.vjp(lambda p: logits(p, batch_stats, x, k_clean), _after(params, g_clean))
        (grads,) = clean_vjp(g_clean)
        _, masked_vjp = jax.vjp(lambda p: logits(p, batch_stats, x_masked, k_masked), _after(params, grads))
        grads = jax.tree.map(jnp.add, grads, masked_vjp(g_masked)[0])
        zero = lambda tree: jax.tree.map(_zero_cotangent, tree)  # noqa: E731
        return grads, zero(batch_stats), zero(x), zero(x_masked), zero(k_clean), zero(k_masked)

    both.defvjp(both_fwd, both_bwd)
    return both


def _after(tree, dependency):
    """`tree` unchanged in value (each float leaf + 0·Σ`dependency`), but computed only once all of
    `dependency` is: it orders a recomputation after the work that produces `dependency`, which
    XLA's CPU pipeline does not do for optimization barriers (it removes them before scheduling).
    A non-finite `dependency` (a gradient that is already NaN or infinite) makes the tree NaN."""
    zero = 0.0 * sum(jnp.sum(leaf) for leaf in jax.tree.leaves(dependency))
    return jax.tree.map(lambda v: v + zero.astype(v.dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v, tree)


def _zero_cotangent(v):
    if jnp.issubdtype(v.dtype, jnp.floating):
        return jnp.zeros_like(v)
    return np.zeros(v.shape, jax.dtypes.float0)


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: all), the batch split along axis "data"."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def check_batch(x, y, mesh: Mesh) -> None:
    n = mesh.devices.size
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"y: expected {x.shape[0]} labels for {x.shape[0]} inputs, got {y.shape[0]}")
    if x.shape[0] % n:
        raise ValueError(
            f"batch_size: {x.shape[0]} is not divisible by the {n} devices of the mesh; "
            f"use a multiple of {n}")


AUGMENT_STREAM = 0x617567  # fold_in constant ("aug") of the augmentation key; see `augment_key`


def augment_key(key: jax.Array, step) -> jax.Array:
    """The key with which step `step` of a run with base key `key` augments its batch:
    fold_in(fold_in(key, step), AUGMENT_STREAM).

    The step's own key, fold_in(key, step), is left as it is, so the loss (masking fill, dropout)
    draws the same numbers with or without augmentation: a step with `augment` equals the step
    without it applied to augment(augment_key(key, step), x).
    """
    return jax.random.fold_in(jax.random.fold_in(key, step), AUGMENT_STREAM)


def _check_augment(augment) -> None:
    if augment is not None and not callable(augment):
        raise ValueError(f"augment: expected None or a function augment(key, x) -> x, got {augment!r}")


def train_step(model: nn.Module, tx: optax.GradientTransformation, *, method: str = "sgt",
               config: SGTConfig | None = None, augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
               classification_loss: str = "logits"):
    """The pure, unjitted step `step(state, x, y) -> (state, metrics)`, to compose with
    `jax.jit`, `jax.vmap` (many models at once) or `jax.lax.scan`.

    `classification_loss`: the CE term of either method, "logits" (softmax cross-entropy) or
    "softmax-output" (cross-entropy on the softmax outputs, `sgt.losses.softmax_output_cross_entropy`);
    the metric "ce" reports it.

    `augment(key, x) -> x` (e.g. `sgt.data.augment.augment`), when given, replaces the global batch
    x by augment(augment_key(state.key, state.step), x) before anything else (labels untouched);
    it must keep x's shape and dtype. Without it the step is exactly the unaugmented one.
    """
    _check_augment(augment)
    model = adapters.adapt(model)  # once, so an NNX model is split once
    if method == "standard":
        loss_fn = standard_loss_fn(model, classification_loss)
    elif method == "sgt":
        loss_fn = sgt_loss_fn(model, config or SGTConfig(), classification_loss)
    else:
        raise ValueError(f"method: expected 'standard' or 'sgt', got {method!r}")

    def step(state: TrainState, x, y):
        key = jax.random.fold_in(state.key, state.step)
        if augment is not None:
            x = augment(augment_key(state.key, state.step), x)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, (batch_stats, metrics)), grads = grad_fn(state.params, state, x, y, key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state)
        return new_state, metrics

    return step


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, *, method: str = "sgt",
                    config: SGTConfig | None = None, mesh: Mesh | None = None,
                    augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
                    classification_loss: str = "logits"):
    """One jitted step `step(state, x, y) -> (state, metrics)` for `method` "standard" or "sgt"
    (`classification_loss`: see `train_step`).

    The augmentation (`augment`, see `train_step`), the saliency pass, both forward passes, the KL
    term and the optimizer update are fused in one XLA program; the batch is sharded over `mesh`
    (default: all devices). The augmentation draws for the global batch, so 1 device and 8 devices
    augment alike.
    """
    step = train_step(model, tx, method=method, config=config, augment=augment,
                      classification_loss=classification_loss)
    mesh = mesh or make_mesh()
    replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P(DATA_AXIS))
    jitted = xla.jit(step, in_shardings=(replicated, sharded, sharded), out_shardings=(replicated, replicated),
                     donate_argnums=0)

    def checked_step(state, x, y):
        check_batch(x, y, mesh)
        if isinstance(x, np.ndarray):  # host batches are cheap to check; device arrays are not pulled back
            check_finite("x", x)
        x, y = distributed.global_array(x, sharded), distributed.global_array(y, sharded)  # multi-process only
        return jitted(state, x, y)

    checked_step.jitted = jitted
    return checked_step


def make_eval_step(model: nn.Module, mesh: Mesh | None = None):
    """Jitted `eval_step(state, x, y, valid) -> (summed loss, correct count)` over a sharded batch."""
    mesh = mesh or make_mesh()
    model = adapters.adapt(model)
    replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P(DATA_AXIS))

    def eval_step(state, x, y, valid):
        logits = forward(model, state.params, state.batch_stats, x, train=False)[0]
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        return jnp.sum(ce * valid), jnp.sum((jnp.argmax(logits, -1) == y) * valid)

    return xla.jit(eval_step, in_shardings=(replicated, sharded, sharded, sharded), out_shardings=replicated)
