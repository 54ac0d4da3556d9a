"""GradientSHAP / expected gradients (Lundberg & Lee 2017; Erion et al. 2021), as Captum's GradientShap."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgt.saliency._common import (Classifier, check_batch_size, check_samples, check_sigma, check_target,
                                 chunked_reduce, merged_gradient, require_key)


def gradient_shap(f: Classifier, *, baselines, samples: int = 50, sigma: float = 0.0,
                  batch_size: int | None = None):
    """Expected gradients over a set of baselines, Captum's `GradientShap` definition.

    `baselines` has shape [n, *x.shape[1:]]. For every input x_i and each of `samples` draws:
    a baseline b = baselines[j] with j uniform in {0..n−1}, α ~ U(0, 1) and, when `sigma` > 0, input
    noise ε ~ N(0, σ²) per entry (σ absolute, Captum's `stdevs`); with x̃ = x_i + ε,

        a = (x̃ − b) · ∂f_target/∂x (b + α (x̃ − b)),

    and the attribution is the mean of a over the draws. The multiplier uses the noisy input x̃, as in
    Captum (its NoiseTunnel perturbs the input before InputBaselineXGradient sees it), so the two agree
    in expectation. With one baseline and sigma=0 the expectation is Integrated Gradients from it.

    Needs `key`; the draws for sample s come from `split(key, (samples, 3))[s]` so the result does not
    depend on `batch_size`, which evaluates that many draws (× the batch) at a time (None: all at once).
    """
    baselines = jnp.asarray(baselines)
    if baselines.ndim < 1 or baselines.shape[0] < 1:
        raise ValueError(f"baselines: expected an array [n >= 1, *input shape], got shape {baselines.shape}")
    check_samples(samples)
    check_sigma(sigma)
    check_batch_size(batch_size)

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        require_key(key, "gradient_shap")
        check_target(target, x.shape[0])
        if baselines.shape[1:] != x.shape[1:]:
            raise ValueError(f"baselines: expected shape [n, {', '.join(map(str, x.shape[1:]))}] "
                             f"matching the input, got {baselines.shape}")
        pool = baselines.astype(x.dtype)
        batch = x.shape[0]

        def draw(keys):
            k_base, k_alpha, k_noise = keys
            b = pool[jax.random.randint(k_base, (batch,), 0, pool.shape[0])]
            alpha = jax.random.uniform(k_alpha, (batch,) + (1,) * (x.ndim - 1), x.dtype)
            noisy = x + sigma * jax.random.normal(k_noise, x.shape, x.dtype) if sigma > 0 else x
            return noisy - b, b + alpha * (noisy - b)

        def partial(keys):
            diffs, points = jax.vmap(draw)(keys)
            return (diffs * merged_gradient(f, points, target)).sum(0)

        keys = jax.random.split(key, (samples, 3))  # per draw: baseline, α and noise keys
        return chunked_reduce(partial, keys, batch_size, jnp.add) / samples

    return attribute
