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


def batch_message(batch_size, devices: int) -> str:
    """Why `batch_size` cannot be split over `devices`, naming the nearest sizes that can."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        return f"batch_size: expected a positive int, got {batch_size!r}"
    lower, upper = batch_size // devices * devices, -(-batch_size // devices) * devices
    nearest = " or ".join(str(b) for b in (lower, upper) if b >= devices)
    return (f"batch_size: {batch_size} cannot be split evenly over the {devices} devices of the mesh; "
            f"use a multiple of {devices} (nearest: {nearest})")
