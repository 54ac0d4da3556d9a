"""Integrated Gradients (Sundararajan et al. 2017) with Captum's quadrature rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sgt.saliency._common import (Classifier, check_batch_size, check_target, chunked_reduce, merged_gradient,
                                 per_sample_score, resolve_baseline)

QUADRATURES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def quadrature(steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Points α_k in [0, 1] and weights w_k with ∫₀¹ g(α) dα ≈ Σ_k w_k g(α_k) (float64 arrays).

    - riemann_left / riemann_right / riemann_middle: α_k = k/n, (k+1)/n, (k+½)/n; w_k = 1/n.
    - riemann_trapezoid: α_k = k/(n−1) (both ends included), w_k = 1/(n−1) with the two end weights
      halved, so the weights sum to 1. Captum uses the same points but weights 1/n (halved at the
      ends), which sum to (n−1)/n: Captum's trapezoid attributions are ours × (n−1)/n.
    - gausslegendre: the n-point Gauss–Legendre nodes mapped from [−1, 1] to [0, 1] by α = (1 + t)/2,
      weights halved; exact for polynomials of degree ≤ 2n − 1. Same points and weights as Captum.
    The weights sum to 1 for every rule, so a constant gradient integrates exactly.
    """
    if method not in QUADRATURES:
        raise ValueError(f"method: expected one of {QUADRATURES}, got {method!r}")
    least = 2 if method == "riemann_trapezoid" else 1
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < least:
        raise ValueError(f"steps: expected an int >= {least} for {method}, got {steps!r}")
    n = int(steps)
    k = np.arange(n, dtype=np.float64)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return (1.0 + nodes) / 2.0, weights / 2.0
    if method == "riemann_trapezoid":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2.0
        return k / (n - 1), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (k + offset) / n, np.full(n, 1.0 / n)


def integrated_gradients(f: Classifier, *, baseline=None, steps: int = 50, method: str = "gausslegendre",
                         batch_size: int | None = None, return_delta: bool = False):
    """Integrated Gradients: (x − b) · ∫₀¹ ∂f_target/∂x (b + α(x − b)) dα, with the integral replaced by
    the quadrature `method` on `steps` points (see `quadrature`; Gauss–Legendre by default, as Captum).

    `baseline`: None (zeros), a scalar, an array shaped x.shape[1:] shared by every sample, or one
    shaped x.shape with a baseline per sample. The gradients of the whole batch at all path points are
    taken in one pass by default; `batch_size` takes that many path points at a time instead (memory
    of `batch_size` × the batch), accumulating the weighted sum; the result is the same up to the
    order of float additions. With `return_delta=True` the function returns (attributions, delta),
    delta[i] = Σ attributions_i − (f(x)[i, t_i] − f(b)[i, t_i]), the completeness error.
    """
    alphas, weights = quadrature(steps, method)
    check_batch_size(batch_size)

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None):
        del key  # deterministic method
        check_target(target, x.shape[0])
        base = resolve_baseline(baseline, x)
        diff = x - base

        def weighted_gradients(chunk):
            a, w = chunk
            points = base[None] + a.reshape(-1, *(1,) * x.ndim) * diff[None]
            return jnp.tensordot(w, merged_gradient(f, points, target), axes=1)

        path = (jnp.asarray(alphas, x.dtype), jnp.asarray(weights, x.dtype))
        avg_grad = chunked_reduce(weighted_gradients, path, batch_size, jnp.add)
        attributions = diff * avg_grad
        if not return_delta:
            return attributions
        scores = per_sample_score(f(jnp.concatenate([x, base])), jnp.tile(target, 2))
        gain = scores[:x.shape[0]] - scores[x.shape[0]:]
        return attributions, attributions.reshape(x.shape[0], -1).sum(1) - gain

    return attribute


__all__ = ["QUADRATURES", "quadrature", "integrated_gradients"]
