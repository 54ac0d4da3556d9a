"""Saliency methods as transforms of a classifier.

A classifier is `f(x) -> logits[batch, classes]`; a method maps it to
`attribute(x, target, *, key=None) -> array shaped like x` (`target`: int [batch]).
Sample-expanding methods take one memory knob, `batch_size`; path methods can return their
completeness delta. `smoothgrad` wraps any method; the SHAP variants average over baselines.
"""

from sgt.saliency.basic import input_x_gradient, occlusion
from sgt.saliency.deeplift import deeplift, deeplift_shap
from sgt.saliency.gradient import gradient, target_score
from sgt.saliency.guided import guided_backprop
from sgt.saliency.integrated import QUADRATURES, integrated_gradients, quadrature
from sgt.saliency.postprocess import absolute, reduce_channels, scale
from sgt.saliency.shap import gradient_shap
from sgt.saliency.smoothing import smoothgrad

__all__ = [
    "gradient", "target_score", "input_x_gradient", "integrated_gradients", "quadrature", "QUADRATURES",
    "smoothgrad", "gradient_shap", "deeplift", "deeplift_shap", "guided_backprop", "occlusion",
    "absolute", "reduce_channels", "scale",
]
