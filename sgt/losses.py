"""The saliency-guided training objective."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from sgt._checks import is_concrete


def _check_logits(name: str, logits: jax.Array) -> None:
    if logits.ndim != 2:
        raise ValueError(f"{name}: expected logits of shape [batch, classes], got {logits.shape}")


def kl_divergence(p_logits: jax.Array, q_logits: jax.Array) -> jax.Array:
    """KL(p ‖ q) = mean_batch Σ_c p_c (log p_c − log q_c), with p = softmax(p_logits).

    This is PyTorch's `KLDivLoss(reduction="batchmean")`; gradients flow into both arguments.
    """
    _check_logits("p_logits", p_logits)
    if q_logits.shape != p_logits.shape:
        raise ValueError(f"q_logits: expected the shape of p_logits {p_logits.shape}, got {q_logits.shape}")
    log_p = jax.nn.log_softmax(p_logits)
    log_q = jax.nn.log_softmax(q_logits)
    return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1).mean()


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels."""
    _check_logits("logits", logits)
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels: expected shape ({logits.shape[0]},), got {labels.shape}")
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def softmax_output_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy applied to the softmax *outputs* p = softmax(z) instead of the logits z:

        ℓ(z, y) = −log softmax(p)_y = log Σ_c exp(p_c) − p_y,   p = softmax(z).

    This is what a model that ends in a softmax computes when PyTorch's `CrossEntropyLoss` (which
    applies its own log-softmax) is given its outputs, as the time-series benchmark's models are.
    Since p ∈ [0, 1], ℓ is bounded: with 2 classes it lies in [log(1 + e⁻¹), log(1 + e)] ≈ [0.313,
    1.313], and its gradient vanishes as p saturates (so it never drives the logits far apart).
    """
    _check_logits("logits", logits)
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels: expected shape ({logits.shape[0]},), got {labels.shape}")
    return optax.softmax_cross_entropy_with_integer_labels(jax.nn.softmax(logits), labels).mean()


CLASSIFICATION_LOSSES = {"logits": cross_entropy, "softmax-output": softmax_output_cross_entropy}


def classification_loss(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The classification term `loss(logits, labels)` named `name`: "logits" (`cross_entropy`, the
    usual) or "softmax-output" (`softmax_output_cross_entropy`, the time-series benchmark's)."""
    if name not in CLASSIFICATION_LOSSES:
        raise ValueError(f"classification_loss: expected one of {tuple(CLASSIFICATION_LOSSES)}, got {name!r}")
    return CLASSIFICATION_LOSSES[name]


def sgt_loss(clean_logits: jax.Array, masked_logits: jax.Array, labels: jax.Array, *, lam: float = 1.0) -> jax.Array:
    """CE(f(x), y) + λ · KL(p(x) ‖ p(x̃)), the clean branch not detached (as the authors' code)."""
    if is_concrete(lam) and lam < 0:
        raise ValueError(f"lam: the KL weight must be >= 0, got {lam}")
    return cross_entropy(clean_logits, labels) + lam * kl_divergence(clean_logits, masked_logits)
