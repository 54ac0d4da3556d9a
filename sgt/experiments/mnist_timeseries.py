"""The paper's Fig. 5: MNIST read as a multivariate time series, saliency maps of four sequence models.

Each 28×28 image becomes a sequence of 28 time steps (the image rows) with 28 features (the
columns): sequence[t, f] = image[t, f, 0], normalised as in the image experiment (mean 0.1307,
std 0.3081). For each architecture (LSTM, LSTM with input-cell attention, TCN, Transformer) and
seed, one model is trained ordinarily and one with saliency guided training (`sgt.loop.fit`,
validation-based selection, the same seed for both); each is scored on the full test set, and one
fixed subset of test sequences, the same for every model, is attributed with Grad, DeepLIFT,
GradientSHAP and DeepLIFT-SHAP (the settings of the image experiment, `sgt.experiments.mnist`:
the true label's log-probability, U[0, 1) raw-pixel baselines mapped through the normalisation,
one per sample for DeepLIFT and a pool of 10 for the SHAP methods, drawn once and shared by every
model). The sharpness of a map is the Gini index of |saliency| over its 784 cells (higher:
sparser), per sample; the paper's claim is that saliency guided training gives maps that are
sharper and concentrated on the digit. The second half of that claim is scored too: the share of
|saliency| on the digit's cells (raw pixel ≥ 0.5; a map blind to the digit scores the digit's
share of the cells, reported alongside).

The benchmark's model sizes (hidden 5, one head per 10 features) are too small for ten digit
classes; the defaults here are ours (`Settings`): LSTMs with 64 hidden units, a TCN with 32
channels per level, a Transformer of 2 layers, 4 heads (28 features = 4 × 7) and feed-forward 128.

Caching: each trained model (msgpack + JSON record) and each (model, method) map record is one
file under OUT/cache, written atomically (the image experiment's `Cache`); a rerun skips what
exists and an interrupted training resumes from its last epoch checkpoint. `--report-only` reads
the cache only.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sgt import _args, data, loop, masking, metrics, models, saliency, train
from sgt.data.base import Dataset
from sgt.experiments import mnist
from sgt.experiments.comparison import OPTIMIZERS, optimizer
from sgt.experiments.mnist import (
    Cache,
    _pm,
    _read,
    _rounded,
    _write,
    _write_csv,
    mean_se,
)

ARCHS = ("lstm", "lstm_cell_attention", "tcn", "transformer")
ARCH_LABELS = {"lstm": "LSTM", "lstm_cell_attention": "LSTM + input-cell attention", "tcn": "TCN",
               "transformer": "Transformer"}
REGIMES = mnist.REGIMES  # {"ordinary": "standard", "sgt": "sgt"}
METHODS = ("Grad", "DeepLIFT", "GradSHAP", "DeepSHAP")  # Fig. 5's columns; options: mnist.METHOD_OPTIONS
METHOD_LABELS = {"Grad": "Grad", "DeepLIFT": "DeepLIFT", "GradSHAP": "GradientSHAP", "DeepSHAP": "DeepLIFT-SHAP"}
TEST_SUBSET = 1000
DISPLAY = 2  # example digits whose maps each record keeps for the figure
STEPS = FEATURES = 28
MAPS = "maps"  # the Cache's "replacement" slot of a map record
INK = 0.5  # a cell is on the digit when its raw pixel value is at least this
SCORES = {"gini": "Gini index of |saliency| (higher = sparser)",
          "on_digit": f"share of |saliency| on the digit (raw pixel ≥ {INK:g})"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Training settings (the cache folder's name) and evaluation settings (a subfolder's name).

    Ours, not the paper's (which gives no MNIST time-series training details): Adam, lr 1e-3,
    batch 128, `epochs` chosen to fit about 40 minutes on 2 CPU cores; SGT as in the image
    experiment (k = 0.5 of the 784 cells, λ = 1, |gradient| ranking, uniform fill). Model sizes:
    `hidden` (LSTM and attention LSTM), `channels` (each of the TCN's 3 levels), `layers`, `heads`
    and `ff` (Transformer; d_model = 28 features, so `heads` must divide 28).
    """

    dataset: str = "mnist"
    epochs: int = 5
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    k: float = 0.5
    lam: float = 1.0
    rank_by: str = "magnitude"
    fill: str = "uniform"
    val_fraction: float = 0.1
    hidden: int = 64
    channels: int = 32
    layers: int = 2
    heads: int = 4
    ff: int = 128
    train_subset: int | None = None
    test_subset: int = TEST_SUBSET
    score: str = "log_softmax"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "hidden", "channels", "layers", "heads", "ff", "test_subset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not np.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr: expected a finite number > 0, got {self.lr!r}")
        if FEATURES % self.heads:
            raise ValueError(f"heads: the Transformer's d_model is the {FEATURES} features, which {self.heads} "
                             f"heads do not divide; use one of 1, 2, 4, 7, 14, 28")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {tuple(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.score not in mnist.SCORES:
            raise ValueError(f"score: expected one of {mnist.SCORES}, got {self.score!r}")
        self.sgt_config()  # checks k, lam, rank_by, fill

    def tag(self) -> str:
        tag = (f"{self.dataset}_seq_e{self.epochs}_b{self.batch_size}_{self.optimizer}{self.lr:g}"
               f"_k{self.k:g}_lam{self.lam:g}_{self.rank_by}_{self.fill}_val{self.val_fraction:g}"
               f"_h{self.hidden}_c{self.channels}_l{self.layers}x{self.heads}x{self.ff}")
        return tag + (f"_train{self.train_subset}" if self.train_subset else "")

    def eval_tag(self) -> str:
        return f"test{self.test_subset}_{self.score}"

    def sgt_config(self) -> train.SGTConfig:
        return train.SGTConfig(k=self.k, lam=self.lam, rank_by=self.rank_by, fill=self.fill)


def model_options(arch: str, settings: Settings) -> dict:
    """The size options of `arch` under `settings` (the rest are the benchmark's: dropout 0.1, kernel 4, …)."""
    options = {"lstm": {"hidden": settings.hidden}, "lstm_cell_attention": {"hidden": settings.hidden},
               "tcn": {"channels": (settings.channels,) * 3},
               "transformer": {"layers": settings.layers, "heads": settings.heads, "ff": settings.ff}}
    if arch not in options:
        raise ValueError(f"models: unknown architecture {arch!r}; expected some of {ARCHS}")
    return options[arch]


def build(arch: str, settings: Settings, num_classes: int):
    return models.get(arch, num_classes=num_classes, **model_options(arch, settings))


def model_name(arch: str, regime: str, seed: int) -> str:
    return f"{arch}_{regime}_seed{seed}"


# --------------------------------------------------------------------------------------------
# Data


def sequences(images: np.ndarray) -> np.ndarray:
    """Images [N, H, W, 1] → sequences [N, H, W]: time step t = row t, feature f = column f."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 1:
        raise ValueError(f"images: expected one-channel images [N, H, W, 1], got shape {images.shape}")
    return images[..., 0]


def as_sequences(ds: Dataset) -> Dataset:
    """`ds` with its images read as sequences (labels unchanged)."""
    return dataclasses.replace(ds, name=f"{ds.name}_rows", x_train=sequences(ds.x_train), x_test=sequences(ds.x_test))


def load(settings: Settings, data_dir=None) -> Dataset:
    """The dataset as sequences, on `train_subset` training images (the image experiment's fixed choice) if set."""
    ds = mnist.load(mnist.Settings(dataset=settings.dataset, train_subset=settings.train_subset), data_dir)
    if ds.x_test.shape[1:] != (STEPS, FEATURES, 1):
        raise ValueError(f"dataset: expected {STEPS}×{FEATURES} one-channel images, got {ds.x_test.shape[1:]} "
                         f"in {settings.dataset!r}")
    return as_sequences(ds)


def digit_mask(x: np.ndarray) -> np.ndarray:
    """Cells on the digit: normalised inputs whose raw pixel value is at least `INK`."""
    return np.asarray(x) >= (INK - mnist.MEAN) / mnist.STD


# --------------------------------------------------------------------------------------------
# Training


def train_model(settings: Settings, ds: Dataset, arch: str, method: str, seed: int, run_dir: Path,
                progress: bool) -> tuple[dict, dict]:
    """Train one model with `sgt.loop.fit` (resuming an interrupted run in `run_dir`); (variables, record)."""
    net = build(arch, settings, ds.num_classes)
    n_val = max(1, round(settings.val_fraction * len(ds.x_train)))
    tx = optimizer(settings.optimizer, settings.lr, "constant",
                   settings.epochs * ((len(ds.x_train) - n_val) // settings.batch_size))
    checkpoints = run_dir / "checkpoints"
    resume = checkpoints.exists() and any(p.name.isdigit() for p in checkpoints.iterdir())
    tic = time.perf_counter()
    fit = loop.fit(net, ds, method=method, config=settings.sgt_config() if method == "sgt" else None, tx=tx,
                   epochs=settings.epochs, batch_size=settings.batch_size, val_fraction=settings.val_fraction,
                   seed=seed, out_dir=run_dir, resume=resume, progress=progress)
    variables = {"params": fit.best["params"], "batch_stats": fit.best["batch_stats"]}
    record = {"arch": arch, "method": method, "seed": seed, "model_options": model_options(arch, settings),
              "test_accuracy": fit.test["accuracy"], "test_loss": fit.test["loss"],
              "val_accuracy": float(fit.best["val_accuracy"]), "best_epoch": int(fit.best["epoch"]),
              "epochs": len(fit.history), "train_seconds": round(time.perf_counter() - tic, 1),
              "epoch_seconds": [r["seconds"] for r in fit.history], "resumed": resume, "history": fit.history,
              "settings": dataclasses.asdict(settings)}
    return variables, record


def obtain_model(cache: Cache, settings: Settings, arch: str, regime: str, seed: int, get_data, progress: bool,
                 train_missing: bool) -> tuple[dict, dict] | None:
    """The cached model, else (with `train_missing`) train and cache it; None when absent."""
    name = model_name(arch, regime, seed)
    found = cache.model(name)
    if found is not None or not train_missing:
        return found
    ds = get_data()
    if progress:
        print(f"[mnist-timeseries] training {name} ({REGIMES[regime]}, {settings.epochs} epochs, "
              f"{len(ds.x_train)} sequences)", flush=True)
    variables, record = train_model(settings, ds, arch, REGIMES[regime], seed, cache.run_dir(name), progress)
    record["name"], record["regime"] = name, regime
    cache.save_model(name, variables, record)
    shutil.rmtree(cache.run_dir(name) / "checkpoints", ignore_errors=True)  # the record replaces them
    if progress:
        print(f"[mnist-timeseries] {name}: test accuracy {100 * record['test_accuracy']:.2f} % "
              f"({record['train_seconds'] / 60:.1f} min)", flush=True)
    return cache.model(name)


# --------------------------------------------------------------------------------------------
# Attribution


def map_record(cache: Cache, settings: Settings, net, variables: dict, arch: str, regime: str, seed: int,
               method: str, subset: mnist.Subset, progress: bool) -> dict:
    """One (model, method): the Gini index of |saliency| per subset sample and the display maps (cached)."""
    name = model_name(arch, regime, seed)
    path = cache.curve_path(name, method, MAPS)
    found = _read(path)
    if found is not None:
        return found
    tic = time.perf_counter()
    key = mnist._key(seed, arch, method)  # the same random draws for both regimes
    scores, _ = mnist.attribute_subset(net, method, settings, variables, subset.x, subset.y, subset.base,
                                       subset.pool, key)
    record = {"arch": arch, "regime": regime, "seed": seed, "method": method, "replacement": MAPS}
    mask = digit_mask(subset.x)
    for score, values in (("gini", metrics.gini(scores)), ("on_digit", metrics.mass_inside(scores, mask))):
        record[score], record[f"{score}_se"], record["n"] = mean_se(values)
        record[f"{score}_per_sample"] = _rounded(values)
    record.update(digit_share=float(mask.mean()), display=_rounded(scores[:DISPLAY]),
                  seconds=round(time.perf_counter() - tic, 2))
    record.update(display_inputs=_rounded(subset.x[:DISPLAY]), display_labels=subset.y[:DISPLAY].tolist())
    _write(path, json.dumps(record))
    if progress:
        print(f"[mnist-timeseries] {name} {method}: Gini {record['gini']:.3f}, on the digit "
              f"{record['on_digit']:.3f} ({record['seconds']:.1f} s)", flush=True)
    return record


# --------------------------------------------------------------------------------------------
# The whole run


def run(settings: Settings, seeds: Sequence[int], *, archs: Sequence[str] = ARCHS,
        methods: Sequence[str] = METHODS, out: Path, data_dir=None, progress: bool = True,
        train_missing: bool = True) -> dict:
    """Every (architecture, regime, seed) model and its map records, resuming from the cache in `out`.

    With `train_missing=False` nothing is trained or attributed: the cached records are returned.
    """
    for arch in archs:
        model_options(arch, settings)
    for m in methods:
        if m not in saliency.REGISTRY:
            raise ValueError(f"methods: unknown method {m!r}; expected some of {saliency.names()}")
    data.get(settings.dataset)
    cache = Cache(out, settings)
    loaded: dict[str, object] = {}

    def get_data() -> Dataset:
        if "ds" not in loaded:
            loaded["ds"] = load(settings, data_dir)
        return loaded["ds"]

    def get_subset() -> mnist.Subset:
        if "subset" not in loaded:
            ds = get_data()
            idx = mnist.subset_indices(ds, settings.test_subset)
            base, pool = mnist.baselines(ds.x_test[idx].shape, "raw")
            loaded["subset"] = mnist.Subset(ds.x_test[idx], ds.y_test[idx], base, pool, np.zeros(()))
        return loaded["subset"]

    for arch in archs:
        for seed in seeds:
            for regime in REGIMES:
                found = obtain_model(cache, settings, arch, regime, seed, get_data, progress, train_missing)
                if found is None or not train_missing:
                    continue
                net = build(arch, settings, get_data().num_classes)
                for method in methods:
                    map_record(cache, settings, net, found[0], arch, regime, seed, method, get_subset(), progress)
    wanted = set(seeds)
    return {"models": [r for r in cache.model_records() if r["seed"] in wanted and r["arch"] in archs],
            "maps": [r for r in cache.curves() if r.get("replacement") == MAPS and r["seed"] in wanted
                     and r["arch"] in archs and r["method"] in methods]}


# --------------------------------------------------------------------------------------------
# Report


def model_rows(report: dict, methods: Sequence[str]) -> list[dict]:
    """One row per trained model: architecture, regime, seed, test accuracy and each method's mean scores ± s.e."""
    rows = []
    for m in sorted(report["models"], key=lambda r: (ARCHS.index(r["arch"]) if r["arch"] in ARCHS else 99,
                                                     list(REGIMES).index(r["regime"]), r["seed"])):
        row = {"architecture": m["arch"], "regime": m["regime"], "seed": m["seed"],
               "test_accuracy": m["test_accuracy"], "epochs": m["epochs"], "train_seconds": m["train_seconds"]}
        for method in methods:
            found = [r for r in report["maps"] if (r["arch"], r["regime"], r["seed"], r["method"])
                     == (m["arch"], m["regime"], m["seed"], method)]
            for score in SCORES:
                row[f"{score}_{method}"] = found[0].get(score) if found else None
                row[f"{score}_{method}_se"] = found[0].get(f"{score}_se") if found else None
        rows.append(row)
    return rows


def paired_difference(ordinary: Sequence[dict], sgt: Sequence[dict], score: str = "gini"
                      ) -> tuple[float, float, int, str]:
    """SGT − ordinary `score` on the same samples: (mean, s.e., n, over what).

    One seed: the per-sample differences, s.e. over the samples. Several: each seed's mean
    difference, s.e. over the seeds.
    """
    by_seed = {r["seed"]: r for r in ordinary}
    pairs = [(by_seed[r["seed"]], r) for r in sgt if r["seed"] in by_seed]
    if not pairs:
        return float("nan"), float("nan"), 0, ""
    diffs = [np.asarray(s[f"{score}_per_sample"]) - np.asarray(o[f"{score}_per_sample"]) for o, s in pairs]
    if len(diffs) == 1:
        mean, se, n = mean_se(diffs[0])
        return mean, se, n, "samples"
    mean, se, n = mean_se([d.mean() for d in diffs])
    return mean, se, n, "seeds"


def difference_rows(report: dict, archs: Sequence[str], methods: Sequence[str], score: str = "gini") -> list[dict]:
    """Per (architecture, method): each regime's `score` (mean over seeds) and the paired SGT − ordinary
    difference; `higher_2se`: the difference exceeds 0 by more than 2 s.e."""
    rows = []
    for arch in archs:
        for method in methods:
            pick = {regime: [r for r in report["maps"] if (r["arch"], r["regime"], r["method"])
                             == (arch, regime, method) and score in r] for regime in REGIMES}
            if not pick["ordinary"] and not pick["sgt"]:
                continue
            diff, se, n, over = paired_difference(pick["ordinary"], pick["sgt"], score)
            rows.append({"architecture": arch, "method": method,
                         "ordinary": mean_se([r[score] for r in pick["ordinary"]])[0],
                         "sgt": mean_se([r[score] for r in pick["sgt"]])[0], "diff": diff, "diff_se": se,
                         "n": n, "over": over, "higher_2se": (bool(diff - 2 * se > 0) if n > 1 else None)})
    return rows


def _cell(row: dict, key: str) -> str:
    mean, se = row.get(key), row.get(f"{key}_se")
    return _pm(float("nan") if mean is None else mean, float("nan") if se is None else se)


def markdown(report: dict, settings: Settings, archs: Sequence[str], methods: Sequence[str]) -> str:
    rows = model_rows(report, methods)
    shares = [r["digit_share"] for r in report["maps"] if "digit_share" in r]
    lines = ["## Fig. 5: MNIST as a time series (28 steps = rows, 28 features = columns)", "",
             (f"Settings: {settings.epochs} epochs, batch {settings.batch_size}, {settings.optimizer} "
              f"lr {settings.lr:g}; SGT k = {settings.k:g}, λ = {settings.lam:g}; maps of the true label's "
              f"{settings.score} on {settings.test_subset} test sequences."), ""]
    for score, title in SCORES.items():
        lines += [f"### {title[0].upper() + title[1:]}: mean ± s.e. over the attributed sequences", ""]
        if score == "on_digit" and shares:
            lines += [(f"The digit holds {100 * shares[0]:.1f} % of the cells: a map blind to it scores about "
                       f"{shares[0]:.3f}."), ""]
        lines += ["| architecture | regime | seed | test accuracy | "
                  + " | ".join(METHOD_LABELS.get(m, m) for m in methods) + " |",
                  "|---|---|---:|---:|" + "---:|" * len(methods)]
        for r in rows:
            lines.append(f"| {ARCH_LABELS.get(r['architecture'], r['architecture'])} | {r['regime']} | {r['seed']} | "
                         f"{100 * r['test_accuracy']:.2f} % | "
                         + " | ".join(_cell(r, f"{score}_{m}") for m in methods) + " |")
        lines += ["", "SGT − ordinary, paired on the same sequences (> 0: higher with SGT):", "",
                  "| architecture | method | ordinary | SGT | SGT − ordinary | > 0 by > 2 s.e. | n |",
                  "|---|---|---:|---:|---:|:---:|---:|"]
        for r in difference_rows(report, archs, methods, score):
            verdict = {True: "yes", False: "no", None: "n/a"}[r["higher_2se"]]
            lines.append(f"| {ARCH_LABELS.get(r['architecture'], r['architecture'])} | "
                         f"{METHOD_LABELS.get(r['method'], r['method'])} | "
                         f"{_pm(r['ordinary'], float('nan'))} | {_pm(r['sgt'], float('nan'))} | "
                         f"{_signed(r['diff'], r['diff_se'])} | {verdict} | {r['n']} {r['over']} |")
        lines.append("")
    return "\n".join(lines)


def _signed(mean: float, se: float) -> str:
    """"+0.012 ± 0.003" (no s.e. when it is nan; empty when the mean is)."""
    if np.isnan(mean):
        return ""
    return f"{mean:+.3f}" + ("" if np.isnan(se) else f" ± {se:.3f}")


def _plt():
    from sgt import plots  # selects the Agg backend

    return plots.plt


def _row_label(arch: str, regime: str, row: dict | None, methods: Sequence[str]) -> str:
    label = f"{ARCH_LABELS.get(arch, arch)}\n{'SGT' if regime == 'sgt' else 'ordinary'}"
    if row is None:
        return label
    values = {score: " ".join(f"{row[f'{score}_{m}']:.2f}" if row[f"{score}_{m}"] is not None else "–"
                              for m in methods) for score in SCORES}
    return label + f"\nacc {100 * row['test_accuracy']:.1f} %\nGini {values['gini']}\non digit {values['on_digit']}"


def plot_fig5(report: dict, archs: Sequence[str], methods: Sequence[str], path: Path) -> Path:
    """Per architecture two rows (ordinary, SGT); per example digit the input and each method's |map|
    (time steps down, features across), lowest seed; row labels: accuracy, Gini and share on the digit per method."""
    plt = _plt()
    seeds = sorted({r["seed"] for r in report["maps"]})
    maps = {(r["arch"], r["regime"], r["method"]): r for r in report["maps"] if seeds and r["seed"] == seeds[0]}
    rows = {(r["architecture"], r["regime"]): r for r in model_rows(report, methods) if seeds and r["seed"] == seeds[0]}
    inputs = next((r for r in report["maps"] if "display_inputs" in r and seeds and r["seed"] == seeds[0]), None)
    digits = len(inputs["display_inputs"]) if inputs else 0
    grid = [(a, g) for a in archs for g in REGIMES]
    cols = max(1, digits * (1 + len(methods)))
    fig, axes = plt.subplots(len(grid), cols, figsize=(1.15 * cols + 1.9, 1.2 * len(grid) + 0.6), squeeze=False)
    for i, (arch, regime) in enumerate(grid):
        for d in range(digits):
            j0 = d * (1 + len(methods))
            axes[i, j0].imshow(np.asarray(inputs["display_inputs"][d]), cmap="gray")
            if i == 0:
                axes[i, j0].set_title(f"input ({inputs['display_labels'][d]})", fontsize=7)
            for j, method in enumerate(methods, start=j0 + 1):
                found = maps.get((arch, regime, method))
                if found is not None:
                    m = np.asarray(found["display"][d])
                    axes[i, j].imshow(m, cmap="hot", vmin=0, vmax=m.max() if m.max() > 0 else None)
                if i == 0:
                    axes[i, j].set_title(METHOD_LABELS.get(method, method), fontsize=7)
        axes[i, 0].set_ylabel(_row_label(arch, regime, rows.get((arch, regime)), methods), fontsize=6,
                              rotation=0, ha="right", va="center")
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("MNIST as a time series: rows = time steps, columns = features. Row labels: Gini index and share of "
                 "|saliency| on the digit, per method in " + "/".join(METHOD_LABELS.get(m, m) for m in methods)
                 + " order", fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def write_report(report: dict, settings: Settings, archs: Sequence[str], methods: Sequence[str],
                 out: Path) -> list[Path]:
    """mnist_timeseries.md, mnist_timeseries.csv (one row per model) and fig5.png."""
    out = Path(out)
    csv = _write_csv(model_rows(report, methods), out / "mnist_timeseries.csv")
    md = out / "mnist_timeseries.md"
    _write(md, markdown(report, settings, archs, methods))
    return [md, csv, plot_fig5(report, archs, methods, out / "fig5.png")]


# --------------------------------------------------------------------------------------------
# Command line: `sgt reproduce mnist-timeseries`


def add_arguments(parser) -> None:
    d = Settings()
    parser.add_argument("--dataset", default=d.dataset,
                        help="a registered 28×28 one-channel image dataset normalised as MNIST (default: mnist)")
    parser.add_argument("--models", nargs="+", choices=ARCHS, default=list(ARCHS),
                        help="architectures (default: all four)")
    parser.add_argument("--seeds", nargs="+", type=_args.nonnegative_int, default=[0],
                        help="seeds, one model per regime each (default: 0)")
    parser.add_argument("--epochs", type=_args.positive_int, default=d.epochs,
                        help=f"epochs per model (default {d.epochs})")
    parser.add_argument("--batch-size", type=_args.positive_int, default=d.batch_size)
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default=d.optimizer)
    parser.add_argument("--lr", type=_args.positive_float, default=d.lr)
    parser.add_argument("--k", type=_args.open_fraction, default=d.k, help="fraction of cells SGT masks")
    parser.add_argument("--lam", type=_args.nonnegative_float, default=d.lam, help="KL weight λ of SGT")
    parser.add_argument("--rank-by", choices=masking.RANKINGS, default=d.rank_by)
    parser.add_argument("--hidden", type=_args.positive_int, default=d.hidden, help="hidden units of both LSTMs")
    parser.add_argument("--tcn-channels", type=_args.positive_int, default=d.channels,
                        help="channels of each of the TCN's 3 levels")
    parser.add_argument("--layers", type=_args.positive_int, default=d.layers, help="Transformer layers")
    parser.add_argument("--heads", type=_args.positive_int, default=d.heads,
                        help="Transformer heads; must divide the 28 features")
    parser.add_argument("--ff", type=_args.positive_int, default=d.ff, help="Transformer feed-forward width")
    parser.add_argument("--methods", nargs="+", choices=saliency.names(), default=list(METHODS))
    parser.add_argument("--score", choices=mnist.SCORES, default=d.score,
                        help="what the methods attribute: the true label's log-probability or its logit")
    parser.add_argument("--train-subset", type=_args.positive_int,
                        help="train on this many training images only (quick checks; default: all)")
    parser.add_argument("--test-subset", type=_args.positive_int, default=d.test_subset,
                        help=f"test sequences attributed, a fixed random choice (default {d.test_subset})")
    parser.add_argument("--out", type=Path, default=Path("runs/mnist_timeseries"))
    parser.add_argument("--data-dir", type=Path, help="folder holding mnist/ (default: $SGT_DATA_DIR, else ./data)")
    parser.add_argument("--report-only", action="store_true",
                        help="write the tables and figure from the cached records only; train nothing")
    parser.add_argument("--no-progress", action="store_true")


def settings_from(args) -> Settings:
    return Settings(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                    lr=args.lr, k=args.k, lam=args.lam, rank_by=args.rank_by, hidden=args.hidden,
                    channels=args.tcn_channels, layers=args.layers, heads=args.heads, ff=args.ff,
                    train_subset=args.train_subset, test_subset=args.test_subset, score=args.score)


def reproduce(args) -> str:
    """Run (or, with --report-only, read) every record; write the tables and the figure; return the text."""
    settings = settings_from(args)
    start = time.time()
    report = run(settings, args.seeds, archs=args.models, methods=args.methods, out=args.out, data_dir=args.data_dir,
                 progress=not args.no_progress, train_missing=not args.report_only)
    paths = write_report(report, settings, args.models, args.methods, args.out)
    return ((args.out / "mnist_timeseries.md").read_text() + f"\n{len(report['models'])} models, "
            f"{len(report['maps'])} map records ({(time.time() - start) / 60:.1f} min this call); wrote "
            + ", ".join(map(str, paths)))


__all__ = ["ARCHS", "METHODS", "Settings", "add_arguments", "as_sequences", "difference_rows", "digit_mask", "load",
           "model_options", "model_rows", "paired_difference", "reproduce", "run", "sequences"]
