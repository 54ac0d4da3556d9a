"""Command line (thin: it parses, calls the library and prints).

`sgt train` runs `sgt.experiments.compare`; `sgt reproduce NAME` runs `sgt.experiments.REGISTRY[NAME]`;
`sgt models` lists `sgt.models.REGISTRY`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sgt import _args, masking, train

TRAIN_DEFAULTS = train.SGTConfig()


def build_parser() -> argparse.ArgumentParser:
    from sgt import data, experiments
    from sgt.experiments import comparison

    parser = argparse.ArgumentParser(prog="sgt", description="Saliency Guided Training in JAX.")
    commands = parser.add_subparsers(dest="command", required=True)
    tr = commands.add_parser(
        "train", help="train ordinary and saliency-guided models and compare their saliency",
        description="With no arguments: the embedded synthetic 'shapes' image set (no download: a shape "
                    "on a cluttered background, with its pixel mask), a small CNN trained ordinarily and with "
                    "saliency guided training, each gradient map scored by its share inside the object. Unset "
                    "training options come from the dataset's defaults (sgt.data.REGISTRY).")
    tr.add_argument("--dataset", default="shapes",
                    help=f"one of the {len(data.REGISTRY)} registered datasets: shapes (embedded images, default), "
                         "middle (embedded time series), mnist, a benchmark set <Type>_<Gen> (e.g. RareTime_CAR) "
                         "or TopBox/MiddleBox/BottomBox")
    tr.add_argument("--model", help="model name (default: the dataset's, e.g. small_cnn for shapes, lstm for middle)")
    tr.add_argument("--method", default="both", choices=[*comparison.METHODS, "both"])
    tr.add_argument("--epochs", type=_args.positive_int, help="epochs (default: the dataset's)")
    tr.add_argument("--batch-size", type=_args.positive_int,
                    help="global batch, a multiple of the device count (default: the dataset's)")
    tr.add_argument("--optimizer", choices=list(comparison.OPTIMIZERS), help="default: the dataset's")
    tr.add_argument("--lr", type=_args.positive_float, help="(peak) learning rate (default: the dataset's)")
    tr.add_argument("--schedule", choices=list(comparison.SCHEDULES),
                    help="learning-rate schedule; cosine decays to 0 over the run (default: the dataset's)")
    tr.add_argument("--k", type=_args.k_value,
                    help=f"fraction (0, 1) or count (>= 1) of units masked (default: the dataset's, "
                         f"usually {TRAIN_DEFAULTS.k})")
    tr.add_argument("--lam", type=_args.nonnegative_float,
                    help=f"weight λ of the KL term (default: the dataset's, usually {TRAIN_DEFAULTS.lam})")
    tr.add_argument("--rank-by", default=TRAIN_DEFAULTS.rank_by, choices=masking.RANKINGS)
    tr.add_argument("--fill", default=TRAIN_DEFAULTS.fill, choices=masking.FILLS)
    tr.add_argument("--saliency-pass", default=TRAIN_DEFAULTS.saliency_pass, choices=train.SALIENCY_PASSES)
    tr.add_argument("--dtype", default="float32", choices=list(comparison.DTYPES),
                    help="compute dtype of activations and matrix products (parameters, loss and the saliency "
                         "ranking stay float32); bfloat16 is fast on GPU/TPU, emulated and slow on CPU")
    tr.add_argument("--val-fraction", type=_args.open_fraction, default=0.1,
                    help="share of train held out for model selection")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", type=Path, help="output folder (default: runs/<dataset>)")
    tr.add_argument("--data-dir", type=Path, help="folder of real datasets (default: $SGT_DATA_DIR, else ./data)")
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    tr.add_argument("--checkpoint-every", type=_args.positive_int,
                    help="also checkpoint every N steps (default: each epoch)")
    tr.add_argument("--no-progress", action="store_true", help="hide progress bars")
    commands.add_parser("models", help="list the models with their parameter counts")
    rep = commands.add_parser("reproduce", help="reproduce an experiment of the paper")
    which = rep.add_subparsers(dest="experiment", required=True)
    for name, experiment in experiments.REGISTRY.items():
        experiment.add_arguments(which.add_parser(name, help=experiment.description,
                                                  description=experiment.help or experiment.description))
    return parser


def train_command(args) -> int:
    import jax

    from sgt import experiments
    from sgt._checks import batch_message

    if args.batch_size is not None and args.batch_size % jax.device_count():
        raise ValueError(batch_message(args.batch_size, jax.device_count()))
    from sgt import data

    defaults = data.get(args.dataset).defaults
    config = train.SGTConfig(k=defaults.k if args.k is None else args.k,
                             lam=defaults.lam if args.lam is None else args.lam, rank_by=args.rank_by, fill=args.fill,
                             saliency_pass=args.saliency_pass)
    out = args.out or Path("runs") / args.dataset
    report = experiments.compare(
        args.dataset, methods=list(experiments.compare_methods(args.method)), model=args.model, config=config,
        epochs=args.epochs, batch_size=args.batch_size, optimizer_name=args.optimizer, lr=args.lr,
        schedule=args.schedule, dtype=args.dtype, val_fraction=args.val_fraction, seed=args.seed, data_dir=args.data_dir, out=out,
        resume=args.resume, checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
        command="sgt " + " ".join(sys.argv[1:]))
    print()
    print(experiments.format_table(report))
    print(f"\nwrote {out / 'results.json'} and {out / 'saliency.png'}")
    return 0


def models_command() -> int:
    from sgt import models

    print(f"{'model':<20}{'parameters':>13}  {'example input':<14}description")
    for info in models.describe():
        shape = "×".join(map(str, info.input_shape)) + (" ids" if info.input_dtype.startswith("int") else "")
        print(f"{info.name:<20}{info.num_params:>13,}  {shape:<14}{info.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return train_command(args)
        if args.command == "models":
            return models_command()
        from sgt import experiments

        print(experiments.REGISTRY[args.experiment].reproduce(args))
        return 0
    except (ValueError, FileNotFoundError) as err:
        print(f"sgt: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
