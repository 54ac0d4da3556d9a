"""The time-series interpretability benchmark (Table 2) and the vanishing-saliency comparison (Fig. 6).

For each (dataset, architecture, seed): train ordinarily ("Trad") and with saliency guided training
("Sal"), both from the same seed, select each on a validation split carved from train; attribute the
test set with six saliency methods (the settings of Ismail et al. 2020, written out in
docs/timeseries.md; the probability of the true class as the target, as the authors' softmax
models); score each map with the saliency-weighted AUP / AUR
against the known box, and against the feature-permuted random baseline of the same model's maps.
Every finished (dataset, architecture, seed) is cached as one JSON file, so a stopped run resumes.
Models of one architecture are trained `group` at a time with `sgt.many.fit_many` (one vmapped
program for the group). `run_ablation` runs named variants of the settings (`ABLATION`), one record
per process, and `report.write_ablation` sets them side by side.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from sgt import _args, data, losses, many, masking, models, saliency, train, xla
from sgt.data import timeseries as tsdata
from sgt.data.base import Dataset, validation_split
from sgt.metrics import timeseries as tsmetrics

ARCHS = ("lstm", "lstm_cell_attention", "tcn", "transformer")
REGIMES = {"Trad": "standard", "Sal": "sgt"}
SHAP_BASELINES = 50
DTYPES = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Training and evaluation settings; defaults follow the benchmark except where noted.

    k, lam: saliency guided training's masked fraction and KL weight (chosen by the small search in
    results/timeseries/README.md). The benchmark trains up to 500 epochs and keeps the best *test*
    checkpoint; we keep the best *validation* checkpoint (10 % of train), stop a model at 99 %
    validation accuracy or after `patience` epochs without improvement, and cap the epochs.
    `gate`: (dataset, model, seed) triples enter the tables only if both regimes reach this test
    accuracy (the benchmark's 90 % rule). `group`: models trained at once per architecture (None:
    GROUPS[arch]). `selection`: how each model's epoch is chosen on validation (`sgt.loop.improves`;
    "first_best_accuracy", the earliest epoch with the best accuracy, made every cached record).
    `saliency_batch`: test samples attributed at once, with fresh random baselines per
    batch (None: the whole test set; the 100×100 vanishing sets need 10 to fit in memory).
    `rank_by`, `fill`: SGT's masking (`sgt.train.SGTConfig`). `dtype`: "float32", or "float64" for
    data, parameters, optimizer state, saliency and metrics in float64 (the benchmark's models run
    in float64; needs `use_dtype`). `classification_loss`: the CE term of both regimes, "logits" or
    "softmax-output" (the benchmark's CE on its models' softmax outputs,
    `sgt.losses.softmax_output_cross_entropy`); the KL term and the saliency target do not change.
    """

    k: float = 0.8
    lam: float = 1.0
    epochs: int | None = None  # None: EPOCHS[arch]
    patience: int | None = None  # None: a fifth of the epochs
    batch_size: int = 50
    lr: float = 1e-3
    val_fraction: float = 0.1
    stop_accuracy: float = 0.99
    gate: float = 0.9
    saliency_batch: int | None = None
    group: int | None = None
    selection: str = "first_best_accuracy"  # see sgt.loop.improves; the cached records were made with it
    rank_by: str = "magnitude"
    fill: str = "uniform"
    dtype: str = "float32"
    classification_loss: str = "logits"

    def __post_init__(self):
        for name, allowed in (("rank_by", masking.RANKINGS), ("fill", masking.FILLS), ("dtype", DTYPES),
                              ("classification_loss", tuple(losses.CLASSIFICATION_LOSSES))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        object.__setattr__(self, "lam", float(self.lam))  # lam=1 and lam=1.0 share a cache folder

    def tag(self) -> str:
        """The cache folder of these settings. Each option that differs from its default and is not
        in the base name adds a suffix (`TAG_SUFFIXES`), so records made under different options
        never mix and the records made before an option existed keep their folder."""
        tag = f"k{self.k}_lam{self.lam}_e{self.epochs or 'auto'}_p{self.patience or 'auto'}"
        for name, suffix in TAG_SUFFIXES.items():
            value = getattr(self, name)
            if value != _DEFAULTS[name]:
                tag += "_" + suffix.format(value)
        return tag

    def budget(self, arch: str) -> tuple[int, int]:
        """(most epochs, patience) for `arch`."""
        epochs = self.epochs or EPOCHS[arch]
        return epochs, self.patience or max(3, epochs // 5)


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}
# The options that enter `Settings.tag` only when they differ from the default, in this order.
TAG_SUFFIXES = {"selection": "sel-{}", "rank_by": "rank-{}", "fill": "fill-{}", "dtype": "{}",
                "classification_loss": "ce-{}"}


def use_dtype(dtype: str) -> None:
    """Prepare JAX for `dtype`: "float64" turns on 64-bit mode (`jax_enable_x64`), a process-wide
    switch that must come before any JAX array of the run is created; "float32" changes nothing."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)


def _x64_enabled() -> bool:
    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


# Most epochs per architecture (the benchmark allows 500 with patience 200; we cannot afford that on
# 2 CPU cores). The hidden-5 LSTMs are cheap and slow to leave chance level; the Transformer is costly.
# vmap pays off for the recurrent models (per-step overhead); the convolutional and attention models
# are compute-bound on CPU, where one at a time lets each stop early on its own.
GROUPS = {"lstm": 30, "lstm_cell_attention": 30, "tcn": 1, "transformer": 1}
EPOCHS = {"lstm": 150, "lstm_cell_attention": 60, "tcn": 60, "transformer": 20}


# --------------------------------------------------------------------------------------------
# Saliency


# Each method's options in the benchmark (its §2.3 settings): IG and DeepLIFT get one U[0, 1) baseline
# per sample; GradientSHAP 5 draws from a pool of 50 U[0, 1) baselines (5 × the benchmark's batch of
# 10) with input noise σ = 0.09; DeepLIFT-SHAP every sample against all 50 pool baselines;
# SmoothGrad Captum's NoiseTunnel defaults over |gradient| (5 samples, σ = 1.0 absolute); Grad is
# |gradient| (Captum's `Saliency`). A method registered in `sgt.saliency` without an entry here runs
# with its own defaults and the same baselines.
METHOD_OPTIONS = {
    "Grad": dict(absolute=True),
    "IG": dict(steps=50),
    "DeepLIFT": {},
    "GradSHAP": dict(samples=5, sigma=0.09),
    "DeepSHAP": dict(batch_size=10),
    "SmoothGrad": dict(absolute=True, samples=5, sigma=1.0, relative=False),
}
METHODS = tuple(METHOD_OPTIONS)  # the paper's six, in Table 2's order


def attribution_methods(f: Callable, x: jax.Array, key: jax.Array, names: Sequence[str]) -> dict:
    """The methods `names` (from `sgt.saliency.REGISTRY`) on classifier `f`, with the benchmark's
    options and its random baselines drawn from `key`: one U[0, 1) baseline per sample and a pool of
    `SHAP_BASELINES` U[0, 1) baselines."""
    k_base, k_pool = jax.random.split(key)
    base = jax.random.uniform(k_base, x.shape, x.dtype)
    pool = jax.random.uniform(k_pool, (SHAP_BASELINES, *x.shape[1:]), x.dtype)
    return {name: saliency.build(name, f, baseline=base, baselines=pool, **METHOD_OPTIONS.get(name, {}))
            for name in names}


@functools.lru_cache(maxsize=16)
def make_attribute(model, names: tuple[str, ...]):
    """Jitted `attribute(params, batch_stats, x, y, key) -> {method: map}`, target = true-class probability."""

    def attribute(params, batch_stats, x, y, key):
        logits = train.classifier(model, params, batch_stats)
        f = lambda x: jax.nn.softmax(logits(x), axis=-1)  # noqa: E731
        keys = jax.random.split(key, len(names) + 1)
        methods = attribution_methods(f, x, keys[-1], names)
        return {name: methods[name](x, y, key=k) for name, k in zip(names, keys)}

    return xla.jit(attribute)


def attribute_in_chunks(attribute, params, batch_stats, x, y, key, chunk: int | None) -> dict[str, np.ndarray]:
    """`attribute` over the test set `chunk` samples at a time (None: all at once), baselines drawn per
    chunk from fold_in(key, i) as Captum draws them per batch; chunk i = 0 uses `key` itself."""
    chunk = chunk or len(x)
    parts = [attribute(params, batch_stats, x[i:i + chunk], y[i:i + chunk],
                       key if i == 0 else jax.random.fold_in(key, i // chunk))
             for i in range(0, len(x), chunk)]
    return {name: np.concatenate([np.asarray(p[name]) for p in parts]) for name in parts[0]}


def score_maps(maps: dict[str, np.ndarray], truth: np.ndarray, rng: np.random.Generator) -> dict:
    """AUP/AUR of each map, of the random baseline built from them, and the 2019 scores (WJac, Euc)."""
    scores = {}
    for name, sal in maps.items():
        aup, aur = tsmetrics.aup_aur(sal, truth)
        scores[name] = {"aup": float(aup), "aur": float(aur),
                        "wjac": float(np.mean(tsmetrics.weighted_jaccard(sal, truth))),
                        "euc": float(np.mean(tsmetrics.euclidean(sal, truth)))}
    random = tsmetrics.random_baseline(list(maps.values()), rng)
    aup, aur = tsmetrics.aup_aur(random, truth)
    scores["Random"] = {"aup": float(aup), "aur": float(aur)}
    return scores


def time_profile(saliency: np.ndarray) -> list[float]:
    """Mean rescaled saliency per time step (the LSTM's late-step bias shows here)."""
    return [float(v) for v in tsmetrics.rescale(saliency).mean(axis=(0, 2))]


# --------------------------------------------------------------------------------------------
# Runs


def build_model(arch: str, dataset: str, dtype: str = "float32"):
    """The benchmark's model; on the vanishing-saliency sets the attention LSTM has r = 20 hops (2019 paper).
    `dtype` "float64": parameters and computation in float64, float64 logits."""
    options = {"r": 20} if arch == "lstm_cell_attention" and dataset in tsdata.VANISHING else {}
    if dtype == "float64":
        options |= {"dtype": jnp.float64, "param_dtype": jnp.float64}
    return models.get(arch, num_classes=2, **options)


def load_dataset(name: str, seed: int, dtype: str = "float32") -> Dataset:
    """Set `name` from `seed` with inputs in `dtype`. float64 keeps the scaling's float64 values, which
    the float32 set (`sgt.data.load`) rounds: same samples, same scaler, one rounding less."""
    if dtype == "float32":
        return data.load(name, seed=seed)
    return (tsdata.vanishing if name in tsdata.VANISHING else tsdata.benchmark)(name, seed, dtype=np.float64)


@functools.lru_cache(maxsize=4)
def adam(lr: float) -> optax.GradientTransformation:
    """One optimizer object per learning rate, so the compiled epochs are reused across groups."""
    return optax.adam(lr)


def cache_path(out: Path, settings: Settings, dataset: str, arch: str, seed: int) -> Path:
    return out / "cache" / settings.tag() / f"{dataset}__{arch}__seed{seed}.json"


def run_group(arch: str, members: Sequence[tuple[str, int]], settings: Settings, methods: Sequence[str],
              out: Path, progress: bool = True) -> list[dict]:
    """Train, attribute and score every (dataset, seed) of `members` for `arch`; cache each record."""
    if settings.dtype == "float64" and not _x64_enabled():
        raise ValueError("dtype: float64 needs JAX's 64-bit mode; call sgt.experiments.timeseries.use_dtype("
                         "'float64') (or set JAX_ENABLE_X64=1) before creating any JAX array")
    model = build_model(arch, members[0][0], settings.dtype)
    tx = adam(settings.lr)
    sets = [load_dataset(d, s, settings.dtype) for d, s in members]
    splits = [validation_split(ds.x_train, ds.y_train, settings.val_fraction, s) for ds, (_, s) in zip(sets, members)]
    stack = lambda i, j: np.stack([sp[i][j] for sp in splits])  # noqa: E731
    seeds = [s for _, s in members]
    records = [{"dataset": d, "arch": arch, "seed": s, "settings": dataclasses.asdict(settings), "regimes": {}}
               for d, s in members]
    attribute = make_attribute(model, tuple(methods))
    evaluate = many.make_evaluate(model)
    epochs, patience = settings.budget(arch)
    for regime, method in REGIMES.items():
        start = time.time()
        config = train.SGTConfig(k=settings.k, lam=settings.lam, rank_by=settings.rank_by,
                                 fill=settings.fill) if method == "sgt" else None
        fit = many.fit_many(model, tx, method=method, config=config, x_train=stack(0, 0), y_train=stack(0, 1),
                            x_val=stack(1, 0), y_val=stack(1, 1), seeds=seeds, epochs=epochs,
                            batch_size=settings.batch_size, patience=patience,
                            stop_accuracy=settings.stop_accuracy, selection=settings.selection,
                            classification_loss=settings.classification_loss, progress=progress,
                            desc=f"{arch} {regime}")
        x_test = np.stack([ds.x_test for ds in sets])
        y_test = np.stack([ds.y_test for ds in sets])
        test_acc = np.asarray(evaluate(fit.params, fit.batch_stats, x_test, y_test)[0])
        train_seconds = time.time() - start
        for g, (ds, rec) in enumerate(zip(sets, records)):
            params, batch_stats = fit.member(g)
            key = jax.random.PRNGKey(rec["seed"])
            maps = attribute_in_chunks(attribute, params, batch_stats, ds.x_test, ds.y_test, key,
                                       settings.saliency_batch)
            rng = np.random.default_rng([rec["seed"], list(REGIMES).index(regime), 7])
            rec["regimes"][regime] = {
                "test_accuracy": float(test_acc[g]), "val_accuracy": float(fit.val_accuracy[g]),
                # records count epochs from 1: best_epoch = epochs trained when the model was selected
                "epochs": int(fit.epochs[g]), "best_epoch": int(fit.best_epoch[g]) + 1,
                "train_seconds_group": train_seconds,
                "scores": score_maps(maps, ds.truth_test, rng),
                "grad_time_profile": time_profile(maps["Grad"]) if "Grad" in maps else None,
            }
    for rec in records:
        path = cache_path(out, settings, rec["dataset"], arch, rec["seed"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec))
        tmp.replace(path)  # atomic: a stopped run never leaves a half-written record
    return records


def run(datasets: Sequence[str], archs: Sequence[str], seeds: Sequence[int], *, settings: Settings,
        methods: Sequence[str] = METHODS, out: Path, progress: bool = True, train_missing: bool = True) -> list[dict]:
    """Every (dataset, arch, seed), resuming from the cache in `out`; returns all records.
    With `train_missing=False` only the cached records are returned (nothing is trained)."""
    for name in datasets:
        _check_name(name)
    for arch in archs:
        if arch not in models.REGISTRY:
            raise ValueError(f"models: unknown model {arch!r}; expected some of {ARCHS}")
    for m in methods:
        if m not in saliency.REGISTRY:
            raise ValueError(f"methods: unknown method {m!r}; expected some of {saliency.names()}")
    records = []
    for arch in archs:
        cached = {(d, s): _cached(cache_path(out, settings, d, arch, s), methods) for d in datasets for s in seeds}
        todo = [key for key, rec in cached.items() if rec is None]
        records += [rec for rec in cached.values() if rec is not None]
        size = settings.group or GROUPS[arch]
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)] if train_missing else []
        for chunk in tqdm(chunks, desc=f"{arch}: groups of {size}", disable=not progress or not chunks):
            records += run_group(arch, chunk, settings, methods, out, progress)
    return records


def _cached(path: Path, methods: Sequence[str]) -> dict | None:
    """The record at `path` if it scores every one of `methods` in both regimes, else None (to be rerun)."""
    if not path.exists():
        return None
    rec = json.loads(path.read_text())
    complete = all(m in regime["scores"] for regime in rec["regimes"].values() for m in methods)
    return rec if complete else None


def _check_name(name: str) -> None:
    if name not in tsdata.NAMES and name not in tsdata.VANISHING:
        raise ValueError(f"datasets: unknown dataset {name!r}; expected <Type>_<Gen> with Type in "
                         f"{tsdata.TYPES} and Gen in {tsdata.GENERATORS}, or one of {tsdata.VANISHING}")


# --------------------------------------------------------------------------------------------
# Command line: `sgt reproduce timeseries`


def add_common_arguments(parser, *, out: str, saliency_batch: int | None) -> None:
    """The flags `timeseries` and `vanishing` share; defaults from `Settings`."""
    defaults = Settings()
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=saliency.names(),
                        help="saliency methods from sgt.saliency.REGISTRY (default: the paper's six)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--k", type=_args.open_fraction, default=defaults.k, help="fraction of cells masked by SGT")
    parser.add_argument("--lam", type=_args.nonnegative_float, default=defaults.lam, help="KL weight λ of SGT")
    parser.add_argument("--epochs", type=_args.positive_int,
                        help="most epochs per model (default: per architecture, %s)"
                             % ", ".join(f"{a} {e}" for a, e in EPOCHS.items()))
    parser.add_argument("--patience", type=_args.positive_int,
                        help="epochs without a validation gain before a model stops (default: a fifth of the epochs)")
    parser.add_argument("--group", type=_args.positive_int, metavar="N",
                        help="models trained at once (vmapped) per architecture (default: "
                             + ", ".join(f"{a} {g}" for a, g in GROUPS.items()) + ")")
    parser.add_argument("--rank-by", default=defaults.rank_by, choices=masking.RANKINGS,
                        help="SGT ranks the cells by |saliency| (magnitude) or by the signed saliency (default: "
                             "%(default)s)")
    parser.add_argument("--fill", default=defaults.fill, choices=masking.FILLS,
                        help="value of SGT's masked cells: uniform in the sample's [min, max], its mean, or 0 "
                             "(default: %(default)s)")
    parser.add_argument("--dtype", default=defaults.dtype, choices=DTYPES,
                        help="float64: data, parameters, optimizer, saliency and metrics in float64 (JAX's 64-bit "
                             "mode), as the benchmark's models (default: %(default)s)")
    parser.add_argument("--classification-loss", default=defaults.classification_loss,
                        choices=list(losses.CLASSIFICATION_LOSSES),
                        help="the CE term: on the logits, or on the softmax outputs as the benchmark's softmax "
                             "models (-log softmax(softmax(z))_y); the KL term is unchanged (default: %(default)s)")
    parser.add_argument("--saliency-batch", type=_args.positive_int, default=saliency_batch,
                        help="test samples attributed at once, random baselines drawn per batch (default: "
                             + ("all" if saliency_batch is None else str(saliency_batch)) + ")")
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--report-only", action="store_true",
                        help="write the tables and figures from the cached runs only; train nothing")
    parser.add_argument("--no-progress", action="store_true")


def settings_from(args) -> Settings:
    """The settings of the parsed flags; with --dtype float64 it also turns on JAX's 64-bit mode
    (`use_dtype`), so call it before anything creates a JAX array."""
    use_dtype(args.dtype)
    return Settings(k=args.k, lam=args.lam, epochs=args.epochs, patience=args.patience, group=args.group,
                    saliency_batch=args.saliency_batch, rank_by=args.rank_by, fill=args.fill, dtype=args.dtype,
                    classification_loss=args.classification_loss)


def add_arguments(parser) -> None:
    parser.add_argument("--datasets", nargs="+", default=["gaussian"],
                        help="dataset names (<Type>_<Gen>), 'gaussian' (the 10 <Type>_Box sets, default) or "
                             "'all' (70)")
    parser.add_argument("--models", nargs="+", default=list(ARCHS), choices=ARCHS)
    add_common_arguments(parser, out="runs/timeseries", saliency_batch=None)


def dataset_names(selection: Sequence[str]) -> list[str]:
    """'gaussian' → the 10 <Type>_Box sets, 'all' → the 70, anything else as given."""
    names = []
    for d in selection:
        names += {"gaussian": [f"{t}_Box" for t in tsdata.TYPES], "all": list(tsdata.NAMES)}.get(d, [d])
    return names


def mesh_note(batch_size: int, devices: int) -> str | None:
    """What to tell a user whose mesh cannot split the benchmark's batch (None when it can)."""
    if devices <= 1 or batch_size % devices == 0:
        return None
    return (f"note: the benchmark's batch {batch_size} is kept although {devices} devices cannot split it: "
            f"the models of a group train together on one device (sgt.many), so the results do not depend on "
            f"the device count")


def reproduce(args) -> str:
    """Run (or, with --report-only, read) every record and write Table 2; returns the text to print."""
    from sgt.experiments import report

    settings = settings_from(args)
    if not args.no_progress:
        note = mesh_note(settings.batch_size, jax.device_count())
        if note:
            print(note, flush=True)
    start = time.time()
    records = run(dataset_names(args.datasets), args.models, args.seeds, settings=settings, methods=args.methods,
                  out=args.out, progress=not args.no_progress, train_missing=not args.report_only)
    rows = report.diff_table(records, args.methods, settings.gate)
    paths = [*report.write_table(rows, args.out), report.plot_diffs(rows, args.out / "table2.png"),
             report.write_accuracy(records, settings.gate, args.out)]
    return ((args.out / "table2.md").read_text() + f"\n{len(records)} runs ({(time.time() - start) / 60:.1f} min "
            f"this call); wrote " + ", ".join(map(str, paths)))


# --------------------------------------------------------------------------------------------
# Ablation: `sgt reproduce timeseries-ablation`

ABLATION_SEED = 100  # the seed of the k/λ search (results/timeseries/README.md); Table 2 uses 0, 1, 2
# The LSTM's two sets: the fixed and the moving rare-feature box, on which the ordinary and the
# saliency-guided LSTM passed the 90 % gate for every seed of Table 2, so that Sal − Trad is measured.
LSTM_ABLATION_DATASETS = ("RareFeature_Box", "Moving_RareFeature_Box")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One configuration of the ablation: `arch` on `datasets` with seed `seed` under `settings`;
    `changes` says what differs from the base configuration."""

    name: str
    arch: str
    datasets: tuple[str, ...]
    settings: Settings
    changes: str
    seed: int = ABLATION_SEED

    def records(self) -> list[tuple[str, str, int, Settings]]:
        """(arch, dataset, seed, settings) of every record the variant needs."""
        return [(self.arch, d, self.seed, self.settings) for d in self.datasets]


def ablation_variants() -> dict[str, Variant]:
    """The ablation, by name. The TCN variants change one thing each against "tcn-base" (the TCN on
    the 10 Gaussian sets with our defaults); "tcn-all70" shares its 10 Gaussian records. The LSTM
    variants are the grid k × ranking × fill × λ on `LSTM_ABLATION_DATASETS`."""
    gaussian = tuple(dataset_names(["gaussian"]))

    def tcn(name, changes, datasets=gaussian, **options):
        return Variant(name, "tcn", datasets, Settings(**options), changes)

    variants = [
        tcn("tcn-base", "none (the TCN on the 10 Gaussian sets, our defaults)"),
        tcn("tcn-all70", "all 70 datasets", datasets=tuple(tsdata.NAMES)),
        tcn("tcn-budget500", "the benchmark's budget: up to 500 epochs, patience 200", epochs=500, patience=200),
        tcn("tcn-float64", "float64 end to end", dtype="float64"),
        tcn("tcn-softmax-ce", "cross-entropy on the softmax outputs", classification_loss="softmax-output"),
        tcn("tcn-k0.5", "k = 0.5", k=0.5),
        tcn("tcn-fill-mean", "mean fill", fill="mean"),
        tcn("tcn-k0.5-fill-mean", "k = 0.5 and mean fill", k=0.5, fill="mean"),
    ]
    grid = itertools.product((0.5, 0.8), masking.RANKINGS, ("uniform", "mean"), (0.1, 1.0, 10.0))
    for k, rank_by, fill, lam in grid:
        variants.append(Variant(f"lstm-k{k}-{rank_by}-{fill}-lam{lam:g}", "lstm", LSTM_ABLATION_DATASETS,
                                Settings(k=k, lam=lam, rank_by=rank_by, fill=fill),
                                f"LSTM: k = {k}, {rank_by} ranking, {fill} fill, λ = {lam:g}"))
    return {v.name: v for v in variants}


ABLATION = ablation_variants()
ABLATION_GROUPS = {arch: [n for n, v in ABLATION.items() if v.arch == arch] for arch in ("tcn", "lstm")}


def ablation_names(selection: Sequence[str]) -> list[str]:
    """Variant names from names and groups ("tcn", "lstm": all of that model's), in order, each once."""
    return list(dict.fromkeys(n for name in selection for n in ABLATION_GROUPS.get(name, [name])))


def record_command(arch: str, dataset: str, seed: int, settings: Settings, methods: Sequence[str],
                   out: Path) -> list[str]:
    """The command line that makes one record (`record_worker`) in a fresh Python process."""
    job = {"arch": arch, "dataset": dataset, "seed": seed, "settings": dataclasses.asdict(settings),
           "methods": list(methods), "out": str(Path(out).resolve())}
    code = "import sys; from sgt.experiments import timeseries; timeseries.record_worker(sys.argv[1])"
    return [sys.executable, "-c", code, json.dumps(job)]


def record_worker(job: str) -> None:
    """Make (or find in the cache) the one record that `job` (JSON from `record_command`) describes."""
    job = json.loads(job)
    settings = Settings(**job["settings"])
    use_dtype(settings.dtype)
    run([job["dataset"]], [job["arch"]], [job["seed"]], settings=settings, methods=job["methods"],
        out=Path(job["out"]), progress=False)


def launch_logged(command: list[str], log: Path) -> int:
    """Run `command`, its stdout and stderr into `log`; returns the exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        return subprocess.run(command, stdout=fh, stderr=subprocess.STDOUT).returncode


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ablation(variants: Sequence[Variant], *, out: Path, methods: Sequence[str] = METHODS,
                 train_missing: bool = True, launch: Callable[[list[str], Path], int] = launch_logged,
                 echo: Callable[[str], None] = print) -> tuple[dict[str, list[dict]], list[str]]:
    """Make every record the `variants` need that is not cached in `out`, each in its own process
    (`launch(record_command(...), log)`, output in out/logs/), printing one line per record with its
    wall time and its process's CPU time; then read each variant's records from the cache. Returns
    ({variant: records}, the records that failed). A stopped run resumes record by record; a failed
    record is retried by the next call."""
    out = Path(out)
    todo = {}
    for v in variants:
        for arch, dataset, seed, settings in v.records():
            key = (arch, dataset, seed, settings.tag())
            if key not in todo and _cached(cache_path(out, settings, dataset, arch, seed), methods) is None:
                todo[key] = (v.name, settings)
    failed, start = [], time.time()
    for i, ((arch, dataset, seed, tag), (name, settings)) in enumerate(todo.items() if train_missing else (), 1):
        began, cpu = time.time(), _children_cpu_seconds()
        log = out / "logs" / tag / f"{dataset}__{arch}__seed{seed}.log"
        status = launch(record_command(arch, dataset, seed, settings, methods, out), log)
        done = "done" if status == 0 else f"FAILED (exit {status}; see {log})"
        echo(f"[{i}/{len(todo)}] {name}: {arch} {dataset} seed {seed} [{tag}] {done} in {time.time() - began:.0f} s "
             f"(CPU {_children_cpu_seconds() - cpu:.0f} s; {(time.time() - start) / 60:.1f} min in all)")
        if status != 0:
            failed.append(f"{arch} {dataset} seed {seed} [{tag}]")
    records = {v.name: run(v.datasets, [v.arch], [v.seed], settings=v.settings, methods=methods, out=out,
                           progress=False, train_missing=False) for v in variants}
    return records, failed


def by_base_signal(variant: Variant, records: Sequence[dict]) -> list[tuple[str, str, str, list[dict]]]:
    """For a variant whose sets span several base signals (`tsdata.GENERATORS`), one ablation row
    (name, what it holds, model, records) per signal, in that order; else none. The paper averages
    over all 70 sets, so these rows show which signals move the mean."""
    signal = lambda dataset: dataset.rsplit("_", 1)[1]  # noqa: E731
    signals = [g for g in tsdata.GENERATORS if any(signal(d) == g for d in variant.datasets)]
    if len(signals) < 2:
        return []
    return [(f"{variant.name}: {g}", f"its {g} sets only", variant.arch,
             [r for r in records if signal(r["dataset"]) == g]) for g in signals]


def add_ablation_arguments(parser) -> None:
    """The flags of `sgt reproduce timeseries-ablation`."""
    parser.add_argument("--variants", nargs="+", default=list(ABLATION), choices=[*ABLATION_GROUPS, *ABLATION],
                        metavar="NAME", help="variants to run (default: all), or 'tcn' / 'lstm' for all of that "
                                             "model's: " + ", ".join(ABLATION))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=saliency.names(),
                        help="saliency methods (default: the paper's six)")
    parser.add_argument("--out", type=Path, default=Path("runs/timeseries_ablation"))
    parser.add_argument("--list", action="store_true",
                        help="list the variants and their cached records; train nothing")
    parser.add_argument("--report-only", action="store_true",
                        help="write the ablation table from the cached records only; train nothing")
    parser.add_argument("--no-progress", action="store_true", help="print no line per record")


def reproduce_ablation(args) -> str:
    """Run the chosen variants (resuming from the cache) and write ablation.{md,csv}; returns the text to print."""
    from sgt.experiments import report

    variants = [ABLATION[name] for name in ablation_names(args.variants)]
    if args.list:
        lines = []
        for v in variants:
            cached = sum(_cached(cache_path(args.out, v.settings, d, v.arch, v.seed), args.methods) is not None
                         for d in v.datasets)
            lines.append(f"{v.name:<36} {v.arch:<5} {cached:>2}/{len(v.datasets):<2} cached  [{v.settings.tag()}]  "
                         f"{v.changes}")
        return "\n".join(lines)
    start = time.time()
    echo = (lambda line: None) if args.no_progress else functools.partial(print, flush=True)
    records, failed = run_ablation(variants, out=args.out, methods=args.methods, train_missing=not args.report_only,
                                   echo=echo)
    rows = [row for v in variants
            for row in [(v.name, v.changes, v.arch, records[v.name]), *by_base_signal(v, records[v.name])]]
    paths = report.write_ablation(rows, args.methods, Settings().gate, args.out)
    lstm = [(v.name, {"k": v.settings.k, "ranking": v.settings.rank_by, "fill": v.settings.fill, "λ": v.settings.lam},
             records[v.name]) for v in variants if v.arch == "lstm" and records[v.name]]
    if lstm and "Grad" in args.methods:
        figure = report.plot_ablation_profiles(lstm, Settings().gate, args.out / "ablation_lstm_profiles.png")
        paths = (*paths, figure)
    text = (paths[1].read_text() + f"\n({(time.time() - start) / 60:.1f} min this call); wrote "
            + ", ".join(map(str, paths)))
    if failed:
        text += f"\n{len(failed)} records FAILED (rerun to retry; logs in {args.out / 'logs'}): " + "; ".join(failed)
    return text
