"""SmoothGrad, SmoothGrad² and VarGrad: exact cases, the σ convention, key handling."""

import jax.numpy as jnp
import numpy as np

from sgt.saliency import gradient_shap as eager_gradient_shap
from sgt.saliency import integrated_gradients as eager_ig
from sgt.saliency import smoothgrad as eager_smoothgrad
from tests.saliency_cases import (KEY, TARGET, X, eager_gradient, jit, linear, mlp, weight_of_target)


# ---------------------------------------------------------------- smoothing


def test_smoothgrad_with_zero_sigma_equals_the_wrapped_method():
    inner = eager_ig(mlp, steps=4)

    @jit
    def run(x):  # one program: the three kinds share their (identical) draws
        return inner(x, TARGET), *(eager_smoothgrad(inner, samples=6, sigma=0.0, kind=kind)(x, TARGET, key=KEY)
                                   for kind in ("mean", "square", "var"))

    plain, mean, square, var = run(jnp.asarray(X))
    np.testing.assert_allclose(mean, plain, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(square, plain * plain, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(var, 0, atol=1e-7)


def test_smoothgrad_square_and_vargrad_of_constant_gradient():
    @jit
    def run(x):
        maps = [eager_smoothgrad(eager_gradient(linear), samples=16, sigma=0.5, kind=kind, batch_size=bs)(
            x, TARGET, key=KEY) for kind, bs in [("mean", None), ("square", None), ("var", 5)]]
        # the noise does change a nonlinear model's map
        change = eager_smoothgrad(eager_gradient(mlp), samples=16, sigma=0.5)(x, TARGET, key=KEY) - \
            eager_gradient(mlp)(x, TARGET)
        return *maps, change

    mean, square, var, change = run(jnp.asarray(X))
    w = weight_of_target(TARGET)
    np.testing.assert_allclose(mean, w, rtol=1e-5)
    np.testing.assert_allclose(square, w * w, rtol=1e-5)
    np.testing.assert_allclose(var, 0, atol=1e-6)
    assert np.abs(change).max() > 1e-2


def test_smoothgrad_sigma_is_relative_to_each_inputs_range_or_absolute():
    # With the identity as the "method", the samples are the noisy inputs: VarGrad is the noise variance σ²
    # and SmoothGrad² is x² + σ². Sample 0 spans 2, sample 1 spans 10.
    identity = lambda x, target, *, key=None: x
    t = jnp.array([0, 0])

    @jit
    def run(x):
        draws = dict(samples=400, sigma=0.1, kind="var")
        rel = eager_smoothgrad(identity, **draws)(x, t, key=KEY)
        fixed = eager_smoothgrad(identity, **draws, relative=False)(x, t, key=KEY)
        small = x / jnp.array([[1.0], [10.0]])  # float32 would lose σ² in x² + σ² − x² for large x
        draws["kind"] = "square"
        square = eager_smoothgrad(identity, **draws, relative=False)(small, t, key=KEY) - small ** 2
        return rel.mean(1), fixed.mean(1), square.mean(1)

    rel, fixed, square = run(jnp.stack([jnp.linspace(-1, 1, 200), jnp.linspace(0, 10, 200)]))
    np.testing.assert_allclose(rel, [0.2 ** 2, 1.0 ** 2], rtol=0.05)
    np.testing.assert_allclose(fixed, [0.01, 0.01], rtol=0.05)
    np.testing.assert_allclose(square, [0.01, 0.01], rtol=0.05)


def test_smoothgrad_passes_distinct_keys_to_a_random_inner_method():
    inner = eager_gradient_shap(mlp, baselines=np.zeros((1, 2, 3), np.float32), samples=1)
    # 64 independent one-draw GradientSHAP estimates average to roughly IG; a key reused across the
    # draws would leave a single draw's (much noisier) estimate.
    outer, ig, one = jit(lambda x: (eager_smoothgrad(inner, samples=64, sigma=0.0)(x, TARGET, key=KEY),
                                        eager_ig(mlp)(x, TARGET),
                                        inner(x, TARGET, key=KEY)))(jnp.asarray(X))
    assert np.abs(outer - ig).mean() < 0.5 * np.abs(one - ig).mean()
