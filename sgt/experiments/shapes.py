"""Saliency maps against the ground truth on the embedded image set "shapes" (docs/shapes.md).

For each seed, the dataset's default model (`small_cnn`) is trained ordinarily and with saliency
guided training, with the dataset's `TrainDefaults` (15 epochs, batch 64, Adam 3e-3, k = 0.85,
λ = 10) through `sgt.loop.fit`, on one fixed generated set (`data_seed`, default 0): the seed
changes the initialisation and the batch order, not the images, so every model is scored on the
same test images. (`sgt train --seed s` also redraws the set.)

Each model attributes a fixed subset of the test set (default: all 500 images) with the six
methods of the MNIST experiment (`sgt.experiments.mnist.METHOD_OPTIONS`), attributing the true
label's logit by default (`--score logit`, what `sgt train` scores) or its log-probability. A
pixel's score is the channel mean of |attribution| (the removal curve's reduction). Conventions
carried over from MNIST, in this set's input space (raw intensities in [0, 1]):

* IG and DeepLIFT start from one baseline, the all-zero (black) image;
* GradSHAP and DeepSHAP draw from a pool of `POOL` = 10 training images, a fixed random choice;
* the noise scales were set for MNIST's normalised inputs, where one unit is 0.3081 raw
  intensity: SmoothGrad's σ = 1 and GradSHAP's σ = 0.09 become 0.3081 and 0.0277 here.

Every map is scored against the object mask G (body and outline, `Dataset.truth_test`):

* **mass inside** (`sgt.metrics.mass_inside`): Σ_{i∈G} |s_i| / Σ_i |s_i| per image, averaged;
* **AUP, AUR** (`sgt.metrics.aup_aur`): each map is rescaled to [0, 1] per image, the top cells
  holding a share p of its mass are selected for p = 0.1 … 0.9, and the saliency-weighted
  precision and recall of that selection against G are integrated over p (each in [0, 0.8]);
* **removal area** (`sgt.metrics.removal_curve`, `removal_auc`): the top fraction p = 0, 0.1 … 0.9
  of each image's pixels are set to the background value `BACKGROUND` = 0 (a black pixel) and the
  accuracy is integrated over p; lower means the ranking found what the model uses.

Higher is better for the first three, lower for the last. The reference row "Blind" is a map that
ignores the image: a uniformly random ranking of the pixels (`sgt.metrics.random_scores`), the
same map for both models. Its expected mass inside is the object's area share |G|/U, the value
`sgt train` prints for "a saliency map blind to the box" (there, a constant map); its removal
curve is the random-removal baseline of that model.

Caching: each model (msgpack parameters and a JSON record) and each (model, method) record is one
file under OUT/cache, written atomically; a rerun reuses them, and a stopped training resumes from
its last epoch checkpoint. `--report-only` reads the cache and trains nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from sgt import _args, data, masking, metrics, models, saliency, train, xla
from sgt.data.base import Dataset
from sgt.experiments import mnist
from sgt.experiments.comparison import OPTIMIZERS
from sgt.experiments.mnist import (
    METHOD_OPTIONS,
    _key,
    _rounded,
    _write,
    classify,
    mean_se,
    model_name,
)

DATASET = "shapes"
DEFAULTS = data.get(DATASET).defaults
REGIMES = mnist.REGIMES  # {"ordinary": "standard", "sgt": "sgt"}
METHODS = mnist.METHODS  # Grad, SmoothGrad, IG, DeepLIFT, GradSHAP, DeepSHAP
BLIND = "Blind"
BACKGROUND = 0.0  # a removed pixel becomes black (the input space is raw intensity in [0, 1])
POOL = 10  # training images in the SHAP methods' pool
SUBSET_SEED = mnist.SUBSET_SEED  # the test subset and the SHAP pool: fixed, the same for every model
NOISE_UNIT = mnist.STD  # one unit of MNIST's normalised input space, in raw intensity
DISPLAY = 4  # test images whose maps each record keeps for the figure
SALIENCY_CHUNK = 100  # test images attributed at once (fixed: random methods draw per chunk)
CURVE_BATCH = 500
SCORES = mnist.SCORES  # ("log_softmax", "logit")
METRICS = {  # key in a record: (label, higher is better)
    "mass_inside": ("mass inside the object", True),
    "aup": ("AUP against the mask", True),
    "aur": ("AUR against the mask", True),
    "auc": ("removal-curve area", False),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Training settings (the cache folder's name) and evaluation settings (a subfolder's name).

    Defaults: the "shapes" `TrainDefaults` of `sgt.data.REGISTRY` (small_cnn, 15 epochs, batch 64,
    Adam 3e-3 constant, k = 0.85, λ = 10) with magnitude ranking and uniform fill, as `sgt train`.
    `data_seed`: the generated set every model trains and is tested on. `train_subset`: train on
    that many training images (a fixed random choice), for quick checks only.
    """

    model: str = DEFAULTS.model
    epochs: int = DEFAULTS.epochs
    batch_size: int = DEFAULTS.batch_size
    optimizer: str = DEFAULTS.optimizer
    lr: float = DEFAULTS.lr
    k: float = DEFAULTS.k
    lam: float = DEFAULTS.lam
    rank_by: str = "magnitude"
    fill: str = "uniform"
    val_fraction: float = 0.1
    patience: int | None = None
    data_seed: int = 0
    train_subset: int | None = None
    test_subset: int = 500
    score: str = "logit"

    def __post_init__(self):
        if self.score not in SCORES:
            raise ValueError(f"score: expected one of {SCORES}, got {self.score!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {tuple(OPTIMIZERS)}, got {self.optimizer!r}")
        train.SGTConfig(k=self.k, lam=self.lam, rank_by=self.rank_by, fill=self.fill)  # checks them

    def tag(self) -> str:
        tag = (f"{DATASET}{self.data_seed}_{self.model}_e{self.epochs}{f'_p{self.patience}' if self.patience else ''}"
               f"_b{self.batch_size}_{self.optimizer}{self.lr:g}"
               f"_k{self.k:g}_lam{self.lam:g}_{self.rank_by}_{self.fill}_val{self.val_fraction:g}")
        return tag + (f"_train{self.train_subset}" if self.train_subset else "")

    def eval_tag(self) -> str:
        return f"test{self.test_subset}_{self.score}_zero-baseline_pool{POOL}"

    def sgt_config(self) -> train.SGTConfig:
        return train.SGTConfig(k=self.k, lam=self.lam, rank_by=self.rank_by, fill=self.fill)


class Cache(mnist.Cache):
    """OUT/cache/<training tag>/models/<name>.{msgpack,json} and …/<evaluation tag>/<name>__<method>.json."""

    def record_path(self, name: str, method: str) -> Path:
        return self.evals / f"{name}__{method}.json"

    def records(self) -> list[dict]:
        return self.curves()


train_model = mnist.train_model  # loop.fit with the settings' optimizer; (variables, record)


# --------------------------------------------------------------------------------------------
# Data, subset, baselines and attribution options


def load(settings: Settings) -> Dataset:
    """The "shapes" set of `data_seed`, on `train_subset` training images if set."""
    ds = data.load(DATASET, seed=settings.data_seed)
    if settings.train_subset and settings.train_subset < len(ds.x_train):
        idx = np.sort(np.random.default_rng(SUBSET_SEED).choice(len(ds.x_train), settings.train_subset, replace=False))
        ds = dataclasses.replace(ds, x_train=ds.x_train[idx], y_train=ds.y_train[idx])
    return ds


def shap_pool(x_train: np.ndarray, size: int = POOL) -> np.ndarray:
    """The SHAP methods' pool: `size` training images, a fixed random choice (sorted indices)."""
    if len(x_train) < size:
        raise ValueError(f"x_train: the SHAP pool needs at least {size} training images, got {len(x_train)}")
    idx = np.sort(np.random.default_rng([SUBSET_SEED, 2]).choice(len(x_train), size, replace=False))
    return np.asarray(x_train[idx], np.float32)


def method_options(method: str) -> dict:
    """`METHOD_OPTIONS[method]` with its noise scale σ moved from MNIST's normalised units to raw
    intensity: σ_shapes = σ_MNIST · 0.3081 (SmoothGrad 1 → 0.3081, GradSHAP 0.09 → 0.0277)."""
    options = dict(METHOD_OPTIONS.get(method, {}))
    if "sigma" in options:
        options["sigma"] = float(options["sigma"]) * NOISE_UNIT
    return options


@functools.lru_cache(maxsize=32)
def make_scores(model, method: str, score: str):
    """Jitted `scores(variables, x, y, base, pool, key) -> channel mean of |attribution| [B, H, W]`
    of the true label's logit (`score="logit"`) or log-probability."""
    options = method_options(method)

    def scores(variables, x, y, base, pool, key):
        logits = train.classifier(model, variables["params"], variables.get("batch_stats") or {})
        f = (lambda v: jax.nn.log_softmax(logits(v), axis=-1)) if score == "log_softmax" else logits
        a = saliency.build(method, f, baseline=base, baselines=pool, **options)(x, y, key=key)
        return saliency.reduce_channels(jnp.abs(a)) if masking.is_image(a) else jnp.abs(a)

    return xla.jit(scores)


def attribute(model, method: str, score: str, variables: dict, x: np.ndarray, y: np.ndarray, pool: np.ndarray,
              key: jax.Array) -> np.ndarray:
    """Pixel scores [N, H, W] of `method` over x, SALIENCY_CHUNK images at a time from the all-zero
    baseline and the `pool`; chunk i's random draws use fold_in(key, i)."""
    fn = make_scores(model, method, score)
    parts = []
    for i in range(0, len(x), SALIENCY_CHUNK):
        xs = x[i:i + SALIENCY_CHUNK]
        parts.append(np.asarray(fn(variables, xs, y[i:i + SALIENCY_CHUNK], np.zeros_like(xs), pool,
                                   jax.random.fold_in(key, i // SALIENCY_CHUNK))))
    return np.concatenate(parts)


# --------------------------------------------------------------------------------------------
# Scores of one map set


def ground_truth_scores(scores: np.ndarray, truth: np.ndarray) -> dict:
    """Mass inside (mean over images), AUP and AUR of pixel scores [N, H, W] against masks [N, H, W]."""
    scores, truth = np.asarray(scores), np.asarray(truth, bool)
    if scores.shape != truth.shape:
        raise ValueError(f"truth: expected the shape of the scores {scores.shape}, got {truth.shape}")
    aup, aur = metrics.aup_aur(scores, truth)
    return {"mass_inside": float(metrics.mass_inside(scores, truth).mean()), "aup": aup, "aur": aur}


@dataclasses.dataclass
class Subset:
    x: np.ndarray      # [N, H, W, 1]
    y: np.ndarray      # [N]
    truth: np.ndarray  # bool [N, H, W]
    pool: np.ndarray   # [POOL, H, W, 1]


def make_subset(ds: Dataset, size: int) -> Subset:
    """The fixed test subset (`mnist.subset_indices`), its object masks and the SHAP pool."""
    if ds.truth_test is None:
        raise ValueError(f"dataset {ds.name!r} has no ground truth (truth_test)")
    idx = mnist.subset_indices(ds, size)
    truth = np.asarray(ds.truth_test[idx], bool)
    return Subset(ds.x_test[idx], ds.y_test[idx], truth.reshape(truth.shape[:3]), shap_pool(ds.x_train))


def evaluate(model, variables: dict, regime: str, seed: int, method: str, subset: Subset, score: str) -> dict:
    """One (model, method) record: the ground-truth scores, the removal curve and its area, the Gini index,
    and the first DISPLAY maps. `BLIND` is a random ranking, the same for both regimes of a seed."""
    tic = time.perf_counter()
    if method == BLIND:
        key = _key(seed, BLIND)
        scores = np.asarray(metrics.random_scores(key, subset.truth.shape))
    else:
        key = _key(seed, regime, method)
        scores = attribute(model, method, score, variables, subset.x, subset.y, subset.pool, key)
    attribution_seconds = time.perf_counter() - tic
    accuracy = metrics.removal_curve(classify(model, variables), subset.x, subset.y, scores, metrics.FRACTIONS,
                                     replacement=BACKGROUND, key=jax.random.fold_in(key, 1), batch_size=CURVE_BATCH)
    record = {"regime": regime, "seed": seed, "method": method, "n": len(subset.x),
              **ground_truth_scores(scores, subset.truth),
              "object_share": float(subset.truth.mean()),
              "fractions": list(metrics.FRACTIONS), "accuracy": accuracy.tolist(),
              "auc": metrics.removal_auc(accuracy, metrics.FRACTIONS), "replacement_value": BACKGROUND,
              "gini": float(metrics.gini(scores).mean()), "display": _rounded(scores[:DISPLAY]),
              "attribution_seconds": round(attribution_seconds, 2), "seconds": round(time.perf_counter() - tic, 2)}
    if method == "Grad":
        record["display_inputs"] = _rounded(subset.x[:DISPLAY, ..., 0])
        record["display_truth"] = subset.truth[:DISPLAY].astype(int).tolist()
        record["display_labels"] = subset.y[:DISPLAY].tolist()
    return record


# --------------------------------------------------------------------------------------------
# The whole run


def obtain_model(cache: Cache, settings: Settings, name: str, method: str, seed: int, get_data, progress: bool,
                 train_missing: bool) -> tuple[dict, dict] | None:
    """The cached model `name`, else (with `train_missing`) train and cache it; None when absent."""
    found = cache.model(name)
    if found is not None or not train_missing:
        return found
    ds = get_data()
    if progress:
        print(f"[shapes] training {name} ({method}, {settings.epochs} epochs, {len(ds.x_train)} images)", flush=True)
    variables, record = train_model(settings, ds, method, seed, cache.run_dir(name), progress)
    record["name"] = name
    cache.save_model(name, variables, record)
    shutil.rmtree(cache.run_dir(name) / "checkpoints", ignore_errors=True)  # the record replaces them
    return cache.model(name)


def run(settings: Settings, seeds: Sequence[int], *, methods: Sequence[str] = METHODS, out: Path,
        progress: bool = True, train_missing: bool = True) -> dict:
    """Every model and record for `seeds`, resuming from the cache in `out`; returns the records found.
    With `train_missing=False` nothing is trained or evaluated: the cached records are returned."""
    unknown = [m for m in methods if m not in saliency.REGISTRY]
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; expected some of {saliency.names()}")
    if settings.model not in models.REGISTRY:
        raise ValueError(f"model: unknown model {settings.model!r}; expected one of {sorted(models.REGISTRY)}")
    cache = Cache(out, settings)
    loaded: dict[str, object] = {}

    def get_data() -> Dataset:
        if "ds" not in loaded:
            loaded["ds"] = load(settings)
        return loaded["ds"]

    names = [*methods, BLIND]
    for seed in seeds:
        for regime, method in REGIMES.items():
            name = model_name(regime, seed)
            found = obtain_model(cache, settings, name, method, seed, get_data, progress, train_missing)
            if found is None or not train_missing:
                continue
            net = models.get(settings.model, num_classes=get_data().num_classes)
            for m in names:
                path = cache.record_path(name, m)
                if path.exists():
                    continue
                if "subset" not in loaded:
                    loaded["subset"] = make_subset(get_data(), settings.test_subset)
                record = evaluate(net, found[0], regime, seed, m, loaded["subset"], settings.score)
                _write(path, json.dumps(record))
                if progress:
                    print(f"[shapes] {name} {m}: mass inside {record['mass_inside']:.3f}, AUP {record['aup']:.3f}, "
                          f"AUR {record['aur']:.3f}, removal area {record['auc']:.3f} ({record['seconds']:.1f} s)",
                          flush=True)
    wanted = set(seeds)
    return {"models": [r for r in cache.model_records() if r["seed"] in wanted],
            "records": [r for r in cache.records() if r["seed"] in wanted and r["method"] in names]}


# --------------------------------------------------------------------------------------------
# Report


def paired(records: list[dict], method: str, metric: str) -> dict:
    """One metric of one method over seeds: each regime's mean ± s.e. (std with ddof 1 over √n) and the
    paired difference d_s = SGT_s − ordinary_s over the seeds that have both, mean ± s.e.

    `beyond_2se`: |mean d| > 2 s.e.(d), None with fewer than two pairs; `sgt_better`: the sign of mean d
    agrees with the metric's direction (METRICS) and `beyond_2se` holds.
    """
    by_seed = {r: {c["seed"]: c[metric] for c in records if c["method"] == method and c["regime"] == r}
               for r in REGIMES}
    seeds = sorted(set(by_seed["ordinary"]) & set(by_seed["sgt"]))
    diff, diff_se, n = mean_se([by_seed["sgt"][s] - by_seed["ordinary"][s] for s in seeds])
    beyond = bool(abs(diff) > 2 * diff_se) if n > 1 else None
    higher = METRICS[metric][1]
    row = {}
    for regime in REGIMES:
        row[regime], row[f"{regime}_se"], row[f"{regime}_n"] = mean_se(by_seed[regime].values())
    return row | {"diff": diff, "diff_se": diff_se, "pairs": n, "beyond_2se": beyond,
                  "sgt_better": None if beyond is None else bool(beyond and (diff > 0) == higher)}


def table_rows(records: list[dict], methods: Sequence[str]) -> list[dict]:
    """One row per method (and BLIND): for each metric, `<metric>_<key>` for the keys of `paired`."""
    rows = []
    for method in [*methods, BLIND]:
        row = {"method": method}
        for metric in METRICS:
            row |= {f"{metric}_{k}": v for k, v in paired(records, method, metric).items()}
        rows.append(row)
    return rows


def accuracy_rows(model_records: list[dict]) -> list[dict]:
    """Per seed: test accuracy, best epoch and training seconds of both models."""
    rows = []
    for seed in sorted({m["seed"] for m in model_records}):
        row = {"seed": seed}
        for regime in REGIMES:
            found = [m for m in model_records if m.get("name") == model_name(regime, seed)]
            m = found[0] if found else {}
            row[f"{regime}_accuracy"] = m.get("test_accuracy")
            row[f"{regime}_best_epoch"] = m.get("best_epoch")
            row[f"{regime}_train_seconds"] = m.get("train_seconds")
        rows.append(row)
    return rows


def _pm(mean: float, se: float, fmt: str = "{:.3f}") -> str:
    if np.isnan(mean):
        return ""
    return fmt.format(mean) + ("" if np.isnan(se) else " ± " + fmt.replace("+", "").format(se))


def _verdict(row: dict, metric: str) -> str:
    beyond = row[f"{metric}_beyond_2se"]
    if beyond is None:
        return "n/a"
    return ("yes, SGT better" if row[f"{metric}_sgt_better"] else "yes, SGT worse") if beyond else "no"


def markdown(report: dict, methods: Sequence[str], settings: Settings) -> str:
    records = report["records"]
    rows = table_rows(records, methods)
    share = [r["object_share"] for r in records if "object_share" in r]
    n = records[0]["n"] if records else 0
    title = (f"# Saliency against the object masks of \"shapes\" ({settings.model}, {settings.epochs} epochs, "
             f"k = {settings.k:g}, λ = {settings.lam:g}; {n} test images; attributions of the true label's "
             f"{settings.score})")
    blind = (f"; a constant map puts exactly {np.mean(share):.3f} of its mass on the object (the object's area "
             "share)." if share else ".")
    lines = [title, "",
             ("Mean ± standard error over seeds; SGT − ordinary is the paired difference per seed. "
              "\"> 2 s.e.\": |difference| > 2 standard errors of the difference. Blind: a random ranking of the "
              "pixels, the same map for both models" + blind), ""]
    for metric, (label, higher) in METRICS.items():
        lines += [f"## {label} ({'higher' if higher else 'lower'} is better)", "",
                  "| method | ordinary | SGT | SGT − ordinary | > 2 s.e. | seeds |", "|---|---:|---:|---:|:---:|---:|"]
        for r in rows:
            lines.append(f"| {r['method']} | {_pm(r[f'{metric}_ordinary'], r[f'{metric}_ordinary_se'])} | "
                         f"{_pm(r[f'{metric}_sgt'], r[f'{metric}_sgt_se'])} | "
                         f"{_pm(r[f'{metric}_diff'], r[f'{metric}_diff_se'], '{:+.3f}')} | {_verdict(r, metric)} | "
                         f"{r[f'{metric}_pairs']} |")
        lines.append("")
    lines += ["## Test accuracy (all test images) and training", "",
              "| seed | ordinary | SGT | best epoch ordinary / SGT | train s ordinary / SGT |", "|---:|---:|---:|---:|---:|"]
    for r in accuracy_rows(report["models"]):
        acc = [("" if r[f"{g}_accuracy"] is None else f"{100 * r[f'{g}_accuracy']:.1f} %") for g in REGIMES]
        lines.append(f"| {r['seed']} | {acc[0]} | {acc[1]} | {r['ordinary_best_epoch']} / {r['sgt_best_epoch']} | "
                     f"{r['ordinary_train_seconds']} / {r['sgt_train_seconds']} |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> Path:
    columns = list(rows[0]) if rows else []
    lines = [",".join(columns)] + [",".join("" if r.get(c) is None else str(r.get(c)) for c in columns) for r in rows]
    _write(path, "\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# Figure


COLORS = {"ordinary": "tab:blue", "sgt": "tab:red"}
LABELS = {"ordinary": "ordinary", "sgt": "saliency guided"}


def _bars(ax, rows: list[dict], methods: Sequence[str], metric: str, ylabel: str) -> None:
    """Ordinary and SGT per method with s.e. bars; the blind map's value (ordinary model's) as a line."""
    x = np.arange(len(methods))
    by_method = {r["method"]: r for r in rows}
    for offset, regime in ((-0.2, "ordinary"), (0.2, "sgt")):
        means = [by_method[m][f"{metric}_{regime}"] for m in methods]
        se = [np.nan_to_num(by_method[m][f"{metric}_{regime}_se"]) for m in methods]
        ax.bar(x + offset, means, 0.4, yerr=se, capsize=2, color=COLORS[regime], label=LABELS[regime])
    blind = by_method.get(BLIND, {})
    for regime, style in (("ordinary", "--"), ("sgt", ":")):
        value = blind.get(f"{metric}_{regime}", np.nan)
        if not np.isnan(value) and (regime == "ordinary" or metric == "auc"):
            ax.axhline(value, color="black" if regime == "ordinary" else "tab:red", linestyle=style, linewidth=1,
                       label="blind map" + (f" ({LABELS[regime]})" if metric == "auc" else ""))
    ax.set_xticks(x, methods, rotation=30, fontsize=7)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot(report: dict, methods: Sequence[str], path: Path) -> Path:
    """Top: mass inside and removal area per method, ordinary vs SGT, with the blind map. Bottom: the
    display images of the lowest seed with each method's map for both models, the object outlined."""
    from sgt import plots  # selects the Agg backend

    plt = plots.plt
    records = report["records"]
    rows = table_rows(records, methods)
    seeds = sorted({r["seed"] for r in records})
    shown = [r for r in records if seeds and r["seed"] == seeds[0]]
    maps = {(r["method"], r["regime"]): np.asarray(r["display"]) for r in shown if r["method"] in methods}
    grad = [r for r in shown if "display_inputs" in r]
    columns = [(m, g) for m in methods for g in REGIMES if (m, g) in maps]
    examples = len(grad[0]["display_inputs"]) if grad else 0

    fig = plt.figure(figsize=(max(8.0, 1.0 * (1 + len(columns))), 3.4 + 1.05 * examples))
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.4, max(1.05 * examples, 0.1)])
    ax1, ax2 = top.subplots(1, 2)
    _bars(ax1, rows, methods, "mass_inside", "mass inside the object")
    _bars(ax2, rows, methods, "auc", "removal-curve area (lower: better)")
    ax1.set_ylim(0, 1)
    ax1.legend(fontsize=7, loc="upper right")
    ax2.legend(fontsize=7, loc="lower right")
    top.suptitle(f"shapes: ordinary vs saliency guided training ({len(seeds)} seed{'s' * (len(seeds) != 1)}, "
                 "mean ± s.e.)", fontsize=9)
    if examples:
        axes = bottom.subplots(examples, 1 + len(columns), squeeze=False)
        for i in range(examples):
            truth = np.asarray(grad[0]["display_truth"][i], float)
            axes[i, 0].imshow(np.asarray(grad[0]["display_inputs"][i]), cmap="gray", vmin=0, vmax=1)
            axes[i, 0].set_ylabel(data.shapes.CLASSES[grad[0]["display_labels"][i]], fontsize=7)
            for j, (method, regime) in enumerate(columns, start=1):
                m = maps[(method, regime)][i]
                axes[i, j].imshow(m, cmap="hot", vmin=0, vmax=m.max() if m.max() > 0 else None)
                axes[i, j].contour(truth, levels=[0.5], colors="cyan", linewidths=0.5)
                if i == 0:
                    axes[i, j].set_title(f"{method}\n{'SGT' if regime == 'sgt' else 'ordinary'}", fontsize=6)
            for j in range(len(columns) + 1):
                axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
        axes[0, 0].set_title(f"input (seed {seeds[0]})", fontsize=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(report: dict, methods: Sequence[str], settings: Settings, out: Path) -> list[Path]:
    """shapes.md, shapes.csv (one row per method), accuracy.csv (one row per seed) and shapes.png."""
    out = Path(out)
    md = out / "shapes.md"
    _write(md, markdown(report, methods, settings))
    return [md, write_csv(table_rows(report["records"], methods), out / "shapes.csv"),
            write_csv(accuracy_rows(report["models"]), out / "accuracy.csv"),
            plot(report, methods, out / "shapes.png")]


# --------------------------------------------------------------------------------------------
# Command line: `sgt reproduce shapes`


def add_arguments(parser) -> None:
    d = Settings()
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    parser.add_argument("--model", default=d.model, help=f"a registered image model (default: {d.model})")
    parser.add_argument("--epochs", type=_args.positive_int, default=d.epochs)
    parser.add_argument("--patience", type=_args.positive_int,
                        help="stop a model after this many epochs without a validation gain (default: no early stop)")
    parser.add_argument("--batch-size", type=_args.positive_int, default=d.batch_size)
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default=d.optimizer)
    parser.add_argument("--lr", type=_args.positive_float, default=d.lr)
    parser.add_argument("--k", type=_args.open_fraction, default=d.k, help="fraction of pixels SGT masks")
    parser.add_argument("--lam", type=_args.nonnegative_float, default=d.lam, help="KL weight λ of SGT")
    parser.add_argument("--rank-by", choices=masking.RANKINGS, default=d.rank_by,
                        help="how SGT ranks pixels for masking (default: magnitude)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=saliency.names(),
                        help="saliency methods (default: the MNIST experiment's six); the blind map is always added")
    parser.add_argument("--data-seed", type=_args.nonnegative_int, default=d.data_seed,
                        help="seed of the generated set every model trains and is tested on (default 0)")
    parser.add_argument("--test-subset", type=_args.positive_int, default=d.test_subset,
                        help=f"test images every map is scored on, a fixed random choice (default {d.test_subset}: "
                             "all of them)")
    parser.add_argument("--train-subset", type=_args.positive_int,
                        help="train on this many training images only (quick checks; default: all)")
    parser.add_argument("--score", choices=SCORES, default=d.score,
                        help="what the methods attribute: the true label's logit (default, as `sgt train`) or its "
                             "log-probability")
    parser.add_argument("--out", type=Path, default=Path("runs/shapes"))
    parser.add_argument("--report-only", action="store_true",
                        help="write the tables and figure from the cached records only; train nothing")
    parser.add_argument("--no-progress", action="store_true")


def settings_from(args) -> Settings:
    return Settings(model=args.model, epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
                    optimizer=args.optimizer, lr=args.lr, k=args.k, lam=args.lam, rank_by=args.rank_by,
                    data_seed=args.data_seed, train_subset=args.train_subset, test_subset=args.test_subset,
                    score=args.score)


def reproduce(args) -> str:
    """Run (or, with --report-only, read) every record; write the report; return its text."""
    settings = settings_from(args)
    start = time.time()
    report = run(settings, args.seeds, methods=args.methods, out=args.out, progress=not args.no_progress,
                 train_missing=not args.report_only)
    paths = write_report(report, args.methods, settings, args.out)
    return ((args.out / "shapes.md").read_text() + f"\n{len(report['models'])} models, {len(report['records'])} "
            f"records ({(time.time() - start) / 60:.1f} min this call); wrote " + ", ".join(map(str, paths)))


__all__ = ["BACKGROUND", "BLIND", "METHODS", "METRICS", "Settings", "accuracy_rows", "add_arguments",
           "ground_truth_scores", "method_options", "paired", "reproduce", "run", "shap_pool", "table_rows"]
