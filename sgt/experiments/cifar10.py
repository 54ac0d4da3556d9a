"""The paper's CIFAR-10 evidence (Fig. 2B and 2C): gradient maps of an ordinary and a saliency guided
ResNet, the distribution of their gradients, and how sparse the maps are.

For each seed a CIFAR ResNet (ResNet-20 by default) is trained ordinarily and with saliency guided
training (`sgt.loop.fit`: the epoch is selected on a seeded 10 % validation split of train, never on
test). Training follows the authors' CIFAR code where we can: SGD with momentum 0.9 and coupled
weight decay 1e-4 on every parameter, lr 0.1, augmentation by a random 32×32 crop of the image
padded with 4 black pixels and a horizontal flip (inside the jitted step, `sgt.train.train_step`),
SGT with k = 50 % of the pixels masked (in all channels) by uniform random values and λ = 1. Ours:
a cosine schedule (theirs: ×0.1 at epochs 100 and 150 of 200, `--schedule step`), batch 128 (their
help text; their runs used 512), 20 epochs by default (theirs: 200), the CIFAR-10 normalisation
(theirs: ImageNet's, docs/data.md). docs/cifar10.md lists every setting with its source.

Every trained model is scored on one fixed subset of the test set (the same for every model):

* **Grad maps (Fig. 2B).** The signed gradient of the true class's *logit* (the authors' target)
  with respect to the input, g = ∂f(x)_y/∂x [32, 32, 3], reduced over channels by the mean,
  s = mean_c g [32, 32]; a pixel's map value is |s|, overlaid on the image. Shown for test images
  that both models of the lowest seed classify correctly.
* **Gradient distribution (Fig. 2C).** Per image, s scaled into [−1, 1] by its largest magnitude,
  s / max|s|: the histogram of those values (per displayed image, and pooled over the subset), and
  box plots of the per-pixel means of the scaled values over the subset (one value per pixel).
* **Sparsity.** Per image, the Gini index of |s| (`sgt.metrics.gini`; 0 uniform, → 1 one pixel) and
  the share of pixels with |s| below 10 % of the image's max (`sgt.metrics.fraction_below`); each
  averaged over the subset, then mean ± s.e. over seeds. The paper reports sparser gradients for
  saliency guided training.

Caching as `sgt reproduce mnist`: each trained model (parameters as msgpack, plus a JSON record) and
each model's evaluation record is one file under OUT/cache, written atomically; a rerun skips what
exists, training interrupted mid-run resumes from the loop's checkpoints (every epoch and every
`--checkpoint-every` steps), and `--report-only` reads the cache.
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

from sgt import _args, data, loop, masking, metrics, models, saliency, train, xla
from sgt.data import augment as augmentation
from sgt.data import cifar10 as cifar10_data
from sgt.data.base import Dataset
from sgt.experiments.comparison import SCHEDULES, optimizer
from sgt.experiments.mnist import Cache, _pm, _read, _write, _write_csv, mean_se, subset_indices

REGIMES = {"ordinary": "standard", "sgt": "sgt"}
TEST_SUBSET = 1000
CANDIDATES = 16  # subset images whose maps each record keeps; the figure shows those both models get right
DISPLAY = 4  # rows of maps.png
HISTOGRAM_BINS = 50  # s / max|s| over [−1, 1]
CHUNK = 250  # test images attributed at once
BELOW = 0.1  # "near zero": below 10 % of the image's max |s|
CHECKPOINT_EVERY = 100  # steps between mid-epoch checkpoints (a CIFAR epoch on a CPU takes many minutes)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Training settings (the cache folder's name) and evaluation settings (a subfolder's name).

    Defaults (docs/cifar10.md gives each one's source): ResNet-20, SGD lr 0.1, momentum 0.9, weight
    decay 1e-4, cosine schedule over the run, batch 128, augmentation on, SGT k = 0.5, λ = 1,
    |gradient| ranking, uniform fill; `epochs` = 20 is CPU-sized (the authors: 200).
    `train_subset`: train on that many training images (a fixed random choice), for quick checks only.
    `source`: the CIFAR-10 files to read (`sgt.data.cifar10.SOURCES`).
    """

    model: str = "resnet20"
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.1
    schedule: str = "cosine"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: bool = True
    k: float = 0.5
    lam: float = 1.0
    rank_by: str = "magnitude"
    fill: str = "uniform"
    val_fraction: float = 0.1
    source: str = "auto"
    train_subset: int | None = None
    test_subset: int = TEST_SUBSET

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        if self.source not in cifar10_data.SOURCES:
            raise ValueError(f"source: expected one of {cifar10_data.SOURCES}, got {self.source!r}")
        optimizer("sgd", self.lr, "constant", 1, momentum=self.momentum, weight_decay=self.weight_decay)  # checks
        self.sgt_config()  # checks k, lam, rank_by, fill

    def tag(self) -> str:
        tag = (f"cifar10-{self.source}_{self.model}_e{self.epochs}_b{self.batch_size}_sgd{self.lr:g}-{self.schedule}"
               f"_m{self.momentum:g}_wd{self.weight_decay:g}{'_aug' if self.augment else '_noaug'}"
               f"_k{self.k:g}_lam{self.lam:g}_{self.rank_by}_{self.fill}_val{self.val_fraction:g}")
        return tag + (f"_train{self.train_subset}" if self.train_subset else "")

    def eval_tag(self) -> str:
        return f"test{self.test_subset}_grad-logit"

    def sgt_config(self) -> train.SGTConfig:
        return train.SGTConfig(k=self.k, lam=self.lam, rank_by=self.rank_by, fill=self.fill)


def model_name(regime: str, seed: int) -> str:
    return f"{regime}_seed{seed}"


def augment_fn(settings: Settings):
    """The step's augmentation: pad 4 with black (`cifar10.PAD_BLACK`), random 32×32 crop, random flip;
    None when `settings.augment` is off."""
    if not settings.augment:
        return None
    return functools.partial(augmentation.augment, padding=4, fill=cifar10_data.PAD_BLACK)


# --------------------------------------------------------------------------------------------
# Data and training


def load(settings: Settings, data_dir=None) -> tuple[Dataset, str]:
    """(CIFAR-10 on `train_subset` training images if set, the source read: "tarball", "folder", "tfds")."""
    root = data.data_dir(data_dir)
    kind = cifar10_data.resolve(root, settings.source)[0]
    ds = data.load("cifar10", data_dir_path=data_dir, source=settings.source)
    if settings.train_subset and settings.train_subset < len(ds.x_train):
        rng = np.random.default_rng(2021)
        idx = np.sort(rng.choice(len(ds.x_train), settings.train_subset, replace=False))
        ds = dataclasses.replace(ds, x_train=ds.x_train[idx], y_train=ds.y_train[idx])
    return ds, kind


def steps_per_epoch(settings: Settings, n_train: int) -> int:
    """Training steps per epoch once `loop.fit` has held out its validation split."""
    n_val = max(1, round(settings.val_fraction * n_train))
    return (n_train - n_val) // settings.batch_size


def train_model(settings: Settings, ds: Dataset, method: str, seed: int, run_dir: Path, progress: bool,
                checkpoint_every: int | None = CHECKPOINT_EVERY) -> tuple[dict, dict]:
    """Train one model with `sgt.loop.fit` (resuming an interrupted run in `run_dir`); (variables, record)."""
    net = models.get(settings.model, num_classes=ds.num_classes)
    per_epoch = steps_per_epoch(settings, len(ds.x_train))
    tx = optimizer("sgd", settings.lr, settings.schedule, max(1, settings.epochs * per_epoch),
                   momentum=settings.momentum, weight_decay=settings.weight_decay)
    checkpoints = run_dir / "checkpoints"
    resume = checkpoints.exists() and any(p.name.isdigit() for p in checkpoints.iterdir())
    tic = time.perf_counter()
    fit = loop.fit(net, ds, method=method, config=settings.sgt_config() if method == "sgt" else None, tx=tx,
                   epochs=settings.epochs, batch_size=settings.batch_size, val_fraction=settings.val_fraction,
                   seed=seed, out_dir=run_dir, resume=resume, checkpoint_every=checkpoint_every, progress=progress,
                   augment=augment_fn(settings))
    seconds = time.perf_counter() - tic
    variables = {"params": fit.best["params"], "batch_stats": fit.best["batch_stats"]}
    epoch_seconds = [r["seconds"] for r in fit.history]
    record = {"method": method, "seed": seed, "test_accuracy": fit.test["accuracy"], "test_loss": fit.test["loss"],
              "val_accuracy": float(fit.best["val_accuracy"]), "best_epoch": int(fit.best["epoch"]),
              "epochs": len(fit.history), "steps_per_epoch": per_epoch, "train_seconds": round(seconds, 1),
              "seconds_per_epoch": round(float(np.mean(epoch_seconds)), 1) if epoch_seconds else None,
              "resumed": resume, "devices": jax.device_count(), "backend": jax.default_backend(),
              "history": fit.history, "settings": dataclasses.asdict(settings)}
    return variables, record


def obtain_model(cache: Cache, settings: Settings, name: str, method: str, seed: int, get_data, progress: bool,
                 train_missing: bool, checkpoint_every: int | None = CHECKPOINT_EVERY) -> tuple[dict, dict] | None:
    """The cached model `name`, else (with `train_missing`) train and cache it; None when absent."""
    found = cache.model(name)
    if found is not None or not train_missing:
        return found
    ds, kind = get_data()
    print(f"[cifar10] training {name} ({method}, {settings.model}, {settings.epochs} epochs, "
          f"{steps_per_epoch(settings, len(ds.x_train))} steps of {settings.batch_size} each, {kind})", flush=True)
    variables, record = train_model(settings, ds, method, seed, cache.run_dir(name), progress, checkpoint_every)
    record.update(name=name, source=kind)
    cache.save_model(name, variables, record)
    shutil.rmtree(cache.run_dir(name) / "checkpoints", ignore_errors=True)  # the record replaces them
    print(f"[cifar10] {name}: test accuracy {record['test_accuracy']:.4f}, trained in "
          f"{record['train_seconds'] / 60:.1f} min ({record['seconds_per_epoch']} s per epoch)", flush=True)
    return cache.model(name)


# --------------------------------------------------------------------------------------------
# Attribution and the per-model record


@functools.lru_cache(maxsize=8)
def make_grad(model):
    """Jitted `grad(variables, x, y) -> (s, correct)`: s = channel mean of ∂f(x)_y/∂x (the true class's
    logit, inference mode) [B, H, W], and whether the model predicts y [B]."""

    def grad(variables, x, y):
        f = train.classifier(model, variables["params"], variables.get("batch_stats") or {})
        g = saliency.gradient(f)(x, y)
        s = saliency.reduce_channels(g) if masking.is_image(g) else g
        return s, jnp.argmax(f(x), -1) == y

    return xla.jit(grad)


def signed_maps(model, variables: dict, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s [N, H, W], correct [N]) over (x, y), CHUNK images at a time."""
    fn = make_grad(model)
    parts = [fn(variables, x[i:i + CHUNK], y[i:i + CHUNK]) for i in range(0, len(x), CHUNK)]
    return (np.concatenate([np.asarray(p[0]) for p in parts]), np.concatenate([np.asarray(p[1]) for p in parts]))


def scaled(s: np.ndarray) -> np.ndarray:
    """Each image's map divided by its largest magnitude, s / max|s|, into [−1, 1] (an all-zero map stays 0)."""
    flat = s.reshape(len(s), -1).astype(np.float64)
    top = np.abs(flat).max(1, keepdims=True)
    return np.divide(flat, top, out=np.zeros_like(flat), where=top > 0).reshape(s.shape)


def histograms(values: np.ndarray) -> np.ndarray:
    """Per image, counts of its scaled values in HISTOGRAM_BINS equal bins over [−1, 1] → int [N, bins]."""
    flat = values.reshape(len(values), -1)
    return np.stack([np.histogram(v, bins=HISTOGRAM_BINS, range=(-1.0, 1.0))[0] for v in flat])


def _rounded(a: np.ndarray) -> list:
    return np.vectorize(lambda v: float(f"{v:.4g}"))(np.asarray(a, np.float64)).tolist()


def display_pixels(x: np.ndarray) -> np.ndarray:
    """Normalised CIFAR images back to uint8 RGB, for display."""
    raw = x * cifar10_data.STD + cifar10_data.MEAN
    return np.clip(np.round(raw * 255), 0, 255).astype(np.uint8)


def score(s: np.ndarray, correct: np.ndarray, x: np.ndarray, y: np.ndarray, indices: np.ndarray) -> dict:
    """The evaluation record's numbers from the signed channel-mean gradients s [N, H, W] of the subset."""
    magnitude, unit = np.abs(s), scaled(s)
    gini, below = metrics.gini(magnitude), metrics.fraction_below(magnitude, BELOW)
    n = min(CANDIDATES, len(s))
    return {"n": len(s), "subset_accuracy": float(np.mean(correct)),
            "gini": float(gini.mean()), "below10": float(below.mean()),
            "gini_median": float(np.median(gini)), "below10_median": float(np.median(below)),
            "histogram": histograms(unit).sum(0).tolist(),
            "pixel_means": _rounded(unit.mean(0).ravel()),
            "correct": np.asarray(correct, int).tolist(),
            "candidates": np.asarray(indices[:n]).tolist(), "candidate_labels": np.asarray(y[:n]).tolist(),
            "candidate_maps": _rounded(magnitude[:n]), "candidate_histograms": histograms(unit[:n]).tolist(),
            "candidate_gini": _rounded(gini[:n]), "candidate_pixels": display_pixels(x[:n]).tolist()}


def eval_record(cache: Cache, model, variables: dict, regime: str, seed: int, subset: tuple, progress: bool) -> dict:
    """The cached evaluation record of one model, computed (and written atomically) when missing."""
    name = model_name(regime, seed)
    path = cache.evals / f"{name}.json"
    found = _read(path)
    if found is not None:
        return found
    x, y, indices = subset
    tic = time.perf_counter()
    s, correct = signed_maps(model, variables, x, y)
    record = {"name": name, "regime": regime, "seed": seed, **score(s, correct, x, y, indices),
              "seconds": round(time.perf_counter() - tic, 2)}
    _write(path, json.dumps(record))
    if progress:
        print(f"[cifar10] {name}: Gini {record['gini']:.3f}, below 10 % {record['below10']:.3f} "
              f"({record['seconds']:.1f} s)", flush=True)
    return record


# --------------------------------------------------------------------------------------------
# The whole run


def run(settings: Settings, seeds: Sequence[int], *, out: Path, data_dir=None, progress: bool = True,
        train_missing: bool = True, checkpoint_every: int | None = CHECKPOINT_EVERY) -> dict:
    """Every model and evaluation record for `seeds`, resuming from the cache in `out`; returns the
    records found ({"models": [...], "evals": [...]}). With `train_missing=False` nothing is trained or
    evaluated."""
    if settings.model not in models.REGISTRY:
        raise ValueError(f"model: unknown model {settings.model!r}; expected one of {sorted(models.REGISTRY)}")
    cache = Cache(out, settings)
    loaded: dict[str, object] = {}

    def get_data() -> tuple[Dataset, str]:
        if "ds" not in loaded:
            loaded["ds"] = load(settings, data_dir)
        return loaded["ds"]

    def get_subset() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if "subset" not in loaded:
            ds = get_data()[0]
            idx = subset_indices(ds, settings.test_subset)
            loaded["subset"] = (ds.x_test[idx], ds.y_test[idx], idx)
        return loaded["subset"]

    for seed in seeds:
        for regime, method in REGIMES.items():
            found = obtain_model(cache, settings, model_name(regime, seed), method, seed, get_data, progress,
                                 train_missing, checkpoint_every)
            if found is None or not train_missing:
                continue
            net = models.get(settings.model, num_classes=get_data()[0].num_classes)
            eval_record(cache, net, found[0], regime, seed, get_subset(), progress)
    wanted = set(seeds)
    return {"models": [r for r in cache.model_records() if r["seed"] in wanted],
            "evals": [r for r in cache.curves() if r.get("seed") in wanted and r.get("regime") in REGIMES]}


# --------------------------------------------------------------------------------------------
# Report


def accuracy_rows(model_records: list[dict]) -> list[dict]:
    """Per regime: test accuracy (full test set) mean ± s.e. over seeds, and the training time."""
    rows = []
    for regime in REGIMES:
        found = [m for m in model_records if m.get("name", "").startswith(regime + "_")]
        acc, se, n = mean_se([m["test_accuracy"] for m in found])
        rows.append({"regime": regime, "test_accuracy": acc, "test_accuracy_se": se, "seeds": n,
                     "epochs": float(np.mean([m["epochs"] for m in found])) if found else float("nan"),
                     "train_minutes": float(np.mean([m["train_seconds"] for m in found])) / 60 if found
                     else float("nan"),
                     "seconds_per_epoch": mean_se([m.get("seconds_per_epoch") for m in found])[0],
                     "resumed": any(m.get("resumed") for m in found)})
    return rows


def sparsity_rows(evals: list[dict]) -> list[dict]:
    """Per regime: Gini and share below 10 % (subset means) as mean ± s.e. over seeds; then the paired
    SGT − ordinary difference over seeds that have both."""
    rows = []
    by = {r: {e["seed"]: e for e in evals if e["regime"] == r} for r in REGIMES}
    for regime in REGIMES:
        row = {"regime": regime}
        for metric in ("gini", "below10", "subset_accuracy"):
            row[metric], row[f"{metric}_se"], row["seeds"] = mean_se([e[metric] for e in by[regime].values()])
        rows.append(row)
    paired = sorted(set(by["ordinary"]) & set(by["sgt"]))
    row = {"regime": "sgt - ordinary"}
    for metric in ("gini", "below10", "subset_accuracy"):
        row[metric], row[f"{metric}_se"], row["seeds"] = mean_se(
            [by["sgt"][s][metric] - by["ordinary"][s][metric] for s in paired])
    rows.append(row)
    return rows


def markdown(report: dict, settings: Settings) -> str:
    s = settings
    lines = ["# CIFAR-10: gradient maps and their sparsity, ordinary vs saliency guided (Fig. 2B/2C)", "",
             f"{s.model}, {s.epochs} epochs (the authors: 200), batch {s.batch_size}, SGD lr {s.lr:g} ({s.schedule}), "
             f"momentum {s.momentum:g}, weight decay {s.weight_decay:g}, augmentation "
             f"{'pad-4 crop + flip' if s.augment else 'off'}; SGT k = {s.k:g}, λ = {s.lam:g}, {s.rank_by} ranking, "
             f"{s.fill} fill; model selected on a {s.val_fraction:.0%} validation split of train."
             + (f" Trained on {s.train_subset} training images only." if s.train_subset else ""), "",
             "## Test accuracy (full test set; mean ± s.e. over seeds)", "",
             "| model | test accuracy | seeds | epochs trained | train minutes (mean; a resumed run: its last call) "
             "| seconds per epoch (mean) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in accuracy_rows(report["models"]):
        if r["seeds"]:
            lines.append(f"| {r['regime']} | {_pm(100 * r['test_accuracy'], 100 * r['test_accuracy_se'], '{:.2f}')} % "
                         f"| {r['seeds']} | {r['epochs']:.0f} | {r['train_minutes']:.1f}{' (resumed)' if r['resumed'] else ''} | "
                         f"{'' if np.isnan(r['seconds_per_epoch']) else round(r['seconds_per_epoch'])} |")
    n = {e["n"] for e in report["evals"]}
    lines += ["", (f"## Sparsity of the Grad maps (|channel mean of ∂logit_y/∂x|, per image over {'/'.join(map(str, sorted(n))) or '?'} "
                   "test images, then mean ± s.e. over seeds; higher = sparser)"), "",
              "| model | Gini index | share of pixels < 10 % of the max | subset accuracy | seeds |",
              "|---|---:|---:|---:|---:|"]
    for r in sparsity_rows(report["evals"]):
        if r["seeds"]:
            fmt = "{:+.3f}" if r["regime"].startswith("sgt -") else "{:.3f}"
            lines.append(f"| {r['regime']} | {_pm(r['gini'], r['gini_se'], fmt)} | {_pm(r['below10'], r['below10_se'], fmt)}"
                         f" | {_pm(r['subset_accuracy'], r['subset_accuracy_se'], fmt)} | {r['seeds']} |")
    lines += ["", ("Figures: maps.png (Fig. 2B: |Grad| over test images both models classify correctly), "
                   "gradients.png (Fig. 2C: histograms of s / max|s| per image and pooled, box plots of per-pixel "
                   "means).")]
    return "\n".join(lines) + "\n"


def _csv_rows(report: dict) -> list[dict]:
    """sparsity.csv: the sparsity rows joined with each regime's accuracy."""
    accuracy = {r["regime"]: r for r in accuracy_rows(report["models"])}
    return [{**r, "test_accuracy": accuracy.get(r["regime"], {}).get("test_accuracy"),
             "test_accuracy_se": accuracy.get(r["regime"], {}).get("test_accuracy_se")}
            for r in sparsity_rows(report["evals"])]


def write_report(report: dict, settings: Settings, out: Path) -> list[Path]:
    """cifar10.md, sparsity.csv, maps.png and gradients.png from the records."""
    paths = [_write_csv(_csv_rows(report), out / "sparsity.csv")]
    md = out / "cifar10.md"
    _write(md, markdown(report, settings))
    paths.append(md)
    paths += [plot_maps(report["evals"], out / "maps.png"), plot_gradients(report["evals"], out / "gradients.png")]
    return paths


# --------------------------------------------------------------------------------------------
# Figures


def _plt():
    from sgt import plots  # selects the Agg backend

    return plots.plt


COLORS = {"ordinary": "tab:blue", "sgt": "tab:red"}
LABELS = {"ordinary": "ordinary", "sgt": "saliency guided"}


def display_choice(evals: list[dict]) -> tuple[dict, dict, list[int]] | None:
    """(ordinary record, SGT record, candidate positions) of the lowest seed with both: the first DISPLAY
    candidates that both models classify correctly; None when no seed has both."""
    by = {(e["regime"], e["seed"]): e for e in evals}
    seeds = sorted(s for (r, s) in by if r == "ordinary" and ("sgt", s) in by)
    if not seeds:
        return None
    ordinary, guided = by[("ordinary", seeds[0])], by[("sgt", seeds[0])]
    both = [i for i in range(len(ordinary["candidates"])) if ordinary["correct"][i] and guided["correct"][i]]
    return ordinary, guided, both[:DISPLAY]


def plot_maps(evals: list[dict], path: Path) -> Path:
    """Fig. 2B: per row a test image, then |s| of the ordinary and of the SGT model over it."""
    plt = _plt()
    choice = display_choice(evals)
    rows = choice[2] if choice else []
    fig, axes = plt.subplots(max(len(rows), 1), 3, figsize=(5.4, 1.9 * max(len(rows), 1)), squeeze=False)
    for row, i in enumerate(rows):
        image = np.asarray(choice[0]["candidate_pixels"][i], np.uint8)
        axes[row, 0].imshow(image)
        axes[row, 0].set_ylabel(cifar10_data.CLASSES[choice[0]["candidate_labels"][i]], fontsize=8)
        for col, record in enumerate(choice[:2], start=1):
            m = np.asarray(record["candidate_maps"][i])
            axes[row, col].imshow(image)
            axes[row, col].imshow(m, cmap="jet", alpha=0.55, vmin=0, vmax=m.max() if m.max() > 0 else None)
            axes[row, col].set_xlabel(f"Gini {record['candidate_gini'][i]:.2f}", fontsize=7)
    titles = ("image", "Grad, ordinary", "Grad, saliency guided")
    for col, title in enumerate(titles):
        axes[0, col].set_title(title, fontsize=8)
    if not rows:
        axes[0, 0].text(0.5, 0.5, "no test image classified\ncorrectly by both models", ha="center", va="center",
                        fontsize=8, transform=axes[0, 0].transAxes)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)


def plot_gradients(evals: list[dict], path: Path) -> Path:
    """Fig. 2C: histograms of s / max|s| for the displayed images and pooled over the subset (all seeds),
    and box plots of the per-pixel means of s / max|s| over the subset (pooled over seeds)."""
    plt = _plt()
    edges = np.linspace(-1, 1, HISTOGRAM_BINS + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    choice = display_choice(evals)
    shown = choice[2] if choice else []
    cols = len(shown) + 2
    fig, axes = plt.subplots(1, cols, figsize=(2.8 * cols, 2.8), squeeze=False)
    axes = axes[0]

    def step(ax, counts, regime):
        counts = np.asarray(counts, np.float64)
        if counts.sum() > 0:
            ax.step(centers, counts / counts.sum(), where="mid", color=COLORS[regime], label=LABELS[regime])

    for ax, i in zip(axes, shown):
        for record in choice[:2]:
            step(ax, record["candidate_histograms"][i], record["regime"])
        ax.set_title(f"{cifar10_data.CLASSES[choice[0]['candidate_labels'][i]]} (test #{choice[0]['candidates'][i]})",
                     fontsize=8)
    pooled = axes[len(shown)]
    for regime in REGIMES:
        found = [np.asarray(e["histogram"], np.float64) for e in evals if e["regime"] == regime]
        if found:
            step(pooled, np.sum(found, axis=0), regime)
    pooled.set_title("all subset images, all seeds", fontsize=8)
    for ax in axes[:len(shown) + 1]:
        ax.set_yscale("log")
        ax.set_xlabel("s / max|s| of the image", fontsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of pixels", fontsize=7)
    if pooled.get_legend_handles_labels()[0]:
        pooled.legend(fontsize=7)
    box = axes[-1]
    data_ = [np.concatenate([e["pixel_means"] for e in evals if e["regime"] == r] or [np.zeros(0)]) for r in REGIMES]
    if all(len(d) for d in data_):
        box.boxplot(data_, showfliers=True, flierprops=dict(markersize=1.5))
        box.set_xticks([1, 2], [LABELS[r] for r in REGIMES], fontsize=7)
    box.set_title("per-pixel mean of s / max|s|", fontsize=8)
    box.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Command line: `sgt reproduce cifar10`


def add_arguments(parser) -> None:
    d = Settings()
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=_args.positive_int, default=d.epochs,
                        help=f"epochs per model (default {d.epochs}, CPU-sized; the authors trained 200)")
    parser.add_argument("--model", default=d.model,
                        help="a registered model: resnet20 (default, the authors' CIFAR ResNet family) or resnet18")
    parser.add_argument("--batch-size", type=_args.positive_int, default=d.batch_size,
                        help=f"default {d.batch_size} (the authors' help text; their runs used 512)")
    parser.add_argument("--lr", type=_args.positive_float, default=d.lr, help="SGD learning rate (default 0.1)")
    parser.add_argument("--schedule", choices=SCHEDULES, default=d.schedule,
                        help="cosine to 0 over the run (default), constant, or step: ×0.1 at 50 %% and 75 %% of the "
                             "run (the authors' MultiStepLR at epochs 100/150 of 200)")
    parser.add_argument("--momentum", type=_args.nonnegative_float, default=d.momentum,
                        help="SGD momentum (default 0.9, the authors')")
    parser.add_argument("--weight-decay", type=_args.nonnegative_float, default=d.weight_decay,
                        help="coupled L2 weight decay on every parameter (default 1e-4, the authors')")
    parser.add_argument("--no-augment", action="store_true",
                        help="train without the pad-4 random crop and horizontal flip")
    parser.add_argument("--k", type=_args.open_fraction, default=d.k, help="fraction of pixels SGT masks (default 0.5)")
    parser.add_argument("--lam", type=_args.nonnegative_float, default=d.lam, help="KL weight λ of SGT (default 1)")
    parser.add_argument("--test-subset", type=_args.positive_int, default=TEST_SUBSET,
                        help=f"test images the maps are scored on, a fixed random choice (default {TEST_SUBSET})")
    parser.add_argument("--train-subset", type=_args.positive_int,
                        help="train on this many training images only (quick checks; default: all)")
    parser.add_argument("--source", choices=cifar10_data.SOURCES, default=d.source,
                        help="CIFAR-10 files to read (default auto: the tarball, else the image tree; docs/data.md)")
    parser.add_argument("--checkpoint-every", type=_args.positive_int, default=CHECKPOINT_EVERY,
                        help=f"also checkpoint every N steps within an epoch (default {CHECKPOINT_EVERY})")
    parser.add_argument("--out", type=Path, default=Path("runs/cifar10"))
    parser.add_argument("--data-dir", type=Path, help="folder holding cifar10/ (default: $SGT_DATA_DIR, else ./data)")
    parser.add_argument("--report-only", action="store_true",
                        help="write the tables and figures from the cached records only; train nothing")
    parser.add_argument("--no-progress", action="store_true")


def settings_from(args) -> Settings:
    return Settings(model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    schedule=args.schedule, momentum=args.momentum, weight_decay=args.weight_decay,
                    augment=not args.no_augment, k=args.k, lam=args.lam, source=args.source,
                    train_subset=args.train_subset, test_subset=args.test_subset)


def reproduce(args) -> str:
    """Run (or, with --report-only, read) every record; write the tables and figures; return the text."""
    settings = settings_from(args)
    start = time.time()
    report = run(settings, args.seeds, out=args.out, data_dir=args.data_dir, progress=not args.no_progress,
                 train_missing=not args.report_only, checkpoint_every=args.checkpoint_every)
    paths = write_report(report, settings, args.out)
    return ((args.out / "cifar10.md").read_text() + f"\n{len(report['models'])} models, {len(report['evals'])} "
            f"evaluation records ({(time.time() - start) / 60:.1f} min this call); wrote " + ", ".join(map(str, paths)))


__all__ = ["REGIMES", "Settings", "accuracy_rows", "add_arguments", "display_choice", "histograms", "reproduce",
           "run", "scaled", "sparsity_rows"]
