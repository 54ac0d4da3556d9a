"""sgt.nn_ops: every convolution / pooling implementation against XLA's own, values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from sgt import models, nn_ops

RNG = np.random.default_rng(0)


def reference_conv(x, kernel, strides, padding, dilation=1):
    n = x.ndim - 2
    spatial = "HWD"[:n]
    strides = (strides,) * n if isinstance(strides, int) else strides
    dilation = (dilation,) * n if isinstance(dilation, int) else dilation
    if isinstance(padding, int):
        padding = [(padding, padding)] * n
    return lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation,
                                    dimension_numbers=(f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"))


def value_and_grads(fn, x, kernel):
    """The output and the gradients of a nonlinear function of it w.r.t. x and the kernel."""
    out = fn(x, kernel)
    grads = jax.grad(lambda x, k: jnp.sum(jnp.sin(fn(x, k)) * jnp.arange(out.size).reshape(out.shape) / out.size),
                     argnums=(0, 1))(x, kernel)
    return out, grads


CASES = [  # (spatial, in, out, window, strides, padding, dilation)
    ((9, 9), 1, 4, (3, 3), 1, "VALID", 1),
    ((9, 9), 3, 5, (3, 3), 1, "SAME", 1),
    ((10, 9), 4, 6, (3, 3), 2, "SAME", 1),
    ((8, 8), 4, 6, (3, 3), 2, "VALID", 1),
    ((8, 8), 5, 3, (3, 3), 2, ((1, 1), (1, 1)), 1),
    ((8, 8), 5, 3, (3, 3), 1, 1, 1),
    ((7, 8), 2, 3, (2, 3), (2, 1), ((0, 1), (2, 0)), 1),
    ((8, 8), 6, 6, (1, 1), 2, "SAME", 1),
    ((9, 9), 3, 4, (3, 3), 1, "SAME", 2),
    ((20,), 5, 5, (4,), 1, [(6, 0)], 2),  # the TCN's causal dilated convolution
    ((20,), 3, 7, (1,), 1, "SAME", 1),
]


@pytest.mark.parametrize("impl", nn_ops.CONV_IMPLS)
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_conv_equals_lax_conv_in_value_and_gradients(impl, case):
    spatial, cin, cout, window, strides, padding, dilation = case
    x = jnp.asarray(RNG.normal(size=(3, *spatial, cin)), jnp.float32)
    kernel = jnp.asarray(RNG.normal(size=(*window, cin, cout)), jnp.float32)
    ours = value_and_grads(lambda x, k: nn_ops.conv(x, k, strides, padding, kernel_dilation=dilation, impl=impl),
                           x, kernel)
    ref = value_and_grads(lambda x, k: reference_conv(x, k, strides, padding, dilation), x, kernel)
    assert ours[0].shape == ref[0].shape
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.abs(b).max()))


@pytest.mark.parametrize("options", [
    dict(features=5, kernel_size=(3, 3)),
    dict(features=4, kernel_size=(3, 3), strides=2, padding=((1, 1), (1, 1)), use_bias=False),
    dict(features=3, kernel_size=(1, 1), strides=2),
    dict(features=3, kernel_size=(3,), padding="VALID", kernel_init=nn.initializers.uniform(0.3),
         bias_init=nn.initializers.normal(1.0)),
])
def test_conv_module_is_a_drop_in_for_flax_conv(options):
    """Same parameter tree and values (bit for bit) as nn.Conv, and the same outputs and gradients."""
    ndim = len(options["kernel_size"])
    x = jnp.asarray(RNG.normal(size=(2, *(8,) * ndim, 3)), jnp.float32)
    flax_conv = nn.Conv(**options)
    variables = flax_conv.init(jax.random.PRNGKey(1), x)
    for impl in nn_ops.CONV_IMPLS:
        ours = nn_ops.Conv(**options, impl=impl)
        mine = ours.init(jax.random.PRNGKey(1), x)
        assert jax.tree.structure(mine) == jax.tree.structure(variables)
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(variables)):
            np.testing.assert_array_equal(a, b)
        loss = lambda m: lambda v, x: jnp.sum(jnp.tanh(m.apply(v, x)))  # noqa: E731
        got = jax.value_and_grad(loss(ours), argnums=(0, 1))(variables, x)
        want = jax.value_and_grad(loss(flax_conv), argnums=(0, 1))(variables, x)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_conv_module_in_a_parent_keeps_flax_auto_names():
    class Net(nn.Module):
        conv: type

        @nn.compact
        def __call__(self, x):
            return self.conv(4, (3, 3))(self.conv(2, (3, 3))(x))

    x = jnp.ones((1, 6, 6, 1))
    a = Net(nn.Conv).init(jax.random.PRNGKey(0), x)
    b = Net(nn_ops.Conv).init(jax.random.PRNGKey(0), x)
    assert sorted(a["params"]) == sorted(b["params"]) == ["Conv_0", "Conv_1"]
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(u, v)


def tie_free(shape, seed=0):
    """Distinct values (a shuffled range), so every window has one maximum."""
    values = np.random.default_rng(seed).permutation(np.prod(shape)).astype(np.float32) / np.prod(shape)
    return jnp.asarray(values.reshape(shape) - 0.5)


@pytest.mark.parametrize("shape, window", [((2, 8, 6, 3), (2, 2)), ((3, 9, 9, 2), (3, 3)), ((2, 12, 5), (4,))])
def test_reshape_pool_equals_flax_max_pool_on_tie_free_inputs(shape, window):
    x = tie_free(shape)
    assert nn_ops.reshape_pool_applies(x.shape, window, window, "VALID")
    ours = lambda x: nn_ops.max_pool(x, window, window, impl="reshape")  # noqa: E731
    ref = lambda x: nn.max_pool(x, window, window)  # noqa: E731
    np.testing.assert_array_equal(ours(x), ref(x))
    weights = jnp.asarray(RNG.normal(size=ref(x).shape), jnp.float32)
    g_ours = jax.grad(lambda x: jnp.sum(ours(x) * weights))(x)
    g_ref = jax.grad(lambda x: jnp.sum(ref(x) * weights))(x)
    np.testing.assert_array_equal(g_ours, g_ref)
    # forward mode too (the rule is a custom JVP)
    t = jnp.asarray(RNG.normal(size=x.shape), jnp.float32)
    np.testing.assert_allclose(jax.jvp(ours, (x,), (t,))[1], jax.jvp(ref, (x,), (t,))[1], rtol=1e-6)


def test_reshape_pool_tie_rule_first_maximum_in_row_major_order():
    """Ties: the whole cotangent goes to the first maximal element of the window (row-major), as
    nn.max_pool; a plain reshape-and-max would split it equally among the tied elements."""
    x = jnp.zeros((1, 4, 4, 1)).at[0, 1, 1, 0].set(-1.0)  # windows of equal zeros; one has a smaller entry
    x = x.at[0, 2, 3, 0].set(2.0).at[0, 3, 2, 0].set(2.0)  # a tie at 2 in the last window
    ours = jax.grad(lambda x: nn_ops.max_pool(x, (2, 2), impl="reshape").sum())(x)
    ref = jax.grad(lambda x: nn.max_pool(x, (2, 2), (2, 2)).sum())(x)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(ours[0, :, :, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]])


def test_pools_that_do_not_tile_fall_back_to_reduce_window():
    x = tie_free((2, 7, 7, 2))
    for window, strides in (((2, 2), (2, 2)), ((3, 3), (2, 2))):  # 7 is not a multiple of 2; overlapping windows
        assert not nn_ops.reshape_pool_applies(x.shape, window, strides, "VALID")
        np.testing.assert_array_equal(nn_ops.max_pool(x, window, strides, impl="reshape"),
                                      nn.max_pool(x, window, strides))


def test_defaults_follow_the_backend_and_the_environment(monkeypatch):
    monkeypatch.delenv("SGT_CONV_IMPL", raising=False)
    monkeypatch.delenv("SGT_POOL_IMPL", raising=False)
    assert nn_ops.default_conv_impl("cpu") == "slices" and nn_ops.default_conv_impl("gpu") == "xla"
    assert nn_ops.default_conv_impl("tpu") == "xla" and nn_ops.default_conv_impl("gpu", cpu="slices") == "xla"
    assert nn_ops.default_conv_impl("cpu", cpu="xla") == "xla"
    assert nn_ops.default_pool_impl("cpu") == "reshape" and nn_ops.default_pool_impl("gpu") == "xla"
    monkeypatch.setenv("SGT_CONV_IMPL", "xla")
    assert nn_ops.default_conv_impl("cpu") == "xla"
    monkeypatch.setenv("SGT_CONV_IMPL", "fft")
    with pytest.raises(ValueError, match="SGT_CONV_IMPL"):
        nn_ops.default_conv_impl()


def test_bad_arguments_are_rejected():
    x, k = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 4))
    with pytest.raises(ValueError, match="impl"):
        nn_ops.conv(x, k, impl="fft")
    with pytest.raises(ValueError, match="input channels"):
        nn_ops.conv(x, jnp.ones((3, 3, 3, 4)))
    with pytest.raises(ValueError, match="strides"):
        nn_ops.conv(x, k, (1, 1, 1))
    with pytest.raises(ValueError, match="does not fit"):
        nn_ops.conv(jnp.ones((1, 2, 2, 2)), k, impl="slices")
    with pytest.raises(ValueError, match="impl"):
        nn_ops.max_pool(x, (2, 2), impl="sort")


CONV_MODELS = {  # registry name → input shape (a small batch)
    "mnist_cnn": (4, 28, 28, 1),
    "resnet20": (2, 32, 32, 3),  # ResNet-18's other layer kinds (1×1 stride-2 projections) are covered above
    "tcn": (3, 50, 50),
}


def implementations(name, fast: bool):
    options = {"conv_impl": "slices" if fast else "xla"}
    if name == "mnist_cnn":
        options["pool_impl"] = "reshape" if fast else "xla"
    return models.get(name, **options)


@pytest.mark.parametrize("name", sorted(CONV_MODELS))
def test_models_give_the_same_parameters_and_logits_with_either_implementation(name):
    x = jnp.asarray(RNG.uniform(size=CONV_MODELS[name]), jnp.float32)
    ref_model, fast = implementations(name, False), implementations(name, True)
    init = lambda model: jax.jit(lambda x: model.init(jax.random.PRNGKey(0), x, train=False))(x[:1])  # noqa: E731
    apply = lambda model: jax.jit(lambda v, x: model.apply(v, x, train=False))  # noqa: E731
    variables, fast_vars = init(ref_model), init(fast)
    assert jax.tree.structure(fast_vars) == jax.tree.structure(variables)
    for a, b in zip(jax.tree.leaves(fast_vars), jax.tree.leaves(variables)):
        np.testing.assert_array_equal(a, b)
    want = apply(ref_model)(variables, x)
    np.testing.assert_allclose(apply(fast)(variables, x), want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))


@pytest.mark.parametrize("name", ["mnist_cnn", "resnet20", "tcn"])
def test_models_give_the_same_gradients_with_either_implementation(name):
    """Gradients w.r.t. parameters and input, compared leaf by leaf in relative norm: in a deep
    network a float32 rounding difference can flip a ReLU whose input is within rounding of 0,
    which changes a few gradient entries by more than rounding."""
    x = jnp.asarray(RNG.uniform(size=CONV_MODELS[name]), jnp.float32)
    ref_model, fast = implementations(name, False), implementations(name, True)
    variables = jax.jit(lambda x: ref_model.init(jax.random.PRNGKey(0), x, train=False))(x[:1])

    def grads(model):
        loss = lambda p, x: jnp.sum(jax.nn.log_softmax(model.apply({**variables, "params": p}, x, train=False))[:, 0])  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], x)

    got, want = grads(fast), grads(ref_model)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert float(jnp.linalg.norm(a - b)) <= 1e-3 * float(jnp.linalg.norm(b)) + 1e-7
