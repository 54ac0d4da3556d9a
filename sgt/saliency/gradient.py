"""The input gradient (vanilla saliency, Simonyan et al. 2014)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from sgt._checks import check_target

Classifier = Callable[[jax.Array], jax.Array]


def target_score(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Σ_i logits[i, target_i]: the scalar whose input gradient is every sample's own saliency."""
    return jnp.take_along_axis(logits, target[:, None], axis=1).sum()


def gradient(f: Classifier):
    """Saliency ∂f(x)_{target} / ∂x for every sample, with one backward pass for the batch.

    Samples do not interact in `f` (no batch statistics in inference mode), so the gradient of
    Σ_i f(x)_{i, target_i} with respect to x holds each sample's own gradient in its own row.
    The result is signed; take `jnp.abs` for magnitudes.
    """

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        del key  # deterministic method
        check_target(target, x.shape[0])
        return jax.grad(lambda x: target_score(f(x), target))(x)

    return attribute
