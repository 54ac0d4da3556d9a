"""Input × gradient on a hand case."""

import jax.numpy as jnp
import numpy as np

from tests.saliency_cases import (input_x_gradient)


def test_input_x_gradient_hand_case():
    # f₀ = x₀·x₁ → ∇f₀ = (x₁, x₀) → x·∇f₀ = (x₀x₁, x₀x₁); f₁ = sin x₀ → (x₀ cos x₀, 0)
    f = lambda x: jnp.stack([x[:, 0] * x[:, 1], jnp.sin(x[:, 0])], axis=1)
    x = jnp.array([[2.0, 3.0], [0.5, -1.0]])
    np.testing.assert_allclose(input_x_gradient(f)(x, jnp.array([0, 1])), [[6.0, 6.0], [0.5 * np.cos(0.5), 0.0]],
                               rtol=1e-6)
