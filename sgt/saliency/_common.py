"""What every saliency method shares: the classifier type, the target score, the baseline rule,
the argument checks and the chunked evaluation of sample-expanding methods."""

from __future__ import annotations

from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp

from sgt._checks import check_target

Classifier = Callable[[jax.Array], jax.Array]
"""`f(x) -> logits[batch, classes]`, parameters closed over; samples must not interact in `f`."""


class Attribution(Protocol):
    """`attribute(x, target, *, key=None) -> array shaped like x` (`target`: int [batch])."""

    def __call__(self, x: jax.Array, target: jax.Array, *, key: jax.Array | None = None) -> Any: ...


def per_sample_score(logits: jax.Array, target: jax.Array) -> jax.Array:
    """logits[i, target_i] for every sample i: shape [batch]."""
    return jnp.take_along_axis(logits, target[:, None], axis=1)[:, 0]


def target_score(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Σ_i logits[i, target_i]: the scalar whose input gradient holds every sample's own saliency."""
    return per_sample_score(logits, target).sum()


def resolve_baseline(baseline, x: jax.Array, name: str = "baseline") -> jax.Array:
    """The reference input, shaped like x and of x's dtype.

    None → zeros; a scalar → that value everywhere; an array shaped x.shape[1:] → one baseline
    shared by every sample; an array shaped x.shape → one baseline per sample.
    """
    if baseline is None:
        return jnp.zeros_like(x)
    shape = jnp.shape(baseline)
    if shape not in ((), x.shape[1:], x.shape):
        raise ValueError(f"{name}: expected a scalar, shape {x.shape[1:]} (shared by the batch) or "
                         f"{x.shape} (one per sample), got {shape}")
    return jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)


def check_batch_size(batch_size) -> None:
    """`batch_size` is None (everything at once) or a positive int."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size: expected None or a positive int, got {batch_size!r}")


def check_samples(samples) -> None:
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples: expected an int >= 1, got {samples!r}")


def check_sigma(sigma) -> None:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma >= 0:
        raise ValueError(f"sigma: expected a number >= 0, got {sigma!r}")


def require_key(key, method: str) -> None:
    if key is None:
        raise ValueError(f"key: {method} draws random samples and needs a jax.random key, got None")


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


__all__ = ["Attribution", "Classifier", "check_batch_size", "check_samples", "check_sigma", "check_target",
           "chunked_reduce", "merged_gradient", "per_sample_score", "require_key", "resolve_baseline",
           "target_score"]
