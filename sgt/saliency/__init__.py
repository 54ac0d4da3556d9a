"""Saliency methods as transforms of a classifier.

A classifier is `f(x) -> logits[batch, classes]`; a method maps it to
`attribute(x, target, *, key=None) -> array shaped like x` (`target`: int [batch]).
Sample-expanding methods take one memory knob, `batch_size`; path methods can return their
completeness delta. `smoothgrad` wraps any method; the SHAP variants average over baselines.
`REGISTRY` names every method (`build("IG", f, baseline=…)`); `register` adds one.
"""

from sgt.saliency._common import Attribution, Classifier, per_sample_score, resolve_baseline, target_score
from sgt.saliency.deeplift import deeplift, deeplift_shap
from sgt.saliency.gradient import gradient
from sgt.saliency.guided import guided_backprop
from sgt.saliency.input_x_gradient import input_x_gradient
from sgt.saliency.integrated import QUADRATURES, integrated_gradients, quadrature
from sgt.saliency.occlusion import occlusion
from sgt.saliency.postprocess import absolute, reduce_channels, scale
from sgt.saliency.registry import REGISTRY, Method, build, get, magnitude, names, register, unregister
from sgt.saliency.shap import gradient_shap
from sgt.saliency.smoothing import smoothgrad

__all__ = [
    "Attribution", "Classifier", "per_sample_score", "resolve_baseline", "target_score",
    "gradient", "input_x_gradient", "integrated_gradients", "quadrature", "QUADRATURES",
    "smoothgrad", "gradient_shap", "deeplift", "deeplift_shap", "guided_backprop", "occlusion",
    "absolute", "reduce_channels", "scale",
    "REGISTRY", "Method", "build", "get", "magnitude", "names", "register", "unregister",
]
