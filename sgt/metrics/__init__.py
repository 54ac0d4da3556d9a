"""Interpretability metrics."""

from sgt.metrics.ground_truth import mass_inside
from sgt.metrics.timeseries import (
    LEVELS,
    MASK_LEVELS,
    aup_aur,
    aupr,
    euclidean,
    masked_accuracy,
    masked_accuracy_auc,
    mass_masks,
    precision_recall,
    random_baseline,
    rescale,
    weighted_jaccard,
)

__all__ = [
    "LEVELS",
    "MASK_LEVELS",
    "aup_aur",
    "aupr",
    "euclidean",
    "masked_accuracy",
    "masked_accuracy_auc",
    "mass_inside",
    "mass_masks",
    "precision_recall",
    "random_baseline",
    "rescale",
    "weighted_jaccard",
]
