"""Input × gradient (Shrikumar et al. 2016): x · ∂f(x)_target/∂x."""

from __future__ import annotations

import jax

from sgt.saliency._common import Classifier
from sgt.saliency.gradient import gradient


def input_x_gradient(f: Classifier):
    """Input × gradient: x · ∂f(x)_target/∂x, elementwise, for every sample (signed).

    Equal to Integrated Gradients from a zero baseline when `f` is linear.
    """
    grad_fn = gradient(f)

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        del key  # deterministic method
        return x * grad_fn(x, target)

    return attribute
