"""Mixed precision against float32: final accuracy of `sgt train --dtype bfloat16` over seeds.

    python benchmarks/mixed_precision.py                          # the Middle set, seeds 0 1 2
    python benchmarks/mixed_precision.py --datasets middle mnist --data-dir /path/to/data

For each dataset, dtype (float32, bfloat16) and seed it runs `sgt train --dataset D --dtype T
--seed S` in its own process (ordinary and saliency guided training, the dataset's defaults) into
`--work/<dataset>/<dtype>_seed<S>/`; a run whose results.json exists is not run again, so a stopped
benchmark resumes. The report compares, per dataset and training method, the mean test accuracy
(and test loss, and the gradient's mass in the true box where the set has one) of the two dtypes:
bfloat16 passes when |mean_bf16 − mean_fp32| ≤ 2·√(se_bf16² + se_fp32²), the standard errors over
seeds. Two runs that both reach 100 % pass with a difference of 0. bfloat16 means bf16 activations
and products with float32 parameters, loss and saliency ranking (`sgt train --dtype`); on a CPU
it is emulated, so its times say nothing about a GPU's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from sgt.experiments.report import mean_se  # noqa: E402

HERE = Path(__file__).resolve().parent
DTYPES = ("float32", "bfloat16")
METRICS = ("test_accuracy", "test_loss", "mass_in_box")


def run_one(dataset: str, dtype: str, seed: int, work: Path, data_dir: str | None) -> dict:
    """results.json of `sgt train` for (dataset, dtype, seed), running it unless it exists, with the
    run's wall time (`wall_seconds`, kept next to it in wall_seconds.txt when it ran)."""
    out = work / dataset / f"{dtype}_seed{seed}"
    results, wall = out / "results.json", out / "wall_seconds.txt"
    if not results.exists():
        command = [sys.executable, "-m", "sgt.cli", "train", "--dataset", dataset, "--dtype", dtype,
                   "--seed", str(seed), "--out", str(out), "--no-progress"]
        if data_dir:
            command += ["--data-dir", data_dir]
        tic = time.time()
        subprocess.run(command, check=True)
        wall.write_text(f"{time.time() - tic:.0f}\n")
        print(f"{dataset} {dtype} seed {seed}: {wall.read_text().strip()} s", flush=True)
    return {**json.loads(results.read_text()), "wall_seconds": float(wall.read_text()) if wall.exists() else None}


def compare(runs: dict[str, list[dict]]) -> list[dict]:
    """Per training method and metric: each dtype's mean ± se over seeds and whether they agree."""
    rows = []
    methods = list(runs["float32"][0]["results"])
    for method in methods:
        for metric in METRICS:
            values = {d: [r["results"][method].get(metric) for r in runs[d]] for d in DTYPES}
            if any(v is None for vs in values.values() for v in vs):
                continue
            (m32, s32), (m16, s16) = mean_se(values["float32"]), mean_se(values["bfloat16"])
            bound = 2 * float(np.hypot(s32, s16))
            rows.append({"method": method, "metric": metric, "per_seed": values, "float32": m32, "float32_se": s32, "bfloat16": m16,
                         "bfloat16_se": s16, "difference": m16 - m32, "two_se": bound,
                         "within_two_se": bool(abs(m16 - m32) <= bound) if np.isfinite(bound) else None,
                         "seconds_float32": float(np.mean([r["results"][method]["train_seconds"]
                                                           for r in runs["float32"]])),
                         "seconds_bfloat16": float(np.mean([r["results"][method]["train_seconds"]
                                                            for r in runs["bfloat16"]]))})
    return rows


def markdown(report: dict[str, Any]) -> str:
    lines = [
        *_report.intro_lines("Mixed precision (bfloat16 compute) against float32", report),
        f"- Each run: `sgt train --dataset D --dtype T --seed S` with the dataset's defaults; seeds "
        f"{', '.join(map(str, report['seeds']))}; " + (
            f"the runs took {report['run_minutes']:.1f} min in all (wall time, one process each)"
            if report["run_minutes"] is not None else "wall time not recorded for every run"),
        "- Pass: |bf16 − fp32| ≤ 2·√(se_fp32² + se_bf16²), standard errors over seeds",
        "",
    ]
    for dataset, rows in report["datasets"].items():
        lines += [f"## {dataset}", "",
                  "| method | metric | float32 | bfloat16 | bf16 − fp32 | 2 s.e. | within | per seed fp32 / bf16 "
                  "| train s fp32 / bf16 |",
                  "|---|---|---:|---:|---:|---:|---|---|---:|"]
        for r in rows:
            within = {True: "yes", False: "**no**", None: "n/a"}[r["within_two_se"]]
            lines.append(f"| {r['method']} | {r['metric']} | {r['float32']:.4f} ± {r['float32_se']:.4f} "
                         f"| {r['bfloat16']:.4f} ± {r['bfloat16_se']:.4f} | {r['difference']:+.4f} "
                         f"| {r['two_se']:.4f} | {within} | "
                         + " / ".join(", ".join(f"{v:.3f}" for v in r["per_seed"][d]) for d in DTYPES)
                         + f" | {r['seconds_float32']:.0f} / {r['seconds_bfloat16']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["middle"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--data-dir", help="for real datasets (default: $SGT_DATA_DIR)")
    p.add_argument("--work", type=Path, default=Path("runs/mixed_precision"), help="the runs' folders (resumable)")
    p.add_argument("--tag", help="results file suffix (default: the machine's, e.g. cpu-2core)")
    p.add_argument("--quick", action="store_true", help="seeds 0 and 1 only")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = args.seeds[:2]
    if len(args.seeds) < 2:
        p.error("--seeds: at least two seeds, for a standard error")
    report: dict[str, Any] = {**_report.header(args, argv), "seeds": args.seeds, "datasets": {}}
    walls = []
    for dataset in args.datasets:
        runs: dict[str, list[dict]] = {d: [] for d in DTYPES}
        for seed in args.seeds:  # seed-major, so that a stopped benchmark leaves complete pairs
            for dtype in DTYPES:
                runs[dtype].append(run_one(dataset, dtype, seed, args.work, args.data_dir))
        report["datasets"][dataset] = compare(runs)
        walls += [r["wall_seconds"] for rs in runs.values() for r in rs]
    # a run made before wall times were kept has none: then the total is unknown, not too small
    report["run_minutes"] = None if None in walls else sum(walls) / 60
    _report.write_report(report, args.out_dir / f"mixed_precision_{report['tag']}-{'-'.join(args.datasets)}", markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
