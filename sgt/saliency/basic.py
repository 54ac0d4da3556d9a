"""Input × gradient, sliding-window occlusion, and the chunked evaluation the sampling methods share."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sgt._checks import check_target
from sgt.saliency.gradient import Classifier, gradient, target_score


def check_batch_size(batch_size) -> None:
    """`batch_size` is None (everything at once) or a positive int."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size: expected None or a positive int, got {batch_size!r}")


def chunked_reduce(fn: Callable[[Any], Any], xs: Any, batch_size: int | None,
                   combine: Callable[[Any, Any], Any]) -> Any:
    """Reduce `fn` over consecutive chunks of the leading axis of the pytree `xs`.

    `fn` maps a chunk (a slice of `xs` along axis 0) to a partial result of fixed structure, and
    `combine(acc, part)` merges partial results; it must be associative and accept an all-zero `acc`
    as the empty reduction (a sum; a (count, mean, M2) merge). With `batch_size=None` (or ≥ the length)
    `fn` sees all of `xs` at once: fastest, most memory. Otherwise the full chunks of `batch_size` run
    one after another in a `lax.scan` that carries the running reduction, and a shorter remainder
    chunk runs last (as `jax.lax.map(..., batch_size=…)` splits its work), so peak memory is that of
    one chunk and the per-chunk outputs are never stacked.
    """
    n = jax.tree.leaves(xs)[0].shape[0]
    if batch_size is None or batch_size >= n:
        return fn(xs)
    full = n // batch_size
    chunks = jax.tree.map(lambda a: a[:full * batch_size].reshape(full, batch_size, *a.shape[1:]), xs)
    first = jax.tree.map(lambda a: a[0], chunks)
    zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, first))
    acc, _ = jax.lax.scan(lambda carry, chunk: (combine(carry, fn(chunk)), None), zero, chunks)
    if n % batch_size:
        acc = combine(acc, fn(jax.tree.map(lambda a: a[full * batch_size:], xs)))
    return acc


def merged_gradient(f: Classifier, points: jax.Array, target: jax.Array) -> jax.Array:
    """∂f_target/∂x at a stack of points [c, batch, ...], as one gradient call on [c·batch, ...].

    Samples do not interact in `f`, so folding the stack into the batch axis evaluates every point
    with its own example's target in a single forward/backward pass.
    """
    c, batch = points.shape[:2]
    flat = points.reshape(c * batch, *points.shape[2:])
    grads = jax.grad(lambda p: target_score(f(p), jnp.tile(target, c)))(flat)
    return grads.reshape(points.shape)


def input_x_gradient(f: Classifier):
    """Input × gradient: x · ∂f(x)_target/∂x, elementwise, for every sample (signed).

    Equal to Integrated Gradients from a zero baseline when `f` is linear.
    """
    grad_fn = gradient(f)

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        del key  # deterministic method
        return x * grad_fn(x, target)

    return attribute


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
    baseline = jnp.asarray(baseline)

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
        try:
            fits = np.broadcast_shapes(baseline.shape, x.shape) == x.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"baseline: shape {baseline.shape} does not broadcast to the input "
                             f"shape {x.shape}; use a scalar, x.shape[1:] or x.shape")
        base = jnp.broadcast_to(baseline.astype(x.dtype), x.shape)

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
            return jnp.take_along_axis(f(occluded), target[:, None], axis=1)[:, 0]

        if batch_size is None:
            scores = jax.vmap(occluded_score)(positions)
        else:
            scores = jax.lax.map(occluded_score, positions, batch_size=batch_size)
        full = jnp.take_along_axis(f(x), target[:, None], axis=1)[:, 0]
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
