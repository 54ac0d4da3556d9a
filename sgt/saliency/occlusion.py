"""Sliding-window occlusion (Zeiler & Fergus 2014)."""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sgt.saliency._common import (Classifier, check_batch_size, check_target, per_sample_score,
                                 resolve_baseline)


def _per_axis(name: str, value, ndim: int) -> tuple[int, ...]:
    """An int, or a tuple of `ndim` ints, as a tuple of positive ints."""
    values = (value,) * ndim if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != ndim or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                      and v >= 1 for v in values):
        raise ValueError(f"{name}: expected a positive int or a tuple of {ndim} positive ints "
                         f"(one per non-batch axis), got {value!r}")
    return tuple(int(v) for v in values)


def occlusion(f: Classifier, *, window: Sequence[int], stride: Sequence[int] | int,
              baseline: float | jax.Array = 0.0, batch_size: int | None = None):
    """Sliding-window occlusion (Zeiler & Fergus 2014) with Captum's `Occlusion` semantics.

    A window of shape `window` (one entry per non-batch axis) starts at every multiple of `stride`
    along each axis, ⌈(size − window) / stride⌉ + 1 positions per axis; where the last start leaves the
    window hanging over the edge, the window is cut at the edge (as Captum does). For each window the
    covered entries are replaced by `baseline` (a scalar, an array shaped x.shape[1:], or x.shape) and
    the drop f(x)_target − f(x_occluded)_target is recorded. An entry's attribution is the mean drop
    over the windows that cover it. `stride` may not exceed `window` on an axis that the window does
    not span whole (entries would be left uncovered).

    All windows are evaluated as one vectorised batch; `batch_size` instead evaluates that many
    windows at a time (`jax.lax.map`), bounding memory.
    """
    check_batch_size(batch_size)
    window_arg, stride_arg = window, stride

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        del key  # deterministic method
        check_target(target, x.shape[0])
        dims = x.shape[1:]
        win = _per_axis("window", window_arg, len(dims))
        step = _per_axis("stride", stride_arg, len(dims))
        if any(w > d for w, d in zip(win, dims)):
            raise ValueError(f"window: {win} exceeds the input's non-batch shape {dims}")
        if any(s > w and w < d for s, w, d in zip(step, win, dims)):
            raise ValueError(f"stride: {step} may not exceed window {win} on an axis the window "
                             f"does not cover whole (input shape {dims})")
        base = resolve_baseline(baseline, x)

        # covers[d][k, j]: does the k-th window position along axis d cover index j?
        counts = [math.ceil((d - w) / s) + 1 for d, w, s in zip(dims, win, step)]
        covers = []
        for d, w, s, k in zip(dims, win, step, counts):
            starts = np.arange(k)[:, None] * s
            j = np.arange(d)[None, :]
            covers.append(((j >= starts) & (j < starts + w)).astype(np.float32))
        positions = np.unravel_index(np.arange(math.prod(counts)), counts)
        positions = tuple(jnp.asarray(p, jnp.int32) for p in positions)
        covers_j = [jnp.asarray(c, x.dtype) for c in covers]

        def occluded_score(pos):  # pos: one window's position index per axis -> target scores [batch]
            mask = covers_j[0][pos[0]]
            for axis in range(1, len(dims)):
                mask = mask[..., None] * covers_j[axis][pos[axis]]
            occluded = jnp.where(mask > 0, base, x)
            return per_sample_score(f(occluded), target)

        if batch_size is None:
            scores = jax.vmap(occluded_score)(positions)
        else:
            scores = jax.lax.map(occluded_score, positions, batch_size=batch_size)
        full = per_sample_score(f(x), target)
        drops = (full[None, :] - scores).T.reshape(x.shape[0], *counts)
        # Spread each window's drop over the entries it covers, one axis at a time:
        # Σ_windows drop · mask, where the mask is the outer product of the per-axis covers.
        total = drops
        for c in covers_j:
            total = jnp.tensordot(total, c, axes=([1], [0]))
        coverage = covers[0].sum(0)
        for c in covers[1:]:
            coverage = np.multiply.outer(coverage, c.sum(0))
        return (total / jnp.asarray(coverage, x.dtype)).astype(x.dtype)

    return attribute
