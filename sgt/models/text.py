"""Text classifier: token embedding (optionally from GloVe-style vectors) → bidirectional LSTM → linear."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

POOLINGS = ("last", "max")


class TextClassifier(nn.Module):
    """BiLSTM over int token ids [batch, length], right-padded with `pad_id`; logits [batch, classes].

    Each sequence's length is its number of non-pad tokens, n = Σ_t [id_t ≠ pad_id] (at least 1,
    so an all-pad row reads one pad token). The forward LSTM reads tokens 1…n and the backward LSTM
    reads n…1 (`nn.RNN` with `seq_lengths`). `pool="last"`: the head sees [h_fwd(n); h_bwd(1)];
    `pool="max"`: the elementwise maximum of [h_fwd(t); h_bwd(t)] over t ≤ n (steadier on long
    texts); then dropout → linear. Positions after n never enter the result, so extra trailing
    padding leaves the logits unchanged.

    The embedding output is marked with `self.perturb("embedded", ·)` (`sgt.text.EMBEDDED`), and
    `embed(ids)` returns it, so saliency guided training and the saliency methods can take
    gradients with respect to the embeddings of the tokens (`sgt.text`).

    embeddings: optional [vocab, dim] array (e.g. GloVe rows in vocabulary order) that initialises
    the table; then `vocab_size`/`embed_dim` are taken from it. freeze_embeddings: the table passes
    through `stop_gradient`, so it gets zero gradient; it is still a parameter, so exclude it from
    weight decay (`optax.masked`) if the optimizer decays.
    """

    num_classes: int = 2
    vocab_size: int = 1000
    embed_dim: int = 100
    hidden: int = 128
    dropout: float = 0.1
    pad_id: int = 0
    embeddings: Any = None
    freeze_embeddings: bool = False
    pool: str = "last"
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        if self.pool not in POOLINGS:
            raise ValueError(f"pool: expected one of {POOLINGS}, got {self.pool!r}")
        if self.embeddings is not None:
            table0 = np.asarray(self.embeddings, np.float32)
            if table0.ndim != 2:
                raise ValueError(f"embeddings: expected a [vocab, dim] matrix, got shape {table0.shape}")
            self.embedding = self.param("embedding", lambda _: jnp.asarray(table0))
        else:
            self.embedding = self.param("embedding", nn.initializers.normal(1.0), (self.vocab_size, self.embed_dim))
        self.rnn = nn.Bidirectional(nn.RNN(nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype)),
                                    nn.RNN(nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype)),
                                    return_carry=True)
        self.drop = nn.Dropout(self.dropout)
        self.head = nn.Dense(self.num_classes, dtype=self.dtype)

    def embed(self, ids):
        """The token embeddings [batch, length, dim] (float32), before the perturbation point."""
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(f"ids: expected integer token ids [batch, length], got dtype {ids.dtype}")
        table = jax.lax.stop_gradient(self.embedding) if self.freeze_embeddings else self.embedding
        return jnp.take(table, ids, axis=0)

    def __call__(self, ids, train: bool = False):
        x = self.perturb("embedded", self.embed(ids)).astype(self.dtype)
        x = self.drop(x, deterministic=not train)
        lengths = jnp.maximum((ids != self.pad_id).sum(axis=1), 1)
        (forward, backward), outputs = self.rnn(x, seq_lengths=lengths)
        if self.pool == "last":
            h = jnp.concatenate([forward[1], backward[1]], axis=-1)  # LSTM carry is (c, h)
        else:
            inside = (jnp.arange(ids.shape[1])[None, :] < lengths[:, None])[..., None]
            h = jnp.where(inside, outputs, -jnp.inf).max(axis=1)
        h = self.drop(h, deterministic=not train)
        return self.head(h).astype(jnp.float32)
