"""Interpretability metrics: time-series benchmark scores, removal curves and ROAR, sparsity, and ERASER's
erasure scores of token rankings (`sgt.metrics.erasure`)."""

from sgt.metrics import erasure
from sgt.metrics.erasure import erasure_scores
from sgt.metrics.ground_truth import mass_inside
from sgt.metrics.removal import (
    FRACTIONS,
    channel_mean,
    random_scores,
    removal_auc,
    removal_count,
    removal_curve,
    removal_ranks,
    remove_top,
    roar_set,
    top_mask,
)
from sgt.metrics.sparsity import fraction_below, gini
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
    "FRACTIONS",
    "LEVELS",
    "MASK_LEVELS",
    "aup_aur",
    "erasure",
    "erasure_scores",
    "aupr",
    "channel_mean",
    "euclidean",
    "fraction_below",
    "gini",
    "masked_accuracy",
    "masked_accuracy_auc",
    "mass_inside",
    "mass_masks",
    "precision_recall",
    "random_baseline",
    "random_scores",
    "removal_auc",
    "removal_count",
    "removal_curve",
    "removal_ranks",
    "remove_top",
    "rescale",
    "roar_set",
    "top_mask",
    "weighted_jaccard",
]
