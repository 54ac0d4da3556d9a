"""Integrated Gradients and its quadratures: exact weights, hand cases, linear identities, convergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.saliency_cases import (RNG, TARGET, X, integrated_gradients, linear, mlp, weight_of_target)
from sgt.saliency.integrated import QUADRATURES, quadrature


# ---------------------------------------------------------------- quadrature


@pytest.mark.parametrize("method", QUADRATURES)
@pytest.mark.parametrize("steps", [2, 7, 50])
def test_quadrature_weights_sum_to_one_and_points_lie_in_unit_interval(method, steps):
    alphas, weights = quadrature(steps, method)
    assert alphas.shape == weights.shape == (steps,)
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-12)
    assert (alphas >= 0).all() and (alphas <= 1).all() and (weights > 0).all()


@pytest.mark.parametrize("method, alphas, weights", [
    ("gausslegendre", [0.5 - 0.5 / np.sqrt(3), 0.5 + 0.5 / np.sqrt(3)], [0.5, 0.5]),
    ("riemann_left", [0.0, 0.5], [0.5, 0.5]),
    ("riemann_right", [0.5, 1.0], [0.5, 0.5]),
    ("riemann_middle", [0.25, 0.75], [0.5, 0.5]),
    ("riemann_trapezoid", [0.0, 1.0], [0.5, 0.5]),
])
def test_quadrature_two_points_by_hand(method, alphas, weights):
    a, w = quadrature(2, method)
    np.testing.assert_allclose(a, alphas, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(w, weights, rtol=1e-12)


def test_gauss_legendre_is_exact_to_degree_2n_minus_1_and_trapezoid_to_degree_1():
    a, w = quadrature(3, "gausslegendre")
    np.testing.assert_allclose(w @ a ** 5, 1 / 6, rtol=1e-12)  # ∫₀¹ α⁵ dα
    assert abs(w @ a ** 6 - 1 / 7) > 1e-5  # degree 6 is beyond a 3-point rule
    a, w = quadrature(5, "riemann_trapezoid")  # α = 0, ¼, ½, ¾, 1 with weights ⅛, ¼, ¼, ¼, ⅛
    np.testing.assert_allclose(a, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(w, [0.125, 0.25, 0.25, 0.25, 0.125])


# ---------------------------------------------------------------- integrated gradients


def test_integrated_gradients_hand_computed_relu_case():
    # f(x) = relu(relu(x₁) − 1 − relu(x₂)) at x = (3, 1), baseline 0. On the path αx the inner value is
    # 3α − 1 − α = 2α − 1, positive for α > ½, where ∇f = (1, −1). So
    # IG₁ = 3·∫_{½}^{1} 1 dα = 1.5, IG₂ = 1·∫_{½}^{1} −1 dα = −0.5; f(x) − f(0) = 1 = 1.5 − 0.5.
    f = lambda x: jax.nn.relu(jax.nn.relu(x[:, :1]) - 1 - jax.nn.relu(x[:, 1:]))
    x, t = jnp.array([[3.0, 1.0]]), jnp.array([0])
    # Gauss–Legendre nodes are symmetric about ½ (none on it for even n): exactly half the weight is past the kink.
    ig, delta = integrated_gradients(f, steps=50, return_delta=True)(x, t)
    np.testing.assert_allclose(ig, [[1.5, -0.5]], atol=1e-5)
    np.testing.assert_allclose(delta, [0.0], atol=1e-5)
    np.testing.assert_allclose(integrated_gradients(f, steps=10, method="riemann_right")(x, t), [[1.5, -0.5]],
                               atol=1e-5)
    # riemann_left with 10 steps: α = 0, .1, …, .9; only .6, .7, .8, .9 lie past ½ (∇f(½·x) = 0 at the kink),
    # so IG = (3·0.4, −1·0.4) and delta = 0.8 − 1.
    ig, delta = integrated_gradients(f, steps=10, method="riemann_left", return_delta=True)(x, t)
    np.testing.assert_allclose(ig, [[1.2, -0.4]], atol=1e-5)
    np.testing.assert_allclose(delta, [-0.2], atol=1e-5)


@pytest.mark.parametrize("method", QUADRATURES)
def test_integrated_gradients_of_linear_model_is_gradient_times_difference(method):
    x = jnp.asarray(X)
    per_sample = RNG.normal(size=X.shape).astype(np.float32)
    shared = RNG.normal(size=X.shape[1:]).astype(np.float32)
    w = weight_of_target(TARGET)
    for baseline, b in [(None, 0.0), (shared, shared[None]), (per_sample, per_sample), (0.5, 0.5)]:
        ig, delta = integrated_gradients(linear, baseline=baseline, steps=7, method=method,
                                         return_delta=True)(x, TARGET)
        np.testing.assert_allclose(ig, w * (X - b), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(delta, np.zeros(len(X)), atol=1e-5)


def test_integrated_gradients_delta_shrinks_with_steps_and_gauss_legendre_converges_faster():
    x = jnp.asarray(X) * 2

    def worst_delta(steps, method):
        _, delta = integrated_gradients(mlp, steps=steps, method=method, return_delta=True)(x, TARGET)
        return float(jnp.abs(delta).max())

    left_10, left_200 = worst_delta(10, "riemann_left"), worst_delta(200, "riemann_left")
    gl_10 = worst_delta(10, "gausslegendre")
    assert left_10 > 1e-2  # the test model is nonlinear enough to need the steps
    assert left_200 < left_10 / 10  # first-order rule: error ∝ 1/n
    assert gl_10 < left_200  # 10 Gauss–Legendre points beat 200 left-Riemann points
    assert worst_delta(200, "gausslegendre") < 1e-4


def test_integrated_gradients_delta_is_completeness_error():
    x = jnp.asarray(X)
    base = RNG.normal(size=X.shape).astype(np.float32)
    ig, delta = integrated_gradients(mlp, baseline=base, steps=5, method="riemann_middle",
                                     return_delta=True)(x, TARGET)
    gain = np.take_along_axis(np.asarray(mlp(x) - mlp(jnp.asarray(base))), np.asarray(TARGET)[:, None], 1)[:, 0]
    np.testing.assert_allclose(delta, np.asarray(ig).reshape(len(X), -1).sum(1) - gain, rtol=1e-5, atol=1e-5)
    assert np.abs(delta).max() > 1e-4  # 5 midpoint steps are not exact here, so delta is informative
