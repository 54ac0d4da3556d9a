"""Time-series classifiers of the interpretability benchmark (docs/timeseries.md).

Inputs are [batch, time, features]; outputs are logits [batch, classes].
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from sgt import nn_ops


def logits_dtype(dtype) -> jnp.dtype:
    """The dtype of a model's logits for compute dtype `dtype`: float32, or float64 for a float64 model."""
    return jnp.promote_types(dtype, jnp.float32)


class WeightNormCausalConv(nn.Module):
    """Causal dilated 1-D convolution with weight normalisation w = g · v / ‖v‖ (per output channel).

    Left padding (kernel − 1)·dilation equals the reference's symmetric padding plus "chomp".
    v ~ N(0, 0.01) and g = ‖v‖ at init, so the initial weight is v (as PyTorch's weight_norm).
    """

    features: int
    kernel_size: int
    dilation: int
    dtype: jnp.dtype = jnp.float32
    conv_impl: str | None = None
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        v = self.param("v", nn.initializers.normal(0.01), (self.kernel_size, x.shape[-1], self.features),
                       self.param_dtype)
        g = self.param("g", lambda _, v: jnp.linalg.norm(v.reshape(-1, v.shape[-1]), axis=0), v)
        b = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
        w = (v * (g / jnp.linalg.norm(v.reshape(-1, v.shape[-1]), axis=0))).astype(self.dtype)
        pad = (self.kernel_size - 1) * self.dilation
        y = nn_ops.conv(jnp.asarray(x, self.dtype), w, 1, [(pad, 0)], kernel_dilation=self.dilation,
                        impl=self.conv_impl)
        return y + b.astype(self.dtype)


class TemporalBlock(nn.Module):
    features: int
    kernel_size: int
    dilation: int
    dropout: float
    dtype: jnp.dtype = jnp.float32
    conv_impl: str | None = None
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        y = x
        for _ in range(2):
            y = nn.relu(WeightNormCausalConv(self.features, self.kernel_size, self.dilation, self.dtype,
                                             self.conv_impl, self.param_dtype)(y))
            y = nn.Dropout(self.dropout, deterministic=not train)(y)
        residual = x if x.shape[-1] == self.features else nn_ops.Conv(
            self.features, (1,), kernel_init=nn.initializers.normal(0.01), dtype=self.dtype,
            param_dtype=self.param_dtype, impl=self.conv_impl)(x)
        return nn.relu(y + residual)


class TCN(nn.Module):
    """Temporal convolutional network: blocks with dilations 1, 2, 4, …, max-pool over time, linear.

    Defaults are the benchmark's: channels [5, 5, 50], kernel 4, dropout 0.1. Every output step t
    depends on inputs ≤ t only; the per-step features [B, T, C] before the pool are sown as
    `intermediates/sequence` (read them with `mutable=["intermediates"]`). `param_dtype` float64
    with `dtype` float64 (under `jax_enable_x64`) gives a float64 model with float64 logits.
    """

    num_classes: int = 2
    channels: Sequence[int] = (5, 5, 50)
    kernel_size: int = 4
    dropout: float = 0.1
    dtype: jnp.dtype = jnp.float32
    conv_impl: str | None = None  # `sgt.nn_ops` implementation; default: the fastest on the backend
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = jnp.asarray(x, self.dtype)
        for level, features in enumerate(self.channels):
            x = TemporalBlock(features, self.kernel_size, 2**level, self.dropout, self.dtype,
                              self.conv_impl, self.param_dtype)(x, train)
        self.sow("intermediates", "sequence", x)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype)(x.max(axis=1))
        return logits.astype(logits_dtype(self.dtype))


class LSTMClassifier(nn.Module):
    """1-layer LSTM (hidden 5), dropout 0.1 on its input and output, last step → linear.

    One bias per gate (4·hidden), where PyTorch's nn.LSTM has two (b_ih + b_hh, 8·hidden): the same
    function with 4·hidden fewer parameters. Hidden states [B, T, hidden] are sown as
    `intermediates/sequence`. `param_dtype` as `TCN`'s.
    """

    num_classes: int = 2
    hidden: int = 5
    dropout: float = 0.1
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dropout(self.dropout, deterministic=not train)(jnp.asarray(x, self.dtype))
        h = nn.RNN(nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype, param_dtype=self.param_dtype))(x)
        self.sow("intermediates", "sequence", h)
        h = nn.Dropout(self.dropout, deterministic=not train)(h[:, -1])
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype)(h)
        return logits.astype(logits_dtype(self.dtype))


def causal_attention_pool(x, scores, flatten: bool):
    """Input-cell attention summaries M_t of the prefixes X_{≤t}, for every t at once.

    scores s [B, T, r] = W2·tanh(W1·x_τ) do not depend on t; only the softmax's support τ ≤ t does:
    A_t[τ, j] = exp(s_τj) / Σ_{τ'≤t} exp(s_τ'j) for τ ≤ t, else 0;  M_t = A_tᵀ X  (r × F).
    Returns the mean of M_t's r rows [B, T, F], or M_t flattened [B, T, r·F] when `flatten`.
    """
    t = x.shape[1]
    causal = jnp.tril(jnp.ones((t, t), bool))[None, :, :, None]  # [1, t, τ, 1]
    logits = jnp.broadcast_to(scores[:, None, :, :], (x.shape[0], t, t, scores.shape[-1]))
    weights = jax.nn.softmax(jnp.where(causal, logits, -jnp.inf), axis=2)  # over τ
    if flatten:
        return jnp.einsum("btsr,bsf->btrf", weights, x).reshape(x.shape[0], t, -1)
    return jnp.einsum("btsr,bsf->btf", weights, x) / scores.shape[-1]


class LSTMCellAttention(nn.Module):
    """LSTM with input-cell attention (Ismail et al. 2019; the benchmark's `InputCellAttention`).

    At step t the gates read x̃_t = mean over the r rows of M_t = softmax_τ≤t(W2·tanh(W1·x_τ + b1)
    + b2)ᵀ · X_{≤t} (see `causal_attention_pool`) in place of x_t:
        [i, f, g, o] = x̃_t W_x + h_{t−1} W_h + b;  c_t = σ(f)·c_{t−1} + σ(i)·tanh(g);  h_t = σ(o)·tanh(c_t).
    `matrix=True` feeds the flattened r×F matrix instead (`InputCellAttentionMatrix`). Defaults:
    hidden 5, r = 10 hops, d_a = 50, dropout 0.1 on the input and on the last hidden state, last
    step → linear. Init as the reference: Xavier-uniform matrices, zero vectors. Hidden states
    [B, T, hidden] are sown as `intermediates/sequence`. `param_dtype` as `TCN`'s.
    """

    num_classes: int = 2
    hidden: int = 5
    r: int = 10
    d_a: int = 50
    matrix: bool = False
    dropout: float = 0.1
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        xavier, zeros = nn.initializers.xavier_uniform(), nn.initializers.zeros
        x = nn.Dropout(self.dropout, deterministic=not train)(jnp.asarray(x, self.dtype))
        dense = lambda n, name: nn.Dense(n, kernel_init=xavier, dtype=self.dtype,  # noqa: E731
                                         param_dtype=self.param_dtype, name=name)
        scores = dense(self.r, "attention_second")(jnp.tanh(dense(self.d_a, "attention_first")(x)))
        x_bar = causal_attention_pool(x, scores, self.matrix)
        w_x = self.param("input_kernel", xavier, (x_bar.shape[-1], 4 * self.hidden), self.param_dtype)
        w_h = self.param("recurrent_kernel", xavier, (self.hidden, 4 * self.hidden), self.param_dtype)
        b = self.param("bias", zeros, (4 * self.hidden,), self.param_dtype)
        w_x, w_h, b = (w.astype(self.dtype) for w in (w_x, w_h, b))
        gates_x = jnp.swapaxes(x_bar @ w_x + b, 0, 1)  # time-major [T, B, 4H]

        def step(carry, gx):
            c, h = carry
            i, f, g, o = jnp.split(gx + h @ w_h, 4, axis=-1)
            c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
            h = nn.sigmoid(o) * jnp.tanh(c)
            return (c, h), h

        zero = jnp.zeros((x.shape[0], self.hidden), self.dtype)
        _, hs = jax.lax.scan(step, (zero, zero), gates_x)
        hs = jnp.swapaxes(hs, 0, 1)
        self.sow("intermediates", "sequence", hs)
        h = nn.Dropout(self.dropout, deterministic=not train)(hs[:, -1])
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype)(h)
        return logits.astype(logits_dtype(self.dtype))
