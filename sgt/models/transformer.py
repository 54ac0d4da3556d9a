"""The benchmark's causal Transformer encoder classifier (docs/timeseries.md).

Inputs [batch, time, features] with d_model = features (no input projection); logits [batch, classes].
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from sgt.models.timeseries import logits_dtype


def positional_encoding(length: int, d_model: int, dtype=np.float32) -> np.ndarray:
    """The reference's sinusoid: PE[p, j] = sin(p / 10000^(2j/d)) for even j, cos(…) for odd j.

    (The exponent uses the column index j itself, 2j/d, not the usual 2⌊j/2⌋/d.)
    """
    pos = np.arange(length)[:, None]
    j = np.arange(d_model)[None, :]
    angle = pos / np.power(10000.0, 2.0 * j / d_model)
    return np.where(j % 2 == 0, np.sin(angle), np.cos(angle)).astype(dtype)


class Norm(nn.Module):
    """The reference's layer norm: α · (x − mean) / (std + ε) + β, std unbiased (÷ (d − 1)), ε = 1e-6.

    Computed in float32 whatever the compute dtype (float64 for a float64 model).
    """

    eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        alpha = self.param("alpha", nn.initializers.ones, (d,), self.param_dtype)
        beta = self.param("bias", nn.initializers.zeros, (d,), self.param_dtype)
        wide = logits_dtype(self.dtype)
        xw, alpha, beta = x.astype(wide), alpha.astype(wide), beta.astype(wide)
        y = alpha * (xw - xw.mean(-1, keepdims=True)) / (xw.std(-1, ddof=1, keepdims=True) + self.eps) + beta
        return y.astype(self.dtype)


class EncoderLayer(nn.Module):
    """Pre-norm layer: x += drop(MHA(norm(x), causal)); x += drop(W2 · drop(relu(W1 · norm(x))))."""

    heads: int
    ff: int
    dropout: float
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, mask, train: bool):
        drop = lambda y: nn.Dropout(self.dropout, deterministic=not train)(y)
        norm = lambda y: Norm(dtype=self.dtype, param_dtype=self.param_dtype)(y)  # noqa: E731
        dense = lambda n, y: nn.Dense(n, dtype=self.dtype, param_dtype=self.param_dtype)(y)  # noqa: E731
        y = nn.MultiHeadDotProductAttention(
            self.heads, dtype=self.dtype, param_dtype=self.param_dtype, dropout_rate=self.dropout,
            broadcast_dropout=False, deterministic=not train)(norm(x), mask=mask)
        x = x + drop(y)
        y = drop(nn.relu(dense(self.ff, norm(x))))
        return x + drop(dense(x.shape[-1], y))


class Transformer(nn.Module):
    """Causal Transformer encoder classifier (the benchmark's `Transformer`).

    x·√d + PE → dropout → 6 pre-norm layers (5 heads, FF 400, ReLU) → norm → max over time → linear.

    Position t attends to positions ≤ t, so the per-step representation at t depends on x_{≤t}
    only; it is sown as `intermediates/sequence` [B, T, d] before the max-pool. Attention weights
    and the residual branches use dropout 0.1, as the reference. d_model = features must be
    divisible by `heads` (the benchmark has 50 features, 5 heads of 10). `param_dtype` float64 with
    `dtype` float64 (under `jax_enable_x64`) gives a float64 model with float64 logits.
    """

    num_classes: int = 2
    layers: int = 6
    heads: int = 5
    ff: int = 400
    dropout: float = 0.1
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        t, d = x.shape[-2:]
        if d % self.heads:
            raise ValueError(f"heads: d_model = number of features = {d} is not divisible by {self.heads} "
                             f"heads; use a feature count that is a multiple of {self.heads} or set heads")
        pe = positional_encoding(t, d, logits_dtype(self.dtype)).astype(self.dtype)
        x = jnp.asarray(x, self.dtype) * float(np.sqrt(d)) + pe
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        mask = nn.make_causal_mask(jnp.ones(x.shape[:2]))
        for _ in range(self.layers):
            x = EncoderLayer(self.heads, self.ff, self.dropout, self.dtype, self.param_dtype)(x, mask, train)
        x = Norm(dtype=self.dtype, param_dtype=self.param_dtype)(x)
        self.sow("intermediates", "sequence", x)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype)(x.max(axis=1))
        return logits.astype(logits_dtype(self.dtype))
