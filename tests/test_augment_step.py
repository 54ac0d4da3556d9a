"""Augmentation inside the jitted train step (`train.train_step(..., augment=)`, `loop.fit(..., augment=)`)."""

import functools

import jax
import numpy as np
import optax
import pytest

from sgt import data, loop, train
from sgt.data import augment as aug
from tests.models import MLP

X = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, size=16).astype(np.int32)
AUGMENT = functools.partial(aug.augment, padding=2, fill=-1.5)
CONFIG = train.SGTConfig(k=0.5, lam=1.0)  # uniform fill: the loss draws from the step's key too


def run(model, method="sgt", steps=2, seed=0, mesh=None, tx=None, **kw):
    tx = tx or optax.sgd(0.1)
    mesh = mesh or train.make_mesh()
    state = train.create_train_state(model, tx, X, seed, mesh)
    step = train.make_train_step(model, tx, method=method, config=CONFIG if method == "sgt" else None, mesh=mesh,
                                 **kw)
    history = []
    for _ in range(steps):
        state, metrics = step(state, X, Y)
        history.append(jax.device_get(metrics))
    return jax.device_get(state), history


def assert_trees_equal(a, b, **tol):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(u, v, **(tol or dict(rtol=0, atol=0)))


@pytest.mark.parametrize("method", ["standard", "sgt"])
def test_augmented_step_equals_the_plain_step_on_the_augmented_batch(method):
    model = MLP(dropout=0.3, batchnorm=True)
    tx = optax.sgd(0.1)
    mesh = train.make_mesh()
    config = CONFIG if method == "sgt" else None
    with_aug = train.make_train_step(model, tx, method=method, config=config, mesh=mesh, augment=AUGMENT)
    plain = train.make_train_step(model, tx, method=method, config=config, mesh=mesh)
    a = train.create_train_state(model, tx, X, 0, mesh)
    b = train.create_train_state(model, tx, X, 0, mesh)
    for _ in range(2):  # the second step checks that the step index enters the key
        x_aug = np.asarray(jax.jit(AUGMENT)(train.augment_key(b.key, b.step), X))
        assert not np.allclose(x_aug, X)
        a, ma = with_aug(a, X, Y)
        b, mb = plain(b, x_aug, Y)
        np.testing.assert_allclose(jax.device_get(ma["loss"]), jax.device_get(mb["loss"]), rtol=1e-6)
    assert_trees_equal(jax.device_get(a.params), jax.device_get(b.params), rtol=1e-6, atol=1e-7)
    assert_trees_equal(jax.device_get(a.batch_stats), jax.device_get(b.batch_stats), rtol=1e-6, atol=1e-7)


def test_augment_key_by_hand():
    key = jax.random.PRNGKey(5)
    expected = jax.random.fold_in(jax.random.fold_in(key, 3), train.AUGMENT_STREAM)
    np.testing.assert_array_equal(train.augment_key(key, 3), expected)
    assert not np.array_equal(train.augment_key(key, 3), jax.random.fold_in(key, 3))  # not the loss's key


def test_one_device_equals_eight_devices_with_augmentation():
    assert len(jax.devices()) == 8, "conftest sets 8 CPU devices"
    model = MLP(dropout=0.3, batchnorm=True)
    one, h1 = run(model, mesh=train.make_mesh(jax.devices()[:1]), tx=optax.adam(1e-2), augment=AUGMENT)
    eight, h8 = run(model, mesh=train.make_mesh(), tx=optax.adam(1e-2), augment=AUGMENT)
    assert_trees_equal(one.params, eight.params, rtol=1e-5, atol=1e-6)
    assert_trees_equal(one.batch_stats, eight.batch_stats, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h1[-1]["loss"], h8[-1]["loss"], rtol=1e-5)


def test_same_seed_same_result_other_seed_differs_with_augmentation():
    model = MLP()
    a, _ = run(model, seed=3, augment=AUGMENT)
    b, _ = run(model, seed=3, augment=AUGMENT)
    c, _ = run(model, seed=4, augment=AUGMENT)
    assert_trees_equal(a.params, b.params)
    assert not np.allclose(jax.tree.leaves(a.params)[0], jax.tree.leaves(c.params)[0])


def test_augment_none_is_bit_identical_to_a_step_without_the_argument():
    model = MLP(dropout=0.3)
    without, h0 = run(model)
    none, h1 = run(model, augment=None)
    assert_trees_equal(without.params, none.params)
    assert h0[-1]["loss"] == h1[-1]["loss"]
    augmented, _ = run(model, augment=AUGMENT)  # and the augmentation does change the run
    assert not np.allclose(jax.tree.leaves(augmented.params)[-1], jax.tree.leaves(without.params)[-1])


def test_fit_passes_augment_to_the_step_and_none_changes_nothing():
    rng = np.random.default_rng(2)
    ds = data.Dataset("tiny", rng.normal(size=(40, 8, 8, 3)).astype(np.float32), rng.integers(0, 3, 40).astype(np.int32),
                      rng.normal(size=(8, 8, 8, 3)).astype(np.float32), rng.integers(0, 3, 8).astype(np.int32),
                      num_classes=3)
    fit = functools.partial(loop.fit, MLP(), ds, method="standard", tx=optax.sgd(0.1), epochs=1, batch_size=8,
                            progress=False)
    plain, none, augmented = fit(), fit(augment=None), fit(augment=AUGMENT)
    assert_trees_equal(jax.device_get(plain.state.params), jax.device_get(none.state.params))
    assert not np.allclose(jax.tree.leaves(jax.device_get(plain.state.params))[-1],
                           jax.tree.leaves(jax.device_get(augmented.state.params))[-1])


def test_augment_that_is_not_callable_is_rejected():
    with pytest.raises(ValueError, match="augment: expected None or a function"):
        train.train_step(MLP(), optax.sgd(0.1), augment="flip")
