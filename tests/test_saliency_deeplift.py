"""DeepLIFT (Rescale rule, by rewriting the jaxpr), DeepLIFT-SHAP and Guided Backprop."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import sgt.models
from sgt.models.resnet import BasicBlock
from sgt.saliency.deeplift import deeplift, deeplift_shap
from sgt.saliency.gradient import gradient

ZERO = jnp.array([0])


def random_variables(model, x, seed=0):
    """Random variables for `model` without running (or compiling) its init: shapes from eval_shape."""
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = jax.tree_util.keystr(path)
        if "var" in name:  # BatchNorm running variance
            return rng.uniform(0.5, 1.5, leaf.shape).astype(leaf.dtype)
        scale = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 0.3
        return (scale * rng.normal(size=leaf.shape)).astype(leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def classifier(model, x, seed=0):
    variables = random_variables(model, x, seed)
    return lambda x: model.apply(variables, x, train=False)


# ---------------------------------------------------------------------------------------------
# hand-computed cases


def test_two_relus_hand_computed():
    # f = 2·relu(x1) + 2·relu(x2 − 1.5) at (1, 2) from 0: Δ of the units are 1 and 0.5 with secant
    # slopes 1 and 0.5/2 = 0.25 → attributions 2·1·1 = 2 and 2·0.25·2 = 1 (gradient×input: 2, 4).
    f = lambda x: (2 * jax.nn.relu(x[:, 0]) + 2 * jax.nn.relu(x[:, 1] - 1.5))[:, None]
    attributions, delta = deeplift(f, return_delta=True)(jnp.array([[1.0, 2.0]]), ZERO)
    np.testing.assert_allclose(attributions, [[2.0, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(delta, [0.0], atol=1e-6)


def test_tanh_hand_computed():
    # f = 3·tanh(x1 − x2) at (1, 0.5) from 0: Δin = 0.5, secant tanh(0.5)/0.5 = 0.9242343
    # → attributions 3·0.9242343·(1, −0.5) = (2.7727029, −1.3863515); sum = 3·tanh(0.5).
    # (gradient × input would give 3·sech²(0.5)·(1, −0.5) = (2.3593, −1.1797).)
    f = lambda x: 3 * jnp.tanh(x[:, :1] - x[:, 1:])
    attributions = deeplift(f)(jnp.array([[1.0, 0.5]]), ZERO)
    np.testing.assert_allclose(attributions, [[2.7727029, -1.3863515]], rtol=1e-5)


def test_sigmoid_hand_computed():
    # f = σ(2·x1) − σ(x2) at (1, −1) from 0 (σ(0) = 0.5):
    # x1: σ(2) − 0.5 = 0.3807971, all of it through x1; x2: −(σ(−1) − 0.5) = 0.2310586.
    f = lambda x: (jax.nn.sigmoid(2 * x[:, 0]) - jax.nn.sigmoid(x[:, 1]))[:, None]
    attributions = deeplift(f)(jnp.array([[1.0, -1.0]]), ZERO)
    np.testing.assert_allclose(attributions, [[0.3807971, 0.2310586]], rtol=1e-5)


def test_max_pool_hand_computed():
    # f = maxpool window A (x1, x2) + 2 · window B (x3, x4), x = (3, 1 | 1, 2), baseline (0, 0 | 4, 0).
    # A: o = 3 ≥ ō = 0, Δo = 3 goes to x's arg-max x1 → attribution 3.
    # B: o = 2 < ō = 4, Δo = −2 goes to the baseline's arg-max x3 (Δx3 = −3, multiplier 2/3)
    #    → attribution 2·(−2) = −4. Attributions (3, 0, −4, 0) sum to Δf = 7 − 8 = −1.
    # (Routing by the gradient at x would give (3, 0, 0, 4).)
    def f(x):
        pooled = nn.max_pool(x[:, :, None], (2,), strides=(2,))[:, :, 0]
        return (pooled @ jnp.array([1.0, 2.0]))[:, None]

    attributions, delta = deeplift(f, baseline=jnp.array([0.0, 0.0, 4.0, 0.0]), return_delta=True)(
        jnp.array([[3.0, 1.0, 1.0, 2.0]]), ZERO)
    np.testing.assert_allclose(attributions, [[3.0, 0.0, -4.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(delta, [0.0], atol=1e-6)


def test_reduce_max_uses_the_same_rule():
    # x.max() over (1, 2, 0.5) from (4, 0, 0): o = 2 < ō = 4 → Δo = −2 to the baseline's arg-max.
    f = lambda x: x.max(axis=1, keepdims=True)
    attributions = deeplift(f, baseline=jnp.array([4.0, 0.0, 0.0]))(jnp.array([[1.0, 2.0, 0.5]]), ZERO)
    np.testing.assert_allclose(attributions, [[-2.0, 0.0, 0.0]], rtol=1e-6)


def test_product_of_two_variables_is_the_shapley_split():
    # f = a·b at (2, 3) from (0, 1): C_a = Δa·(b + b̄)/2 = 2·2 = 4, C_b = (a + ā)/2·Δb = 1·2 = 2.
    f = lambda x: x[:, :1] * x[:, 1:]
    attributions = deeplift(f, baseline=jnp.array([0.0, 1.0]))(jnp.array([[2.0, 3.0]]), ZERO)
    np.testing.assert_allclose(attributions, [[4.0, 2.0]], rtol=1e-6)


def test_max_of_two_variables_is_the_shapley_split():
    # f = max(a, b) at (1, 3) from (2, 0): f(a,b) = 3, f(ā,b) = 3, f(a,b̄) = 1, f(ā,b̄) = 2:
    # C_a = ½[(3 − 3) + (1 − 2)] = −0.5, C_b = ½[(3 − 1) + (3 − 2)] = 1.5; sum 1 = 3 − 2.
    f = lambda x: jnp.maximum(x[:, :1], x[:, 1:])
    attributions = deeplift(f, baseline=jnp.array([2.0, 0.0]))(jnp.array([[1.0, 3.0]]), ZERO)
    np.testing.assert_allclose(attributions, [[-0.5, 1.5]], rtol=1e-6)


def test_where_with_a_predicate_on_x_is_the_secant():
    # leaky ReLU written with jnp.where, at 2 from −1: Δout = 2 − (−0.1) = 2.1 (gradient × Δ: 3).
    f = lambda x: jnp.where(x > 0, x, 0.1 * x)
    attributions = deeplift(f, baseline=jnp.array([-1.0]))(jnp.array([[2.0]]), ZERO)
    np.testing.assert_allclose(attributions, [[2.1]], rtol=1e-6)


def test_linear_model_is_gradient_times_difference_exactly():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    f = lambda x: x.reshape(len(x), -1) @ w + b
    x = jnp.asarray(rng.normal(size=(4, 2, 3)), jnp.float32)
    baseline = jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)
    target = jnp.array([0, 2, 1, 2])
    expected = gradient(f)(x, target) * (x - baseline)
    np.testing.assert_array_equal(deeplift(f, baseline=baseline)(x, target), expected)


# ---------------------------------------------------------------------------------------------
# completeness on real architectures


class TinyResNet(nn.Module):
    """conv-BN-ReLU stem, an identity residual block and a strided option-A block (slice + pad)."""

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Conv(4, (3, 3))(x)))
        x = BasicBlock(4, 1, "A")(x, train)
        x = BasicBlock(8, 2, "A")(x, train)
        return nn.Dense(3)(x.mean(axis=(1, 2)))


class ReusedLayer(nn.Module):
    """One Dense applied twice, in residual branches with LayerNorm, GELU and ReLU."""

    @nn.compact
    def __call__(self, x, train=False):
        dense = nn.Dense(x.shape[-1])
        h = x + dense(nn.gelu(nn.LayerNorm()(x)))
        h = h + dense(jax.nn.relu(h))
        return nn.Dense(3)(jnp.tanh(h))


MODELS = {
    "mnist_cnn": (lambda: sgt.models.get("mnist_cnn"), (2, 12, 12, 1)),
    "residual": (TinyResNet, (2, 8, 8, 3)),
    "reused_layer": (ReusedLayer, (2, 6)),
    "lstm": (lambda: sgt.models.get("lstm"), (2, 8, 6)),
    "lstm_cell_attention": (lambda: sgt.models.get("lstm_cell_attention", r=3, d_a=8), (2, 8, 6)),
    "transformer": (lambda: sgt.models.get("transformer", layers=1, ff=16), (2, 6, 10)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_completeness_on_architectures(name):
    build, shape = MODELS[name]
    x = jax.random.normal(jax.random.PRNGKey(1), shape)
    baseline = 0.5 * jax.random.normal(jax.random.PRNGKey(2), shape[1:])
    f = classifier(build(), x)
    target = jnp.array([0, 1])

    @jax.jit
    def run(x):
        attributions, delta = deeplift(f, baseline=baseline, return_delta=True)(x, target)
        out = jnp.take_along_axis(f(x), target[:, None], 1)[:, 0]
        out_ref = jnp.take_along_axis(f(jnp.broadcast_to(baseline, x.shape)), target[:, None], 1)[:, 0]
        return attributions, delta, out, out_ref

    attributions, delta, out, out_ref = run(x)
    assert attributions.shape == x.shape
    scale = np.maximum(np.abs(out - out_ref), np.maximum(np.abs(out), np.abs(out_ref)))
    assert np.all(np.abs(out - out_ref) > 1e-3)  # a non-trivial difference to explain
    # (gradient × (x − baseline) would miss by far more: these models are not affine in x)
    np.testing.assert_array_less(np.abs(delta), 1e-5 * scale)


def test_scan_cond_and_fori_loop_are_rewritten():
    rng = np.random.default_rng(0)
    w, u = (jnp.asarray(rng.normal(size=(3, 3)), jnp.float32) for _ in range(2))
    flag = jnp.asarray(1)  # a traced (not Python) branch index that does not depend on x

    def f(x):
        def step(h, xt):
            h = jnp.tanh(xt @ w + h @ u) * jax.nn.sigmoid(h)
            return h, h.sum(-1)

        h, ys = lax.scan(step, jnp.zeros((x.shape[0], 3)), jnp.swapaxes(x, 0, 1))
        h = lax.cond(flag > 0, lambda h: h * 2 + jnp.exp(h), lambda h: h, h)
        h = lax.fori_loop(0, 3, lambda i, h: jnp.sin(h) + h, h)
        return jnp.concatenate([h, ys.T], axis=1)

    x = jnp.asarray(rng.normal(size=(3, 5, 3)), jnp.float32)
    _, delta = deeplift(f, baseline=jnp.full((5, 3), 0.2), return_delta=True)(x, jnp.array([0, 4, 7]))
    np.testing.assert_allclose(delta, 0.0, atol=2e-6)


def test_cond_on_x_selects_between_branches():
    # the baseline takes the other branch: Δ = 3·tanh(0.5) − (−1)² on the first output
    f = lambda x: lax.cond(x.sum() > 0, lambda x: 3 * jnp.tanh(x), lambda x: x ** 2, x)
    attributions, delta = deeplift(f, baseline=jnp.array([-1.0, -0.5]), return_delta=True)(
        jnp.array([[0.5, 0.7]]), ZERO)
    np.testing.assert_allclose(attributions, [[3 * np.tanh(0.5) - 1, 0.0]], rtol=1e-5)
    np.testing.assert_allclose(delta, [0.0], atol=1e-6)


def test_unsupported_operations_raise_naming_the_primitive():
    x = jnp.array([[0.5, 0.7]])
    with pytest.raises(NotImplementedError, match="'sort'"):
        deeplift(lambda x: jnp.sort(x, axis=1))(x, ZERO)
    loop = lambda x: lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, jnp.sin(c[1])), (0, x))[1]
    with pytest.raises(NotImplementedError, match="while"):
        deeplift(loop)(x, ZERO)


# ---------------------------------------------------------------------------------------------
# transform properties


def small_cnn():
    rng = np.random.default_rng(3)
    k1 = jnp.asarray(rng.normal(size=(3, 3, 1, 4)) / 3, jnp.float32)
    k2 = jnp.asarray(rng.normal(size=(16, 3)) / 4, jnp.float32)

    def f(x):
        h = lax.conv_general_dilated(x, k1, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = nn.max_pool(jax.nn.relu(h - 0.1), (2, 2), strides=(2, 2))
        return jnp.tanh(h.mean(axis=(1, 2)) @ k2[:4]) + h.reshape(len(x), -1)[:, :3]

    return f


def test_batched_equals_per_example_and_vmap():
    f = small_cnn()
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 4, 4, 1))
    target = jnp.array([0, 1, 2, 0])
    attribute = deeplift(f, baseline=jnp.full((4, 4, 1), 0.3))
    batched = attribute(x, target)
    single = jnp.concatenate([attribute(x[i:i + 1], target[i:i + 1]) for i in range(4)])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-7)
    mapped = jax.jit(jax.vmap(lambda xi, ti: attribute(xi[None], ti[None])[0]))(x, target)
    np.testing.assert_allclose(mapped, batched, rtol=1e-5, atol=1e-7)


def test_one_device_equals_eight_devices():
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    f = small_cnn()
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 4, 4, 1))
    target = jnp.arange(8) % 3
    attribute = jax.jit(deeplift(f, baseline=jnp.full((4, 4, 1), 0.3)))
    sharding = NamedSharding(Mesh(np.array(jax.devices()), ("batch",)), PartitionSpec("batch"))
    sharded = attribute(jax.device_put(x, sharding), jax.device_put(target, sharding))
    single = attribute(jax.device_put(x, jax.devices()[0]), jax.device_put(target, jax.devices()[0]))
    np.testing.assert_allclose(sharded, single, rtol=1e-5, atol=1e-7)


def test_jit_matches_eager_and_per_sample_baselines():
    f = small_cnn()
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 4, 1))
    baselines = jax.random.normal(jax.random.PRNGKey(1), (3, 4, 4, 1))
    target = jnp.array([2, 1, 0])
    attribute = deeplift(f, baseline=baselines, return_delta=True)
    eager, delta = attribute(x, target)
    jitted, _ = jax.jit(attribute)(x, target)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(delta, 0.0, atol=1e-6)
    # a per-sample baseline equals attributing each sample against its own baseline
    first = deeplift(f, baseline=baselines[0])(x[:1], target[:1])
    np.testing.assert_allclose(eager[:1], first, rtol=1e-5, atol=1e-7)


def test_deeplift_shap_one_baseline_is_deeplift_and_chunking_is_exact():
    w1, w2 = jax.random.normal(jax.random.PRNGKey(2), (8, 6)), jax.random.normal(jax.random.PRNGKey(3), (6, 3))
    f = lambda x: jnp.tanh(jax.nn.relu(x.reshape(len(x), -1) @ w1) @ w2)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 2))
    bases = jax.random.normal(jax.random.PRNGKey(1), (5, 4, 2))
    target = jnp.array([0, 1, 2])
    one = deeplift_shap(f, baselines=bases[:1])(x, target)
    np.testing.assert_allclose(one, deeplift(f, baseline=bases[0])(x, target), rtol=1e-6, atol=1e-7)
    whole = deeplift_shap(f, baselines=bases)(x, target)
    chunked = deeplift_shap(f, baselines=bases, batch_size=2)(x, target)  # 2 + 2 + 1
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-7)
    # the mean sums to f(x)_t − mean_j f(b_j)_t
    score = jax.jit(jax.vmap(lambda b: jnp.take_along_axis(f(jnp.broadcast_to(b, x.shape)), target[:, None], 1)))
    gain = score(x[None])[0, :, 0] - score(bases).mean(0)[:, 0]
    np.testing.assert_allclose(whole.reshape(3, -1).sum(1), gain, atol=1e-5)
    # return_delta: the same attributions, and the sum's error against that gain, per sample
    for size in (None, 2):
        attributions, delta = deeplift_shap(f, baselines=bases, batch_size=size, return_delta=True)(x, target)
        np.testing.assert_allclose(attributions, whole, rtol=1e-5, atol=1e-7)
        assert delta.shape == (3,)
        np.testing.assert_allclose(delta, attributions.reshape(3, -1).sum(1) - gain, atol=1e-5)
        np.testing.assert_allclose(delta, 0.0, atol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda f: deeplift(f, baseline=jnp.zeros(3))(jnp.ones((2, 2)), jnp.array([0, 0])), "baseline"),
    (lambda f: deeplift(f)(jnp.ones((2, 2), jnp.int32), jnp.array([0, 0])), "x"),
    (lambda f: deeplift(f)(jnp.ones((2, 2)), jnp.array([0])), "target"),
    (lambda f: deeplift_shap(f, baselines=jnp.zeros(2))(jnp.ones((2, 2)), jnp.array([0, 0])), "baselines"),
    (lambda f: deeplift_shap(f, baselines=jnp.zeros((1, 2)), batch_size=0), "batch_size"),
    (lambda f: deeplift(lambda x: x.sum(1))(jnp.ones((2, 2)), jnp.array([0, 0])), "f"),
])
def test_bad_arguments_are_rejected(call, message):
    with pytest.raises(ValueError, match=f"^{message}:"):
        call(lambda x: x)
