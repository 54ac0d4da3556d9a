"""Flax Linen models, by name: `sgt.models.get("tcn", num_classes=2)`."""

from __future__ import annotations

import flax.linen as nn

from sgt.models.mnist_cnn import MnistCNN
from sgt.models.timeseries import TCN, LSTMClassifier

REGISTRY: dict[str, type[nn.Module]] = {
    "mnist_cnn": MnistCNN,
    "tcn": TCN,
    "lstm": LSTMClassifier,
}


def get(name: str, **options) -> nn.Module:
    """The model registered as `name`, built with `options` (e.g. num_classes)."""
    if name not in REGISTRY:
        raise ValueError(f"model: unknown model {name!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name](**options)


__all__ = ["get", "REGISTRY", "MnistCNN", "TCN", "LSTMClassifier"]
