"""The saliency-guided training objective."""

from __future__ import annotations

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


def sgt_loss(clean_logits: jax.Array, masked_logits: jax.Array, labels: jax.Array, *, lam: float = 1.0) -> jax.Array:
    """CE(f(x), y) + λ · KL(p(x) ‖ p(x̃)), the clean branch not detached (as the authors' code)."""
    if is_concrete(lam) and lam < 0:
        raise ValueError(f"lam: the KL weight must be >= 0, got {lam}")
    return cross_entropy(clean_logits, labels) + lam * kl_divergence(clean_logits, masked_logits)
