"""Scores of saliency maps against known informative features."""

from __future__ import annotations

import numpy as np


def mass_inside(saliency: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per sample, the share of saliency magnitude on the true features: Σ_{i∈G} |s_i| / Σ_i |s_i|.

    A map that ignores the ground truth scores the box's share of the cells on average
    (|G| / cells); a perfect map scores 1. Samples with an all-zero map score 0.
    """
    if saliency.shape != truth.shape:
        raise ValueError(f"truth: expected the shape of saliency {saliency.shape}, got {truth.shape}")
    s = np.abs(np.asarray(saliency, np.float64)).reshape(len(saliency), -1)
    inside = (s * np.asarray(truth, bool).reshape(len(truth), -1)).sum(1)
    total = s.sum(1)
    return np.divide(inside, total, out=np.zeros_like(inside), where=total > 0)
