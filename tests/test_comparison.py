"""`sgt.experiments.compare` (what `sgt train` runs): its compute-dtype option; `comparison.optimizer`
(SGD momentum, coupled weight decay) and the learning-rate schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sgt import models
from sgt.experiments import comparison


def test_bfloat16_compute_is_recorded_and_used(monkeypatch):
    built = []
    real_get = models.get
    monkeypatch.setattr(models, "get", lambda name, **kw: built.append(kw) or real_get(name, **kw))
    report = comparison.compare("middle", methods=["standard"], epochs=1, dtype="bfloat16", progress=False)
    assert report["dtype"] == "bfloat16" and built[0]["dtype"] == jnp.bfloat16
    assert 0.0 <= report["results"]["standard"]["test_accuracy"] <= 1.0


def test_unknown_dtype_is_rejected():
    with pytest.raises(ValueError, match="dtype: expected one of"):
        comparison.compare("middle", dtype="float16")


# --- the optimizer: SGD with momentum and coupled weight decay, the step schedule -------------------

def _params():
    return {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.3])}


def test_sgd_momentum_weight_decay_two_updates_equal_the_hand_formula():
    lr, mu, wd = 0.1, 0.9, 1e-2
    tx = comparison.optimizer("sgd", lr, "constant", 10, momentum=mu, weight_decay=wd)
    params = _params()
    grads = [{"w": jnp.array([0.2, 0.1, -0.4]), "b": jnp.array([1.0])},
             {"w": jnp.array([-0.3, 0.0, 0.1]), "b": jnp.array([-0.5])}]
    state = tx.init(params)
    by_hand = {k: np.asarray(v, np.float64) for k, v in params.items()}
    buf = None
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        # PyTorch SGD: d = g + wd·p; b = d (first step) else μ·b + d; p ← p − lr·b
        d = {k: np.asarray(g[k], np.float64) + wd * by_hand[k] for k in by_hand}
        buf = d if buf is None else {k: mu * buf[k] + d[k] for k in d}
        by_hand = {k: by_hand[k] - lr * buf[k] for k in by_hand}
    for k in by_hand:
        np.testing.assert_allclose(params[k], by_hand[k], rtol=1e-6)


def test_optimizer_defaults_are_the_plain_optax_optimizers():
    params, grads = _params(), {"w": jnp.array([0.2, 0.1, -0.4]), "b": jnp.array([1.0])}
    for name in ("sgd", "adam"):
        ours = comparison.optimizer(name, 0.1, "constant", 10)
        theirs = comparison.OPTIMIZERS[name](0.1)
        a, _ = ours.update(grads, ours.init(params), params)
        b, _ = theirs.update(grads, theirs.init(params), params)
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_array_equal(u, v)


def test_step_schedule_multiplies_by_a_tenth_at_the_milestones():
    rate = comparison.learning_rate(0.1, "step", 200)  # milestones 0.5, 0.75: steps 100 and 150
    assert [float(rate(t)) for t in (0, 99, 100, 149, 150, 199)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    cosine = comparison.learning_rate(0.1, "cosine", 200)
    assert float(cosine(100)) == pytest.approx(0.05) and comparison.learning_rate(0.1, "constant", 200) == 0.1


@pytest.mark.parametrize("kwargs, message", [
    (dict(momentum=0.9, name="adam"), "momentum: only the 'sgd'"),
    (dict(momentum=1.0), "momentum: expected a number in"),
    (dict(weight_decay=-1e-4), "weight_decay: expected"),
    (dict(schedule="step", total_steps=0), "total_steps: expected an int"),
    (dict(schedule="step", milestones=(0.75, 0.5)), "milestones: expected increasing"),
])
def test_bad_optimizer_options_are_rejected(kwargs, message):
    options = dict(name="sgd", lr=0.1, schedule="constant", total_steps=10) | kwargs
    with pytest.raises(ValueError, match=message):
        comparison.optimizer(options.pop("name"), options.pop("lr"), options.pop("schedule"),
                             options.pop("total_steps"), **options)
