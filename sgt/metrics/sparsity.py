"""How concentrated a saliency map is: the Gini index and the share of near-zero entries.

Both take maps `[N, ...]` (axis 0 indexes samples; every other entry of a sample counts, channels
included), use magnitudes |s|, and return one float64 value per sample. Plain numpy.
"""

from __future__ import annotations

import numpy as np


def _magnitudes(saliency) -> np.ndarray:
    s = np.asarray(saliency, np.float64)
    if s.ndim < 2 or s.shape[0] == 0 or s[0].size == 0:
        raise ValueError(f"saliency: expected a non-empty array [N, entries...], got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("saliency: contains non-finite values (nan or inf)")
    return np.abs(s.reshape(len(s), -1))


def gini(saliency) -> np.ndarray:
    """Per sample `[N]`, the Gini index of |s| over all its entries (Hurley & Rickard 2009).

    With the n magnitudes sorted ascending, c₍₁₎ ≤ … ≤ c₍ₙ₎,

        G = 1 − 2 Σₖ (c₍ₖ₎ / ‖c‖₁) · (n − k + ½) / n,

    which is 0 for a uniform map and 1 − 1/n for a map with a single nonzero entry; higher is
    sparser. It equals Σᵢⱼ |cᵢ − cⱼ| / (2 n Σᵢ cᵢ). An all-zero sample scores 0.
    """
    c = np.sort(_magnitudes(saliency), axis=1)
    n = c.shape[1]
    total = c.sum(1)
    weights = (n - np.arange(1, n + 1) + 0.5) / n
    share = np.divide(c, total[:, None], out=np.zeros_like(c), where=total[:, None] > 0)
    g = 1.0 - 2.0 * (share * weights).sum(1)
    return np.where(total > 0, g, 0.0)


def fraction_below(saliency, relative: float = 0.1) -> np.ndarray:
    """Per sample `[N]`, the share of entries with |s| < `relative` × that sample's max |s|.

    With the default 0.1: the fraction of entries below 10 % of the largest. An all-zero sample
    has no entry below its maximum and scores 0.
    """
    if not 0.0 < relative <= 1.0:
        raise ValueError(f"relative: expected a number in (0, 1], got {relative}")
    a = _magnitudes(saliency)
    return (a < relative * a.max(1, keepdims=True)).mean(1)


__all__ = ["fraction_below", "gini"]
