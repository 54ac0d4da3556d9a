"""Saliency guided training for token sequences (paper §3, the language experiments).

A token id has no gradient, so saliency is taken at the embedding output: with e[b, t, :] the
embedding of token t, the token's saliency is the embedding gradient summed over the embedding
dimension, s[b, t] = Σ_d ∂score/∂e[b, t, d] (ranked by |s| for `rank_by="magnitude"`, by s for
"signed"). Masking keeps the length: each of the k lowest-ranked tokens is replaced by the nearest
*preceding* kept token (the paper's "previous high-salient word"); a masked token with no kept
token before it (at the start of the text) takes the nearest *following* kept token. At least one
token always stays, so the rule is always defined.

Which tokens take part: real tokens (not `pad_id`); when the texts are pairs laid out as
`query, SEP, document` (`sep_id` given), only the document side, the tokens after each row's
first SEP, is ranked and masked; the query and the SEP stay whole. Rows without a SEP are ranked
whole. k is a fraction of each text's own number n of ranked tokens, ⌊k·n⌋ per row (a count k
masks min(k, n − 1) tokens), so the masked share is the same for short and long texts.

Models mark their embedding output with Flax Linen's `self.perturb(EMBEDDED, x)` (as
`sgt.models.TextClassifier` does); the step and the attribution functions take gradients with
respect to that point.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from sgt import adapters, masking

EMBEDDED = "embedded"  # name of the perturbation point at the embedding output
PERTURBATIONS = "perturbations"


def is_tokens(x) -> bool:
    """Whether `x` holds token ids (integers) rather than features."""
    return jnp.issubdtype(x.dtype, jnp.integer)


def rankable(ids: jax.Array, pad_id: int = 0, sep_id: int | None = None) -> jax.Array:
    """bool [B, L]: the tokens that may be ranked and masked (real tokens; after the first SEP
    when `sep_id` is given and the row has one)."""
    real = ids != pad_id
    if sep_id is None:
        return real
    is_sep = ids == sep_id
    seen = jnp.cumsum(is_sep, axis=1)
    after_first_sep = (seen >= 1) & ~((seen == 1) & is_sep)
    has_sep = is_sep.any(axis=1, keepdims=True)
    return real & jnp.where(has_sep, after_first_sep, True)


def token_counts(k: int | float, n: jax.Array) -> jax.Array:
    """Tokens masked per row for `n` ranked tokens: ⌊k·n⌋ for a fraction k, min(k, n − 1) for a count."""
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        raise ValueError(f"k: expected an int or a float fraction, got {k!r}")
    if isinstance(k, float):
        if not 0.0 < k < 1.0:
            raise ValueError(f"k: a fraction must lie in (0, 1), got {k}")
        return jnp.floor(k * n.astype(jnp.float32) + 1e-6).astype(jnp.int32)
    if k < 1:
        raise ValueError(f"k: a count must be >= 1, got {k}")
    return jnp.clip(jnp.minimum(k, n - 1), 0).astype(jnp.int32)


def token_scores(embedding_saliency: jax.Array, rank_by: str = "magnitude") -> jax.Array:
    """[B, L, D] embedding saliency -> [B, L]: Σ_d, then |·| for "magnitude" or as is for "signed"."""
    if rank_by not in masking.RANKINGS:
        raise ValueError(f"rank_by: expected one of {masking.RANKINGS}, got {rank_by!r}")
    if embedding_saliency.ndim != 3:
        raise ValueError(f"embedding_saliency: expected [batch, length, dim], got shape {embedding_saliency.shape}")
    summed = embedding_saliency.sum(axis=-1)
    return jnp.abs(summed) if rank_by == "magnitude" else summed


def lowest_tokens(scores: jax.Array, ranked: jax.Array, counts: jax.Array) -> jax.Array:
    """bool [B, L]: each row's `counts[b]` lowest-scored ranked tokens (ties: lower position first).

    Unranked positions never count: their keys are pushed above every float score.
    """
    keys = masking.sortable_bits(scores)
    keys = jnp.where(ranked, keys, jnp.uint32(0xFFFFFFFF))
    kth = masking.kth_smallest(keys, counts)[:, None]
    below, tied = keys < kth, keys == kth
    room = counts[:, None] - below.sum(axis=1, keepdims=True)
    chosen = below | (tied & (jnp.cumsum(tied, axis=1) <= room))
    return chosen & ranked & (counts[:, None] > 0)


def replace_masked(ids: jax.Array, masked: jax.Array, kept: jax.Array) -> jax.Array:
    """ids with every `masked` position replaced by the nearest preceding `kept` token, or, where
    none precedes it, by the nearest following one (positions with neither stay as they are)."""
    length = ids.shape[1]
    position = jnp.arange(length)[None, :]
    previous = jax.lax.cummax(jnp.where(kept, position, -1), axis=1)
    following = jax.lax.cummin(jnp.where(kept, position, length), axis=1, reverse=True)
    source = jnp.where(previous >= 0, previous, following)
    usable = masked & (source < length)
    source = jnp.clip(source, 0, length - 1)
    return jnp.where(usable, jnp.take_along_axis(ids, source, axis=1), ids)


def mask_tokens(ids: jax.Array, saliency: jax.Array, k: int | float, *, rank_by: str = "magnitude",
                pad_id: int = 0, sep_id: int | None = None) -> jax.Array:
    """x̃ for token ids: each row's k lowest-saliency ranked tokens replaced by the nearest preceding
    kept token (module docstring). `saliency` is per token [B, L] or per embedding entry [B, L, D]."""
    if ids.ndim != 2:
        raise ValueError(f"ids: expected token ids [batch, length], got shape {ids.shape}")
    if saliency.ndim == 3:
        scores = token_scores(saliency, rank_by)
    elif saliency.shape == ids.shape:
        scores = jnp.abs(saliency) if rank_by == "magnitude" else saliency
    else:
        raise ValueError(f"saliency: expected [batch, length] {ids.shape} or [batch, length, dim], "
                         f"got {saliency.shape}")
    ranked = rankable(ids, pad_id, sep_id)
    counts = token_counts(k, ranked.sum(axis=1))
    masked = lowest_tokens(scores, ranked, counts)
    return replace_masked(ids, masked, ranked & ~masked)


# --------------------------------------------------------------------------- embedding gradients


def _linen(model) -> adapters.LinenAdapter:
    adapter = adapters.adapt(model)
    if not isinstance(adapter, adapters.LinenAdapter):
        raise ValueError("model: saliency of token inputs needs a Flax Linen module that marks its embedding "
                         f"output with self.perturb({EMBEDDED!r}, x); got {type(adapter).__name__}")
    return adapter


def zero_perturbations(model, params, state, ids):
    """Zeros shaped like the model's 'perturbations' collection for `ids` (no computation runs)."""
    adapter = _linen(model)
    variables = {"params": params, **({"batch_stats": state} if state else {})}
    shapes = jax.eval_shape(lambda: adapter.module.apply(variables, ids, **adapter._mode(False),
                                                         mutable=[PERTURBATIONS])[1])
    if PERTURBATIONS not in shapes or not jax.tree.leaves(shapes[PERTURBATIONS]):
        raise ValueError(f"model: {type(adapter.module).__name__} marks no embedding output; call "
                         f"self.perturb({EMBEDDED!r}, x) on the token embeddings [batch, length, dim]")
    leaves = jax.tree.leaves(shapes[PERTURBATIONS])
    if len(leaves) != 1 or leaves[0].shape[:2] != ids.shape or len(leaves[0].shape) != 3:
        raise ValueError(f"model: expected one perturbation point shaped [batch, length, dim] = {ids.shape} + (dim,), "
                         f"got {[leaf.shape for leaf in leaves]}")
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes[PERTURBATIONS])


def apply_perturbed(model, params, state, ids, perturbations, *, train: bool, key=None):
    """(logits, new state) of the model on `ids` with `perturbations` added at its embedding output."""
    return _linen(model).apply(params, state, ids, train=train, key=key, perturbations=perturbations)


def embedding_value(model, params, ids) -> jax.Array:
    """e [B, L, D]: the model's embedding output for `ids`, from its method `embed(ids)`."""
    adapter = _linen(model)
    if not hasattr(adapter.module, "embed"):
        raise ValueError(f"model: {type(adapter.module).__name__} needs a method embed(ids) -> [batch, length, dim] "
                         f"returning the embedding output that it marks with self.perturb({EMBEDDED!r}, x)")
    return adapter.module.apply({"params": params}, ids, method="embed")


def embedding_classifier(model, params, state, ids) -> tuple[jax.Array, Callable[[jax.Array], jax.Array]]:
    """(e, f): the embeddings e [B, L, D] of `ids` and the inference classifier f(e') -> logits that
    runs the model on `ids` with its embedding output replaced by e' (so f(e) is the ordinary output).

    Any saliency method of `sgt.saliency` applies to f at e; IG's all-zero baseline is e' = 0. f also
    takes a stack of r batches [r·B, L, D] (as path and noise methods evaluate it): batch j·B + i
    is read with the tokens of text i.
    """
    treedef = jax.tree.structure(zero_perturbations(model, params, state, ids))
    embedded = embedding_value(model, params, ids)
    batch = ids.shape[0]

    def f(e):
        if e.shape[0] % batch:
            raise ValueError(f"e: expected a multiple of the {batch} texts along axis 0, got shape {e.shape}")
        reps = e.shape[0] // batch
        tiled_ids, tiled = jnp.tile(ids, (reps, 1)), jnp.tile(embedded, (reps, 1, 1))
        perturbations = jax.tree.unflatten(treedef, [e - tiled])
        return apply_perturbed(model, params, state, tiled_ids, perturbations, train=False)[0]

    return embedded, f


def embedding_saliency(model, params, state, ids, target, *, score: Callable) -> jax.Array:
    """∂ score(f(ids), target) / ∂e at the embedding output, [B, L, D], in inference mode."""
    zeros = zero_perturbations(model, params, state, ids)
    return jax.tree.leaves(jax.grad(lambda p: score(apply_perturbed(model, params, state, ids, p, train=False)[0],
                                            target))(zeros))[0]


__all__ = ["EMBEDDED", "apply_perturbed", "embedding_classifier", "embedding_saliency", "embedding_value",
           "is_tokens", "lowest_tokens", "mask_tokens", "rankable", "replace_masked", "token_counts",
           "token_scores", "zero_perturbations"]
