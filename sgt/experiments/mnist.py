"""The paper's MNIST evidence: accuracy drop under removal of salient pixels (Fig. 3), the same for
three kinds of replacement including ROAR (Fig. 4), saliency maps, gradient distributions and their
sparsity (Fig. 2A and the text around it).

For each seed, the MNIST CNN is trained ordinarily and with saliency guided training (`sgt.loop.fit`,
validation-based selection; by default the authors' Adadelta, lr 1, batch 512, with fewer epochs
than their 100). Every trained model is scored on one fixed subset of the test set, the same for
every model:

* **Fig. 3.** Each saliency method (Grad, SmoothGrad, IG, DeepLIFT, GradSHAP, DeepSHAP, and a random
  ranking) attributes the true label; a pixel's score is the channel mean of |attribution|. The
  top p = 0, 0.1, …, 0.9 of pixels are replaced by the background, (0 − 0.1307)/0.3081 in the
  model's input space, and the accuracy is recorded (`sgt.metrics.removal_curve`). A steeper drop
  (smaller area) means the ranking found what the model uses; the paper reports steeper drops for
  saliency guided training.
* **Fig. 4.** For the ordinary model's Grad ranking at p ∈ {0.1, 0.3, 0.5, 0.7, 0.9}: replacement by
  the background, by the training-set mean, and ROAR (a model retrained on training images whose
  top-p pixels are replaced by the mean, tested on test images masked the same way).
* **Maps and sparsity.** A few test images with every method's map under both regimes; the
  distribution of signed gradients (each sample divided by its max |gradient|); the Gini index of
  each method's map and the share of |gradient| entries below 10 % of the sample's maximum.

The authors' evaluation settings (docs/saliency-methods.md): attributions of the log-probability
(their network ends in log_softmax), U[0, 1) baselines, SmoothGrad² with 5 samples and σ = 1, IG
with 50 points, GradientSHAP 5 samples with σ = 0.09. Their baselines are U[0, 1) values fed to the
normalised network; ours are U[0, 1) *raw pixels* mapped through the normalisation (`--baselines
input` for theirs). Per-sample baselines (IG, DeepLIFT) and the pool of 10 (GradSHAP, DeepSHAP) are
drawn once for the subset and shared by every model.

Caching: each trained model (parameters as msgpack, plus a JSON record) and each (model, method,
replacement) curve is one file under OUT/cache, written atomically; a rerun skips what exists, and
training interrupted mid-run resumes from its last epoch checkpoint. `--report-only` reads the cache.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from sgt import _args, data, loop, masking, metrics, models, saliency, train, xla
from sgt.data import mnist as mnist_data
from sgt.data.base import Dataset
from sgt.experiments.comparison import OPTIMIZERS, optimizer

MEAN, STD = mnist_data.MEAN, mnist_data.STD
BACKGROUND = (0.0 - MEAN) / STD  # a black pixel in the model's input space: −0.4242
REGIMES = {"ordinary": "standard", "sgt": "sgt"}
TEST_SUBSET = 2000
SUBSET_SEED = 2021  # the test subset and the baselines: fixed, the same for every model and seed
POOL = 10  # baselines in the SHAP methods' pool
DISPLAY = 4  # test images whose maps each record keeps for the figure
FIG4_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
HISTOGRAM_BINS = 50  # signed gradient / max |gradient| over [−1, 1]
SALIENCY_CHUNK = 100  # test images attributed at once (fixed: random methods draw per chunk)
CURVE_BATCH = 500  # images per removal-curve evaluation
BASELINE_SPACES = ("raw", "input")
SCORES = ("log_softmax", "logit")

# The authors' Captum settings (docs/saliency-methods.md); `batch_size` bounds memory only.
METHOD_OPTIONS = {
    "Grad": dict(absolute=True),
    "SmoothGrad": dict(absolute=True, kind="square", samples=5, sigma=1.0, relative=False),
    "IG": dict(steps=50, batch_size=10),
    "DeepLIFT": {},
    "GradSHAP": dict(samples=5, sigma=0.09),
    "DeepSHAP": {},
}
METHODS = tuple(METHOD_OPTIONS)  # Fig. 3's six
RANDOM = "Random"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Training settings (the cache folder's name) and evaluation settings (a subfolder's name).

    Defaults: the authors' optimizer and batch (Adadelta, lr 1, batch 512) and SGT options (k = 0.5,
    λ = 1, uniform fill); `epochs` is ours (theirs: up to 100, stopping after 20 without a gain, which
    `patience` gives; None: no early stop). `train_subset`: train on that many
    training images (a fixed random choice), for quick checks of the pipeline only.
    """

    dataset: str = "mnist"
    model: str = "mnist_cnn"
    epochs: int = 10
    patience: int | None = None
    batch_size: int = 512
    optimizer: str = "adadelta"
    lr: float = 1.0
    k: float = 0.5
    lam: float = 1.0
    rank_by: str = "magnitude"
    fill: str = "uniform"
    val_fraction: float = 0.1
    train_subset: int | None = None
    test_subset: int = TEST_SUBSET
    baselines: str = "raw"
    score: str = "log_softmax"

    def __post_init__(self):
        if self.baselines not in BASELINE_SPACES:
            raise ValueError(f"baselines: expected one of {BASELINE_SPACES}, got {self.baselines!r}")
        if self.score not in SCORES:
            raise ValueError(f"score: expected one of {SCORES}, got {self.score!r}")
        train.SGTConfig(k=self.k, lam=self.lam, rank_by=self.rank_by, fill=self.fill)  # checks them

    def tag(self) -> str:
        tag = (f"{self.dataset}_{self.model}_e{self.epochs}{f'_p{self.patience}' if self.patience else ''}"
               f"_b{self.batch_size}_{self.optimizer}{self.lr:g}"
               f"_k{self.k:g}_lam{self.lam:g}_{self.rank_by}_{self.fill}_val{self.val_fraction:g}")
        return tag + (f"_train{self.train_subset}" if self.train_subset else "")

    def eval_tag(self) -> str:
        return f"test{self.test_subset}_{self.baselines}-baselines_{self.score}"

    def sgt_config(self) -> train.SGTConfig:
        return train.SGTConfig(k=self.k, lam=self.lam, rank_by=self.rank_by, fill=self.fill)


# --------------------------------------------------------------------------------------------
# Files


def _write(path: Path, payload: bytes | str) -> None:
    """Write atomically: a stopped run never leaves a half-written record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload.encode() if isinstance(payload, str) else payload)
    tmp.replace(path)


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


class Cache:
    """OUT/cache/<training tag>/models/<name>.{msgpack,json} and …/<evaluation tag>/<record>.json."""

    def __init__(self, out: Path, settings: Settings):
        self.root = Path(out) / "cache" / settings.tag()
        self.models = self.root / "models"
        self.evals = self.root / settings.eval_tag()

    def model(self, name: str) -> tuple[dict, dict] | None:
        """(variables, record) of a finished model, or None."""
        record = _read(self.models / f"{name}.json")
        blob = self.models / f"{name}.msgpack"
        if record is None or not blob.exists():
            return None
        return flax.serialization.msgpack_restore(blob.read_bytes()), record

    def save_model(self, name: str, variables: dict, record: dict) -> None:
        variables = jax.tree.map(np.asarray, variables)
        _write(self.models / f"{name}.msgpack", flax.serialization.msgpack_serialize(variables))
        _write(self.models / f"{name}.json", json.dumps(record))  # last: its presence marks the model done

    def run_dir(self, name: str) -> Path:
        return self.root / "runs" / name

    def curve_path(self, name: str, method: str, replacement: str) -> Path:
        return self.evals / f"{name}__{method}__{replacement}.json"

    def curves(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.evals.glob("*.json"))] if self.evals.exists() else []

    def model_records(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.models.glob("*.json"))] if self.models.exists() else []


def model_name(regime: str, seed: int, roar: float | None = None) -> str:
    return f"roar{roar:g}_seed{seed}" if roar is not None else f"{regime}_seed{seed}"


def _key(seed: int, *names) -> jax.Array:
    """A key derived from the seed and names (a method, a regime), the same on every run."""
    key = jax.random.PRNGKey(seed)
    for name in names:
        key = jax.random.fold_in(key, zlib.crc32(str(name).encode()) & 0x7FFFFFFF)
    return key


# --------------------------------------------------------------------------------------------
# Data, subset and baselines


def load(settings: Settings, data_dir=None) -> Dataset:
    """The dataset, on `train_subset` training images if set."""
    ds = data.load(settings.dataset, data_dir_path=data_dir)
    if settings.train_subset and settings.train_subset < len(ds.x_train):
        idx = np.sort(np.random.default_rng(SUBSET_SEED).choice(len(ds.x_train), settings.train_subset, replace=False))
        ds = dataclasses.replace(ds, x_train=ds.x_train[idx], y_train=ds.y_train[idx])
    return ds


def subset_indices(ds: Dataset, size: int) -> np.ndarray:
    """Indices of the fixed test subset (sorted), the same for every model; all of test if smaller."""
    if size >= len(ds.x_test):
        return np.arange(len(ds.x_test))
    return np.sort(np.random.default_rng(SUBSET_SEED).choice(len(ds.x_test), size, replace=False))


def baselines(shape: tuple[int, ...], space: str) -> tuple[np.ndarray, np.ndarray]:
    """(one U[0, 1) baseline per subset image, a pool of POOL), in the model's input space.

    "raw": U[0, 1) is a raw pixel value, mapped through the normalisation; "input": U[0, 1) is fed
    to the network as it is (the authors' code).
    """
    rng = np.random.default_rng([SUBSET_SEED, 1])
    base = rng.random(shape, np.float32)
    pool = rng.random((POOL, *shape[1:]), np.float32)
    if space == "raw":
        base, pool = (base - MEAN) / STD, (pool - MEAN) / STD
    return base.astype(np.float32), pool.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Training


def train_model(settings: Settings, ds: Dataset, method: str, seed: int, run_dir: Path,
                progress: bool) -> tuple[dict, dict]:
    """Train one model with `sgt.loop.fit` (resuming an interrupted run in `run_dir`); (variables, record)."""
    net = models.get(settings.model, num_classes=ds.num_classes)
    n_val = max(1, round(settings.val_fraction * len(ds.x_train)))
    tx = optimizer(settings.optimizer, settings.lr, "constant",
                   settings.epochs * ((len(ds.x_train) - n_val) // settings.batch_size))
    checkpoints = run_dir / "checkpoints"
    resume = checkpoints.exists() and any(p.name.isdigit() for p in checkpoints.iterdir())
    tic = time.perf_counter()
    fit = loop.fit(net, ds, method=method, config=settings.sgt_config() if method == "sgt" else None, tx=tx,
                   epochs=settings.epochs, patience=settings.patience, batch_size=settings.batch_size,
                   val_fraction=settings.val_fraction,
                   seed=seed, out_dir=run_dir, resume=resume, progress=progress)
    variables = {"params": fit.best["params"], "batch_stats": fit.best["batch_stats"]}
    record = {"method": method, "seed": seed, "test_accuracy": fit.test["accuracy"], "test_loss": fit.test["loss"],
              "val_accuracy": float(fit.best["val_accuracy"]), "best_epoch": int(fit.best["epoch"]),
              "epochs": len(fit.history), "train_seconds": round(time.perf_counter() - tic, 1),
              "resumed": resume, "history": fit.history, "settings": dataclasses.asdict(settings)}
    return variables, record


def records_complete(cache: Cache, regime: str, seed: int, names: Sequence[str],
                     roar_fractions: Sequence[float]) -> bool:
    """Whether the model record of (regime, seed) and every evaluation made from its weights (a curve
    per name in `names`; for the ordinary model Fig. 4's mean curve and a ROAR curve per fraction)
    are cached."""
    name = model_name(regime, seed)
    paths = [cache.models / f"{name}.json", *(cache.curve_path(name, n, "background") for n in names)]
    if regime == "ordinary":
        paths += [cache.curve_path(name, "Grad", "mean"),
                  *(cache.curve_path(name, "Grad", f"roar{p:g}") for p in roar_fractions)]
    return all(path.exists() for path in paths)


def obtain_model(cache: Cache, settings: Settings, name: str, method: str, seed: int, get_data, progress: bool,
                 train_missing: bool) -> tuple[dict, dict] | None:
    """The cached model `name`, else (with `train_missing`) train and cache it; None when absent."""
    found = cache.model(name)
    if found is not None or not train_missing:
        return found
    ds = get_data()
    if progress:
        print(f"[mnist] training {name} ({method}, {settings.epochs} epochs, {len(ds.x_train)} images)", flush=True)
    variables, record = train_model(settings, ds, method, seed, cache.run_dir(name), progress)
    record["name"] = name
    cache.save_model(name, variables, record)
    shutil.rmtree(cache.run_dir(name) / "checkpoints", ignore_errors=True)  # the record replaces them
    return cache.model(name)


# --------------------------------------------------------------------------------------------
# Attribution


@functools.lru_cache(maxsize=8)
def make_logits(model):
    """`logits(variables, x)` of `model` in inference mode: one function object per model."""
    return lambda variables, x: train.classifier(model, variables["params"], variables.get("batch_stats") or {})(x)


def classify(model, variables: dict) -> jax.tree_util.Partial:
    """The classifier f(x) -> logits with `variables` as a traced argument, so the removal curves of every
    model of one architecture share one compiled program."""
    return jax.tree_util.Partial(make_logits(model), variables)


@functools.lru_cache(maxsize=32)
def make_scores(model, method: str, score: str):
    """Jitted `scores(variables, x, y, base, pool, key) -> (channel mean of |attribution| [B, H, W], signed)`.

    The attribution is of the true label's log-probability (`score="log_softmax"`) or logit.
    """
    options = dict(METHOD_OPTIONS.get(method, {}))
    if method == "Grad":
        options["absolute"] = False  # the signed gradient, for its distribution; the scores take |·| anyway

    def scores(variables, x, y, base, pool, key):
        logits = train.classifier(model, variables["params"], variables.get("batch_stats") or {})
        f = (lambda v: jax.nn.log_softmax(logits(v), axis=-1)) if score == "log_softmax" else logits
        attribute = saliency.build(method, f, baseline=base, baselines=pool, **options)
        a = attribute(x, y, key=key)
        return saliency.reduce_channels(jnp.abs(a)) if masking.is_image(a) else jnp.abs(a), a

    return xla.jit(scores)


def attribute_subset(model, method: str, settings: Settings, variables: dict, x: np.ndarray, y: np.ndarray,
                     base: np.ndarray, pool: np.ndarray, key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """(pixel scores, signed attributions) of `method` over the subset, SALIENCY_CHUNK images at a time;
    chunk i's random draws use fold_in(key, i)."""
    fn = make_scores(model, method, settings.score)
    parts = [fn(variables, x[i:i + SALIENCY_CHUNK], y[i:i + SALIENCY_CHUNK], base[i:i + SALIENCY_CHUNK], pool,
                jax.random.fold_in(key, i // SALIENCY_CHUNK)) for i in range(0, len(x), SALIENCY_CHUNK)]
    return (np.concatenate([np.asarray(p[0]) for p in parts]), np.concatenate([np.asarray(p[1]) for p in parts]))


def _rounded(a: np.ndarray) -> list:
    return np.vectorize(lambda v: float(f"{v:.4g}"))(np.asarray(a, np.float64)).tolist()


def signed_histogram(signed: np.ndarray) -> list[int]:
    """Counts of each sample's signed attribution divided by its max |attribution|, in bins over [−1, 1]."""
    flat = signed.reshape(len(signed), -1).astype(np.float64)
    top = np.abs(flat).max(1, keepdims=True)
    scaled = np.divide(flat, top, out=np.zeros_like(flat), where=top > 0)
    return np.histogram(scaled, bins=HISTOGRAM_BINS, range=(-1.0, 1.0))[0].tolist()


# --------------------------------------------------------------------------------------------
# One model's records


@dataclasses.dataclass
class Subset:
    x: np.ndarray
    y: np.ndarray
    base: np.ndarray
    pool: np.ndarray
    train_mean: np.ndarray


def curve_record(cache: Cache, settings: Settings, model, variables: dict, regime: str, seed: int, method: str,
                 subset: Subset, progress: bool) -> dict:
    """Fig. 3's curve of one (model, method) with background replacement, plus its sparsity and display maps."""
    path = cache.curve_path(model_name(regime, seed), method, "background")
    found = _read(path)
    if found is not None:
        return found
    tic = time.perf_counter()
    key = _key(seed, regime, method)
    if method == RANDOM:
        scores = np.asarray(metrics.random_scores(key, subset.x.shape[:-1] if subset.x.ndim == 4 else subset.x.shape))
        signed = None
    else:
        scores, signed = attribute_subset(model, method, settings, variables, subset.x, subset.y, subset.base,
                                          subset.pool, key)
    attribution_seconds = time.perf_counter() - tic
    accuracy = metrics.removal_curve(classify(model, variables), subset.x, subset.y, scores, metrics.FRACTIONS, replacement=BACKGROUND,
                                     key=jax.random.fold_in(key, 1), batch_size=CURVE_BATCH)
    record = {"regime": regime, "seed": seed, "method": method, "replacement": "background",
              "replacement_value": BACKGROUND, "fractions": list(metrics.FRACTIONS), "accuracy": accuracy.tolist(),
              "auc": metrics.removal_auc(accuracy, metrics.FRACTIONS), "n": len(subset.x),
              "gini": float(metrics.gini(scores).mean()), "below10": float(metrics.fraction_below(scores).mean()),
              "attribution_seconds": round(attribution_seconds, 2),
              "seconds": round(time.perf_counter() - tic, 2)}
    if signed is not None:
        record["display"] = _rounded(scores[:DISPLAY])
    if method == "Grad":
        record["histogram"] = signed_histogram(signed)
        record["display_inputs"] = _rounded(subset.x[:DISPLAY])
        record["display_labels"] = subset.y[:DISPLAY].tolist()
    _write(path, json.dumps(record))
    if progress:
        print(f"[mnist] {model_name(regime, seed)} {method}: area {record['auc']:.3f} "
              f"({record['seconds']:.1f} s)", flush=True)
    return record


def grad_scores(model, settings: Settings, variables: dict, x: np.ndarray, y: np.ndarray,
                chunk: int = 1000) -> np.ndarray:
    """Pixel scores of the Grad method (channel mean of |∂ score/∂x|) for many images, `chunk` at a time."""
    fn = make_scores(model, "Grad", settings.score)
    dummy = np.zeros((1,), np.float32)
    return np.concatenate([np.asarray(fn(variables, x[i:i + chunk], y[i:i + chunk], dummy, dummy,
                                         jax.random.PRNGKey(0))[0]) for i in range(0, len(x), chunk)])


def _same(value):
    return value


def fig4_records(cache: Cache, settings: Settings, model, variables: dict, seed: int, subset: Subset, get_data,
                 roar_fractions: Sequence[float], progress: bool, train_missing: bool) -> list[dict]:
    """Fig. 4 for the ordinary model of `seed`: the Grad curve with mean replacement, and ROAR at each of
    `roar_fractions` (one retrained model each)."""
    name = model_name("ordinary", seed)
    key = jax.random.fold_in(_key(seed, "ordinary", "Grad"), 1)  # the tie-break key of Fig. 3's Grad curve
    records = []
    path = cache.curve_path(name, "Grad", "mean")
    record = _read(path)
    if record is None and train_missing:
        tic = time.perf_counter()
        scores = grad_scores(model, settings, variables, subset.x, subset.y)
        fractions = (0.0, *FIG4_FRACTIONS)
        accuracy = metrics.removal_curve(classify(model, variables), subset.x, subset.y, scores, fractions, replacement=subset.train_mean,
                                         key=key, batch_size=CURVE_BATCH)
        record = {"regime": "ordinary", "seed": seed, "method": "Grad", "replacement": "mean",
                  "replacement_value": subset.train_mean.tolist(), "fractions": list(fractions),
                  "accuracy": accuracy.tolist(), "n": len(subset.x), "seconds": round(time.perf_counter() - tic, 2)}
        _write(path, json.dumps(record))
    records += [record] if record is not None else []
    train_scores = None
    for p in roar_fractions:
        path = cache.curve_path(name, "Grad", f"roar{p:g}")
        record = _read(path)
        if record is None and train_missing:
            tic = time.perf_counter()
            roar_name = model_name("ordinary", seed, roar=p)
            if cache.model(roar_name) is None:
                ds = get_data()
                if train_scores is None:
                    train_scores = (grad_scores(model, settings, variables, ds.x_train, ds.y_train),
                                    grad_scores(model, settings, variables, ds.x_test, ds.y_test))
                roar_key = _key(seed, "roar")
                mean = metrics.channel_mean(ds.x_train)
                masked = dataclasses.replace(
                    ds, name=f"{ds.name}_roar{p:g}",
                    x_train=metrics.roar_set(ds.x_train, train_scores[0], p, fill=mean, key=roar_key),
                    x_test=metrics.roar_set(ds.x_test, train_scores[1], p, fill=mean,
                                            key=jax.random.fold_in(roar_key, 1)))
                obtain_model(cache, settings, roar_name, "standard", seed, functools.partial(_same, masked), progress,
                             True)
            roar_variables, roar_record = cache.model(roar_name)
            scores = grad_scores(model, settings, variables, subset.x, subset.y)  # ranked by the original model
            accuracy = metrics.removal_curve(classify(model, roar_variables), subset.x, subset.y, scores, (p,), replacement=subset.train_mean,
                                             key=key, batch_size=CURVE_BATCH)
            record = {"regime": "ordinary", "seed": seed, "method": "Grad", "replacement": "roar",
                      "fractions": [p], "accuracy": accuracy.tolist(), "n": len(subset.x),
                      "roar_test_accuracy": roar_record["test_accuracy"],
                      "roar_train_seconds": roar_record["train_seconds"],
                      "seconds": round(time.perf_counter() - tic, 2)}
            _write(path, json.dumps(record))
            if progress:
                print(f"[mnist] ROAR p = {p:g} seed {seed}: accuracy {accuracy[0]:.3f}", flush=True)
        records += [record] if record is not None else []
    return records


# --------------------------------------------------------------------------------------------
# The whole run


def run(settings: Settings, seeds: Sequence[int], *, methods: Sequence[str] = METHODS, out: Path,
        data_dir=None, roar_fractions: Sequence[float] = FIG4_FRACTIONS, progress: bool = True,
        train_missing: bool = True) -> dict:
    """Every model and record for `seeds`, resuming from the cache in `out`; returns the records found.
    ROAR retrains one ordinary model per seed and fraction in `roar_fractions` (empty: none).

    With `train_missing=False` nothing is trained or evaluated: the cached records are returned.
    """
    for m in methods:
        if m not in saliency.REGISTRY:
            raise ValueError(f"methods: unknown method {m!r}; expected some of {saliency.names()}")
    data.get(settings.dataset)
    if settings.model not in models.REGISTRY:
        raise ValueError(f"model: unknown model {settings.model!r}; expected one of {sorted(models.REGISTRY)}")
    cache = Cache(out, settings)
    loaded: dict[str, object] = {}

    def get_data() -> Dataset:
        if "ds" not in loaded:
            loaded["ds"] = load(settings, data_dir)
        return loaded["ds"]

    def get_subset() -> Subset:
        if "subset" not in loaded:
            ds = get_data()
            idx = subset_indices(ds, settings.test_subset)
            base, pool = baselines(ds.x_test[idx].shape, settings.baselines)
            loaded["subset"] = Subset(ds.x_test[idx], ds.y_test[idx], base, pool, metrics.channel_mean(ds.x_train))
        return loaded["subset"]

    names = [*methods, RANDOM]
    for seed in seeds:
        for regime, method in REGIMES.items():
            if records_complete(cache, regime, seed, names, roar_fractions):
                continue  # nothing left for this model to compute: its weights are not needed
            found = obtain_model(cache, settings, model_name(regime, seed), method, seed, get_data, progress,
                                 train_missing)
            if found is None or not train_missing:
                continue
            variables = found[0]
            net = models.get(settings.model, num_classes=get_data().num_classes)
            for name in names:
                curve_record(cache, settings, net, variables, regime, seed, name, get_subset(), progress)
            if regime == "ordinary":
                fig4_records(cache, settings, net, variables, seed, get_subset(), get_data, roar_fractions,
                             progress, train_missing)
    wanted = set(seeds)
    return {"models": [r for r in cache.model_records() if r["seed"] in wanted],
            "curves": [r for r in cache.curves() if r["seed"] in wanted and r["method"] in names]}


# --------------------------------------------------------------------------------------------
# Report


def mean_se(values) -> tuple[float, float, int]:
    """Mean, standard error (std with ddof 1 over √n; nan for one value) and n."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), se, int(v.size)


def _pm(mean: float, se: float, fmt: str = "{:.3f}") -> str:
    if np.isnan(mean):
        return ""
    return fmt.format(mean) + ("" if np.isnan(se) else " ± " + fmt.format(se))


def _select(curves, **match) -> list[dict]:
    return [c for c in curves if all(c.get(k) == v for k, v in match.items())]


def area_rows(curves: list[dict], methods: Sequence[str]) -> list[dict]:
    """Per method: each regime's area (mean ± s.e. over seeds) and the paired SGT − ordinary difference."""
    rows = []
    for method in [*methods, RANDOM]:
        background = _select(curves, method=method, replacement="background")
        by_seed = {r: {c["seed"]: c["auc"] for c in background if c["regime"] == r} for r in REGIMES}
        paired = sorted(set(by_seed["ordinary"]) & set(by_seed["sgt"]))
        diff, diff_se, n = mean_se([by_seed["sgt"][s] - by_seed["ordinary"][s] for s in paired])
        row = {"method": method, "pairs": n, "diff": diff, "diff_se": diff_se,
               "below_zero_2se": (bool(diff + 2 * diff_se < 0) if n > 1 else None)}
        for regime in REGIMES:
            row[regime], row[f"{regime}_se"], row[f"{regime}_n"] = mean_se(by_seed[regime].values())
        rows.append(row)
    return rows


def curve_rows(curves: list[dict], methods: Sequence[str]) -> list[dict]:
    """Fig. 3's points: (regime, method, fraction) → accuracy mean ± s.e. over seeds."""
    rows = []
    for method in [*methods, RANDOM]:
        for regime in REGIMES:
            found = _select(curves, method=method, regime=regime, replacement="background")
            if not found:
                continue
            for i, p in enumerate(found[0]["fractions"]):
                mean, se, n = mean_se([c["accuracy"][i] for c in found])
                rows.append({"regime": regime, "method": method, "fraction": p, "accuracy": mean, "se": se, "n": n})
    return rows


def fig4_rows(curves: list[dict]) -> list[dict]:
    """Per fraction: the ordinary model's Grad accuracy under background, mean and ROAR replacement."""
    rows = []
    roar = {c["fractions"][0] for c in _select(curves, regime="ordinary", method="Grad", replacement="roar")}
    for p in sorted({*FIG4_FRACTIONS, *roar}):
        row = {"fraction": p}
        for kind, match in (("background", dict(replacement="background")), ("mean", dict(replacement="mean")),
                            ("roar", dict(replacement="roar"))):
            values = []
            for c in _select(curves, regime="ordinary", method="Grad", **match):
                hits = [a for q, a in zip(c["fractions"], c["accuracy"]) if abs(q - p) < 1e-9]
                values += hits
            row[kind], row[f"{kind}_se"], row[f"{kind}_n"] = mean_se(values)
        rows.append(row)
    return rows


def sparsity_rows(curves: list[dict], methods: Sequence[str]) -> list[dict]:
    rows = []
    for method in methods:
        row = {"method": method}
        for regime in REGIMES:
            found = _select(curves, method=method, regime=regime, replacement="background")
            for metric in ("gini", "below10"):
                row[f"{regime}_{metric}"], row[f"{regime}_{metric}_se"], row[f"{regime}_n"] = \
                    mean_se([c.get(metric) for c in found])
        rows.append(row)
    return rows


def _write_csv(rows: list[dict], path: Path) -> Path:
    if not rows:
        _write(path, "")
        return path
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join("" if r.get(c) is None else str(r.get(c)) for c in columns) for r in rows]
    _write(path, "\n".join(lines) + "\n")
    return path


def markdown(report: dict, methods: Sequence[str]) -> str:
    models_, curves = report["models"], report["curves"]
    lines = ["## Test accuracy (full test set; mean ± s.e. over seeds)", "",
             "| model | test accuracy | seeds | epochs trained | train minutes (mean) |", "|---|---:|---:|---:|---:|"]
    for regime in REGIMES:
        found = [m for m in models_ if m.get("name", "").startswith(regime + "_")]
        acc, se, n = mean_se([m["test_accuracy"] for m in found])
        if n:
            lines.append(f"| {regime} | {_pm(100 * acc, 100 * se, '{:.2f}')} % | {n} | "
                         f"{np.mean([m['epochs'] for m in found]):.0f} | "
                         f"{np.mean([m['train_seconds'] for m in found]) / 60:.1f} |")
    roar = sorted({m["name"].split("_")[0] for m in models_ if m.get("name", "").startswith("roar")},
                  key=lambda name: float(name[4:]))
    for name in roar:
        p = float(name[4:])
        found = [m for m in models_ if m["name"].startswith(name + "_")]
        acc, se, n = mean_se([m["test_accuracy"] for m in found])
        if n:
            lines.append(f"| ROAR p = {p:g} (masked test set) | {_pm(100 * acc, 100 * se, '{:.2f}')} % | {n} | "
                         f"{np.mean([m['epochs'] for m in found]):.0f} | "
                         f"{np.mean([m['train_seconds'] for m in found]) / 60:.1f} |")
    lines += ["", ("## Fig. 3: area under the accuracy-vs-removed-fraction curve (p = 0 … 0.9, background "
                   f"{BACKGROUND:.4f}; lower = steeper drop)"), "",
              "| method | ordinary | SGT | SGT − ordinary | below 0 by > 2 s.e. | seeds |", "|---|---:|---:|---:|:---:|---:|"]
    for r in area_rows(curves, methods):
        verdict = {True: "yes", False: "no", None: "n/a"}[r["below_zero_2se"]]
        lines.append(f"| {r['method']} | {_pm(r['ordinary'], r['ordinary_se'])} | {_pm(r['sgt'], r['sgt_se'])} | "
                     f"{_pm(r['diff'], r['diff_se'], '{:+.3f}')} | {verdict} | {r['pairs']} |")
    lines += ["", "## Fig. 4: ordinary model, Grad ranking, accuracy after removal", "",
              "| removed | background | training mean | ROAR (retrained) |", "|---:|---:|---:|---:|"]
    for r in fig4_rows(curves):
        lines.append(f"| {r['fraction']:g} | {_pm(r['background'], r['background_se'])} | "
                     f"{_pm(r['mean'], r['mean_se'])} | {_pm(r['roar'], r['roar_se'])} |")
    lines += ["", "## Sparsity of each method's map (mean over the test subset; mean ± s.e. over seeds)", "",
              "| method | Gini ordinary | Gini SGT | share < 10 % of max, ordinary | share < 10 % of max, SGT |",
              "|---|---:|---:|---:|---:|"]
    for r in sparsity_rows(curves, methods):
        lines.append(f"| {r['method']} | {_pm(r['ordinary_gini'], r['ordinary_gini_se'])} | "
                     f"{_pm(r['sgt_gini'], r['sgt_gini_se'])} | {_pm(r['ordinary_below10'], r['ordinary_below10_se'])}"
                     f" | {_pm(r['sgt_below10'], r['sgt_below10_se'])} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, methods: Sequence[str], out: Path) -> list[Path]:
    """Tables (CSV, Markdown) and figures from the records."""
    curves = report["curves"]
    paths = [_write_csv(curve_rows(curves, methods), out / "fig3_curves.csv"),
             _write_csv(area_rows(curves, methods), out / "fig3_areas.csv"),
             _write_csv(fig4_rows(curves), out / "fig4.csv"),
             _write_csv(sparsity_rows(curves, methods), out / "sparsity.csv")]
    md = out / "mnist.md"
    _write(md, markdown(report, methods))
    paths.append(md)
    paths += plot_all(report, methods, out)
    return paths


# --------------------------------------------------------------------------------------------
# Figures


def _plt():
    from sgt import plots  # selects the Agg backend

    return plots.plt


COLORS = {"ordinary": "tab:blue", "sgt": "tab:red"}
LABELS = {"ordinary": "ordinary", "sgt": "saliency guided"}


def plot_fig3(curves: list[dict], methods: Sequence[str], path: Path) -> Path:
    """One panel per method: accuracy vs removed fraction, both regimes, with each regime's random ranking."""
    plt = _plt()
    rows = curve_rows(curves, methods)
    cols = min(3, max(1, len(methods)))
    nrows = -(-max(1, len(methods)) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 3.0 * nrows), squeeze=False)
    for ax, method in zip(axes.ravel(), methods):
        for regime in REGIMES:
            for name, style in ((method, "-o"), (RANDOM, ":")):
                pts = [r for r in rows if r["method"] == name and r["regime"] == regime]
                if not pts:
                    continue
                se = [0.0 if np.isnan(r["se"]) else r["se"] for r in pts]
                ax.errorbar([r["fraction"] for r in pts], [r["accuracy"] for r in pts], yerr=se, fmt=style,
                            color=COLORS[regime], markersize=3, capsize=2, linewidth=1.2,
                            label=f"{LABELS[regime]}" + (" (random)" if name == RANDOM else ""))
        ax.set_title(method, fontsize=10)
        ax.set_xlabel("fraction of pixels removed", fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(methods):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, path)


def plot_fig4(curves: list[dict], path: Path) -> Path:
    plt = _plt()
    rows = fig4_rows(curves)
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for kind, label, color in (("background", "background", "black"), ("mean", "training mean", "tab:green"),
                               ("roar", "ROAR (retrained)", "tab:purple")):
        pts = [r for r in rows if r[f"{kind}_n"]]
        if pts:
            ax.errorbar([r["fraction"] for r in pts], [r[kind] for r in pts],
                        yerr=[0.0 if np.isnan(r[f"{kind}_se"]) else r[f"{kind}_se"] for r in pts], fmt="-o",
                        color=color, markersize=3, capsize=2, label=label)
    ax.set_xlabel("fraction of pixels removed (Grad ranking)", fontsize=8)
    ax.set_ylabel("accuracy", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_maps(curves: list[dict], methods: Sequence[str], path: Path) -> Path:
    """The display images of the lowest seed: the input, then each method's map, ordinary and SGT."""
    plt = _plt()
    seeds = sorted({c["seed"] for c in curves if "display" in c})
    maps = {(c["method"], c["regime"]): np.asarray(c["display"]) for c in curves
            if seeds and c["seed"] == seeds[0] and "display" in c and c["replacement"] == "background"}
    grad = [c for c in curves if seeds and c["seed"] == seeds[0] and "display_inputs" in c]
    columns = [(m, r) for m in methods for r in REGIMES if (m, r) in maps]
    rows = len(grad[0]["display_inputs"]) if grad else 0
    fig, axes = plt.subplots(max(rows, 1), 1 + len(columns), figsize=(1.25 * (1 + len(columns)), 1.4 * max(rows, 1)),
                             squeeze=False)
    for i in range(rows):
        image = np.asarray(grad[0]["display_inputs"][i])
        axes[i, 0].imshow(image.mean(-1) if image.ndim == 3 else image, cmap="gray")
        axes[i, 0].set_ylabel(f"label {grad[0]['display_labels'][i]}", fontsize=7)
        for j, (method, regime) in enumerate(columns, start=1):
            m = maps[(method, regime)][i]
            axes[i, j].imshow(m, cmap="hot", vmin=0, vmax=m.max() if m.max() > 0 else None)
            if i == 0:
                axes[i, j].set_title(f"{method}\n{'SGT' if regime == 'sgt' else 'ordinary'}", fontsize=7)
    if rows:
        axes[0, 0].set_title("input", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)


def plot_gradients(curves: list[dict], path: Path) -> Path:
    """Distribution of signed gradients (each sample over its max |gradient|), summed over seeds."""
    plt = _plt()
    edges = np.linspace(-1, 1, HISTOGRAM_BINS + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for regime in REGIMES:
        found = [np.asarray(c["histogram"], np.float64) for c in curves if c["regime"] == regime and "histogram" in c]
        if found:
            counts = np.sum(found, axis=0)
            ax.step(centers, counts / counts.sum(), where="mid", color=COLORS[regime], label=LABELS[regime])
    ax.set_yscale("log")
    ax.set_xlabel("gradient / max |gradient| of the sample", fontsize=8)
    ax.set_ylabel("share of pixels", fontsize=8)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path


def plot_all(report: dict, methods: Sequence[str], out: Path) -> list[Path]:
    curves = report["curves"]
    return [plot_fig3(curves, methods, out / "fig3.png"), plot_fig4(curves, out / "fig4.png"),
            plot_maps(curves, methods, out / "maps.png"), plot_gradients(curves, out / "gradients.png")]


# --------------------------------------------------------------------------------------------
# Command line: `sgt reproduce mnist`


def add_arguments(parser) -> None:
    defaults = Settings()
    parser.add_argument("--dataset", default=defaults.dataset,
                        help="a registered 28×28 image dataset normalised as MNIST (default: mnist)")
    parser.add_argument("--model", default=defaults.model, help="a registered model (default: mnist_cnn)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=_args.positive_int, default=defaults.epochs,
                        help=f"epochs per model (default {defaults.epochs}; the authors trained up to 100)")
    parser.add_argument("--patience", type=_args.positive_int,
                        help="stop a model after this many epochs without a validation gain (the authors: 20; "
                             "default: no early stop)")
    parser.add_argument("--batch-size", type=_args.positive_int, default=defaults.batch_size)
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default=defaults.optimizer)
    parser.add_argument("--lr", type=_args.positive_float, default=defaults.lr)
    parser.add_argument("--k", type=_args.open_fraction, default=defaults.k, help="fraction of pixels SGT masks")
    parser.add_argument("--lam", type=_args.nonnegative_float, default=defaults.lam, help="KL weight λ of SGT")
    parser.add_argument("--rank-by", choices=masking.RANKINGS, default=defaults.rank_by,
                        help="how SGT ranks pixels for masking: |gradient| (paper text) or signed (authors' code)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=saliency.names(),
                        help="saliency methods (default: the paper's six); a random ranking is always added")
    parser.add_argument("--test-subset", type=_args.positive_int, default=TEST_SUBSET,
                        help=f"test images every curve is measured on, a fixed random choice (default {TEST_SUBSET})")
    parser.add_argument("--train-subset", type=_args.positive_int,
                        help="train on this many training images only (quick checks; default: all)")
    parser.add_argument("--baselines", choices=BASELINE_SPACES, default=defaults.baselines,
                        help="U[0, 1) baselines as raw pixels mapped into the input space (default) or fed as "
                             "they are (the authors' code)")
    parser.add_argument("--score", choices=SCORES, default=defaults.score,
                        help="what the methods attribute: the true label's log-probability (the authors' network) "
                             "or its logit")
    parser.add_argument("--roar-fractions", nargs="*", type=_args.open_fraction, default=list(FIG4_FRACTIONS),
                        help="removed fractions at which Fig. 4's ROAR retrains an ordinary model, one per fraction "
                             "and seed (default: %(default)s; none to skip ROAR)")
    parser.add_argument("--out", type=Path, default=Path("runs/mnist"))
    parser.add_argument("--data-dir", type=Path, help="folder holding mnist/ (default: $SGT_DATA_DIR, else ./data)")
    parser.add_argument("--report-only", action="store_true",
                        help="write the tables and figures from the cached records only; train nothing")
    parser.add_argument("--no-progress", action="store_true")


def settings_from(args) -> Settings:
    return Settings(dataset=args.dataset, model=args.model, epochs=args.epochs, patience=args.patience,
                    batch_size=args.batch_size,
                    optimizer=args.optimizer, lr=args.lr, k=args.k, lam=args.lam, rank_by=args.rank_by,
                    train_subset=args.train_subset, test_subset=args.test_subset, baselines=args.baselines,
                    score=args.score)


def reproduce(args) -> str:
    """Run (or, with --report-only, read) every record; write the tables and figures; return the text."""
    settings = settings_from(args)
    start = time.time()
    report = run(settings, args.seeds, methods=args.methods, out=args.out, data_dir=args.data_dir,
                 roar_fractions=args.roar_fractions, progress=not args.no_progress, train_missing=not args.report_only)
    paths = write_report(report, args.methods, args.out)
    return ((args.out / "mnist.md").read_text() + f"\n{len(report['models'])} models, {len(report['curves'])} "
            f"curves ({(time.time() - start) / 60:.1f} min this call); wrote " + ", ".join(map(str, paths)))


__all__ = ["BACKGROUND", "FIG4_FRACTIONS", "METHODS", "METHOD_OPTIONS", "Settings", "add_arguments", "area_rows",
           "baselines", "curve_rows", "fig4_rows", "reproduce", "run", "sparsity_rows", "subset_indices"]
