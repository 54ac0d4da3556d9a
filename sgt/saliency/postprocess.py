"""Post-processing of attribution maps, as the paper's evaluations use them (batched over axis 0)."""

from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp


def absolute(a: jax.Array) -> jax.Array:
    """Elementwise magnitude |a|."""
    return jnp.abs(a)


def reduce_channels(a: jax.Array, how: str = "mean", axis: int = -1) -> jax.Array:
    """Collapse the channel axis (the last one for NHWC images) by its mean or sum; the axis is removed."""
    if how == "mean":
        return a.mean(axis=axis)
    if how == "sum":
        return a.sum(axis=axis)
    raise ValueError(f"how: expected 'mean' or 'sum', got {how!r}")


def scale(a: jax.Array, range: tuple[float, float] = (0.0, 1.0)) -> jax.Array:  # noqa: A002
    """Per-sample min-max scaling: each sample's [min, max] maps linearly onto `range`.

    `range=(0, 1)` normalises magnitudes; `range=(-1, 1)` is the linear map of the paper's violin
    plots. The extremes are taken over all non-batch axes. A constant sample (max == min) maps to 0.
    """
    try:
        low, high = (float(v) for v in range)
    except (TypeError, ValueError):
        raise ValueError(f"range: expected a pair (low, high), got {range!r}") from None
    if not low < high:
        raise ValueError(f"range: expected low < high, got {range!r}")
    axes = tuple(builtins.range(1, a.ndim))
    lo = a.min(axis=axes, keepdims=True)
    span = a.max(axis=axes, keepdims=True) - lo
    flat = span == 0
    unit = (a - lo) / jnp.where(flat, 1, span)
    return jnp.where(flat, jnp.zeros_like(a), low + (high - low) * unit)

