"""Command line: `sgt train` trains ordinary and saliency-guided models and compares their saliency."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# Per-dataset defaults: (model, epochs, batch size, optimizer, learning rate).
DEFAULTS = {
    "middle": dict(model="lstm", epochs=15, batch_size=50, optimizer="adam", lr=1e-3, schedule="constant"),
    "mnist": dict(model="mnist_cnn", epochs=2, batch_size=128, optimizer="adam", lr=1e-3, schedule="constant"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sgt", description="Saliency Guided Training in JAX.")
    commands = parser.add_subparsers(dest="command", required=True)
    tr = commands.add_parser(
        "train", help="train ordinary and saliency-guided models and compare their saliency",
        description="With no arguments: the embedded synthetic 'middle' time-series set (no download), "
                    "an LSTM trained ordinarily and with saliency guided training.")
    tr.add_argument("--dataset", default="middle",
                    help="middle (embedded, default), mnist, a benchmark set <Type>_<Gen> (e.g. RareTime_CAR) "
                         "or TopBox/MiddleBox/BottomBox")
    tr.add_argument("--model", help="model name (default: lstm for middle, mnist_cnn for mnist)")
    tr.add_argument("--method", default="both", choices=["standard", "sgt", "both"])
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--optimizer", choices=["adam", "adadelta", "sgd"])
    tr.add_argument("--lr", type=float, help="(peak) learning rate")
    tr.add_argument("--schedule", choices=["constant", "cosine"],
                    help="learning-rate schedule; cosine decays to 0 over the run (default: per dataset)")
    tr.add_argument("--k", type=float, default=0.5, help="fraction (0, 1) or count (>= 1) of units masked")
    tr.add_argument("--lam", type=float, default=1.0, help="weight λ of the KL term")
    tr.add_argument("--rank-by", default="magnitude", choices=["magnitude", "signed"])
    tr.add_argument("--fill", default="uniform", choices=["uniform", "mean", "constant"])
    tr.add_argument("--saliency-pass", default="inference", choices=["inference", "shared"])
    tr.add_argument("--val-fraction", type=float, default=0.1, help="share of train held out for model selection")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", type=Path, help="output folder (default: runs/<dataset>)")
    tr.add_argument("--data-dir", type=Path, help="folder of real datasets (default: $SGT_DATA_DIR, else ./data)")
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    tr.add_argument("--checkpoint-every", type=int, help="also checkpoint every N steps (default: each epoch)")
    tr.add_argument("--no-progress", action="store_true", help="hide progress bars")
    commands.add_parser("models", help="list the models with their parameter counts")
    add_reproduce_parser(commands)
    return parser


def add_reproduce_parser(commands) -> None:
    from sgt.experiments import timeseries as ts

    rep = commands.add_parser("reproduce", help="reproduce an experiment of the paper")
    which = rep.add_subparsers(dest="experiment", required=True)
    tab = which.add_parser(
        "timeseries", help="Table 2: Diff(AUP), Diff(AUR) vs random on the synthetic benchmark",
        description="Trains every (dataset, model, seed) ordinarily and with saliency guided training, "
                    "attributes the test set with six methods and writes table2.{csv,md} and table2.png. "
                    "Finished runs are cached in OUT/cache, so a stopped run resumes.")
    tab.add_argument("--datasets", nargs="+", default=["gaussian"],
                     help="dataset names (<Type>_<Gen>), 'gaussian' (the 10 <Type>_Box sets, default) or 'all' (70)")
    tab.add_argument("--models", nargs="+", default=list(ts.ARCHS), choices=ts.ARCHS)
    van = which.add_parser(
        "vanishing", help="Fig. 6: AUP/AUR of the LSTM's saliency for early, middle and late boxes",
        description="TopBox / MiddleBox / BottomBox (100×100), LSTM and LSTM with input-cell attention "
                    "(r = 20), ordinary vs saliency guided; writes vanishing.{csv,md} and vanishing.png.")
    van.add_argument("--models", nargs="+", default=["lstm", "lstm_cell_attention"], choices=ts.ARCHS)
    for sub, out in ((tab, "runs/timeseries"), (van, "runs/vanishing")):
        defaults = ts.Settings()
        sub.add_argument("--methods", nargs="+", default=list(ts.METHODS), choices=ts.METHODS)
        sub.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
        sub.add_argument("--k", type=float, default=defaults.k, help="fraction of cells masked by SGT")
        sub.add_argument("--lam", type=float, default=defaults.lam, help="KL weight λ of SGT")
        sub.add_argument("--epochs", type=int, help="most epochs per model (default: per architecture, %s)"
                         % ", ".join(f"{a} {e}" for a, e in ts.EPOCHS.items()))
        sub.add_argument("--patience", type=int, help="epochs without a validation gain before a model stops "
                                                      "(default: a fifth of the epochs)")
        sub.add_argument("--group", type=int, metavar="N",
                         help="models trained at once (vmapped) per architecture (default: "
                              + ", ".join(f"{a} {g}" for a, g in ts.GROUPS.items()) + ")")
        sub.add_argument("--saliency-batch", type=int, help="test samples attributed at once, random baselines "
                                                            "drawn per batch (default: all for timeseries, 10 "
                                                            "for vanishing)")
        sub.add_argument("--out", type=Path, default=Path(out))
        sub.add_argument("--report-only", action="store_true",
                         help="write the tables and figures from the cached runs only; train nothing")
        sub.add_argument("--no-progress", action="store_true")


def reproduce_command(args) -> int:
    from sgt.data import timeseries as tsdata
    from sgt.experiments import report, timeseries as ts

    settings = ts.Settings(k=args.k, lam=args.lam, epochs=args.epochs, patience=args.patience,
                           group=args.group,
                           saliency_batch=args.saliency_batch or (10 if args.experiment == "vanishing" else None))
    if args.experiment == "timeseries":
        names = []
        for d in args.datasets:
            names += {"gaussian": [f"{t}_Box" for t in tsdata.TYPES], "all": list(tsdata.NAMES)}.get(d, [d])
    else:
        names = list(tsdata.VANISHING)
    start = time.time()
    records = ts.run(names, args.models, args.seeds, settings=settings, methods=args.methods, out=args.out,
                     progress=not args.no_progress, train_missing=not args.report_only)
    minutes = (time.time() - start) / 60
    if args.experiment == "timeseries":
        rows = report.diff_table(records, args.methods, settings.gate)
        paths = [*report.write_table(rows, args.out), report.plot_diffs(rows, args.out / "table2.png"),
                 report.write_accuracy(records, settings.gate, args.out)]
        print((args.out / "table2.md").read_text())
    else:
        rows = report.vanishing_rows(records, args.methods)
        paths = [*report.write_vanishing(rows, args.out),
                 report.plot_vanishing(rows, records, args.out / "vanishing.png")]
        print((args.out / "vanishing.md").read_text())
    print(f"{len(records)} runs ({minutes:.1f} min this call); wrote " + ", ".join(map(str, paths)))
    return 0


def models_command() -> int:
    from sgt import models

    print(f"{'model':<20}{'parameters':>13}  {'example input':<14}description")
    for info in models.describe():
        shape = "×".join(map(str, info.input_shape)) + (" ids" if info.input_dtype.startswith("int") else "")
        print(f"{info.name:<20}{info.num_params:>13,}  {shape:<14}{info.description}")
    return 0


def _optimizer(name: str, lr: float, schedule: str, total_steps: int):
    import optax

    rate = optax.cosine_decay_schedule(lr, total_steps) if schedule == "cosine" else lr
    return {"adam": optax.adam, "adadelta": optax.adadelta, "sgd": optax.sgd}[name](rate)


def _fit_to_devices(batch_size: int) -> int:
    """The default batch size rounded up to a multiple of the device count (an explicit one is kept)."""
    import jax

    n = jax.device_count()
    return -(-batch_size // n) * n


def _k(value: float) -> int | float:
    return int(value) if value >= 1 and float(value).is_integer() else value


def top_share(saliency: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Per sample, the share of |saliency| held by its top `fraction` of entries (1 = perfectly sparse)."""
    s = np.sort(np.abs(saliency).reshape(len(saliency), -1), axis=1)[:, ::-1]
    top = max(1, int(fraction * s.shape[1]))
    total = s.sum(1)
    return np.divide(s[:, :top].sum(1), total, out=np.zeros_like(total), where=total > 0)


def train_command(args) -> int:
    import jax.numpy as jnp

    from sgt import data, loop, metrics, models, plots, train
    from sgt.saliency import gradient

    dataset = data.load(args.dataset, data_dir_path=args.data_dir, seed=args.seed)  # checks the name
    defaults = DEFAULTS.get(args.dataset, DEFAULTS["middle"])  # every synthetic set: the time-series defaults
    model_name = args.model or defaults["model"]
    epochs = args.epochs or defaults["epochs"]
    batch_size = args.batch_size or _fit_to_devices(defaults["batch_size"])
    optimizer = args.optimizer or defaults["optimizer"]
    lr = args.lr or defaults["lr"]
    schedule = args.schedule or defaults["schedule"]
    out = args.out or Path("runs") / args.dataset
    config = train.SGTConfig(k=_k(args.k), lam=args.lam, rank_by=args.rank_by, fill=args.fill,
                             saliency_pass=args.saliency_pass)
    model = models.get(model_name, num_classes=dataset.num_classes)
    methods = ["standard", "sgt"] if args.method == "both" else [args.method]
    n_train = len(dataset.x_train) - max(1, int(round(args.val_fraction * len(dataset.x_train))))
    total_steps = epochs * (n_train // batch_size)

    n_show = 4
    x_test, y_test = jnp.asarray(dataset.x_test), jnp.asarray(dataset.y_test)
    results, maps = {}, {}
    for method in methods:
        print(f"[{method}] {model_name} on {args.dataset}: {epochs} epochs, batch {batch_size}, "
              f"{optimizer} lr {lr} ({schedule})" + (f", k={config.k} λ={config.lam} rank_by={config.rank_by}"
                                          f" fill={config.fill}" if method == "sgt" else ""), flush=True)
        tic = time.perf_counter()
        fit = loop.fit(model, dataset, method=method, config=config, tx=_optimizer(optimizer, lr, schedule, total_steps),
                       epochs=epochs, batch_size=batch_size, val_fraction=args.val_fraction, seed=args.seed,
                       out_dir=out / method, resume=args.resume, checkpoint_every=args.checkpoint_every,
                       progress=not args.no_progress)
        seconds = time.perf_counter() - tic
        attribute = gradient(fit.classifier(model))
        saliency = np.concatenate([np.asarray(attribute(x_test[i:i + 500], y_test[i:i + 500]))
                                   for i in range(0, len(x_test), 500)])
        row = {"test_accuracy": fit.test["accuracy"], "test_loss": fit.test["loss"],
               "best_epoch": int(fit.best["epoch"]), "val_accuracy": float(fit.best["val_accuracy"]),
               "top10_share": float(top_share(saliency).mean()), "train_seconds": round(seconds, 1)}
        if dataset.truth_test is not None:
            row["mass_in_box"] = float(metrics.mass_inside(saliency, dataset.truth_test).mean())
        results[method] = row
        maps[method] = saliency[:n_show]

    report = {"dataset": args.dataset, "model": model_name, "epochs": epochs, "batch_size": batch_size,
              "optimizer": optimizer, "lr": lr, "schedule": schedule, "seed": args.seed, "sgt_config": vars(config) | {},
              "command": "sgt " + " ".join(sys.argv[1:]), "results": results}
    if dataset.truth_test is not None:
        report["mass_in_box_uniform"] = float(dataset.truth_test.mean())
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    figure = plots.saliency_grid(
        dataset.x_test[:n_show], {f"|grad| {m}": maps[m] for m in methods}, out / "saliency.png",
        truth=None if dataset.truth_test is None else dataset.truth_test[:n_show],
        titles=[f"label {y}" for y in dataset.y_test[:n_show]])
    print()
    print(format_table(report))
    print(f"\nwrote {out / 'results.json'} and {figure}")
    return 0


def format_table(report: dict) -> str:
    """Test accuracy and saliency quality per method; the box mass where ground truth exists, else sparsity."""
    has_truth = "mass_in_box_uniform" in report
    quality = ("saliency mass in true box", "mass_in_box", "{:.3f}") if has_truth else \
        ("saliency share of top 10% pixels", "top10_share", "{:.3f}")
    columns = [("test accuracy", "test_accuracy", "{:.2%}"), quality, ("train seconds", "train_seconds", "{:.1f}")]
    header = f"{'method':<10}" + "".join(f"{name:>{len(name) + 3}}" for name, _, _ in columns)
    lines = [header, "-" * len(header)]
    for method, row in report["results"].items():
        lines.append(f"{method:<10}" + "".join(f"{fmt.format(row[key]):>{len(name) + 3}}" for name, key, fmt in columns))
    if "mass_in_box_uniform" in report:
        lines.append(f"(a saliency map blind to the box puts {report['mass_in_box_uniform']:.3f} of its mass "
                     f"in it; higher is better)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return train_command(args)
        if args.command == "models":
            return models_command()
        if args.command == "reproduce":
            return reproduce_command(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"sgt: error: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
