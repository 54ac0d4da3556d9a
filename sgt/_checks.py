"""Argument checks shared by the public functions; each raises a ValueError naming the argument."""

from __future__ import annotations

import jax
import numpy as np


def is_concrete(x) -> bool:
    """True when the values of `x` are known (outside `jit` tracing)."""
    return not isinstance(x, jax.core.Tracer)


def check_target(target, batch: int) -> None:
    """`target` must be an integer vector [batch]."""
    shape = tuple(np.shape(target))
    if shape != (batch,):
        raise ValueError(f"target: expected an integer array of shape ({batch},), got shape {shape}")
    dtype = np.dtype(target.dtype if hasattr(target, "dtype") else np.asarray(target).dtype)
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"target: expected integer class indices, got dtype {dtype}")


def check_finite(name: str, x) -> None:
    """Raise if a concrete array holds NaN or inf (traced values cannot be inspected)."""
    if is_concrete(x):
        finite = np.isfinite(np.asarray(x))
        if not finite.all():
            raise ValueError(f"{name}: contains {finite.size - finite.sum()} non-finite values (NaN or inf)")
