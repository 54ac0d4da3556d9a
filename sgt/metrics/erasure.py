"""ERASER faithfulness of token rankings (comprehensiveness, sufficiency, AOPC) and their plausibility.

Texts are int token ids `tokens [B, L]`, right-padded with `pad_id`, with `lengths [B]` real tokens
per row. `rankable [B, L]` (bool) marks the tokens a ranking may select; by default every real
token (position < length). For a pair task laid out as `query, SEP, document` only the document is
rankable, and the other real tokens (query, SEP) stay in place in every erased text. Row i has
n_i rankable tokens; `scores [B, L]` ranks them (higher = more important). The classifier is
`prob_fn(tokens [B, L], lengths [B]) -> probabilities [B, C]`, and c_i = argmax p(x_i) is the class
predicted on the full text.

For a fraction t ∈ (0, 1] (a *bin*), row i's selection R_t holds its top m = ⌈t·n_i⌉ rankable
tokens (ties: lower position first, or a random permutation per row from `split(key, B)[i]`).
t is first snapped to the nearest fraction with denominator ≤ 10⁶ and the ceiling is taken in
exact integer arithmetic, so 0.1 means exactly 1/10 and ⌈0.1·30⌉ = 3 (plain floating point gives 4):

    comprehensiveness_t(x) = p_c(x) − p_c(x ∖ R_t)     (R_t deleted: the rest shifts left, length − m)
    sufficiency_t(x)       = p_c(x) − p_c(R_t ∪ F)      (only R_t and the non-rankable real tokens F
                                                          kept, in their order; length m + |F|)

High comprehensiveness (the prediction collapses without the selected tokens) and low sufficiency
(the selected tokens alone keep it) mark a faithful ranking. AOPC of either is the plain mean over
the bins. When m = n_i and F is empty the deleted text is an empty row (all padding, length 0);
`prob_fn` receives it unchanged and what the model reads then is the model's own rule
(`sgt.models.text.TextClassifier` reads one padding token).

Plausibility compares the scores with a human rationale mask: `token_f1` scores the top tokens as
a hard prediction (precision, recall and F1 per row, macro-averaged), `auprc` the step-wise average
precision of the whole ranking per row, averaged over rows. See docs/erasure.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from sgt import xla

BINS = (0.01, 0.05, 0.1, 0.2, 0.5)
"""ERASER's fractions t of each row's rankable tokens."""

_MAX_DENOMINATOR = 10**6


# --------------------------------------------------------------------------- checks


def _dtype(x) -> np.dtype:
    return np.dtype(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)


def _tokens(tokens) -> jax.Array:
    shape = tuple(np.shape(tokens))
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"tokens: expected int token ids [batch, length] with both sizes >= 1, got shape {shape}")
    if not np.issubdtype(_dtype(tokens), np.integer):
        raise ValueError(f"tokens: expected integer token ids, got dtype {_dtype(tokens)}")
    return jnp.asarray(tokens)


def _lengths(lengths, batch: int, width: int) -> np.ndarray:
    shape = tuple(np.shape(lengths))
    if shape != (batch,):
        raise ValueError(f"lengths: expected an integer array of shape ({batch},) (one per row of tokens), "
                         f"got shape {shape}")
    if not np.issubdtype(_dtype(lengths), np.integer):
        raise ValueError(f"lengths: expected integers, got dtype {_dtype(lengths)}")
    n = np.asarray(lengths).astype(np.int64)
    bad = np.flatnonzero((n < 0) | (n > width))
    if bad.size:
        raise ValueError(f"lengths: every length must lie in [0, {width}] (the tokens' width); "
                         f"rows {bad[:10].tolist()} have {n[bad[:10]].tolist()}")
    return n


def _mask(name: str, mask, shape: tuple[int, int]) -> np.ndarray:
    if tuple(np.shape(mask)) != shape:
        raise ValueError(f"{name}: expected a boolean array of shape {shape} (like tokens), got shape "
                         f"{tuple(np.shape(mask))}")
    if _dtype(mask) != np.bool_:
        raise ValueError(f"{name}: expected a boolean array, got dtype {_dtype(mask)}")
    return np.asarray(mask)


def _rankable(rankable, shape: tuple[int, int], real: np.ndarray | None) -> np.ndarray:
    if rankable is None:
        if real is None:
            raise ValueError("rankable: expected a boolean array [batch, length], got None")
        return real
    r = _mask("rankable", rankable, shape)
    if real is not None:
        bad = np.flatnonzero((r & ~real).any(1))
        if bad.size:
            raise ValueError(f"rankable: marks padding (positions at or beyond lengths) in rows {bad[:10].tolist()}")
    return r


def _scores(scores, shape: tuple[int, int], rankable: np.ndarray) -> jax.Array:
    if tuple(np.shape(scores)) != shape:
        raise ValueError(f"scores: expected shape {shape} (one score per token), got {tuple(np.shape(scores))}")
    dtype = _dtype(scores)
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ValueError(f"scores: expected real numbers, got dtype {dtype}")
    s = jnp.asarray(scores)
    finite = np.isfinite(np.asarray(s, np.float64)) | ~rankable
    if not finite.all():
        raise ValueError(f"scores: {int((~finite).sum())} rankable positions hold non-finite values "
                         f"(NaN or inf), in rows {np.flatnonzero(~finite.all(1))[:10].tolist()}")
    return s


def _fraction(name: str, t) -> Fraction:
    """t ∈ (0, 1] as an exact fraction: the nearest one with denominator ≤ 10⁶ (0.1 → 1/10)."""
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number in (0, 1], got {t!r}") from None
    if not (np.isfinite(value) and 0.0 < value <= 1.0):
        raise ValueError(f"{name}: must lie in (0, 1], got {value}")
    return Fraction(value).limit_denominator(_MAX_DENOMINATOR)


def _bins(bins) -> tuple[float, ...]:
    b = np.asarray(bins)
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"bins: expected a non-empty 1-D sequence of fractions in (0, 1], got shape {b.shape}")
    if not (np.issubdtype(b.dtype, np.floating) or np.issubdtype(b.dtype, np.integer)):
        raise ValueError(f"bins: expected numbers in (0, 1], got dtype {b.dtype}")
    values = b.astype(np.float64)
    if not (np.isfinite(values).all() and (values > 0).all() and (values <= 1).all()):
        raise ValueError(f"bins: every bin must lie in (0, 1], got {values.tolist()}")
    return tuple(float(v) for v in b.tolist())


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _batch_size(batch_size) -> None:
    if batch_size is not None and not (_is_int(batch_size) and batch_size >= 1):
        raise ValueError(f"batch_size: expected None or a positive int, got {batch_size!r}")


def _pad_id(pad_id) -> int:
    if not _is_int(pad_id):
        raise ValueError(f"pad_id: expected an int token id, got {pad_id!r}")
    return int(pad_id)


def erasure_count(fraction: float, n) -> np.ndarray:
    """⌈t·n⌉ for each count in `n` (int64, shaped like n), in exact arithmetic: ⌈0.1·30⌉ = 3.

    t is snapped to the nearest fraction with denominator ≤ 10⁶ first, so float noise in t (0.1 as
    a float64 or float32) does not push an exact product past an integer.
    """
    t = _fraction("fraction", fraction)
    n = np.asarray(n)
    if not np.issubdtype(n.dtype, np.integer):
        raise ValueError(f"n: expected integer token counts, got dtype {n.dtype}")
    if (n < 0).any():
        raise ValueError(f"n: expected non-negative token counts, got minimum {n.min()}")
    p, q = t.numerator, t.denominator
    values, inverse = np.unique(n, return_inverse=True)
    counts = np.array([-((-p * int(v)) // q) for v in values], np.int64)  # exact ⌈p·v / q⌉
    return counts[inverse].reshape(n.shape)


# --------------------------------------------------------------------------- ranking and deletion


@xla.jit
def _ranks(scores: jax.Array, rankable: jax.Array, tiebreak: jax.Array) -> jax.Array:
    """Rank of each position [B, L]: 0 = highest-scored rankable token; non-rankable positions last."""
    s = jnp.where(rankable, scores, jnp.zeros_like(scores))  # non-finite values off the rankable set vanish
    s = jnp.where(s == 0, jnp.zeros_like(s), s)  # −0.0 and 0.0 are one score
    order = jnp.lexsort((tiebreak, -s, ~rankable), axis=-1)  # last key primary: rankable first, then by score
    return jnp.argsort(order, axis=-1).astype(jnp.int32)


@functools.partial(xla.jit, static_argnums=1)
def _permutations(keys: jax.Array, width: int) -> jax.Array:
    return jax.vmap(lambda k: jax.random.permutation(k, width))(keys).astype(jnp.int32)


def _tiebreak(batch: int, width: int, key) -> jax.Array:
    """The order among equal scores per row: position (key None) or a random permutation from split(key, B)[i]."""
    if key is None:
        return jnp.broadcast_to(jnp.arange(width, dtype=jnp.int32), (batch, width))
    return _permutations(jax.random.split(key, batch), width)


def _rank_tokens(scores, rankable: np.ndarray, key) -> jax.Array:
    batch, width = rankable.shape
    return _ranks(scores, jnp.asarray(rankable), _tiebreak(batch, width, key))


def top_tokens(scores, rankable, fraction: float, *, key: jax.Array | None = None) -> jax.Array:
    """Boolean [B, L]: True on each row's ⌈t·n⌉ highest-scored rankable tokens (n = the row's rankable count).

    Ties are broken by lower position first (key None) or by a random permutation per row from
    `split(key, B)[i]`. Scores at non-rankable positions are ignored (they may be NaN). Needs
    concrete arrays (the count ⌈t·n⌉ is computed exactly on the host); the ranking is jitted.
    """
    r = np.asarray(rankable) if rankable is not None else None
    if r is None or r.ndim != 2:
        raise ValueError(f"rankable: expected a boolean array [batch, length], got shape {np.shape(rankable)}")
    shape = tuple(r.shape)
    r = _rankable(r, shape, None)
    s = _scores(scores, shape, r)
    m = erasure_count(fraction, r.sum(1))
    return _rank_tokens(s, r, key) < jnp.asarray(m, jnp.int32)[:, None]


@xla.jit
def _compact(tokens: jax.Array, keep: jax.Array, pad_id: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Kept tokens moved to the front in their order, padding after them; and the kept count per row."""
    order = jnp.argsort(~keep, axis=-1, stable=True)  # kept positions first, each group in position order
    moved = jnp.take_along_axis(tokens, order, axis=-1)
    count = keep.sum(-1, dtype=jnp.int32)
    inside = jnp.arange(tokens.shape[-1], dtype=jnp.int32)[None, :] < count[:, None]
    return jnp.where(inside, moved, pad_id.astype(tokens.dtype)), count


def delete_tokens(tokens, keep, pad_id: int = 0) -> tuple[jax.Array, jax.Array]:
    """(tokens [B, L], lengths [B]): each row's `keep` positions in their order, shifted left, `pad_id` after.

    The new length of a row is its number of True positions; `keep` should mark real tokens only
    (a kept padding position counts as a token). A row with nothing kept becomes all padding with
    length 0. Shape checks only, so it can be called inside `jax.jit`.
    """
    t = _tokens(tokens)
    if tuple(np.shape(keep)) != tuple(t.shape):
        raise ValueError(f"keep: expected a boolean array of shape {tuple(t.shape)} (like tokens), "
                         f"got shape {tuple(np.shape(keep))}")
    if _dtype(keep) != np.bool_:
        raise ValueError(f"keep: expected a boolean array, got dtype {_dtype(keep)}")
    return _compact(t, jnp.asarray(keep), jnp.asarray(_pad_id(pad_id), t.dtype))


@xla.jit
def _erased(tokens, real, fixed, ranks, counts, k, pad_id):
    """For bin k: (comprehensiveness input, its lengths, sufficiency input, its lengths)."""
    selected = ranks < counts[:, k][:, None]  # ⊆ rankable: non-rankable positions rank after every rankable one
    deleted, deleted_len = _compact(tokens, real & ~selected, pad_id)
    kept, kept_len = _compact(tokens, fixed | selected, pad_id)
    return deleted, deleted_len, kept, kept_len


# --------------------------------------------------------------------------- faithfulness


def _probabilities(prob_fn, tokens, lengths, rows: int) -> np.ndarray:
    p = np.asarray(prob_fn(tokens, lengths))
    if p.ndim != 2 or p.shape[0] != tokens.shape[0] or p.shape[1] < 1:
        raise ValueError(f"prob_fn: expected probabilities [batch, classes] with batch {tokens.shape[0]}, "
                         f"got shape {p.shape}")
    p = p[:rows].astype(np.float64)
    if not np.isfinite(p).all() or (p < -1e-6).any() or (p > 1 + 1e-6).any():
        raise ValueError("prob_fn: expected probabilities in [0, 1] (softmax of the logits, not the logits); "
                         f"got values in [{np.nanmin(p)}, {np.nanmax(p)}] or non-finite ones")
    return p


def _pad_rows(x: np.ndarray, rows: int) -> jax.Array:
    """x with its last row repeated up to `rows` rows (keeps one shape for a jitted prob_fn), on the device."""
    missing = rows - x.shape[0]
    return jnp.asarray(x if missing == 0 else np.concatenate([x, np.repeat(x[-1:], missing, axis=0)]))


def erasure_scores(prob_fn: Callable[[jax.Array, jax.Array], jax.Array], tokens, lengths, scores, *,
                   bins: Sequence[float] = BINS, pad_id: int = 0, rankable=None, key: jax.Array | None = None,
                   batch_size: int | None = None) -> dict:
    """Comprehensiveness and sufficiency of a token ranking per bin, their AOPC, and the per-row values.

    prob_fn(tokens [b, L], lengths [b]) -> probabilities [b, C] (it may be jitted; rows must not
    interact). `scores [B, L]` ranks each row's `rankable` tokens (default: positions < lengths);
    they must be finite on rankable positions. For each bin t the top ⌈t·n⌉ rankable tokens (ties
    as in `top_tokens`) are deleted (comprehensiveness) or kept alone with the non-rankable real
    tokens (sufficiency); see the module docstring. `batch_size` evaluates that many rows at a time
    (None: all); the last chunk is padded to the same shape by repeating its last row, and results
    do not depend on it. Returns numpy values:

      "comprehensiveness", "sufficiency"    [len(bins)] means over rows
      "aopc_comprehensiveness", "aopc_sufficiency"   floats, plain means over the bins
      "bins"                                [len(bins)]
      "per_example_comprehensiveness", "per_example_sufficiency"   [B, len(bins)]
      "predicted"                           [B] argmax of prob_fn on the full text
      "full_probability"                    [B] p_c(x) for that class
    """
    t = _tokens(tokens)
    batch, width = t.shape
    n_real = _lengths(lengths, batch, width)
    real = np.arange(width)[None, :] < n_real[:, None]
    r = _rankable(rankable, (batch, width), real)
    s = _scores(scores, (batch, width), r)
    b = _bins(bins)
    _batch_size(batch_size)
    pad_id = _pad_id(pad_id)
    n = r.sum(1)
    empty = np.flatnonzero(n == 0)
    if empty.size:
        raise ValueError(f"rankable: rows {empty[:10].tolist()} have no rankable tokens; ⌈t·n⌉ needs n ≥ 1")
    counts = np.stack([erasure_count(v, n) for v in b], axis=1)  # [B, K]

    # host copies, sliced per chunk with numpy (no per-shape device slicing programs)
    ranks = np.asarray(_rank_tokens(s, r, key))
    host = (np.asarray(t), n_real.astype(np.int32), real, real & ~r, ranks, counts.astype(np.int32))
    pad = jnp.asarray(pad_id, t.dtype)
    step = int(batch_size or batch)

    predicted = np.empty(batch, np.int64)
    full = np.empty(batch, np.float64)
    comp = np.empty((batch, len(b)), np.float64)
    suff = np.empty((batch, len(b)), np.float64)
    for start in range(0, batch, step):
        part = slice(start, min(start + step, batch))
        rows = part.stop - part.start
        chunk = [_pad_rows(a[part], min(step, batch)) for a in host]
        tok, ln, re, fx, rk, ct = chunk
        p = _probabilities(prob_fn, tok, ln, rows)
        c = p.argmax(1)
        pc = p[np.arange(rows), c]
        predicted[part], full[part] = c, pc
        for k in range(len(b)):
            deleted, deleted_len, kept, kept_len = _erased(tok, re, fx, rk, ct, jnp.int32(k), pad)
            comp[part, k] = pc - _probabilities(prob_fn, deleted, deleted_len, rows)[np.arange(rows), c]
            suff[part, k] = pc - _probabilities(prob_fn, kept, kept_len, rows)[np.arange(rows), c]

    return {
        "comprehensiveness": comp.mean(0),
        "sufficiency": suff.mean(0),
        "aopc_comprehensiveness": float(comp.mean(0).mean()),
        "aopc_sufficiency": float(suff.mean(0).mean()),
        "bins": np.asarray(b, np.float64),
        "per_example_comprehensiveness": comp,
        "per_example_sufficiency": suff,
        "predicted": predicted,
        "full_probability": full,
    }


@functools.partial(xla.jit, static_argnums=1)
def _uniform(keys: jax.Array, width: int) -> jax.Array:
    return jax.vmap(lambda k: jax.random.uniform(k, (width,), jnp.float32))(keys)


def random_token_scores(key: jax.Array, tokens_shape: Sequence[int]) -> jax.Array:
    """float32 [B, L] i.i.d. uniform on [0, 1): the random-ranking baseline (ties have probability ~0).

    Row i is drawn from `split(key, B)[i]`, so it does not depend on the other rows.
    """
    shape = tuple(int(d) for d in tokens_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"tokens_shape: expected (batch, length) with both sizes >= 1, got {shape}")
    return _uniform(jax.random.split(key, shape[0]), shape[1])


# --------------------------------------------------------------------------- plausibility


def _plausibility_inputs(scores, rationale, rankable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = tuple(np.shape(rankable))
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"rankable: expected a boolean array [batch, length], got shape {shape}")
    r = _rankable(rankable, shape, None)
    g = _mask("rationale", rationale, shape)
    outside = np.flatnonzero((g & ~r).any(1))
    if outside.size:
        raise ValueError(f"rationale: marks tokens that are not rankable in rows {outside[:10].tolist()}")
    s = np.asarray(_scores(scores, shape, r))
    return s, g, r


def token_f1(scores, rationale, rankable, fraction_or_none: float | None = None) -> dict:
    """Token-level precision, recall and F1 of the top-ranked tokens against a rationale mask, macro over rows.

    The hard prediction of row i is its top m_i rankable tokens by `scores` (ties: lower position
    first): m_i = ⌈t·n_i⌉ for a given fraction t, or, when None, m_i = |rationale_i| (t = the row's
    own rationale share, so precision = recall = F1 per row). Per row P = |pred ∩ G| / m,
    R = |pred ∩ G| / |G|, F1 = 2PR / (P + R) (0 when both are 0); each is averaged over the rows with
    at least one rationale token (the others are skipped; "rows" says how many counted). Returns
    floats "precision", "recall", "f1" and the int "rows".
    """
    s, g, r = _plausibility_inputs(scores, rationale, rankable)
    truth = g.sum(1)
    if fraction_or_none is None:
        m = truth.astype(np.int64)
    else:
        m = erasure_count(fraction_or_none, r.sum(1))
    rows = truth > 0
    if not rows.any():
        raise ValueError("rationale: no row has a rationale token")
    ranks = np.asarray(_rank_tokens(jnp.asarray(s), r, None))
    hit = ((ranks < m[:, None]) & g).sum(1)[rows].astype(np.float64)
    precision = hit / m[rows]
    recall = hit / truth[rows]
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean()),
            "rows": int(rows.sum())}


def auprc(scores, rationale, rankable) -> float:
    """Mean over rows of the average precision of the rankable tokens' scores against the rationale.

    Per row, with thresholds τ the distinct scores (descending) and P(τ), R(τ) the precision and
    recall of {score ≥ τ}: AP = Σ_τ (R(τ) − R(τ_prev)) · P(τ), R(τ_prev = +∞) = 0. Equal scores
    form one threshold, so a tie is never split in anyone's favour. Rows without rationale tokens
    are skipped; at least one row must have one.
    """
    s, g, r = _plausibility_inputs(scores, rationale, rankable)
    batch, width = s.shape
    truth = g.sum(1)
    rows = truth > 0
    if not rows.any():
        raise ValueError("rationale: no row has a rationale token")
    n = r.sum(1)
    key = np.where(r, s.astype(np.float64), -np.inf)  # non-rankable positions sort after the n rankable
    order = np.argsort(-key, axis=1, kind="stable")
    sorted_s = np.take_along_axis(key, order, axis=1)
    positive = np.take_along_axis(g, order, axis=1)
    tp = np.cumsum(positive, axis=1)
    j = np.arange(width)[None, :]
    inside = j < n[:, None]
    nxt = np.concatenate([sorted_s[:, 1:], np.full((batch, 1), np.nan)], axis=1)
    end = inside & ((j == n[:, None] - 1) | (nxt != sorted_s))  # last position of each group of equal scores
    # each position's group end: the first end at or after it
    end_at = np.minimum.accumulate(np.where(end, j, width)[:, ::-1], axis=1)[:, ::-1]
    end_at = np.minimum(end_at, width - 1)
    precision_at_end = np.take_along_axis(tp, end_at, axis=1) / (end_at + 1)
    ap = (np.where(positive & inside, precision_at_end, 0.0).sum(1)[rows]) / truth[rows]
    return float(ap.mean())


__all__ = ["BINS", "auprc", "delete_tokens", "erasure_count", "erasure_scores", "random_token_scores",
           "token_f1", "top_tokens"]
