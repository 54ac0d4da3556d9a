"""Saliency methods by name: the one list that experiments, reports and benchmarks read.

An entry builds an attribution function from a classifier `f` and keyword options. Experiments
hand every method the same context — a per-sample `baseline` and a pool of `baselines` — and an
entry takes only what it declares (`uses`), so a new method is one module plus one `register`
call::

    register("MyMethod", Method(build=my_method, description="..."))
    attribute = build("MyMethod", f)        # attribute(x, target, *, key=None)
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax.numpy as jnp

from sgt._registry import Registry
from sgt.saliency._common import Attribution, Classifier
from sgt.saliency.deeplift import deeplift, deeplift_shap
from sgt.saliency.gradient import gradient
from sgt.saliency.guided import guided_backprop
from sgt.saliency.input_x_gradient import input_x_gradient
from sgt.saliency.integrated import integrated_gradients
from sgt.saliency.occlusion import occlusion
from sgt.saliency.shap import gradient_shap
from sgt.saliency.smoothing import smoothgrad

CONTEXT = ("baseline", "baselines")  # what an experiment may hand to every method


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered saliency method.

    build(f, **options) -> attribute. `uses`: which of CONTEXT it takes (a per-sample `baseline`,
    a pool `baselines` [n, *x.shape[1:]]). `random`: needs a key. `complete`: attributions sum to
    f(x) − f(baseline) (up to quadrature error for IG).
    """

    build: Callable[..., Attribution]
    description: str
    uses: tuple[str, ...] = ()
    random: bool = False
    complete: bool = False

    def __post_init__(self):
        unknown = set(self.uses) - set(CONTEXT)
        if unknown:
            raise ValueError(f"uses: expected some of {CONTEXT}, got {sorted(unknown)}")


def magnitude(attribute: Attribution) -> Attribution:
    """The elementwise |·| of an attribution function (Captum's `abs=True`)."""
    return lambda x, target, *, key=None: jnp.abs(attribute(x, target, key=key))


def _gradient(f: Classifier, *, absolute: bool = False) -> Attribution:
    return magnitude(gradient(f)) if absolute else gradient(f)


def _smoothgrad(f: Classifier, *, absolute: bool = False, **options) -> Attribution:
    """SmoothGrad of the (optionally absolute) gradient; `options` as `sgt.saliency.smoothgrad`."""
    return smoothgrad(_gradient(f, absolute=absolute), **options)


REGISTRY = Registry("saliency method", Method, {
    "Grad": Method(_gradient, "input gradient ∂f_t/∂x (absolute=True: its magnitude)"),
    "InputXGrad": Method(input_x_gradient, "input × gradient"),
    "IG": Method(integrated_gradients, "Integrated Gradients", uses=("baseline",), complete=True),
    "SmoothGrad": Method(_smoothgrad, "SmoothGrad / SmoothGrad² / VarGrad of the gradient", random=True),
    "GradSHAP": Method(gradient_shap, "GradientSHAP (expected gradients)", uses=("baselines",), random=True),
    "DeepLIFT": Method(deeplift, "DeepLIFT, Rescale rule, as a rewrite of the traced program",
                       uses=("baseline",), complete=True),
    "DeepSHAP": Method(deeplift_shap, "DeepLIFT-SHAP: DeepLIFT averaged over a pool of baselines",
                       uses=("baselines",), complete=True),
    "GuidedBP": Method(guided_backprop, "Guided Backpropagation"),
    "Occlusion": Method(occlusion, "sliding-window occlusion (needs window=…, stride=…)", uses=("baseline",)),
})
register, unregister, get = REGISTRY.register, REGISTRY.unregister, REGISTRY.lookup


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def build(name: str, f: Classifier, *, baseline=None, baselines=None, **options) -> Attribution:
    """`name`'s attribution function for classifier `f`.

    The context (`baseline`, `baselines`) is passed only to methods that declare it in `uses`;
    `options` go to the method as they are.
    """
    method = get(name)
    context = {"baseline": baseline, "baselines": baselines}
    given = {k: v for k, v in context.items() if k in method.uses and v is not None}
    return method.build(f, **given, **options)


__all__ = ["CONTEXT", "Method", "REGISTRY", "build", "get", "magnitude", "names", "register", "unregister"]
