"""Text classifier: token embedding (optionally from GloVe-style vectors) → bidirectional LSTM → linear."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class TextClassifier(nn.Module):
    """BiLSTM over int token ids [batch, length], right-padded with `pad_id`; logits [batch, classes].

    Each sequence's length is its number of non-pad tokens, n = Σ_t [id_t ≠ pad_id] (at least 1,
    so an all-pad row reads one pad token). The forward LSTM reads tokens 1…n and the backward LSTM
    reads n…1 (`nn.RNN` with `seq_lengths`); the head sees [h_fwd(n); h_bwd(1)] → dropout → linear.
    Positions after n never enter the result, so extra trailing padding leaves the logits unchanged.

    embeddings: optional [vocab, dim] array (e.g. GloVe rows in vocabulary order) that initialises
    the table; then `vocab_size`/`embed_dim` are taken from it. freeze_embeddings: the table passes
    through `stop_gradient`, so it gets zero gradient; it is still a parameter, so exclude it from
    weight decay (`optax.masked`) if the optimizer decays. Input gradients are not defined for token
    ids; SGT masking of text would act on embeddings, which `sgt.train` does not do.
    """

    num_classes: int = 2
    vocab_size: int = 1000
    embed_dim: int = 100
    hidden: int = 128
    dropout: float = 0.1
    pad_id: int = 0
    embeddings: Any = None
    freeze_embeddings: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, ids, train: bool = False):
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(f"ids: expected integer token ids [batch, length], got dtype {ids.dtype}")
        if self.embeddings is not None:
            table0 = np.asarray(self.embeddings, np.float32)
            if table0.ndim != 2:
                raise ValueError(f"embeddings: expected a [vocab, dim] matrix, got shape {table0.shape}")
            table = self.param("embedding", lambda _: jnp.asarray(table0))
        else:
            table = self.param("embedding", nn.initializers.normal(1.0), (self.vocab_size, self.embed_dim))
        if self.freeze_embeddings:
            table = jax.lax.stop_gradient(table)
        x = jnp.take(table, ids, axis=0).astype(self.dtype)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        lengths = jnp.maximum((ids != self.pad_id).sum(axis=1), 1)
        rnn = nn.Bidirectional(nn.RNN(nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype)),
                               nn.RNN(nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype)),
                               return_carry=True)
        (forward, backward), _ = rnn(x, seq_lengths=lengths)
        h = jnp.concatenate([forward[1], backward[1]], axis=-1)  # LSTM carry is (c, h)
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return nn.Dense(self.num_classes, dtype=self.dtype)(h).astype(jnp.float32)
