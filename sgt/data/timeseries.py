"""Synthetic time-series sets with known salient cells.

From Ismail et al. 2020, "Benchmarking Deep Learning Interpretability in Time Series Predictions"
(NeurIPS 2020); the definitions are written out in docs/timeseries.md.

**The 70 benchmark sets** of Ismail et al. 2020 are named `<Type>_<Gen>`. Each sample is a
[T=50 time, F=50 feature] matrix. By default there are 1000 train and 100 test samples, with
binary labels. Labels are drawn as `randint(-1, 1)`, so −1 becomes class 0 and 0 becomes class 1.

- The *Type* sets the box (the ground-truth mask); see `BOXES`. A box is either static, moving
  (its start is drawn uniformly per sample, independently of the class), or positional (the
  class decides the start on one axis).
- Inside the box, class 1 gets +1 and class 0 gets −1 (mu = 1). Positional types give +1 to both
  classes, because there the position carries the class.
- The *Gen* is the base signal:
  - "Box": i.i.d. N(0, 1), with the box cells *replaced* by N(±1, 1) draws.
  - The six others are ports of TimeSynth 0.2.4 processes, with ±1 *added* to the box cells.
    Each sample draws one irregular time vector: 50 of 100 grid points on [0, 20], each
    jittered by N(0, 0.2), then sorted. All features of the sample share it. Each feature then
    draws its own series, plus N(0, 0.3²) noise (see `base_signals`).
- `benchmark` min-max scales each (t, f) cell with the train set's range. Test values may leave
  [0, 1].

**The vanishing-saliency sets** of Ismail et al. 2019 are "TopBox", "MiddleBox" and "BottomBox".
They are [100, 100] N(0, 1) samples with one fixed box, whose cells are replaced by N(±1, 1)
draws. There are 1000 train and 300 test samples. Class 1 ↔ +1 here; the authors' code maps +1
to class 0, which is the symmetric choice. `vanishing` standardises each cell with the train
mean and std.

Every (dataset, seed) pair has its own numpy stream: train is drawn first, then test.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from sgt.data.base import Dataset

T = F = 50
TYPES = ("Middle", "SmallMiddle", "Moving_Middle", "Moving_SmallMiddle", "RareTime", "Moving_RareTime",
         "RareFeature", "Moving_RareFeature", "PostionalTime", "PostionalFeature")  # "Postional" (sic)
GENERATORS = ("Box", "Harmonic", "GaussianProcess", "PseudoPeriodic", "AutoRegressive", "CAR", "NARMA")
NAMES = tuple(f"{type_}_{gen}" for type_ in TYPES for gen in GENERATORS)
VANISHING = ("TopBox", "MiddleBox", "BottomBox")

MU = 1.0  # the box shift
NOISE_STD = 0.3  # TimeSynth GaussianNoise(std=0.3) on every non-Gaussian series
STOP_TIME = 20.0  # TimeSampler(stop_time=20)

RANDOM, BY_CLASS = "random", "class"
POSITIONAL_START = {1: 1, 0: 29}  # class → start on the frozen axis (Loc1 = 1, Loc2 = 29)

# type → (box_t, box_f, t_start, f_start). A start is an int (static), RANDOM (U{0..size−box−1}
# per sample) or BY_CLASS (POSITIONAL_START). PostionalTime fixes the *feature* start by class and
# PostionalFeature the *time* start, as in the authors' code.
BOXES = {
    "Middle": (30, 30, 10, 10),
    "SmallMiddle": (14, 14, 18, 18),
    "Moving_Middle": (30, 30, RANDOM, RANDOM),
    "Moving_SmallMiddle": (15, 15, RANDOM, RANDOM),
    "RareTime": (6, 40, 22, 5),
    "Moving_RareTime": (6, 40, RANDOM, RANDOM),
    "RareFeature": (40, 6, 5, 22),
    "Moving_RareFeature": (40, 6, RANDOM, RANDOM),
    "PostionalTime": (20, 20, RANDOM, BY_CLASS),
    "PostionalFeature": (20, 20, BY_CLASS, RANDOM),
}

VANISHING_SIZE = 100
# name → (t_start, t_end, f_start, f_end), end exclusive
VANISHING_BOXES = {"TopBox": (0, 30, 10, 90), "MiddleBox": (20, 80, 20, 80), "BottomBox": (70, 100, 10, 90)}


@dataclasses.dataclass(frozen=True)
class Raw:
    """Unscaled samples [n, T, F], labels in {0, 1} and boolean box masks shaped like x."""

    x_train: np.ndarray
    y_train: np.ndarray
    truth_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    truth_test: np.ndarray


def _unknown(name: str) -> ValueError:
    return ValueError(f"name: unknown dataset {name!r}; expected <Type>_<Gen> with Type in {TYPES} "
                      f"and Gen in {GENERATORS}, or a vanishing-saliency set in {VANISHING}")


def parse(name: str) -> tuple[str, str]:
    """(type, generator) of a benchmark name, e.g. "Moving_RareTime_CAR" → ("Moving_RareTime", "CAR")."""
    type_, _, gen = name.rpartition("_")
    if type_ not in TYPES or gen not in GENERATORS:
        raise _unknown(name)
    return type_, gen


# ---------------------------------------------------------------- labels and boxes


def class_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    """`randint(-1, 1)` (−1 or 0) shifted to classes {0, 1}: −1 → class 0, 0 → class 1."""
    return (rng.integers(-1, 1, size=n) + 1).astype(np.int32)


def boxes(type_: str, rng: np.random.Generator, labels: np.ndarray, t: int = T, f: int = F):
    """(t_start [n], f_start [n], box_t, box_f) of box type `type_` for samples with `labels`.

    A RANDOM start is `rng.integers(size − box)` (upper bound exclusive). The time start is drawn
    before the feature start.
    """
    if type_ not in BOXES:
        raise ValueError(f"type_: unknown box type {type_!r}; expected one of {TYPES}")
    box_t, box_f, rule_t, rule_f = BOXES[type_]
    labels = np.asarray(labels)

    def start(rule, box, size):
        if rule == RANDOM:
            return rng.integers(size - box, size=len(labels))
        if rule == BY_CLASS:
            return np.where(labels == 1, POSITIONAL_START[1], POSITIONAL_START[0])
        return np.full(len(labels), rule)

    t_start = start(rule_t, box_t, t)
    return t_start, start(rule_f, box_f, f), box_t, box_f


def box_mask(t_start, f_start, box_t: int, box_f: int, t: int = T, f: int = F) -> np.ndarray:
    """Boolean [n, t, f]: True on t_start ≤ time < t_start + box_t and f_start ≤ feature < f_start + box_f."""
    time, feat = np.arange(t), np.arange(f)
    in_t = (time >= np.asarray(t_start)[:, None]) & (time < np.asarray(t_start)[:, None] + box_t)
    in_f = (feat >= np.asarray(f_start)[:, None]) & (feat < np.asarray(f_start)[:, None] + box_f)
    return in_t[:, :, None] & in_f[:, None, :]


# ---------------------------------------------------------------- base signals (TimeSynth ports)


def irregular_times(rng: np.random.Generator, n: int, t: int = T) -> np.ndarray:
    """[n, t] sorted times: t of the 2t points of linspace(0, 20, 2t), each + N(0, (20 / 2t)²).

    This is `TimeSampler(stop_time=20).sample_irregular_time(num_points=2t, keep_percentage=50)`.
    """
    grid = np.linspace(0.0, STOP_TIME, 2 * t)
    keep = rng.random((n, 2 * t)).argsort(axis=1)[:, :t]  # t of 2t without replacement
    return np.sort(grid[keep] + rng.normal(0.0, STOP_TIME / (2 * t), (n, t)), axis=1)


def harmonic(rng, n, t=T, f=F):
    """sin(2π·2·τ): `Sinusoidal(frequency=2)`. It is the same for every feature of a sample."""
    wave = np.sin(2 * np.pi * 2.0 * irregular_times(rng, n, t))
    return np.repeat(wave[:, :, None], f, axis=2)


def matern32(times: np.ndarray, lengthscale: float = 1.0, variance: float = 1.0) -> np.ndarray:
    """Matérn ν = 3/2 covariance [..., t, t]: σ²·(1 + √3·r/ℓ)·exp(−√3·r/ℓ) with r = |τ_i − τ_j|."""
    r = np.sqrt(3.0) * np.abs(times[..., :, None] - times[..., None, :]) / lengthscale
    return variance * (1.0 + r) * np.exp(-r)


def gaussian_process(rng, n, t=T, f=F, jitter: float = 1e-6):
    """A zero-mean GP with the Matérn 3/2 kernel (ℓ = 1, σ² = 1), one draw per feature.

    The draw is L·z with L = chol(K + jitter·I), one Cholesky per sample. The jitter is there
    because the jittered times can almost coincide.
    """
    cov = matern32(irregular_times(rng, n, t)) + jitter * np.eye(t)
    return np.linalg.cholesky(cov) @ rng.standard_normal((n, t, f))


def pseudo_periodic(rng, n, t=T, f=F):
    """a·sin(ω·τ), with a ~ N(1, 0.5²) and ω ~ N(2, 0.01²) drawn per time point (no 2π).

    This is `PseudoPeriodic(frequency=2, freqSD=0.01, ampSD=0.5)`.
    """
    times = irregular_times(rng, n, t)[:, :, None]
    freq = rng.normal(2.0, 0.01, (n, t, f))
    amp = rng.normal(1.0, 0.5, (n, t, f))
    return amp * np.sin(freq * times)


def autoregressive(rng, n, t=T, f=F, phi: float = 0.9, sigma: float = 0.5):
    """AR(1): x_k = φ·x_{k−1} + σ·ε_k, with x_{−1} = 0 (so x_0 = σ·ε_0). It ignores the times."""
    eps = sigma * rng.standard_normal((n, t, f))
    x = np.empty((n, t, f))
    prev = np.zeros((n, f))
    for k in range(t):
        prev = x[:, k] = phi * prev + eps[:, k]
    return x


def car(rng, n, t=T, f=F, phi: float = 0.9, sigma: float = 0.01, start: float = 0.01):
    """Continuous AR: x_0 = 0.01 and x_k = φ^Δ·x_{k−1} + σ·√(1 − φ^Δ)·ε_k, with Δ = τ_k − τ_{k−1}.

    This is `CAR(ar_param=0.9, sigma=0.01)`: nearly flat around 0.
    """
    decay = phi ** np.diff(irregular_times(rng, n, t), axis=1)  # [n, t − 1]
    eps = rng.standard_normal((n, t, f))
    x = np.empty((n, t, f))
    x[:, 0] = start
    for k in range(1, t):
        d = decay[:, k - 1, None]
        x[:, k] = d * x[:, k - 1] + sigma * np.sqrt(1.0 - d) * eps[:, k]
    return x


@functools.cache
def narma_path(t: int = T, order: int = 10, coefficients=(0.3, 0.05, 1.5, 0.1), seed: int = 42) -> np.ndarray:
    """The deterministic NARMA(order) path [t] of `NARMA(order=10)`.

    Let y be `order` zeros followed by the t outputs. Let u be `order`, then t, U(0, 0.5) draws
    from `RandomState(seed)`. For i = order … order + t − 1:
        y_i = a0·y_{i−1} + a1·y_{i−1}·Σ y[i−order : order] + a2·u_{i−order}·u_i + a3.
    The window `y[i−order : order]` is the code's, not the paper's Σ_{j<order} y_{i−1−j}: it
    shrinks and is empty from i = 2·order on. TimeSynth builds a new RandomState(42) for every
    series, so the path is the same for every feature and sample.
    """
    a0, a1, a2, a3 = coefficients
    state = np.random.RandomState(seed)
    u = np.concatenate([state.uniform(0.0, 0.5, order), state.uniform(0.0, 0.5, t)])
    y = np.zeros(order + t)
    for i in range(order, order + t):
        y[i] = a0 * y[i - 1] + a1 * y[i - 1] * y[i - order:order].sum() + a2 * u[i - order] * u[i] + a3
    path = y[order:]
    path.flags.writeable = False
    return path


def narma(rng, n, t=T, f=F):
    """The fixed NARMA(10) path (see `narma_path`), the same in every cell column. It draws nothing."""
    return np.broadcast_to(narma_path(t)[None, :, None], (n, t, f)).copy()


_SIGNALS = {"Harmonic": harmonic, "GaussianProcess": gaussian_process, "PseudoPeriodic": pseudo_periodic,
            "AutoRegressive": autoregressive, "CAR": car, "NARMA": narma}


def base_signals(generator: str, rng: np.random.Generator, n: int, t: int = T, f: int = F) -> np.ndarray:
    """[n, t, f] box-free samples of `generator`.

    "Box" gives i.i.d. N(0, 1). The other generators give their signal plus N(0, 0.3²) noise.
    """
    if generator == "Box":
        return rng.standard_normal((n, t, f))
    if generator not in _SIGNALS:
        raise ValueError(f"generator: unknown generator {generator!r}; expected one of {GENERATORS}")
    return _SIGNALS[generator](rng, n, t, f) + rng.normal(0.0, NOISE_STD, (n, t, f))


# ---------------------------------------------------------------- datasets


def add_box(x: np.ndarray, truth: np.ndarray, shift: np.ndarray, rng, replace: bool) -> np.ndarray:
    """x with the `truth` cells set to N(shift, 1) draws (`replace`) or shifted by `shift` [n]."""
    shift = np.broadcast_to(np.asarray(shift, float)[:, None, None], x.shape)
    x = x.copy()
    x[truth] = rng.normal(shift[truth], 1.0) if replace else x[truth] + shift[truth]
    return x


def _benchmark_split(type_: str, gen: str, rng, n: int):
    labels = class_labels(rng, n)
    t_start, f_start, box_t, box_f = boxes(type_, rng, labels)
    truth = box_mask(t_start, f_start, box_t, box_f)
    positional = BOXES[type_][2] == BY_CLASS or BOXES[type_][3] == BY_CLASS
    shift = np.full(n, MU) if positional else np.where(labels == 1, MU, -MU)
    x = add_box(base_signals(gen, rng, n), truth, shift, rng, replace=gen == "Box")
    return x, labels, truth


def _vanishing_split(name: str, rng, n: int):
    labels = class_labels(rng, n)
    t0, t1, f0, f1 = VANISHING_BOXES[name]
    size = VANISHING_SIZE
    truth = box_mask(np.full(n, t0), np.full(n, f0), t1 - t0, f1 - f0, size, size)
    x = add_box(rng.standard_normal((n, size, size)), truth, np.where(labels == 1, MU, -MU), rng, replace=True)
    return x, labels, truth


def raw(name: str, seed: int = 0, n_train: int = 1000, n_test: int | None = None) -> Raw:
    """Unscaled train then test samples of benchmark or vanishing set `name`, generated from `seed`.

    `n_test` defaults to 100 (benchmark) or 300 (vanishing). The stream is
    `default_rng([seed, type index, generator index])` for a benchmark set and
    `default_rng([seed, 100 + index])` for a vanishing set.
    """
    if name in VANISHING:
        rng = np.random.default_rng([seed, 100 + VANISHING.index(name)])
        split = functools.partial(_vanishing_split, name, rng)
        n_test = 300 if n_test is None else n_test
    else:
        type_, gen = parse(name)
        rng = np.random.default_rng([seed, TYPES.index(type_), GENERATORS.index(gen)])
        split = functools.partial(_benchmark_split, type_, gen, rng)
        n_test = 100 if n_test is None else n_test
    x_train, y_train, truth_train = split(n_train)
    x_test, y_test, truth_test = split(n_test)
    return Raw(x_train, y_train, truth_train, x_test, y_test, truth_test)


def background(name: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, T, F] fresh box-free raw samples of `name`'s generator (N(0, 1) for a vanishing set)."""
    if name in VANISHING:
        return rng.standard_normal((n, VANISHING_SIZE, VANISHING_SIZE))
    return base_signals(parse(name)[1], rng, n)


def minmax_fit(x_train: np.ndarray):
    """Per-cell (min, range) over the train samples; a constant cell gets range 1. Scaled = (x − lo) / range."""
    lo, hi = x_train.min(axis=0), x_train.max(axis=0)
    return lo, np.where(hi > lo, hi - lo, 1.0)


def standard_fit(x_train: np.ndarray):
    """Per-cell (mean, std) over the train samples; a zero std becomes 1. Scaled = (x − mean) / std."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def _scaled_dataset(name: str, data: Raw, fit, dtype=np.float32) -> Dataset:
    shift, scale = fit(data.x_train)
    return Dataset(
        name=name,
        x_train=((data.x_train - shift) / scale).astype(dtype),
        y_train=data.y_train,
        x_test=((data.x_test - shift) / scale).astype(dtype),
        y_test=data.y_test,
        num_classes=2,
        truth_test=data.truth_test,
    )


def benchmark(name: str, seed: int = 0, n_train: int = 1000, n_test: int = 100, dtype=np.float32) -> Dataset:
    """Benchmark set `name` ("<Type>_<Gen>"), each cell min-max scaled with the train range, as `dtype`."""
    if name not in NAMES:
        raise _unknown(name)
    return _scaled_dataset(name, raw(name, seed, n_train, n_test), minmax_fit, dtype)


def vanishing(name: str, seed: int = 0, n_train: int = 1000, n_test: int = 300, dtype=np.float32) -> Dataset:
    """Vanishing-saliency set `name`, each cell standardised with the train mean and std, as `dtype`."""
    if name not in VANISHING:
        raise ValueError(f"name: unknown vanishing-saliency set {name!r}; expected one of {VANISHING}")
    return _scaled_dataset(name, raw(name, seed, n_train, n_test), standard_fit, dtype)
