"""SmoothGrad, SmoothGrad² and VarGrad: noise averaging wrapped around any attribution method."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from sgt.saliency._common import (check_batch_size, check_samples, check_sigma, check_target, chunked_reduce,
                                 require_key)

KINDS = ("mean", "square", "var")


def _merge_moments(p, q):
    """Chan et al.'s pairwise merge of (count, mean, sum of squared deviations)."""
    n_p, mean_p, m2_p = p
    n_q, mean_q, m2_q = q
    n = n_p + n_q
    delta = mean_q - mean_p
    return n, mean_p + delta * (n_q / n), m2_p + m2_q + delta ** 2 * (n_p * n_q / n)


def smoothgrad(method: Callable, *, samples: int = 50, sigma: float = 0.15, kind: str = "mean",
               relative: bool = True, batch_size: int | None = None):
    """Average an attribution method over noisy copies of the input (Smilkov et al. 2017).

    `method` is any `attribute(x, target, *, key=None)` function (e.g. `gradient(f)`). For each of
    `samples` draws, x̃ = x + ε with ε ~ N(0, σ²) i.i.d. per entry, and a_s = method(x̃, target).

    σ convention: with `relative=True` (default) σ is relative to each input's range,
    σ_i = sigma · (max(x_i) − min(x_i)) over all of sample i's entries, as in the SmoothGrad paper and
    PAIR's `saliency` library (whose default spread is 0.15). With `relative=False`, `sigma` is the
    absolute standard deviation (Captum's `NoiseTunnel(stdevs=…)`; the paper's MNIST runs used
    stdevs=1.0 on normalised inputs).

    `kind`: "mean" → SmoothGrad, mean_s a_s; "square" → SmoothGrad², mean_s a_s²; "var" → VarGrad,
    the population variance mean_s a_s² − (mean_s a_s)² (as Captum's `vargrad`), accumulated with a
    numerically stable pairwise merge.

    Needs `key`: the noise of draw s and the wrapped method's own key for it come from
    `split(key, (samples, 2))[s]`, so results do not depend on `batch_size` (which evaluates that many
    draws at a time, bounding memory; None evaluates all draws at once). The draws depend on the
    batch shape, so a sample's result depends on the batch it is in (unlike deterministic methods).
    """
    if not callable(method):
        raise ValueError(f"method: expected an attribution function attribute(x, target, *, key), "
                         f"got {method!r}")
    check_samples(samples)
    check_sigma(sigma)
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    check_batch_size(batch_size)

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        require_key(key, "smoothgrad")
        check_target(target, x.shape[0])
        if relative:
            axes = tuple(range(1, x.ndim))
            std = sigma * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
        else:
            std = jnp.asarray(sigma, x.dtype)

        def one_draw(keys):
            noisy = x + std * jax.random.normal(keys[0], x.shape, x.dtype)
            return method(noisy, target, key=keys[1])

        def partial(keys):
            a = jax.vmap(one_draw)(keys)
            if kind == "mean":
                return a.sum(0)
            if kind == "square":
                return (a * a).sum(0)
            mean = a.mean(0)
            return jnp.asarray(a.shape[0], a.dtype), mean, ((a - mean) ** 2).sum(0)

        keys = jax.random.split(key, (samples, 2))  # per draw: noise key, key for the wrapped method
        if kind == "var":
            n, _, m2 = chunked_reduce(partial, keys, batch_size, _merge_moments)
            return m2 / n
        return chunked_reduce(partial, keys, batch_size, jnp.add) / samples

    return attribute
