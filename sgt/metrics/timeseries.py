"""Time-series saliency metrics of the interpretability benchmark (Ismail et al. 2020, 2019).

Every function takes saliency maps of shape ``[N, ...]``: axis 0 indexes samples and all
the trailing axes (usually ``[T, F]``) are the cells of a sample. Ground truth is a boolean
array of the same shape. Everything is plain numpy, computed in float64 and vectorised over
samples.

Raw attributions are turned into maps in [0, 1] by :func:`rescale`; the "mass" masks of
:func:`mass_masks` then select, per sample, the fewest highest-saliency cells that hold a
share p of the sample's total saliency. Precision and recall weight each cell by its
rescaled saliency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

LEVELS = tuple(i / 10 for i in range(1, 10))
"""Mass levels p = 0.1, 0.2, …, 0.9 of the precision/recall curves."""

MASK_LEVELS = tuple(i / 10 for i in range(11))
"""Mass levels p = 0, 0.1, …, 1 of the masked-accuracy curve."""


# --------------------------------------------------------------------------- validation


def _saliency(saliency, name: str = "saliency") -> np.ndarray:
    s = np.asarray(saliency, np.float64)
    if s.ndim < 2 or s.size == 0:
        raise ValueError(f"{name}: expected a non-empty array [N, cells...], got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name}: contains non-finite values (nan or inf)")
    return s


def _truth(truth, shape: tuple[int, ...]) -> np.ndarray:
    t = np.asarray(truth)
    if t.shape != shape:
        raise ValueError(f"truth: expected the shape of saliency {shape}, got {t.shape}")
    if t.dtype != bool and not np.isin(t, (0, 1)).all():
        raise ValueError("truth: expected a boolean (or 0/1) array")
    return t.astype(bool)


def _levels(levels, *, closed: bool = False, name: str = "levels") -> np.ndarray:
    """Strictly increasing 1-D levels inside (0, 1), or inside [0, 1] when ``closed``."""
    p = np.asarray(levels, np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence, got shape {p.shape}")
    lo_ok = p >= 0 if closed else p > 0
    hi_ok = p <= 1 if closed else p < 1
    if not (np.isfinite(p).all() and lo_ok.all() and hi_ok.all()):
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{name}: every level must lie in {interval}, got {p.tolist()}")
    if np.any(np.diff(p) <= 0):
        raise ValueError(f"{name}: must be strictly increasing, got {p.tolist()}")
    return p


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(len(a), -1)


# --------------------------------------------------------------------------- saliency → masks


def rescale(saliency: np.ndarray) -> np.ndarray:
    """Per sample, ``(|s| − min|s|) / (max|s| − min|s|)`` over all cells, so values lie in [0, 1].

    The sign is dropped first. A sample whose |s| is constant has no range and becomes all
    zeros. Returns float64 of the input's shape.
    """
    a = np.abs(_saliency(saliency))
    flat = _flat(a)
    lo = flat.min(1, keepdims=True)
    span = flat.max(1, keepdims=True) - lo
    out = np.divide(flat - lo, span, out=np.zeros_like(flat), where=span > 0)
    return out.reshape(a.shape)


def mass_masks(scaled: np.ndarray, levels=LEVELS) -> np.ndarray:
    """Boolean masks ``[L, N, cells...]`` of the top cells that hold a share p of each sample's mass.

    With s_(1) ≥ s_(2) ≥ … a sample's values sorted in descending order and S = Σ_j s_j,
    level p selects the k_p largest cells, k_p = min{k : Σ_{j≤k} s_(j) ≥ p·S}. A sample with
    S = 0 selects nothing. ``scaled`` must be non-negative (e.g. the output of
    :func:`rescale`); levels must be strictly increasing in (0, 1).

    Ties: equal values are ranked by their position in the flattened sample (C order),
    the earlier cell first, so the masks are deterministic.
    """
    s = _saliency(scaled, "scaled")
    if (s < 0).any():
        raise ValueError("scaled: expected non-negative values (rescale the saliency first)")
    p = _levels(levels)
    flat = _flat(s)
    n, cells = flat.shape
    order = np.argsort(-flat, axis=1, kind="stable")  # descending, ties by cell index
    cum = np.cumsum(np.take_along_axis(flat, order, 1), axis=1)  # [N, C]
    total = cum[:, -1]
    # k_p = 1 + #{k : cum_k < p·S}; as p < 1 the last cumsum (= S) never counts, so k_p ≤ C.
    k = (cum[None] < p[:, None, None] * total[None, :, None]).sum(-1) + 1  # [L, N]
    k = np.where(total[None] > 0, k, 0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(cells)[None].repeat(n, 0), 1)  # rank of each cell
    masks = rank[None] < k[:, :, None]
    return masks.reshape((len(p), *s.shape))


# --------------------------------------------------------------------------- precision / recall


def _masked_mean(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Mean over samples (last axis) of num/den, leaving out samples with den = 0; 0 if none remain."""
    valid = den > 0
    ratio = np.divide(num, den, out=np.zeros_like(num), where=valid)
    count = valid.sum(-1)
    return np.divide(ratio.sum(-1), count, out=np.zeros(ratio.shape[:-1]), where=count > 0)


def precision_recall(saliency: np.ndarray, truth: np.ndarray, *, levels=None) -> tuple[np.ndarray, np.ndarray]:
    """Saliency-weighted precision and recall ``([L], [L])`` at each mass level (default :data:`LEVELS`).

    ``saliency`` holds raw attributions; they are rescaled with :func:`rescale` to s ∈ [0, 1]
    and masked with :func:`mass_masks` (M_p). With G the true cells, per sample and level:

        TP = Σ_{M_p ∩ G} s,   FP = Σ_{M_p \\ G} s,   FN = Σ_{G \\ M_p} s,
        precision = TP / (TP + FP),   recall = TP / (TP + FN).

    Each is averaged over the samples whose denominator is positive; a level at which no
    sample qualifies scores 0.
    """
    s = rescale(saliency)
    g = _flat(_truth(truth, s.shape))
    p = _levels(LEVELS if levels is None else levels)
    m = mass_masks(s, p).reshape(len(p), *g.shape)  # [L, N, C]
    flat = _flat(s)
    tp = (flat * (m & g)).sum(-1)
    fp = (flat * (m & ~g)).sum(-1)
    fn = (flat * (~m & g)).sum(-1)
    return _masked_mean(tp, tp + fp), _masked_mean(tp, tp + fn)


def aup_aur(saliency: np.ndarray, truth: np.ndarray, *, levels=None) -> tuple[float, float]:
    """Areas under the precision and recall curves, trapezoids over x = levels.

    With the default levels 0.1…0.9, AUP = 0.1·(P_1/2 + P_2 + … + P_8 + P_9/2), so both
    areas lie in [0, 0.8].
    """
    p = _levels(LEVELS if levels is None else levels)
    prec, rec = precision_recall(saliency, truth, levels=p)
    return float(np.trapezoid(prec, p)), float(np.trapezoid(rec, p))


def aupr(saliency: np.ndarray, truth: np.ndarray, *, levels=None) -> float:
    """Area under precision plotted against recall: the curve's points sorted by recall, then a trapezoid.

    Points with equal recall keep their level order (stable sort).
    """
    prec, rec = precision_recall(saliency, truth, levels=levels)
    order = np.argsort(rec, kind="stable")
    return float(np.trapezoid(prec[order], rec[order]))


# --------------------------------------------------------------------------- random baseline


def random_baseline(maps: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A "random" saliency built from a real one: a map chosen uniformly from ``maps``, feature axis shuffled.

    One permutation of the last (feature) axis is drawn and applied to every sample and time
    step, so each sample keeps its values and its time profile (Σ over features per step);
    only where the features sit is scrambled. All maps must share one shape ``[N, T, F]``.
    Deterministic for a given generator state.
    """
    if len(maps) == 0:
        raise ValueError("maps: expected at least one saliency map")
    arrays = [np.asarray(m) for m in maps]
    shape = arrays[0].shape
    if len(shape) < 2:
        raise ValueError(f"maps: expected arrays [N, ..., F], got shape {shape}")
    if any(a.shape != shape for a in arrays):
        raise ValueError(f"maps: all maps must share one shape, got {[a.shape for a in arrays]}")
    chosen = arrays[int(rng.integers(len(arrays)))]
    return chosen[..., rng.permutation(shape[-1])]


# --------------------------------------------------------------------------- masked accuracy


def masked_accuracy(
    predict: Callable[[np.ndarray], np.ndarray],
    x_raw: np.ndarray,
    y: np.ndarray,
    saliency: np.ndarray,
    replacement: np.ndarray,
    scale: Callable[[np.ndarray], np.ndarray],
    *,
    levels=MASK_LEVELS,
) -> np.ndarray:
    """Accuracy in [0, 1] (a fraction, not %) after replacing each sample's most salient mass, per level.

    At level p the cells :func:`mass_masks` selects in each sample's rescaled saliency are
    overwritten in the raw data by the same cells of ``replacement`` (one raw background
    sample ``[T, F]``, shared by every sample and level); the result goes through the train
    scaler ``scale`` and then ``predict``, which returns labels. At p = 0 nothing is replaced
    and at p = 1 every cell is (all inputs then equal the replacement). A sample with an
    all-zero rescaled map has nothing replaced for 0 < p < 1. Levels: strictly increasing in
    [0, 1]; default 0, 0.1, …, 1.
    """
    x = np.asarray(x_raw)
    s = rescale(saliency)
    if x.shape != s.shape:
        raise ValueError(f"x_raw: expected the shape of saliency {s.shape}, got {x.shape}")
    r = np.asarray(replacement)
    if r.shape != x.shape[1:]:
        raise ValueError(f"replacement: expected shape {x.shape[1:]}, got {r.shape}")
    labels = np.asarray(y)
    if labels.shape != (len(x),):
        raise ValueError(f"y: expected shape {(len(x),)}, got {labels.shape}")
    p = _levels(levels, closed=True)
    inner = (p > 0) & (p < 1)
    masks = np.zeros((len(p), *x.shape), bool)
    if inner.any():
        masks[inner] = mass_masks(s, p[inner])
    masks[p == 1] = True
    acc = np.empty(len(p))
    for i, m in enumerate(masks):
        predicted = np.asarray(predict(scale(np.where(m, r, x))))
        if predicted.shape != labels.shape:
            raise ValueError(f"predict: expected labels of shape {labels.shape}, got {predicted.shape}")
        acc[i] = np.mean(predicted == labels)
    return acc


def masked_accuracy_auc(accuracies: np.ndarray, *, levels=MASK_LEVELS) -> float:
    """Trapezoid area of a masked-accuracy curve over x = levels + 0.1 (lower: more decisive saliency).

    The +0.1 mirrors the authors' x = 0.1, 0.2, …, 1.1 for levels 0…1; shifting x does not
    change a trapezoid area, so this equals the area over the levels themselves. For the
    default 11 levels it is 0.1·(a_0/2 + a_1 + … + a_9 + a_10/2). With accuracies as fractions
    the value is the authors' (accuracy in %) divided by 100.
    """
    a = np.asarray(accuracies, np.float64)
    p = _levels(levels, closed=True)
    if a.shape != p.shape:
        raise ValueError(f"accuracies: expected shape {p.shape} (one per level), got {a.shape}")
    return float(np.trapezoid(a, p + 0.1))


# --------------------------------------------------------------------------- 2019 metrics


def weighted_jaccard(saliency: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per sample ``[N]``: Σ_i min(R_i, S̃_i) / Σ_i max(R_i, S̃_i), higher is better (1 = perfect).

    R is the 0/1 truth and S̃ the rescaled saliency (:func:`rescale`). A sample with an
    empty box and an all-zero map (0/0) scores 0.
    """
    s = _flat(rescale(saliency))
    r = _flat(_truth(truth, np.shape(saliency))).astype(np.float64)
    num = np.minimum(r, s).sum(1)
    den = np.maximum(r, s).sum(1)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def euclidean(saliency: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per sample ``[N]``: ‖R − S̃‖₂ / ‖R‖₂, lower is better (0 = perfect).

    R is the 0/1 truth and S̃ the rescaled saliency (:func:`rescale`). Every sample needs
    at least one true cell (‖R‖₂ > 0).
    """
    s = _flat(rescale(saliency))
    r = _flat(_truth(truth, np.shape(saliency))).astype(np.float64)
    norm = np.linalg.norm(r, axis=1)
    if (norm == 0).any():
        raise ValueError("truth: every sample needs at least one true cell for the Euclidean score")
    return np.linalg.norm(r - s, axis=1) / norm
