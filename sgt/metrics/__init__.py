"""Interpretability metrics."""

from sgt.metrics.ground_truth import mass_inside

__all__ = ["mass_inside"]
