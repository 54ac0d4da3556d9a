"""Every kind of model goes through the same train step: Linen with and without `train`, NNX, and a
pure apply function. Each SGT step equals a hand-written reference on the same parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn
from flax import nnx

from sgt import adapters, loop, losses, train
from sgt.data.base import Dataset

X = np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, size=16).astype(np.int32)
CONFIG = train.SGTConfig(k=0.5, lam=0.7)


class LinenWithTrain(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(3, name="out")(jnp.tanh(nn.Dense(8, name="hidden")(x)))


class LinenPlain(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3, name="out")(jnp.tanh(nn.Dense(8, name="hidden")(x)))


class NNXPlain(nnx.Module):
    def __init__(self, rngs):
        self.hidden, self.out = nnx.Linear(6, 8, rngs=rngs), nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def pure_apply(variables, x, *, train, rngs):
    p = variables["params"]
    return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"], {}


def pure_variables():
    rng = np.random.default_rng(2)
    return {"params": {"w1": rng.normal(size=(6, 8)).astype(np.float32) / 3, "b1": np.zeros(8, np.float32),
                       "w2": rng.normal(size=(8, 3)).astype(np.float32) / 3, "b2": np.zeros(3, np.float32)}}


def weights(kind, params):
    """(W1, b1, W2, b2) of each kind's two-layer net."""
    if kind.startswith("linen") or kind == "nnx":
        return params["hidden"]["kernel"], params["hidden"]["bias"], params["out"]["kernel"], params["out"]["bias"]
    return params["w1"], params["b1"], params["w2"], params["b2"]


KINDS = {
    "linen_train": lambda: LinenWithTrain(),
    "linen_plain": lambda: LinenPlain(),
    "nnx": lambda: NNXPlain(nnx.Rngs(0)),
    "apply": lambda: adapters.from_apply(pure_apply, pure_variables()),
}


def reference_loss(kind, params, state, x, y, key):
    """The SGT objective written out: saliency of the true logit, the 50 % lowest |saliency| cells
    filled uniformly in each sample's range, CE + λ KL, on the two-layer net by hand."""
    w1, b1, w2, b2 = weights(kind, params)
    net = lambda p, x: jnp.tanh(x @ p[0] + p[1]) @ p[2] + p[3]  # noqa: E731
    frozen = jax.lax.stop_gradient((w1, b1, w2, b2))
    saliency = jax.grad(lambda x: jnp.take_along_axis(net(frozen, x), y[:, None], 1).sum())(x)
    k_fill, _, _ = jax.random.split(key, 3)
    from sgt import masking

    x_masked = masking.mask_lowest(x, saliency, CONFIG.k, key=k_fill)
    clean, masked = net((w1, b1, w2, b2), x), net((w1, b1, w2, b2), x_masked)
    return losses.cross_entropy(clean, y) + CONFIG.lam * losses.kl_divergence(clean, masked)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("saliency_pass, low_memory", [("inference", False), ("shared", False), ("inference", True)])
def test_sgt_step_equals_a_hand_written_reference(kind, saliency_pass, low_memory):
    model, tx = KINDS[kind](), optax.sgd(0.1)
    config = train.SGTConfig(k=CONFIG.k, lam=CONFIG.lam, saliency_pass=saliency_pass, low_memory=low_memory)
    state = train.init_state(model, tx, X, jax.random.PRNGKey(0))
    key = jax.random.fold_in(state.key, state.step)
    loss_fn = train.sgt_loss_fn(adapters.adapt(model), config)
    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, state, jnp.asarray(X),
                                                                  jnp.asarray(Y), key)
    ref_loss, ref_grads = jax.value_and_grad(lambda p: reference_loss(kind, p, {}, jnp.asarray(X),
                                                                         jnp.asarray(Y), key))(state.params)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # and through the jitted, sharded step (which donates the state): the update is SGD on those gradients
    before = jax.device_get(state.params)
    new, metrics = train.make_train_step(model, tx, method="sgt", config=config)(
        train.replicate(state, train.make_mesh()), X, Y)
    np.testing.assert_allclose(metrics["loss"], ref_loss, rtol=1e-5)
    for p, g, q in zip(jax.tree.leaves(before), jax.tree.leaves(ref_grads), jax.tree.leaves(new.params)):
        np.testing.assert_allclose(q, p - 0.1 * g, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", list(KINDS))
def test_one_device_equals_eight_devices(kind):
    if jax.device_count() < 8:
        pytest.skip("needs 8 devices")
    model, tx = KINDS[kind](), optax.adam(1e-2)
    results = []
    for mesh in (train.make_mesh(jax.devices()[:1]), train.make_mesh(jax.devices()[:8])):
        state = train.create_train_state(model, tx, X, 0, mesh)
        step = train.make_train_step(model, tx, method="sgt", config=CONFIG, mesh=mesh)
        for _ in range(3):
            state, _ = step(state, X, Y)
        results.append(jax.device_get(state.params))
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class NNXNet(nnx.Module):
    """BatchNorm and dropout: the parts whose behaviour depends on the mode."""

    def __init__(self, rngs):
        self.hidden = nnx.Linear(6, 8, rngs=rngs)
        self.norm = nnx.BatchNorm(8, momentum=0.9, rngs=rngs)
        self.drop = nnx.Dropout(0.3, rngs=rngs)
        self.out = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(self.drop(jnp.tanh(self.norm(self.hidden(x)))))


def toy_dataset():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 240).astype(np.int32)
    x = rng.normal(size=(240, 6)).astype(np.float32)
    x[:, :3] += np.eye(3, dtype=np.float32)[y] * 2
    return Dataset("toy", x[:200], y[:200], x[200:], y[200:], num_classes=3)


def test_nnx_with_batchnorm_and_dropout_resumes_bit_identically(tmp_path):
    fit = dict(epochs=3, batch_size=16, checkpoint_every=5, progress=False, tx=optax.adam(1e-2))
    ds = toy_dataset()
    full = loop.fit(NNXNet(nnx.Rngs(0, dropout=1)), ds, out_dir=tmp_path / "full", **fit)

    class Crash(Exception):
        pass

    def crash(step, _):
        if step == 17:
            raise Crash

    with pytest.raises(Crash):
        loop.fit(NNXNet(nnx.Rngs(0, dropout=1)), ds, out_dir=tmp_path / "resumed", on_step=crash, **fit)
    resumed = loop.fit(NNXNet(nnx.Rngs(0, dropout=1)), ds, out_dir=tmp_path / "resumed", resume=True, **fit)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)
    assert full.test == resumed.test and full.test["accuracy"] > 0.5
    # the running statistics moved, and the trained module comes back as an NNX module
    assert np.abs(np.asarray(full.state.batch_stats["norm"]["mean"])).max() > 0.01
    module = adapters.merge(NNXNet(nnx.Rngs(0)), full.best["params"], full.best["batch_stats"])
    assert isinstance(module, NNXNet)
    module.eval()
    np.testing.assert_allclose(module(ds.x_test), full.classifier(NNXNet(nnx.Rngs(0)))(ds.x_test), rtol=1e-6)


class LinenNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(nn.Dense(8)(x))
        return nn.Dense(3)(nn.Dropout(0.3, deterministic=not train)(jnp.tanh(h)))


def _apply_net(variables, x, *, train, rngs):
    """A pure function with BatchNorm (batch statistics in training, running ones in inference) and dropout."""
    p, s = variables["params"], variables["stats"]
    h = x @ p["w1"]
    if train:
        mean, var = h.mean(0), h.var(0)
        new = {"mean": 0.9 * s["mean"] + 0.1 * mean, "var": 0.9 * s["var"] + 0.1 * var}
    else:
        mean, var, new = s["mean"], s["var"], s
    h = jnp.tanh((h - mean) / jnp.sqrt(var + 1e-5))
    if train:
        h = h * jax.random.bernoulli(rngs["dropout"], 0.7, h.shape) / 0.7
    return h @ p["w2"], {"stats": new}


def _apply_kind():
    rng = np.random.default_rng(4)
    return adapters.from_apply(_apply_net, {
        "params": {"w1": rng.normal(size=(6, 8)).astype(np.float32), "w2": rng.normal(size=(8, 3)).astype(np.float32)},
        "stats": {"mean": np.zeros(8, np.float32), "var": np.ones(8, np.float32)}})


@pytest.mark.parametrize("kind", ["linen", "nnx", "apply"])
def test_the_inference_pass_uses_running_statistics_and_no_dropout(kind):
    model = {"linen": LinenNet, "nnx": lambda: NNXNet(nnx.Rngs(0, dropout=1)), "apply": _apply_kind}[kind]()
    tx = optax.sgd(0.1)
    state = train.init_state(model, tx, X, jax.random.PRNGKey(0))
    adapter = adapters.adapt(model)
    # some non-trivial running statistics
    _, state_after = adapter.apply(state.params, state.batch_stats, jnp.asarray(X) * 3 + 1, train=True,
                                   key=jax.random.PRNGKey(5))
    f = train.classifier(model, state.params, state_after)
    out = f(jnp.asarray(X))
    np.testing.assert_array_equal(out, f(jnp.asarray(X)))  # no dropout: deterministic
    # a different batch around the sample does not change its logits (running, not batch, statistics)
    np.testing.assert_allclose(f(jnp.asarray(X[:4]))[0], out[0], rtol=1e-5, atol=1e-6)
    train_out, _ = adapter.apply(state.params, state_after, jnp.asarray(X), train=True, key=jax.random.PRNGKey(6))
    assert np.abs(np.asarray(train_out) - np.asarray(out)).max() > 1e-3  # training mode differs
    # and the SGT step's saliency pass sees exactly that inference classifier
    loss_fn = train.sgt_loss_fn(adapter, CONFIG)
    st = state.replace(batch_stats=state_after)
    loss, _ = loss_fn(st.params, st, jnp.asarray(X), jnp.asarray(Y), jax.random.PRNGKey(7))
    assert np.isfinite(loss)


def test_unsupported_models_get_a_clear_error():
    with pytest.raises(ValueError, match="model: expected a flax.linen.Module, a flax.nnx.Module"):
        adapters.adapt(lambda x: x)
    with pytest.raises(ValueError, match="variables: expected a dict with a 'params' entry"):
        adapters.from_apply(pure_apply, {"w": 1})


def params_for(kind, w1, b1, w2, b2):
    """One set of weights in each kind's parameter layout."""
    if kind == "apply":
        return {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
    return {"hidden": {"kernel": w1, "bias": b1}, "out": {"kernel": w2, "bias": b2}}


@pytest.mark.parametrize("fill, rank_by", [("mean", "signed"), ("constant", "magnitude")])
def test_fills_and_rankings_reach_every_kind_alike(fill, rank_by):
    """The same weights give the same SGT loss through each kind's adapter, whatever the fill and ranking."""
    config = train.SGTConfig(k=0.5, lam=0.7, fill=fill, rank_by=rank_by, fill_value=0.25)
    rng = np.random.default_rng(5)
    w = [jnp.asarray(rng.normal(size=shape).astype(np.float32) / 2) for shape in ((6, 8), (8,), (8, 3), (3,))]
    values = []
    for kind, make in KINDS.items():
        model = make()
        state = train.init_state(model, optax.sgd(0.1), X, jax.random.PRNGKey(0))
        params = params_for(kind, *w)
        loss, _ = train.sgt_loss_fn(adapters.adapt(model), config)(
            params, state.replace(params=params), jnp.asarray(X), jnp.asarray(Y), jax.random.PRNGKey(3))
        values.append(float(loss))
    np.testing.assert_allclose(values, values[0], rtol=1e-6)
