"""Input × gradient, Integrated Gradients, SmoothGrad/SmoothGrad²/VarGrad, GradientSHAP, occlusion and
the post-processing helpers: hand-computed cases, exact identities on linear models, convergence, and
the batching/key/chunking/jit properties every method must have."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sgt.saliency import basic, gradient as eager_gradient, integrated, shap, smoothing
from sgt.saliency.integrated import QUADRATURES, quadrature
from sgt.saliency.postprocess import absolute, reduce_channels, scale


# The tests' programs are tiny, so XLA's compile time dominates: compile without backend optimisation
# (about 3× faster to compile here; results agree to float rounding).
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def jitted(factory):
    """The method factory, with every attribute function it returns wrapped in `jit`.

    Eager JAX dispatches (and compiles) op by op, which makes the sampling methods slow on a shared
    CPU; jitting compiles each test's program once. `test_jit_matches_eager` checks eager mode.
    """
    return functools.wraps(factory)(lambda *args, **kwargs: jit(factory(*args, **kwargs)))


gradient = jitted(eager_gradient)
input_x_gradient = jitted(basic.input_x_gradient)
occlusion = jitted(basic.occlusion)
integrated_gradients = jitted(integrated.integrated_gradients)
smoothgrad = jitted(smoothing.smoothgrad)
gradient_shap = jitted(shap.gradient_shap)

RNG = np.random.default_rng(0)
W_LIN = RNG.normal(size=(6, 3)).astype(np.float32)
B_LIN = RNG.normal(size=3).astype(np.float32)
W1 = RNG.normal(size=(6, 8)).astype(np.float32) / 2
W2 = RNG.normal(size=(8, 3)).astype(np.float32)
X = RNG.normal(size=(8, 2, 3)).astype(np.float32)
TARGET = jnp.array([0, 2, 1, 2, 1, 0, 0, 2])


def linear(x):
    return x.reshape(len(x), -1) @ W_LIN + B_LIN


def mlp(x):
    return jnp.tanh(x.reshape(len(x), -1) @ W1) @ W2


def weight_of_target(target, shape=(2, 3)):
    """∂linear/∂x for each sample's target, shaped like x."""
    return W_LIN[:, np.asarray(target)].T.reshape(len(target), *shape)


KEY = jax.random.key(0)


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


# ---------------------------------------------------------------- input × gradient, occlusion


def test_input_x_gradient_hand_case():
    # f₀ = x₀·x₁ → ∇f₀ = (x₁, x₀) → x·∇f₀ = (x₀x₁, x₀x₁); f₁ = sin x₀ → (x₀ cos x₀, 0)
    f = lambda x: jnp.stack([x[:, 0] * x[:, 1], jnp.sin(x[:, 0])], axis=1)
    x = jnp.array([[2.0, 3.0], [0.5, -1.0]])
    np.testing.assert_allclose(input_x_gradient(f)(x, jnp.array([0, 1])), [[6.0, 6.0], [0.5 * np.cos(0.5), 0.0]],
                               rtol=1e-6)


def test_occlusion_hand_cases_on_a_linear_model():
    w = np.array([1.0, -2.0, 3.0, 0.5, 4.0], np.float32)
    f = lambda x: (x @ w)[:, None]
    x = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    t = jnp.array([0])
    c = w * (np.asarray(x[0]) - 1.0)  # each entry's own drop when replaced by the baseline 1: (0, −2, 6, 1.5, 16)
    # window 1: the attribution is each entry's own drop w·(x − b)
    np.testing.assert_allclose(occlusion(f, window=(1,), stride=(1,), baseline=1.0)(x, t), [c], rtol=1e-6)
    # window 2, stride 1: windows {0,1} {1,2} {2,3} {3,4}; an entry averages the windows covering it
    pair = [c[0] + c[1], c[1] + c[2], c[2] + c[3], c[3] + c[4]]  # (−2, 4, 7.5, 17.5)
    expected = [pair[0], (pair[0] + pair[1]) / 2, (pair[1] + pair[2]) / 2, (pair[2] + pair[3]) / 2, pair[3]]
    np.testing.assert_allclose(occlusion(f, window=(2,), stride=(1,), baseline=1.0)(x, t), [expected], rtol=1e-6)
    # window 2, stride 2 on 5 entries: ⌈3/2⌉ + 1 = 3 windows {0,1} {2,3} {4} (the last is cut at the edge)
    expected = [c[0] + c[1]] * 2 + [c[2] + c[3]] * 2 + [c[4]]
    np.testing.assert_allclose(occlusion(f, window=2, stride=2, baseline=1.0)(x, t), [expected], rtol=1e-6)


def test_occlusion_two_axes_and_per_sample_baseline():
    # linear model on 3×4 inputs with 2×2 windows, stride 2: the windows tile the input, so every entry gets
    # its window's total drop Σ w·(x − b) over the window.
    w = RNG.normal(size=(3, 4)).astype(np.float32)
    f = lambda x: jnp.einsum("bij,ij->b", x, w)[:, None]
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    b = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    drop = w * (x - b)
    expected = np.zeros_like(x)
    for r0 in (0, 2):
        for c0 in (0, 2):
            expected[:, r0:r0 + 2, c0:c0 + 2] = drop[:, r0:r0 + 2, c0:c0 + 2].sum((1, 2))[:, None, None]
    attr = occlusion(f, window=(2, 2), stride=(2, 2), baseline=b)(jnp.asarray(x), jnp.array([0, 0]))
    np.testing.assert_allclose(attr, expected, rtol=1e-5, atol=1e-6)
    chunked = occlusion(f, window=(2, 2), stride=(2, 2), baseline=b, batch_size=2)(jnp.asarray(x), jnp.array([0, 0]))
    np.testing.assert_allclose(chunked, attr, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=(2, 4), stride=(1, 1)), "window.*exceeds"),
    (dict(window=(2,), stride=(1, 1)), "window"),
    (dict(window=(1, 2), stride=(1, 3)), "stride.*exceed"),
    (dict(window=(1, 0), stride=(1, 1)), "window"),
    (dict(window=(1, 1), stride=(1, 1), baseline=np.zeros(5)), "baseline"),
])
def test_occlusion_rejects_bad_windows(kwargs, message):
    with pytest.raises(ValueError, match=message):
        occlusion(linear, **kwargs)(jnp.asarray(X), TARGET)


def test_occlusion_stride_may_exceed_a_window_that_spans_the_axis():
    attr = occlusion(linear, window=(2, 1), stride=(5, 1))(jnp.asarray(X), TARGET)
    assert attr.shape == X.shape


# ---------------------------------------------------------------- smoothing


def test_smoothgrad_with_zero_sigma_equals_the_wrapped_method():
    inner = integrated.integrated_gradients(mlp, steps=4)

    @jit
    def run(x):  # one program: the three kinds share their (identical) draws
        return inner(x, TARGET), *(smoothing.smoothgrad(inner, samples=6, sigma=0.0, kind=kind)(x, TARGET, key=KEY)
                                   for kind in ("mean", "square", "var"))

    plain, mean, square, var = run(jnp.asarray(X))
    np.testing.assert_allclose(mean, plain, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(square, plain * plain, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(var, 0, atol=1e-7)


def test_smoothgrad_square_and_vargrad_of_constant_gradient():
    @jit
    def run(x):
        maps = [smoothing.smoothgrad(eager_gradient(linear), samples=16, sigma=0.5, kind=kind, batch_size=bs)(
            x, TARGET, key=KEY) for kind, bs in [("mean", None), ("square", None), ("var", 5)]]
        # the noise does change a nonlinear model's map
        change = smoothing.smoothgrad(eager_gradient(mlp), samples=16, sigma=0.5)(x, TARGET, key=KEY) - \
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
        rel = smoothing.smoothgrad(identity, **draws)(x, t, key=KEY)
        fixed = smoothing.smoothgrad(identity, **draws, relative=False)(x, t, key=KEY)
        small = x / jnp.array([[1.0], [10.0]])  # float32 would lose σ² in x² + σ² − x² for large x
        draws["kind"] = "square"
        square = smoothing.smoothgrad(identity, **draws, relative=False)(small, t, key=KEY) - small ** 2
        return rel.mean(1), fixed.mean(1), square.mean(1)

    rel, fixed, square = run(jnp.stack([jnp.linspace(-1, 1, 200), jnp.linspace(0, 10, 200)]))
    np.testing.assert_allclose(rel, [0.2 ** 2, 1.0 ** 2], rtol=0.05)
    np.testing.assert_allclose(fixed, [0.01, 0.01], rtol=0.05)
    np.testing.assert_allclose(square, [0.01, 0.01], rtol=0.05)


def test_smoothgrad_passes_distinct_keys_to_a_random_inner_method():
    inner = shap.gradient_shap(mlp, baselines=np.zeros((1, 2, 3), np.float32), samples=1)
    # 64 independent one-draw GradientSHAP estimates average to roughly IG; a key reused across the
    # draws would leave a single draw's (much noisier) estimate.
    outer, ig, one = jit(lambda x: (smoothing.smoothgrad(inner, samples=64, sigma=0.0)(x, TARGET, key=KEY),
                                        integrated.integrated_gradients(mlp)(x, TARGET),
                                        inner(x, TARGET, key=KEY)))(jnp.asarray(X))
    assert np.abs(outer - ig).mean() < 0.5 * np.abs(one - ig).mean()


# ---------------------------------------------------------------- GradientSHAP


def test_gradient_shap_of_linear_model_is_exact_for_any_alpha():
    x = jnp.asarray(X)
    b = RNG.normal(size=(1, 2, 3)).astype(np.float32)
    attr = gradient_shap(linear, baselines=b, samples=3)(x, TARGET, key=KEY)
    np.testing.assert_allclose(attr, weight_of_target(TARGET) * (X - b), rtol=1e-5, atol=1e-6)


def test_gradient_shap_converges_to_integrated_gradients_with_one_baseline():
    b = RNG.normal(size=(1, 2, 3)).astype(np.float32) * 0.5
    ig, gs, few = jit(lambda x: (
        integrated.integrated_gradients(mlp, baseline=b[0], steps=64)(x, TARGET),
        shap.gradient_shap(mlp, baselines=b, samples=4000, batch_size=1000)(x, TARGET, key=KEY),
        shap.gradient_shap(mlp, baselines=b, samples=2)(x, TARGET, key=KEY)))(jnp.asarray(X))
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
    (lambda: basic.input_x_gradient(mlp), "input_x_gradient"),
    (lambda: integrated.integrated_gradients(mlp, steps=11), "integrated_gradients"),
    (lambda: basic.occlusion(mlp, window=(1, 2), stride=(1, 1)), "occlusion"),
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


# ---------------------------------------------------------------- post-processing


def test_absolute_and_channel_reduction():
    a = jnp.array([[[[1.0, -3.0], [-2.0, 2.0]]]])  # NHWC: 1×1×2×2
    np.testing.assert_array_equal(absolute(a), jnp.abs(a))
    np.testing.assert_allclose(reduce_channels(a), [[[-1.0, 0.0]]])
    np.testing.assert_allclose(reduce_channels(a, "sum"), [[[-2.0, 0.0]]])
    with pytest.raises(ValueError, match="how"):
        reduce_channels(a, "max")


def test_scale_per_sample_to_unit_and_symmetric_ranges():
    a = jnp.array([[[-2.0, 0.0], [2.0, 6.0]], [[5.0, 5.0], [5.0, 5.0]]])
    np.testing.assert_allclose(scale(a), [[[0.0, 0.25], [0.5, 1.0]], [[0, 0], [0, 0]]])
    np.testing.assert_allclose(scale(a, range=(-1, 1)), [[[-1.0, -0.5], [0.0, 1.0]], [[0, 0], [0, 0]]])
    np.testing.assert_allclose(jit(scale)(a), scale(a))
    per_example = jax.vmap(lambda s: scale(s[None])[0])(a)
    np.testing.assert_allclose(per_example, scale(a))
    with pytest.raises(ValueError, match="range"):
        scale(a, range=(1, -1))
