"""Agreement with Captum on one small CNN built in both frameworks with the same weights.

Skipped where torch or captum is missing (`pip install '.[bench]'` installs them; CI does).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

from sgt import saliency  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def make_models(pool: bool, seed: int = 0, conv_relu: bool = True):
    """conv3×3(2→4) → [ReLU] → [maxpool 2] → flatten (C, H, W order) → fc 8 → ReLU → fc 3, on 10×10×2 inputs."""
    torch.manual_seed(seed)
    flat = 4 * (4 * 4 if pool else 8 * 8)
    layers = [torch.nn.Conv2d(2, 4, 3)] + ([torch.nn.ReLU()] if conv_relu else []) + \
             ([torch.nn.MaxPool2d(2)] if pool else []) + \
             [torch.nn.Flatten(), torch.nn.Linear(flat, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)]
    net = torch.nn.Sequential(*layers).eval()
    conv, fc1, fc2 = net[0], net[-3], net[-1]
    k = jnp.asarray(conv.weight.detach().numpy().transpose(2, 3, 1, 0))  # OIHW → HWIO
    kb = jnp.asarray(conv.bias.detach().numpy())
    w1, b1 = (jnp.asarray(t.detach().numpy()) for t in (fc1.weight.T, fc1.bias))
    w2, b2 = (jnp.asarray(t.detach().numpy()) for t in (fc2.weight.T, fc2.bias))

    def f(x):  # NHWC, functional activations
        h = jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")) + kb
        if conv_relu:
            h = jax.nn.relu(h)
        if pool:
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = h.transpose(0, 3, 1, 2).reshape(h.shape[0], -1)
        return jax.nn.relu(h @ w1 + b1) @ w2 + b2

    return net, f


def inputs(seed=0, n=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10, 10, 2)).astype(np.float32)
    baseline = rng.uniform(size=(n, 10, 10, 2)).astype(np.float32)
    target = rng.integers(0, 3, size=n)
    return x, baseline, target


def to_torch(a):
    return torch.tensor(np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2)))


def from_torch(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def test_model_copies_agree():
    net, f = make_models(pool=True)
    x, _, _ = inputs()
    np.testing.assert_allclose(f(x), net(to_torch(x)).detach().numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("pool", [True, False])
def test_saliency_and_input_x_gradient(pool):
    net, f = make_models(pool)
    x, _, target = inputs()
    theirs = captum_attr.Saliency(net).attribute(to_torch(x), target=torch.tensor(target), abs=False)
    np.testing.assert_allclose(saliency.gradient(f)(x, jnp.asarray(target)), from_torch(theirs), rtol=RTOL, atol=ATOL)
    theirs = captum_attr.InputXGradient(net).attribute(to_torch(x), target=torch.tensor(target))
    ours = saliency.input_x_gradient(f)(x, jnp.asarray(target))
    np.testing.assert_allclose(ours, from_torch(theirs), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_left"])
def test_integrated_gradients(method):
    net, f = make_models(pool=True)
    x, baseline, target = inputs(1)
    theirs = captum_attr.IntegratedGradients(net).attribute(
        to_torch(x), baselines=to_torch(baseline), target=torch.tensor(target), n_steps=20, method=method)
    ours = saliency.integrated_gradients(f, baseline=baseline, steps=20, method=method)(x, jnp.asarray(target))
    if method == "riemann_trapezoid":  # Captum's trapezoid weights sum to (n − 1)/n, ours to 1
        ours = ours * 19 / 20
    np.testing.assert_allclose(ours, from_torch(theirs), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("pool, conv_relu", [(False, True), (True, False)])
def test_deeplift_with_relu_modules(pool, conv_relu):
    # Captum 0.9 mishandles a ReLU module directly before a MaxPool2d (captum issue #1104: its
    # attributions then miss f(x) − f(baseline)), so the pooled model here has no ReLU before the pool.
    net, f = make_models(pool, conv_relu=conv_relu)
    x, baseline, target = inputs(2)
    theirs = captum_attr.DeepLift(net).attribute(to_torch(x), baselines=to_torch(baseline),
                                                  target=torch.tensor(target))
    ours = saliency.deeplift(f, baseline=baseline)(x, jnp.asarray(target))
    np.testing.assert_allclose(ours, from_torch(theirs), rtol=RTOL, atol=ATOL)


def test_deeplift_shap():
    net, f = make_models(pool=False)
    x, _, target = inputs(3)
    baselines = np.random.default_rng(4).uniform(size=(4, 10, 10, 2)).astype(np.float32)
    theirs = captum_attr.DeepLiftShap(net).attribute(to_torch(x), baselines=to_torch(baselines),
                                                      target=torch.tensor(target))
    ours = saliency.deeplift_shap(f, baselines=baselines)(x, jnp.asarray(target))
    np.testing.assert_allclose(ours, from_torch(theirs), rtol=RTOL, atol=ATOL)


def test_guided_backprop():
    net, f = make_models(pool=True)
    x, _, target = inputs(5)
    theirs = captum_attr.GuidedBackprop(net).attribute(to_torch(x), target=torch.tensor(target))
    ours = saliency.guided_backprop(f)(x, jnp.asarray(target))
    np.testing.assert_allclose(ours, from_torch(theirs), rtol=RTOL, atol=ATOL)


def test_occlusion():
    net, f = make_models(pool=True)
    x, _, target = inputs(6, n=2)
    theirs = captum_attr.Occlusion(net).attribute(to_torch(x), sliding_window_shapes=(2, 3, 3),
                                                   strides=(2, 2, 2), baselines=0.0, target=torch.tensor(target))
    ours = saliency.occlusion(f, window=(3, 3, 2), stride=(2, 2, 2), baseline=0.0)(x, jnp.asarray(target))
    np.testing.assert_allclose(ours, from_torch(theirs), rtol=RTOL, atol=ATOL)
