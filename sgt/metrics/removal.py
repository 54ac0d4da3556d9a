"""Accuracy as the most salient input units are removed (the paper's Fig. 3 and Fig. 4), and ROAR.

A *removal curve* ranks each sample's units by a saliency score, replaces the top fraction p of
them by a reference value, and records the classifier's accuracy for every p. A saliency method
that finds what the model relies on makes the accuracy fall fast, so a lower area under the curve
is better. Scores are one number per unit, `[batch, *units]`; for images `[B, H, W, C]` the caller
reduces the channels first (the authors took the channel mean of |attribution|) and a removed
pixel is replaced in all channels.

Selection, for fraction p of U units per sample: p = 0 removes nothing; p > 0 removes the
max(1, ⌊p·U⌋) highest-scored units (⌊·⌋ as `sgt.masking.resolve_k` floors a fraction), so every
sample loses exactly that many. Equal scores are ordered by a random permutation drawn per sample
from `key`, or by flat index (lower first) when `key` is None. Sample i's permutation comes from
`split(key, batch)[i]`, so results do not depend on `batch_size`.

ROAR (Hooker et al. 2019) retrains a model on training images whose top-p units are replaced by the
data mean and evaluates it on test images masked the same way; `roar_set` builds those images.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sgt import xla

FRACTIONS = tuple(i / 10 for i in range(10))
"""Removed fractions p = 0, 0.1, …, 0.9 (the paper's Fig. 3 axis)."""


# --------------------------------------------------------------------------- checks


def _fractions(fractions) -> np.ndarray:
    p = np.asarray(fractions, np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"fractions: expected a non-empty 1-D sequence, got shape {p.shape}")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError(f"fractions: every fraction must lie in [0, 1], got {p.tolist()}")
    return p


def _scores(scores) -> jax.Array:
    s = jnp.asarray(scores)
    if s.ndim < 2 or s.shape[0] == 0 or math.prod(s.shape[1:]) == 0:
        raise ValueError(f"scores: expected a non-empty array [batch, *units], got shape {s.shape}")
    if not jnp.issubdtype(s.dtype, jnp.floating) and not jnp.issubdtype(s.dtype, jnp.integer):
        raise ValueError(f"scores: expected real numbers, got dtype {s.dtype}")
    if not bool(jnp.isfinite(s).all()):
        raise ValueError("scores: contains non-finite values (nan or inf)")
    return s


def _channel_axis(x_shape: tuple[int, ...], scores_shape: tuple[int, ...]) -> bool:
    """True when x has a trailing channel axis beyond the units of `scores` (x [B, *units, C])."""
    if tuple(x_shape) == tuple(scores_shape):
        return False
    if len(x_shape) == len(scores_shape) + 1 and tuple(x_shape[:-1]) == tuple(scores_shape):
        return True
    raise ValueError(f"scores: expected shape {tuple(x_shape)} or, for inputs with channels, "
                     f"{tuple(x_shape[:-1])} (one score per unit), got {tuple(scores_shape)}")


def removal_count(fraction: float, units: int) -> int:
    """Units removed per sample at `fraction`: 0 at p = 0, else max(1, ⌊p·units⌋)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction: must lie in [0, 1], got {fraction}")
    return 0 if fraction == 0 else max(1, int(fraction * units))


# --------------------------------------------------------------------------- ranking


@xla.jit
def _ranks_from(scores: jax.Array, tiebreak: jax.Array) -> jax.Array:
    """Rank of each unit [B, U] (0 = highest score), equal scores ordered by `tiebreak` ascending."""
    s = scores.astype(jnp.float32) if jnp.issubdtype(scores.dtype, jnp.integer) else scores
    s = jnp.where(s == 0, jnp.zeros_like(s), s)  # −0.0 and 0.0 are one score
    order = jnp.lexsort((tiebreak, -s), axis=-1)  # last key is primary: descending score
    return jnp.argsort(order, axis=-1).astype(jnp.int32)


@functools.partial(xla.jit, static_argnums=1)
def _permutations(keys: jax.Array, units: int) -> jax.Array:
    return jax.vmap(lambda k: jax.random.permutation(k, units))(keys).astype(jnp.int32)


def _tiebreak(batch: int, units: int, key: jax.Array | None) -> jax.Array:
    """Per sample, the order among equal scores: flat index (key None) or a random permutation."""
    if key is None:
        return jnp.broadcast_to(jnp.arange(units, dtype=jnp.int32), (batch, units))
    return _permutations(jax.random.split(key, batch), units)


def removal_ranks(scores, *, key: jax.Array | None = None) -> jax.Array:
    """Each unit's removal rank, shaped like `scores`: 0 is removed first (the highest score).

    Every sample's ranks are a permutation of 0 … U−1; ties are broken at random with `key`, by
    flat index (lower first) when `key` is None.
    """
    s = _scores(scores)
    batch, units = s.shape[0], math.prod(s.shape[1:])
    flat = s.reshape(batch, units)
    return _ranks_from(flat, _tiebreak(batch, units, key)).reshape(s.shape)


def top_mask(scores, fraction: float, *, key: jax.Array | None = None) -> jax.Array:
    """Boolean, shaped like `scores`: True on each sample's max(1, ⌊p·U⌋) highest-scored units."""
    s = _scores(scores)
    count = removal_count(float(fraction), math.prod(s.shape[1:]))
    return removal_ranks(s, key=key) < count


def random_scores(key: jax.Array, shape: Sequence[int]) -> jax.Array:
    """Scores [batch, *units] whose ranking is a uniformly random permutation of each sample's units.

    Each sample holds the values 0 … U−1 in random order (float32), so there are no ties: the
    baseline of a removal curve that removes units at random.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"shape: expected [batch, *units] with every size >= 1, got {shape}")
    batch, units = shape[0], math.prod(shape[1:])
    return _permutations(jax.random.split(key, batch), units).astype(jnp.float32).reshape(shape)


# --------------------------------------------------------------------------- removal


def _replacement(replacement, x_shape, dtype) -> tuple[np.ndarray, bool]:
    """(replacement as an array, whether it holds one value set per sample) after checking it broadcasts."""
    r = np.asarray(replacement, dtype)
    try:
        shape = np.broadcast_shapes(r.shape, tuple(x_shape))
    except ValueError:
        shape = None
    if shape != tuple(x_shape):
        raise ValueError(f"replacement: expected a scalar or an array broadcastable to x {tuple(x_shape)}, "
                         f"got shape {r.shape}")
    per_sample = r.ndim == len(x_shape) and r.shape[0] == x_shape[0] and x_shape[0] > 1
    return r, per_sample


@xla.jit
def _remove(x, ranks, count, replacement):
    mask = ranks < count
    if x.ndim == ranks.ndim + 1:
        mask = mask[..., None]
    return jnp.where(mask, replacement.astype(x.dtype), x)


def remove_top(x, scores, fraction: float, replacement=0.0, *, key: jax.Array | None = None) -> jax.Array:
    """x with each sample's max(1, ⌊p·U⌋) highest-scored units set to `replacement` (all channels).

    `scores` is [batch, *units] with x either of that shape or [batch, *units, C]. `replacement`: a
    scalar or an array broadcastable to x. p = 0 returns x unchanged.
    """
    x = jnp.asarray(x)
    s = _scores(scores)
    _channel_axis(x.shape, s.shape)
    r, _ = _replacement(replacement, x.shape, x.dtype)
    count = removal_count(float(fraction), math.prod(s.shape[1:]))
    return _remove(x, removal_ranks(s, key=key), jnp.int32(count), jnp.asarray(r))


def _correct_per_count(f, x, y, ranks, replacement, counts):
    """Correct predictions of `f` on x with the `count` top-ranked units replaced, for each count."""

    def one(count):
        logits = f(_remove(x, ranks, count, replacement))
        return jnp.sum(jnp.argmax(logits, axis=-1) == y)

    return jax.lax.map(one, counts)


_correct_static = xla.jit(_correct_per_count, static_argnums=0)  # f a plain function: compiled per f
_correct_traced = xla.jit(_correct_per_count)  # f a jax.tree_util.Partial: its arguments are traced


def removal_curve(f: Callable[[jax.Array], jax.Array], x, y, scores, fractions: Sequence[float] = FRACTIONS, *,
                  replacement=0.0, key: jax.Array | None = None, batch_size: int | None = None) -> np.ndarray:
    """Accuracy of classifier `f` (logits [batch, classes]) for each removed fraction, as a numpy array.

    At fraction p each sample's max(1, ⌊p·U⌋) highest-`scores` units are replaced by `replacement`
    (a scalar or an array broadcastable to x; per-sample arrays are sliced with the batch) in all
    channels; p = 0 is the accuracy on x itself. Ties are broken at random with `key` (by flat index
    when None). `batch_size` evaluates that many samples at a time (None: all at once); the result
    does not depend on it. One jitted program per batch shape evaluates every fraction; passing the
    same `f` object again reuses it. To reuse it across parameter sets, pass
    `f = jax.tree_util.Partial(apply, params)` with one `apply(params, x)` function: a `Partial`'s
    arguments are traced, not baked into the program.
    """
    x = jnp.asarray(x)
    s = _scores(scores)
    _channel_axis(x.shape, s.shape)
    labels = jnp.asarray(y)
    if labels.shape != (x.shape[0],) or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"y: expected integer labels of shape {(x.shape[0],)}, got {labels.dtype} {labels.shape}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size: expected None or a positive int, got {batch_size!r}")
    p = _fractions(fractions)
    batch, units = s.shape[0], math.prod(s.shape[1:])
    counts = jnp.asarray([removal_count(float(v), units) for v in p], jnp.int32)
    r, per_sample = _replacement(replacement, x.shape, x.dtype)
    ranks = removal_ranks(s, key=key)
    step = batch_size or batch
    evaluate = _correct_traced if isinstance(f, jax.tree_util.Partial) else _correct_static
    correct = np.zeros(len(p), np.int64)
    for start in range(0, batch, step):
        part = slice(start, start + step)
        rep = jnp.asarray(r[part] if per_sample else r)
        correct += np.asarray(evaluate(f, x[part], labels[part], ranks[part], rep, counts))
    return correct / batch


def removal_auc(accuracies, fractions: Sequence[float] = FRACTIONS) -> float:
    """Trapezoid area under a removal curve over the fractions (lower: the ranking finds what matters)."""
    a = np.asarray(accuracies, np.float64)
    p = _fractions(fractions)
    if a.shape != p.shape:
        raise ValueError(f"accuracies: expected shape {p.shape} (one per fraction), got {a.shape}")
    if np.any(np.diff(p) <= 0):
        raise ValueError(f"fractions: must be strictly increasing, got {p.tolist()}")
    return float(np.trapezoid(a, p))


# --------------------------------------------------------------------------- ROAR


def channel_mean(x) -> np.ndarray:
    """The mean of x over samples and units, per channel for inputs [batch, *units, C] (shape [C])."""
    x = np.asarray(x)
    return x.reshape(-1, x.shape[-1]).mean(0, dtype=np.float64).astype(x.dtype)


def roar_set(x, scores, fraction: float, *, fill=None, key: jax.Array | None = None,
             batch_size: int | None = 4096) -> np.ndarray:
    """ROAR's images: x with each sample's max(1, ⌊p·U⌋) highest-scored units replaced by `fill`.

    `fill` defaults to the per-channel mean of x itself (`channel_mean`, for x [batch, *units, C]);
    pass the training set's mean when masking a test set. `scores` ranks each sample's units (e.g. the
    channel mean of a trained model's |saliency|); ties as in `removal_ranks`. Returns numpy, built
    `batch_size` samples at a time (None: all at once); sample i's ties use `split(key, batch)[i]`.
    """
    x = np.asarray(x)
    s = _scores(scores)
    _channel_axis(x.shape, s.shape)
    fill = channel_mean(x) if fill is None else fill
    r, per_sample = _replacement(fill, x.shape, x.dtype)
    keys = None if key is None else jax.random.split(key, len(x))
    step = batch_size or len(x)
    out = np.empty_like(x)
    count = removal_count(float(fraction), math.prod(s.shape[1:]))
    for start in range(0, len(x), step):
        part = slice(start, start + step)
        n = len(x[part])
        tiebreak = _tiebreak(n, math.prod(s.shape[1:]), None) if keys is None else _permutations(
            keys[part], math.prod(s.shape[1:]))
        ranks = _ranks_from(s[part].reshape(n, -1), tiebreak).reshape(s[part].shape)
        out[part] = np.asarray(_remove(jnp.asarray(x[part]), ranks, jnp.int32(count),
                                       jnp.asarray(r[part] if per_sample else r)))
    return out


__all__ = ["FRACTIONS", "channel_mean", "random_scores", "removal_auc", "removal_count", "removal_curve",
           "removal_ranks", "remove_top", "roar_set", "top_mask"]
