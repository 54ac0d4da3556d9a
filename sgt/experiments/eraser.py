"""Table 1 of the paper: ERASER comprehensiveness and sufficiency of saliency on a BiLSTM text classifier,
trained ordinarily and with saliency guided training (docs/eraser.md, docs/erasure.md).

Per seed, a BiLSTM on frozen 50-d GloVe vectors is trained both ways (`sgt.text`: saliency at the
embedding output, the k lowest tokens of each text replaced by the preceding kept token). Every test
text is then ranked per token by Gradient, Integrated Gradients and SmoothGrad (and a random ranking)
of the predicted class's log-probability with respect to the embeddings, reduced to |Σ_d a| per
token, and scored by `sgt.metrics.erasure.erasure_scores` (AOPC over 1, 5, 10, 20, 50 % of the
tokens). On Movies, the rankings are also compared with the human rationales (token F1, AUPRC).

Data (`sgt.data.text`): Movies trains on train, selects on val, tests on test (1600/200/199). FEVER
and e-SNLI have no training split here: they train on the validation/dev file (a seeded tenth held
out for model selection) and test on the test file; the query side (claim, hypothesis) is kept whole
and only the document side (evidence, premise) is ranked and erased.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import time
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sgt import _args, data, loop, models, saliency, text, train, xla
from sgt.data import text as text_data
from sgt.data.base import Dataset
from sgt.experiments.comparison import OPTIMIZERS, SCHEDULES, optimizer
from sgt.experiments.mnist import Cache, _key
from sgt.experiments.report import mean_se
from sgt.metrics import erasure

TASKS = {  # name: (loader, train split, selection split or None (a seeded tenth of train), test split)
    "movies": (text_data.load_movies, "train", "val", "test"),
    "fever": (text_data.load_fever, "validation", None, "test"),
    "esnli": (text_data.load_esnli, "dev", None, "test"),
}
MAX_LENGTH = {"movies": 512, "fever": 128, "esnli": 48}
# Which end of a long document is kept: a review tends to end with its verdict (1-2 points of test
# accuracy on Movies); a pair keeps the start of its evidence or premise.
KEEP = {"movies": "tail", "fever": "head", "esnli": "head"}
METHOD_OPTIONS = {
    "Grad": {},
    "IG": {"steps": 20},
    "SmoothGrad": {"samples": 20, "sigma": 0.15},
}
METHODS = tuple(METHOD_OPTIONS)  # Table 1's three
RANDOM = "Random"
ATTRIBUTION_CHUNK = 50  # texts attributed at once


@dataclasses.dataclass(frozen=True)
class Settings:
    """Training settings (the cache folder's name). Ours, not the paper's (it gives none): a BiLSTM
    of `hidden` units per direction with max-pooling over time on frozen 50-d GloVe, texts cut at
    `max_length` tokens keeping their `keep` end (None: the task's defaults), Adam at 3·10⁻³ decayed
    by a cosine over 25 epochs, SGT with k = 0.5, λ = 1."""

    task: str = "movies"
    max_length: int | None = None
    hidden: int = 64
    dropout: float = 0.2
    train_embeddings: bool = False
    keep: str | None = None
    epochs: int = 25
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 3e-3
    schedule: str = "cosine"
    k: float = 0.5
    lam: float = 1.0
    rank_by: str = "magnitude"

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {tuple(TASKS)}, got {self.task!r}")
        train.SGTConfig(k=self.k, lam=self.lam, rank_by=self.rank_by)  # checks them
        if self.keep is not None and self.keep not in text_data.TRUNCATIONS:
            raise ValueError(f"keep: expected one of {text_data.TRUNCATIONS} or None, got {self.keep!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")

    @property
    def length(self) -> int:
        return self.max_length or MAX_LENGTH[self.task]

    @property
    def truncation(self) -> str:
        return self.keep or KEEP[self.task]

    def tag(self) -> str:
        return (f"{self.task}_len{self.length}_h{self.hidden}_d{self.dropout:g}{'_emb' if self.train_embeddings else ''}"
                f"{'' if self.truncation == 'head' else '_' + self.truncation}"
                f"_e{self.epochs}_b{self.batch_size}"
                f"_{self.optimizer}{self.lr:g}{'' if self.schedule == 'constant' else '-' + self.schedule}_k{self.k:g}_lam{self.lam:g}_{self.rank_by}")

    def eval_tag(self) -> str:
        return "test_" + "_".join(f"{m}{'-'.join(f'{k}{v:g}' for k, v in sorted(o.items()))}"
                                  for m, o in METHOD_OPTIONS.items())

    def sgt_config(self, sep_id: int | None) -> train.SGTConfig:
        return train.SGTConfig(k=self.k, lam=self.lam, rank_by=self.rank_by, pad_id=0, sep_id=sep_id)


# --------------------------------------------------------------------------------------------
# Data


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A task's splits as token ids, with its vocabulary."""

    dataset: Dataset  # x_* int32 [N, length]
    validation: tuple[np.ndarray, np.ndarray] | None
    vocab: text_data.Vocabulary
    rationale_test: np.ndarray | None  # bool [N_test, length] (Movies)
    pairs: bool


@functools.lru_cache(maxsize=4)
def encode_task(task: str, length: int, data_dir: str | None = None, keep: str = "head") -> Encoded:
    """Read, build the vocabulary (training-split words with a GloVe vector) and encode a task."""
    loader, train_split, val_split, test_split = TASKS[task]
    root = data.data_dir(data_dir)
    splits = loader(root)
    words = {w for split in splits.values() for doc in (*split.document, *(split.query or ())) for w in doc}
    glove = text_data.load_glove(root / "glove", words)
    vocab = text_data.build_vocabulary([splits[train_split]], glove)
    x_train, _ = text_data.encode(splits[train_split], vocab, length, keep)
    x_test, rationale = text_data.encode(splits[test_split], vocab, length, keep)
    validation = None
    if val_split is not None:
        validation = (text_data.encode(splits[val_split], vocab, length, keep)[0],
                      splits[val_split].labels.astype(np.int32))
    pairs = splits[train_split].query is not None
    ds = Dataset(name=task, x_train=x_train, y_train=splits[train_split].labels.astype(np.int32), x_test=x_test,
                 y_test=splits[test_split].labels.astype(np.int32), num_classes=len(text_data.LABELS[task]))
    has_rationale = splits[test_split].rationale is not None
    return Encoded(ds, validation, vocab, rationale if has_rationale else None, pairs)


def sep_id(encoded: Encoded) -> int | None:
    return encoded.vocab.id(text_data.SEP) if encoded.pairs else None


def build_model(settings: Settings, encoded: Encoded, *, from_glove: bool = False) -> models.TextClassifier:
    """The BiLSTM; `from_glove`: its table is initialised with the vocabulary's GloVe rows (for
    training; a module holding the table cannot be hashed, so evaluation builds it without, and the
    trained parameters carry the table)."""
    table = encoded.vocab.embeddings
    return models.TextClassifier(num_classes=encoded.dataset.num_classes, vocab_size=table.shape[0],
                                 embed_dim=table.shape[1], embeddings=table if from_glove else None,
                                 freeze_embeddings=not settings.train_embeddings, hidden=settings.hidden, dropout=settings.dropout,
                                 pool="max", pad_id=0)


# --------------------------------------------------------------------------------------------
# Training


def train_model(settings: Settings, encoded: Encoded, method: str, seed: int, run_dir: Path,
                progress: bool) -> tuple[dict, dict]:
    """One model through `sgt.loop.fit` (resuming an interrupted run in `run_dir`); (variables, record)."""
    net = build_model(settings, encoded, from_glove=True)
    ds = encoded.dataset
    n_train = len(ds.x_train) - (0 if encoded.validation is not None else max(1, round(0.1 * len(ds.x_train))))
    tx = optimizer(settings.optimizer, settings.lr, settings.schedule, settings.epochs * (n_train // settings.batch_size))
    checkpoints = run_dir / "checkpoints"
    resume = checkpoints.exists() and any(p.name.isdigit() for p in checkpoints.iterdir())
    tic = time.perf_counter()
    fit = loop.fit(net, ds, method=method, config=settings.sgt_config(sep_id(encoded)) if method == "sgt" else None,
                   tx=tx, epochs=settings.epochs, batch_size=settings.batch_size, validation=encoded.validation,
                   seed=seed, out_dir=run_dir, resume=resume, progress=progress)
    variables = {"params": fit.best["params"]}
    record = {"method": method, "seed": seed, "test_accuracy": fit.test["accuracy"], "test_loss": fit.test["loss"],
              "val_accuracy": float(fit.best["val_accuracy"]), "best_epoch": int(fit.best["epoch"]),
              "epochs": len(fit.history), "train_seconds": round(time.perf_counter() - tic, 1), "resumed": resume,
              "history": fit.history, "settings": dataclasses.asdict(settings)}
    return variables, record


def obtain_model(cache: Cache, settings: Settings, encoded: Encoded, regime: str, seed: int,
                 progress: bool) -> tuple[dict, dict]:
    """The cached model `<regime>_seed<seed>`, trained and cached first when absent; (variables, record)."""
    name = f"{regime}_seed{seed}"
    found = cache.model(name)
    if found is not None:
        return found
    method = "sgt" if regime == "sgt" else "standard"
    if progress:
        print(f"[eraser] training {name} on {settings.task} ({method}, {settings.epochs} epochs)", flush=True)
    variables, record = train_model(settings, encoded, method, seed, cache.run_dir(name), progress)
    record.update(name=name, regime=regime)
    cache.save_model(name, variables, record)
    shutil.rmtree(cache.run_dir(name) / "checkpoints", ignore_errors=True)
    return cache.model(name)


# --------------------------------------------------------------------------------------------
# Attribution and erasure


@functools.lru_cache(maxsize=16)
def make_token_scores(model, method: str):
    """Jitted `scores(params, ids, key) -> (|Σ_d attribution| [B, L], predicted class [B])`, the
    attribution being of the predicted class's log-probability with respect to the embeddings."""
    options = METHOD_OPTIONS.get(method, {})

    def scores(params, ids, key):
        embedded, logits_of = text.embedding_classifier(model, params, {}, ids)
        f = lambda e: jax.nn.log_softmax(logits_of(e), axis=-1)  # noqa: E731
        predicted = jnp.argmax(f(embedded), axis=-1)
        if method == "IG":
            attribute = saliency.build("IG", f, baseline=jnp.zeros_like(embedded), **options)
        else:
            attribute = saliency.build(method, f, **options)
        a = attribute(embedded, predicted, key=key)
        return jnp.abs(a.sum(axis=-1)), predicted

    return xla.jit(scores)


def token_scores(model, method: str, params, ids: np.ndarray, key) -> np.ndarray:
    fn = make_token_scores(model, method)
    parts = [fn(params, ids[i:i + ATTRIBUTION_CHUNK], jax.random.fold_in(key, i // ATTRIBUTION_CHUNK))[0]
             for i in range(0, len(ids), ATTRIBUTION_CHUNK)]
    return np.concatenate([np.asarray(p) for p in parts])


@functools.lru_cache(maxsize=8)
def make_probabilities(model):
    return xla.jit(lambda params, ids: jax.nn.softmax(model.apply({"params": params}, ids), axis=-1))


def evaluate_method(model, params, encoded: Encoded, method: str, key) -> dict:
    """Erasure scores (and, with human rationales, plausibility) of one ranking of the test texts."""
    ids = encoded.dataset.x_test
    tic = time.perf_counter()
    if method == RANDOM:
        scores = np.asarray(erasure.random_token_scores(key, ids.shape))
    else:
        scores = token_scores(model, method, params, ids, key)
    seconds_attribution = time.perf_counter() - tic
    rankable = np.asarray(text.rankable(jnp.asarray(ids), 0, sep_id(encoded)))
    probabilities = make_probabilities(model)
    lengths = text_data.lengths(ids)
    result = erasure.erasure_scores(lambda t, n: probabilities(params, t), ids, lengths, scores, rankable=rankable,
                                    batch_size=ATTRIBUTION_CHUNK, key=jax.random.fold_in(key, 1))
    record = {"method": method, "bins": list(map(float, result["bins"])),
              "comprehensiveness": list(map(float, result["comprehensiveness"])),
              "sufficiency": list(map(float, result["sufficiency"])),
              "aopc_comprehensiveness": float(result["aopc_comprehensiveness"]),
              "aopc_sufficiency": float(result["aopc_sufficiency"]),
              "attribution_seconds": round(seconds_attribution, 2),
              "seconds": round(time.perf_counter() - tic, 2)}
    if encoded.rationale_test is not None:
        record["token_f1"] = float(erasure.token_f1(scores, encoded.rationale_test, rankable)["f1"])
        record["auprc"] = float(erasure.auprc(scores, encoded.rationale_test, rankable))
    if method != RANDOM:
        record["display"] = display_rows(scores, encoded)
    return record


DISPLAY = 3  # test texts kept per record for the highlighted-token figure
DISPLAY_TOKENS = 90


def display_rows(scores: np.ndarray, encoded: Encoded) -> list[dict]:
    """The first DISPLAY test texts' first DISPLAY_TOKENS tokens and scores, for the figure."""
    rows = []
    for i in range(min(DISPLAY, len(scores))):
        n = min(int(text_data.lengths(encoded.dataset.x_test[i:i + 1])[0]), DISPLAY_TOKENS)
        ids = encoded.dataset.x_test[i, :n]
        rows.append({"index": i, "tokens": [encoded.vocab.words[t] for t in ids],
                     "scores": [round(float(s), 6) for s in scores[i, :n]],
                     "label": int(encoded.dataset.y_test[i])})
    return rows


# --------------------------------------------------------------------------------------------
# The run


def run(settings: Settings, seeds: Sequence[int], *, methods: Sequence[str] = METHODS, out: Path,
        data_dir=None, progress: bool = True, train_missing: bool = True) -> dict:
    """Train (or read) both regimes per seed, then score every method's ranking; every record is cached.
    Without `train_missing` only the cached records are read (the weights are not needed)."""
    cache = Cache(out, settings)
    encoded = encode_task(settings.task, settings.length, str(data_dir) if data_dir else None, settings.truncation)
    model = build_model(settings, encoded)
    records, model_records = [], []
    for seed in seeds:
        for regime in ("ordinary", "sgt"):
            model_path = cache.models / f"{regime}_seed{seed}.json"
            if not train_missing and not model_path.exists():
                continue
            variables, model_record = (obtain_model(cache, settings, encoded, regime, seed, progress) if train_missing
                                       else (None, json.loads(model_path.read_text())))
            model_records.append({k: v for k, v in model_record.items() if k != "history"})
            for method in (*methods, RANDOM):
                path = cache.evals / f"{regime}_seed{seed}__{method}.json"
                if path.exists():
                    records.append(json.loads(path.read_text()))
                    continue
                if not train_missing:
                    continue
                record = evaluate_method(model, variables["params"], encoded, method, _key(seed, method, "tokens"))
                record.update(regime=regime, seed=seed, test_accuracy=model_record["test_accuracy"])
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(json.dumps(record))
                tmp.replace(path)
                records.append(record)
                if progress:
                    print(f"[eraser] {regime} seed {seed} {method}: comprehensiveness "
                          f"{record['aopc_comprehensiveness']:.3f}, sufficiency {record['aopc_sufficiency']:.3f} "
                          f"({record['seconds']:.0f} s)", flush=True)
    return {"settings": dataclasses.asdict(settings), "records": records, "models": model_records,
            "vocabulary": len(encoded.vocab.words), "test_texts": len(encoded.dataset.x_test)}


# --------------------------------------------------------------------------------------------
# Report


PAPER_PATH = Path(__file__).with_name("paper_numbers.json")


def paper_table1() -> dict:
    return json.loads(PAPER_PATH.read_text()).get("table1", {})


def _mean_se(values) -> tuple[float, float, int]:
    """(mean, standard error, count) of `values`; NaNs when there are none."""
    return (*mean_se(values), len(values)) if len(values) else (float("nan"), float("nan"), 0)


def table_rows(report: dict, methods: Sequence[str]) -> list[dict]:
    """Per method: AOPC comprehensiveness and sufficiency, ordinary and SGT (mean, s.e. over seeds),
    the paired SGT − ordinary difference, plausibility, and the paper's numbers."""
    paper = paper_table1().get("datasets", {}).get(report["settings"]["task"], {})
    rows = []
    for method in (*methods, RANDOM):
        row = {"method": method}
        by = {(r["regime"], r["seed"]): r for r in report["records"] if r["method"] == method}
        for metric in ("aopc_comprehensiveness", "aopc_sufficiency", "token_f1", "auprc"):
            for regime in ("ordinary", "sgt"):
                values = [r[metric] for (g, _), r in sorted(by.items()) if g == regime and metric in r]
                row[f"{metric}_{regime}"], row[f"{metric}_{regime}_se"], row["seeds"] = _mean_se(values)
            seeds = sorted({s for (g, s) in by if g == "ordinary"} & {s for (g, s) in by if g == "sgt"})
            diffs = [by[("sgt", s)][metric] - by[("ordinary", s)][metric] for s in seeds if metric in by[("sgt", s)]]
            row[f"{metric}_diff"], row[f"{metric}_diff_se"], _ = _mean_se(diffs)
        for metric in ("comprehensiveness", "sufficiency"):
            row[f"paper_{metric}"] = paper.get(metric, {}).get(method)
        rows.append(row)
    return rows


def _pm(mean, se, digits=3) -> str:
    if mean != mean:
        return ""
    return f"{mean:.{digits}f}" + (f" ± {se:.{digits}f}" if se == se else "")


def _paper(pair) -> str:
    if not pair:
        return ""
    return f"{pair[0]:.3f} → {pair[1]:.3f}" if isinstance(pair, list) and len(pair) == 2 else f"{pair:.3f}"


def write_report(report: dict, methods: Sequence[str], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(report, methods)
    task = report["settings"]["task"]
    accuracy = {g: _mean_se([m["test_accuracy"] for m in report["models"] if m["regime"] == g])
                for g in ("ordinary", "sgt")}
    lines = [f"## {task}: test accuracy (mean ± s.e. over seeds)", "",
             "| model | test accuracy | seeds | train minutes (mean) |", "|---|---:|---:|---:|"]
    for g in ("ordinary", "sgt"):
        minutes = np.mean([m["train_seconds"] for m in report["models"] if m["regime"] == g] or [np.nan]) / 60
        lines.append(f"| {g} | {_pm(100 * accuracy[g][0], 100 * accuracy[g][1], 1)} % | {accuracy[g][2]} | "
                     f"{minutes:.1f} |")
    lines += ["", f"## {task}: AOPC over bins 1, 5, 10, 20, 50 % (comprehensiveness ↑, sufficiency ↓)", "",
              "| method | comprehensiveness ordinary | SGT | SGT − ordinary | paper | "
              "sufficiency ordinary | SGT | SGT − ordinary | paper |", "|---|---:|---:|---:|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {_pm(r['aopc_comprehensiveness_ordinary'], r['aopc_comprehensiveness_ordinary_se'])} | "
            f"{_pm(r['aopc_comprehensiveness_sgt'], r['aopc_comprehensiveness_sgt_se'])} | "
            f"{_pm(r['aopc_comprehensiveness_diff'], r['aopc_comprehensiveness_diff_se'])} | "
            f"{_paper(r['paper_comprehensiveness'])} | "
            f"{_pm(r['aopc_sufficiency_ordinary'], r['aopc_sufficiency_ordinary_se'])} | "
            f"{_pm(r['aopc_sufficiency_sgt'], r['aopc_sufficiency_sgt_se'])} | "
            f"{_pm(r['aopc_sufficiency_diff'], r['aopc_sufficiency_diff_se'])} | {_paper(r['paper_sufficiency'])} |")
    if any(r.get("token_f1_ordinary") == r.get("token_f1_ordinary") for r in rows):
        lines += ["", f"## {task}: plausibility against the human rationales", "",
                  "| method | token F1 ordinary | SGT | AUPRC ordinary | SGT |", "|---|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['method']} | {_pm(r['token_f1_ordinary'], r['token_f1_ordinary_se'])} | "
                         f"{_pm(r['token_f1_sgt'], r['token_f1_sgt_se'])} | "
                         f"{_pm(r['auprc_ordinary'], r['auprc_ordinary_se'])} | {_pm(r['auprc_sgt'], r['auprc_sgt_se'])} |")
    md = out / f"table1_{task}.md"
    md.write_text("\n".join(lines) + "\n")
    csv = out / f"table1_{task}.csv"
    keys = list(rows[0])
    csv.write_text(",".join(keys) + "\n" + "\n".join(",".join(_cell(r[k]) for k in keys) for r in rows) + "\n")
    paths = [md, csv]
    figure = plot_highlights(report, methods, out / f"highlights_{task}.png")
    if figure is not None:
        paths.append(figure)
    return paths


def _cell(v) -> str:
    if isinstance(v, list):
        return "→".join(f"{x:g}" for x in v)
    return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))


def plot_highlights(report: dict, methods: Sequence[str], path: Path, method: str = "Grad",
                    seed: int | None = None) -> Path | None:
    """A few test texts with each token shaded by its normalised score, ordinary above SGT."""
    import matplotlib.pyplot as plt

    shown = [r for r in report["records"] if r["method"] == method and "display" in r]
    if not shown:
        return None
    seed = min(r["seed"] for r in shown) if seed is None else seed
    by = {r["regime"]: r for r in shown if r["seed"] == seed}
    if set(by) != {"ordinary", "sgt"}:
        return None
    texts = len(by["ordinary"]["display"])
    chars_per_line, line_height = 150, 0.055
    fig, axes = plt.subplots(2 * texts, 1, figsize=(12, 2.0 * 2 * texts))
    cmap = plt.get_cmap("Reds")
    for t in range(texts):
        for j, regime in enumerate(("ordinary", "sgt")):
            ax = axes[2 * t + j]
            ax.axis("off")
            row = by[regime]["display"][t]
            scores = np.asarray(row["scores"])
            scaled = scores / scores.max() if scores.max() > 0 else scores
            x, y = 0, 0.92
            for word, s in zip(row["tokens"], scaled):
                if x + len(word) + 1 > chars_per_line:
                    x, y = 0, y - line_height * 3.2
                ax.text(x / chars_per_line, y, word, family="monospace", fontsize=8, va="top",
                        bbox=dict(facecolor=cmap(0.85 * float(s)), edgecolor="none", pad=0.6))
                x += len(word) + 1
            label = text_data.LABELS[report["settings"]["task"]][row["label"]]
            ax.set_title(f"test text {row['index']} ({label}), {'ordinary' if regime == 'ordinary' else 'saliency guided'}"
                         f" model, {method} (darker = higher |score|, first {len(row['tokens'])} tokens)",
                         fontsize=9, loc="left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Command line: `sgt reproduce eraser`


def add_arguments(parser) -> None:
    defaults = Settings()
    parser.add_argument("--dataset", choices=list(TASKS), default=defaults.task,
                        help="movies (ERASER Movie Reviews), fever or esnli (the partial copies: trained on their "
                             "validation/dev file, tested on test)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=_args.positive_int, default=defaults.epochs)
    parser.add_argument("--max-length", type=_args.positive_int,
                        help=f"tokens kept per text (default per task: {MAX_LENGTH})")
    parser.add_argument("--hidden", type=_args.positive_int, default=defaults.hidden, help="LSTM units per direction")
    parser.add_argument("--keep", choices=text_data.TRUNCATIONS, default=defaults.keep,
                        help=f"which end of a text longer than --max-length is kept (default per task: {KEEP})")
    parser.add_argument("--train-embeddings", action="store_true",
                        help="fine-tune the GloVe table (default: frozen)")
    parser.add_argument("--batch-size", type=_args.positive_int, default=defaults.batch_size)
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default=defaults.optimizer)
    parser.add_argument("--lr", type=_args.positive_float, default=defaults.lr)
    parser.add_argument("--schedule", choices=list(SCHEDULES), default=defaults.schedule,
                        help="learning rate constant or cosine-decayed to 0 over the run")
    parser.add_argument("--k", type=_args.open_fraction, default=defaults.k,
                        help="fraction of each text's tokens SGT masks")
    parser.add_argument("--lam", type=_args.nonnegative_float, default=defaults.lam, help="KL weight λ of SGT")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=saliency.names(),
                        help="saliency methods (default: the paper's Grad, IG, SmoothGrad; InputXGrad is ERASER's "
                             "own gradient scorer); a random ranking is always added")
    parser.add_argument("--out", type=Path, default=Path("runs/eraser"))
    parser.add_argument("--data-dir", type=Path,
                        help="folder holding eraser-movies/, fever/, esnli/ and glove/ (default: $SGT_DATA_DIR, else ./data)")
    parser.add_argument("--report-only", action="store_true", help="write the table from the cached records only")
    parser.add_argument("--no-progress", action="store_true")


def reproduce(args) -> str:
    settings = Settings(task=args.dataset, max_length=args.max_length, hidden=args.hidden,
                        train_embeddings=args.train_embeddings, keep=args.keep, epochs=args.epochs,
                        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, schedule=args.schedule,
                        k=args.k, lam=args.lam)
    start = time.time()
    report = run(settings, args.seeds, methods=args.methods, out=args.out, data_dir=args.data_dir,
                 progress=not args.no_progress, train_missing=not args.report_only)
    paths = write_report(report, args.methods, args.out)
    return (paths[0].read_text() + f"\n{len(report['models'])} models, {len(report['records'])} records "
            f"({(time.time() - start) / 60:.1f} min this call); wrote " + ", ".join(map(str, paths)))


__all__ = ["METHODS", "METHOD_OPTIONS", "Settings", "TASKS", "add_arguments", "encode_task", "reproduce", "run",
           "table_rows", "write_report"]
