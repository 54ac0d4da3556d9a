"""Guided Backpropagation: a hand case, and the rewrite inside scan."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sgt.saliency.gradient import gradient
from sgt.saliency.guided import guided_backprop, guided_relu



def test_guided_backprop_zeroes_negative_gradient_paths():
    # f = relu(relu(x) · (1, −2) + 5) · (1, −1) at x = (1, 2): the gradient is (1, −2); the inner
    # ReLU of x2 receives −2 → guided zeroes it: (1, 0). For class 1 the outer ReLU receives −1: (0, 0).
    w = jnp.array([[1.0], [-2.0]])
    f = lambda x: jax.nn.relu(jnp.maximum(x, 0) @ w + 5.0) @ jnp.array([[1.0, -1.0]])
    x = jnp.array([[1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_allclose(gradient(f)(x, jnp.array([0, 1])), [[1.0, -2.0], [-1.0, 2.0]])
    np.testing.assert_allclose(jax.jit(guided_backprop(f))(x, jnp.array([0, 1])), [[1.0, 0.0], [0.0, 0.0]])


def test_guided_backprop_inside_scan_and_equal_to_gradient_without_relu():
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(size=(3, 3)), jnp.float32)

    def f(x):
        h, _ = lax.scan(lambda h, xt: (jax.nn.relu(xt @ w + h), None), jnp.zeros((x.shape[0], 3)),
                        jnp.swapaxes(x, 0, 1))
        return h

    x = jnp.asarray(rng.normal(size=(2, 4, 3)), jnp.float32)
    target = jnp.array([0, 2])
    guided = guided_backprop(f)(x, target)

    def unrolled(x):  # the same recurrence with an explicit guided ReLU
        h = jnp.zeros((x.shape[0], 3))
        for t in range(x.shape[1]):
            h = guided_relu(x[:, t] @ w + h)
        return h

    np.testing.assert_allclose(guided, gradient(unrolled)(x, target), rtol=1e-6)
    smooth = lambda x: jnp.tanh(x.reshape(2, -1)[:, :3] @ w)
    np.testing.assert_allclose(guided_backprop(smooth)(x, target), gradient(smooth)(x, target), rtol=1e-6)
