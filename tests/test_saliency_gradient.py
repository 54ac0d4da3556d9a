import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgt.saliency import gradient


def linear(w, b):
    return lambda x: x.reshape(len(x), -1) @ w + b


def test_gradient_of_linear_model_is_the_target_weight_column():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    x = rng.normal(size=(4, 2, 3)).astype(np.float32)
    target = jnp.array([0, 2, 1, 2])
    sal = gradient(linear(w, b))(x, target)
    expected = w[:, np.asarray(target)].T.reshape(4, 2, 3)
    np.testing.assert_allclose(sal, expected, rtol=0, atol=0)


def test_gradient_hand_computed_nonlinear_case():
    # f(x) = [x0 * x1, sin(x0)] → ∂f0/∂x = (x1, x0), ∂f1/∂x = (cos x0, 0)
    f = lambda x: jnp.stack([x[:, 0] * x[:, 1], jnp.sin(x[:, 0])], axis=1)
    x = jnp.array([[2.0, 3.0], [0.5, -1.0]])
    sal = gradient(f)(x, jnp.array([0, 1]))
    np.testing.assert_allclose(sal, [[3.0, 2.0], [np.cos(0.5), 0.0]], rtol=1e-6)


def test_batched_equals_per_example():
    rng = np.random.default_rng(1)
    w1, w2 = rng.normal(size=(5, 8)), rng.normal(size=(8, 3))
    f = lambda x: jnp.tanh(x @ w1) @ w2
    x = jnp.asarray(rng.normal(size=(6, 5)))
    target = jnp.array([0, 1, 2, 0, 1, 2])
    batched = gradient(f)(x, target)
    single = jnp.concatenate([gradient(f)(x[i:i + 1], target[i:i + 1]) for i in range(6)])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


def test_gradient_is_jittable():
    f = lambda x: jnp.stack([x.sum(1) ** 2, -x.sum(1)], 1)
    attribute = jax.jit(gradient(f))
    x = jnp.ones((3, 4))
    np.testing.assert_allclose(attribute(x, jnp.array([0, 1, 0])),
                               [[8.0] * 4, [-1.0] * 4, [8.0] * 4])


@pytest.mark.parametrize("target, message", [
    (jnp.array([0, 1]), "shape"),
    (jnp.array([0.0, 1.0, 0.0]), "integer"),
])
def test_bad_target_is_rejected(target, message):
    f = lambda x: x
    with pytest.raises(ValueError, match=f"target.*{message}"):
        gradient(f)(jnp.ones((3, 2)), target)
