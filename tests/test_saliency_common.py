"""Properties every method must have (batched == per example, chunked == whole, keys, jit, devices)
and the argument checks, run over the methods together."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.saliency_cases import (KEY, RNG, TARGET, X, eager_gradient, gradient, gradient_shap,
                                  input_x_gradient, integrated_gradients, linear, mlp, occlusion, smoothgrad)
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sgt.saliency import input_x_gradient as eager_input_x_gradient
from sgt.saliency import integrated_gradients as eager_ig
from sgt.saliency import occlusion as eager_occlusion


# ---------------------------------------------------------------- shared properties

# Built once, so each jitted program is compiled once (per shape and sharding) for all the tests below.
# 11 path points / 4 windows / 7 draws in chunks of 3 leave a remainder chunk for every method.
POOL = RNG.normal(size=(3, 2, 3)).astype(np.float32)
DETERMINISTIC_METHODS = {
    "input_x_gradient": (input_x_gradient(mlp), None),
    "integrated_gradients": (integrated_gradients(mlp, steps=11), integrated_gradients(mlp, steps=11, batch_size=3)),
    "occlusion": (occlusion(mlp, window=(1, 2), stride=(1, 1)),
                  occlusion(mlp, window=(1, 2), stride=(1, 1), batch_size=3)),
}
RANDOM_METHODS = {
    "smoothgrad": (smoothgrad(eager_gradient(mlp), samples=6, sigma=0.3), None),
    "vargrad": (smoothgrad(eager_gradient(mlp), samples=7, sigma=0.3, kind="var"),
                smoothgrad(eager_gradient(mlp), samples=7, sigma=0.3, kind="var", batch_size=3)),
    "gradient_shap": (gradient_shap(mlp, baselines=POOL, samples=7),
                      gradient_shap(mlp, baselines=POOL, samples=7, batch_size=3)),
}


@pytest.mark.parametrize("name", [*DETERMINISTIC_METHODS, "ig_per_sample_baseline"])
def test_batched_equals_per_example(name):
    x = jnp.asarray(X)
    if name == "ig_per_sample_baseline":  # the per-sample baseline is split with the batch
        base = X[::-1].copy()
        make = lambda b: integrated_gradients(mlp, baseline=b, steps=5, method="riemann_trapezoid")
        batched = make(base)(x, TARGET)
        single = [make(base[i:i + 1])(x[i:i + 1], TARGET[i:i + 1]) for i in range(len(X))]
    else:
        attribute = DETERMINISTIC_METHODS[name][0]
        batched = attribute(x, TARGET)
        single = [attribute(x[i:i + 1], TARGET[i:i + 1]) for i in range(len(X))]
    np.testing.assert_allclose(batched, jnp.concatenate(single), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["integrated_gradients", "occlusion"])
def test_chunked_equals_unchunked(name):
    whole, chunked = DETERMINISTIC_METHODS[name]
    x = jnp.asarray(X)
    np.testing.assert_allclose(chunked(x, TARGET), whole(x, TARGET), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["vargrad", "gradient_shap"])  # a (count, mean, M2) merge and a sum
def test_random_methods_same_key_same_result_other_key_differs_chunks_agree(name):
    whole, chunked = RANDOM_METHODS[name]
    x = jnp.asarray(X)
    first = whole(x, TARGET, key=jax.random.key(1))
    np.testing.assert_array_equal(first, whole(x, TARGET, key=jax.random.key(1)))
    assert np.abs(first - whole(x, TARGET, key=jax.random.key(2))).max() > 1e-3
    np.testing.assert_allclose(chunked(x, TARGET, key=jax.random.key(1)), first, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(RANDOM_METHODS))
def test_random_methods_require_a_key(name):
    with pytest.raises(ValueError, match="key"):
        RANDOM_METHODS[name][0](jnp.asarray(X), TARGET)


@pytest.mark.parametrize("eager, name", [
    (lambda: eager_input_x_gradient(mlp), "input_x_gradient"),
    (lambda: eager_ig(mlp, steps=11), "integrated_gradients"),
    (lambda: eager_occlusion(mlp, window=(1, 2), stride=(1, 1)), "occlusion"),
])
def test_jit_matches_eager(eager, name):
    # (the random methods run under jit throughout this file; eager dispatch of their many small
    # random-number programs is too slow for the shared CI CPU)
    x = jnp.asarray(X)
    np.testing.assert_allclose(DETERMINISTIC_METHODS[name][0](x, TARGET), eager()(x, TARGET),
                               rtol=1e-5, atol=1e-6)


def test_vmap_over_keys_matches_a_loop():
    attribute = RANDOM_METHODS["smoothgrad"][0]
    x = jnp.asarray(X)
    keys = jax.random.split(KEY, 2)
    mapped = jax.vmap(lambda k: attribute(x, TARGET, key=k))(keys)
    for i in range(2):
        np.testing.assert_allclose(mapped[i], attribute(x, TARGET, key=keys[i]), rtol=1e-5, atol=1e-6)


def test_integrated_gradients_returns_delta_under_jit():
    ig, delta = integrated_gradients(linear, return_delta=True)(jnp.asarray(X), TARGET)
    assert ig.shape == X.shape and delta.shape == (len(X),)


@pytest.mark.parametrize("name", ["integrated_gradients", "smoothgrad"])
def test_one_device_equals_eight_devices(name):
    devices = jax.devices()
    if len(devices) < 8:
        pytest.skip("needs 8 devices")
    attribute = {**DETERMINISTIC_METHODS, **RANDOM_METHODS}[name][0]
    x = jnp.asarray(X)
    sharding = NamedSharding(Mesh(np.array(devices[:8]), ("data",)), PartitionSpec("data"))
    sharded = attribute(jax.device_put(x, sharding), jax.device_put(TARGET, sharding), key=KEY)
    np.testing.assert_allclose(sharded, attribute(x, TARGET, key=KEY), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize("make, message", [
    (lambda: integrated_gradients(mlp, steps=0), "steps"),
    (lambda: integrated_gradients(mlp, steps=1, method="riemann_trapezoid"), "steps"),
    (lambda: integrated_gradients(mlp, steps=2.5), "steps"),
    (lambda: integrated_gradients(mlp, method="simpson"), "method"),
    (lambda: integrated_gradients(mlp, batch_size=0), "batch_size"),
    (lambda: smoothgrad(eager_gradient(mlp), samples=0), "samples"),
    (lambda: smoothgrad(gradient(mlp), sigma=-0.1), "sigma"),
    (lambda: smoothgrad(gradient(mlp), kind="max"), "kind"),
    (lambda: smoothgrad("gradient"), "method"),
    (lambda: gradient_shap(mlp, baselines=np.zeros((0, 2, 3))), "baselines"),
    (lambda: gradient_shap(mlp, baselines=np.zeros((1, 2, 3)), samples=0), "samples"),
    (lambda: gradient_shap(mlp, baselines=np.zeros((1, 2, 3)), sigma=-1.0), "sigma"),
])
def test_factories_reject_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("attribute, message", [
    (integrated_gradients(mlp, baseline=np.zeros((3, 2))), "baseline"),
    (integrated_gradients(mlp, baseline=np.zeros((5, 2, 3))), "baseline"),
    (gradient_shap(mlp, baselines=np.zeros((2, 3, 2))), "baselines"),
    (integrated_gradients(mlp), "target"),
])
def test_attribute_rejects_mismatched_shapes(attribute, message):
    target = TARGET[:3] if message == "target" else TARGET
    with pytest.raises(ValueError, match=message):
        attribute(jnp.asarray(X), target, key=KEY)
