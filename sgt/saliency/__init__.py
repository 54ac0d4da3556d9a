"""Saliency methods as transforms of a classifier.

A classifier is `f(x) -> logits[batch, classes]`; a method maps it to
`attribute(x, target, *, key=None) -> array shaped like x`.
"""

from sgt.saliency.gradient import gradient, target_score

__all__ = ["gradient", "target_score"]
