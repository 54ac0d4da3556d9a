"""Flax Linen models, by name: `sgt.models.get("tcn", num_classes=2)`; `describe()` lists them.

Every model is called as `model.apply(variables, x, train=bool, ...)` and returns float32 logits
[batch, classes]; `dtype` sets the compute dtype (parameters stay float32).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from sgt.models.mnist_cnn import MnistCNN
from sgt.models.resnet import CifarResNet, ResNet18
from sgt.models.small_cnn import SmallCNN
from sgt.models.text import TextClassifier
from sgt.models.timeseries import TCN, LSTMCellAttention, LSTMClassifier
from sgt.models.transformer import Transformer
from sgt.models.vgg import VGG16, load_vgg16_features


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered model: its constructor, a one-line description and a default example input."""

    build: Callable[..., nn.Module]
    description: str
    input_shape: tuple[int, ...]  # one example, without the batch axis
    input_dtype: str = "float32"


REGISTRY: dict[str, Entry] = {
    "mnist_cnn": Entry(MnistCNN, "MNIST CNN of the authors' code (2 convs, max-pool, 2 dense)", (28, 28, 1)),
    "small_cnn": Entry(SmallCNN, "small CNN for 'shapes': 3×3 convs 8-16-16 with 2×2 max-pools, global max-pool, "
                                 "dense", (28, 28, 1)),
    "resnet18": Entry(ResNet18, "ResNet-18, CIFAR stem (3×3 conv, no max-pool), projection shortcuts",
                      (32, 32, 3)),
    "resnet20": Entry(functools.partial(CifarResNet, depth=20),
                      "CIFAR ResNet-20 of the authors' code (16/32/64, option-A shortcuts)", (32, 32, 3)),
    "resnet32": Entry(functools.partial(CifarResNet, depth=32),
                      "CIFAR ResNet-32 of the authors' code (their default architecture)", (32, 32, 3)),
    "resnet56": Entry(functools.partial(CifarResNet, depth=56),
                      "CIFAR ResNet-56 of the authors' code", (32, 32, 3)),
    "vgg16": Entry(VGG16, "VGG-16 with the authors' BIRD head 25088-4048-2048 (260 classes)", (224, 224, 3)),
    "bilstm": Entry(TextClassifier, "BiLSTM text classifier over token ids (vocab 1000, embed 100, hidden 128)",
                    (32,), "int32"),
    "lstm": Entry(LSTMClassifier, "1-layer LSTM, hidden 5, last step → linear (benchmark)", (50, 50)),
    "lstm_cell_attention": Entry(LSTMCellAttention, "LSTM with input-cell attention, hidden 5, r=10, d_a=50",
                                 (50, 50)),
    "tcn": Entry(TCN, "TCN, channels 5-5-50, kernel 4, dilations 1-2-4, max-pool over time (benchmark)",
                 (50, 50)),
    "transformer": Entry(Transformer, "causal pre-norm Transformer, 6 layers, 5 heads, FF 400, d_model = features",
                         (50, 50)),
}


def get(name: str, **options) -> nn.Module:
    """The model registered as `name`, built with `options` (e.g. num_classes, dtype)."""
    if name not in REGISTRY:
        raise ValueError(f"model: unknown model {name!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name].build(**options)


def example_input(name: str, batch: int = 1) -> jax.ShapeDtypeStruct:
    """The shape and dtype of a default input batch for model `name` (no memory is allocated)."""
    entry = REGISTRY[name]
    return jax.ShapeDtypeStruct((batch, *entry.input_shape), jnp.dtype(entry.input_dtype))


def count_params(model: nn.Module, x: jax.ShapeDtypeStruct) -> int:
    """Number of parameters of `model` on input `x`, from `jax.eval_shape` (nothing is allocated)."""
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False)["params"], x)
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    input_shape: tuple[int, ...]
    input_dtype: str
    num_params: int


def describe(**options) -> list[ModelInfo]:
    """Every registered model with its description and parameter count on its default example input.

    `options` (e.g. num_classes=10) are passed to every model; the default is each model's own.
    """
    return [ModelInfo(name, entry.description, entry.input_shape, entry.input_dtype,
                      count_params(get(name, **options), example_input(name)))
            for name, entry in REGISTRY.items()]


__all__ = ["get", "describe", "example_input", "count_params", "REGISTRY", "Entry", "ModelInfo",
           "MnistCNN", "SmallCNN", "ResNet18", "CifarResNet", "VGG16", "load_vgg16_features", "TextClassifier",
           "TCN", "LSTMClassifier", "LSTMCellAttention", "Transformer"]
