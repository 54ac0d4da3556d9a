"""Time-series classifiers of the interpretability benchmark (timeseries-benchmark.md §2.1).

Inputs are [batch, time, features]; outputs are logits [batch, classes].
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class WeightNormCausalConv(nn.Module):
    """Causal dilated 1-D convolution with weight normalisation w = g · v / ‖v‖ (per output channel).

    Left padding (kernel − 1)·dilation equals the reference's symmetric padding plus "chomp".
    v ~ N(0, 0.01) and g = ‖v‖ at init, so the initial weight is v (as PyTorch's weight_norm).
    """

    features: int
    kernel_size: int
    dilation: int

    @nn.compact
    def __call__(self, x):
        v = self.param("v", nn.initializers.normal(0.01), (self.kernel_size, x.shape[-1], self.features))
        g = self.param("g", lambda _, v: jnp.linalg.norm(v.reshape(-1, v.shape[-1]), axis=0), v)
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        w = v * (g / jnp.linalg.norm(v.reshape(-1, v.shape[-1]), axis=0))
        pad = (self.kernel_size - 1) * self.dilation
        y = jax.lax.conv_general_dilated(
            x, w, window_strides=(1,), padding=[(pad, 0)], rhs_dilation=(self.dilation,),
            dimension_numbers=("NWC", "WIO", "NWC"))
        return y + b


class TemporalBlock(nn.Module):
    features: int
    kernel_size: int
    dilation: int
    dropout: float

    @nn.compact
    def __call__(self, x, train: bool):
        y = x
        for _ in range(2):
            y = nn.relu(WeightNormCausalConv(self.features, self.kernel_size, self.dilation)(y))
            y = nn.Dropout(self.dropout, deterministic=not train)(y)
        residual = x if x.shape[-1] == self.features else nn.Conv(
            self.features, (1,), kernel_init=nn.initializers.normal(0.01))(x)
        return nn.relu(y + residual)


class TCN(nn.Module):
    """Temporal convolutional network: blocks with dilations 1, 2, 4, …, max-pool over time, linear.

    Defaults are the benchmark's: channels [5, 5, 50], kernel 4, dropout 0.1.
    """

    num_classes: int = 2
    channels: Sequence[int] = (5, 5, 50)
    kernel_size: int = 4
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x, train: bool = False):
        for level, features in enumerate(self.channels):
            x = TemporalBlock(features, self.kernel_size, 2**level, self.dropout)(x, train)
        return nn.Dense(self.num_classes)(x.max(axis=1))


class LSTMClassifier(nn.Module):
    """1-layer LSTM (hidden 5), dropout 0.1 on its input and output, last step → linear."""

    num_classes: int = 2
    hidden: int = 5
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        h = nn.RNN(nn.OptimizedLSTMCell(self.hidden))(x)[:, -1]
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return nn.Dense(self.num_classes)(h)
