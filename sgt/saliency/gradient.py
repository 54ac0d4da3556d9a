"""The input gradient (vanilla saliency, Simonyan et al. 2014)."""

from __future__ import annotations

import jax

from sgt.saliency._common import Classifier, check_target, target_score


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
