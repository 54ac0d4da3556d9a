"""GradientSHAP: exact on linear models, convergence to IG, uniform baseline draws, noisy multiplier."""

import jax.numpy as jnp
import numpy as np

from sgt.saliency import gradient_shap as eager_gradient_shap, integrated_gradients as eager_ig
from tests.saliency_cases import (KEY, RNG, TARGET, W_LIN, X, gradient_shap,
                                  jit, linear, mlp, weight_of_target)


# ---------------------------------------------------------------- GradientSHAP


def test_gradient_shap_of_linear_model_is_exact_for_any_alpha():
    x = jnp.asarray(X)
    b = RNG.normal(size=(1, 2, 3)).astype(np.float32)
    attr = gradient_shap(linear, baselines=b, samples=3)(x, TARGET, key=KEY)
    np.testing.assert_allclose(attr, weight_of_target(TARGET) * (X - b), rtol=1e-5, atol=1e-6)


def test_gradient_shap_converges_to_integrated_gradients_with_one_baseline():
    b = RNG.normal(size=(1, 2, 3)).astype(np.float32) * 0.5
    ig, gs, few = jit(lambda x: (
        eager_ig(mlp, baseline=b[0], steps=64)(x, TARGET),
        eager_gradient_shap(mlp, baselines=b, samples=4000, batch_size=1000)(x, TARGET, key=KEY),
        eager_gradient_shap(mlp, baselines=b, samples=2)(x, TARGET, key=KEY)))(jnp.asarray(X))
    scale_ = np.abs(ig).max()
    np.testing.assert_allclose(gs, ig, atol=0.03 * scale_)
    assert np.abs(few - ig).max() > 0.03 * scale_  # the tolerance is tight enough to tell


def test_gradient_shap_draws_baselines_uniformly_from_the_pool():
    # linear model, sigma 0, one draw per example: each example's map is w·(x − b_j) for one pool member j.
    x = jnp.zeros((400, 2, 3))
    t = jnp.zeros(400, jnp.int32)
    pool = np.stack([np.ones((2, 3)), -np.ones((2, 3))]).astype(np.float32)
    attr = np.asarray(gradient_shap(linear, baselines=pool, samples=1)(x, t, key=KEY))
    w = W_LIN[:, 0].reshape(2, 3)
    used_first = np.isclose(attr, -w, atol=1e-6).all((1, 2))
    used_second = np.isclose(attr, w, atol=1e-6).all((1, 2))
    assert (used_first | used_second).all()
    assert 0.4 < used_first.mean() < 0.6


def test_gradient_shap_multiplier_uses_the_noisy_input():
    # Captum's definition: a = (x̃ − b)·∇f with x̃ = x + ε. On a linear model one draw gives w·(x + ε − b),
    # so (a / w) − (x − b) recovers the noise, whose standard deviation is the absolute sigma.
    d = 2000
    v = RNG.uniform(0.5, 1.5, size=d).astype(np.float32) * RNG.choice([-1, 1], size=d)
    f = lambda x: (x @ v)[:, None]
    x = RNG.normal(size=(1, d)).astype(np.float32)
    b = RNG.normal(size=(1, d)).astype(np.float32)
    attr = gradient_shap(f, baselines=b, samples=1, sigma=0.3)(jnp.asarray(x), jnp.array([0]), key=KEY)
    noise = np.asarray(attr)[0] / v - (x - b)[0]
    assert abs(noise.std() - 0.3) < 0.03 and abs(noise.mean()) < 0.03
