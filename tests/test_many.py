"""`sgt.many.fit_many`: a vmapped group of models trains each member exactly as it would train alone."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sgt import many, train
from tests.models import MLP


def _data(seed, n=40, n_val=20):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + n_val, 6, 2)).astype(np.float32)
    y = (x[:, :3].sum((1, 2)) > 0).astype(np.int32)
    return x[:n], y[:n], x[n:], y[n:]


def _fit(seeds, sets, method="sgt", **kw):
    stack = lambda i: np.stack([s[i] for s in sets])  # noqa: E731
    options = dict(epochs=3, batch_size=8, patience=5, progress=False) | kw
    return many.fit_many(MLP(classes=2, dropout=0.2), optax.adam(1e-2), method=method,
                         config=train.SGTConfig(k=0.25), x_train=stack(0), y_train=stack(1), x_val=stack(2),
                         y_val=stack(3), seeds=seeds, **options)


def _close(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("method", ["standard", "sgt"])
def test_a_group_member_equals_the_model_trained_alone(method):
    sets = [_data(0), _data(1), _data(2)]
    group = _fit([10, 11, 12], sets, method)
    for g in range(3):
        alone = _fit([10 + g], [sets[g]], method)
        _close(group.member(g), alone.member(0))
        assert group.val_accuracy[g] == alone.val_accuracy[0]
        assert group.epochs[g] == alone.epochs[0]


@pytest.mark.parametrize("rule", ["accuracy_then_loss", "first_best_accuracy"])
def test_fit_many_matches_a_plain_loop_of_train_steps(rule):
    """One model, 4 epochs, no early stop: the same states as the step applied batch by batch, and the
    epoch selected by `rule` written out by hand."""
    x, y, xv, yv = _data(3)
    seed, batch, epochs = 5, 8, 4
    result = _fit([seed], [(x, y, xv, yv)], "standard", epochs=epochs, batch_size=batch, stop_accuracy=2.0,
                  selection=rule)
    model, tx = MLP(classes=2, dropout=0.2), optax.adam(1e-2)
    state = train.init_state(model, tx, x[:1], jax.random.PRNGKey(seed))
    step = jax.jit(train.train_step(model, tx, method="standard"))
    evaluate = many.make_evaluate(model)
    best, best_epoch, best_acc, best_loss = None, -1, -1.0, np.inf
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        for s in range(len(x) // batch):
            idx = order[s * batch:(s + 1) * batch]
            state, _ = step(state, jnp.asarray(x[idx]), jnp.asarray(y[idx]))
        acc, loss = (float(v[0]) for v in evaluate(jax.tree.map(lambda a: a[None], state.params), {},
                                                     xv[None], yv[None]))
        better = acc > best_acc or (rule == "accuracy_then_loss" and acc == best_acc and loss < best_loss)
        if better:
            best, best_epoch, best_acc, best_loss = state.params, epoch, acc, loss
    _close(result.member(0)[0], best)
    assert int(result.best_epoch[0]) == best_epoch
    assert result.val_accuracy[0] == pytest.approx(best_acc)


def test_a_stopped_model_is_frozen_while_the_others_train():
    """stop_accuracy 0 stops every model after its first epoch: the selected state is epoch 1's."""
    sets = [_data(0), _data(1)]
    stopped = _fit([1, 2], sets, epochs=4, stop_accuracy=0.0)
    one_epoch = _fit([1, 2], sets, epochs=1)
    assert list(stopped.epochs) == [1, 1] and list(stopped.best_epoch) == [0, 0]
    _close(stopped.params, one_epoch.params)


def test_patience_stops_each_model_on_its_own():
    sets = [_data(0), _data(1)]
    result = _fit([1, 2], sets, epochs=6, patience=1, stop_accuracy=2.0)
    # each model trains until one epoch passes without a validation gain (0-based best epoch b: it
    # stops after epoch b + 1, having trained b + 2 epochs), or until the cap
    np.testing.assert_array_equal(result.epochs, np.minimum(6, result.best_epoch + 2))
    assert (result.epochs < 6).any()  # patience did stop a model here


def test_bad_stacks_are_rejected():
    x, y, xv, yv = _data(0)
    with pytest.raises(ValueError, match="x_train: expected a leading axis of 2 models"):
        many.fit_many(MLP(), optax.adam(1e-3), method="standard", x_train=x[None], y_train=y[None],
                      x_val=xv[None], y_val=yv[None], seeds=[0, 1], epochs=1, batch_size=8, patience=1)
    with pytest.raises(ValueError, match="batch_size: expected 1..40"):
        _fit([0], [(x, y, xv, yv)], batch_size=64)
