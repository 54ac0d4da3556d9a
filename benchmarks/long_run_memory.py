"""Memory over a long run: many time-series records made one after the other in one process.

    python benchmarks/long_run_memory.py                      # 100 TCN records, all six methods
    python benchmarks/long_run_memory.py --arch transformer --records 24 --epochs 1
    python benchmarks/long_run_memory.py --quick              # 5 records

Each record is what `sgt reproduce timeseries` makes for one (dataset, arch, seed): both regimes
trained for `--epochs` epochs, the test set attributed by every method and scored. The records cycle
over the benchmark's 70 datasets (then the next seed), in a fresh cache folder, in this one process.
After each record the report notes the resident memory (VmRSS), its peak so far (VmHWM), and the
numbers of compiled programs and of device arrays alive in the backend. Memory is flat when,
after the first records have compiled what the run needs, none of these grows: the summary gives
the least-squares growth of VmRSS per record over the records after the tenth.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.extend
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from sgt.data import timeseries as tsdata  # noqa: E402
from sgt.experiments import timeseries  # noqa: E402

HERE = Path(__file__).resolve().parent
QUICK_RECORDS = 5


def memory_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB, from /proc/self/status."""
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def records_plan(n: int) -> list[tuple[str, int]]:
    """(dataset, seed) of the first n records: the 70 datasets in order, seed 0, then seed 1, …"""
    names = list(tsdata.NAMES)
    return [(names[i % len(names)], i // len(names)) for i in range(n)]


def growth_per_record(rss: list[float], skip: int) -> float | None:
    """Least-squares slope of RSS (MB) against the record index, over the records after `skip`."""
    tail = rss[skip:]
    if len(tail) < 2:
        return None
    return float(np.polyfit(np.arange(len(tail)), tail, 1)[0])


def bench(args) -> dict[str, Any]:
    backend = jax.extend.backend.get_backend()
    settings = timeseries.Settings(epochs=args.epochs, patience=args.epochs, group=1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="long_run_") as out:
        for i, (dataset, seed) in enumerate(records_plan(args.records), 1):
            tic = time.perf_counter()
            timeseries.run([dataset], [args.arch], [seed], settings=settings, methods=args.methods, out=Path(out),
                           progress=False)
            gc.collect()
            rss, hwm = memory_mb()
            rows.append({"record": i, "dataset": dataset, "seed": seed, "seconds": round(time.perf_counter() - tic, 1),
                         "rss_mb": round(rss, 1), "peak_rss_mb": round(hwm, 1),
                         "executables": len(backend.live_executables()), "arrays": len(backend.live_arrays())})
            print(" ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    rss = [r["rss_mb"] for r in rows]
    skip = min(10, max(len(rows) - 2, 0))
    return {"rows": rows, "skip": skip, "growth_mb_per_record": growth_per_record(rss, skip),
            "executables_after_first": sorted({r["executables"] for r in rows[1:]}),
            "max_arrays": max(r["arrays"] for r in rows)}


def markdown(report: dict[str, Any]) -> str:
    r, s = report["result"], report["settings"]
    rows = r["rows"]
    growth = r["growth_mb_per_record"]
    lines = [
        *_report.intro_lines("Memory over a long run", report),
        f"- Records: {len(rows)} × `{s['arch']}` ({s['epochs']} epoch(s) per regime, methods "
        f"{', '.join(s['methods'])}), one after the other in one process; "
        f"{sum(x['seconds'] for x in rows) / 60:.1f} min in all",
        f"- Load average (1, 5, 15 min) before / after: {report['loadavg_before']} / {report['loadavg_after']}",
        "",
        "| after record | VmRSS MB | peak VmRSS MB | compiled programs alive | device arrays alive |",
        "|---:|---:|---:|---:|---:|",
    ]
    shown = sorted({1, 2, 5, 10, 25, 50, 75, len(rows)} & set(range(1, len(rows) + 1)))
    for i in shown:
        x = rows[i - 1]
        lines.append(f"| {i} | {x['rss_mb']:.0f} | {x['peak_rss_mb']:.0f} | {x['executables']} | {x['arrays']} |")
    lines += [
        "",
        f"VmRSS growth after record {r['skip']}: "
        + ("n/a (too few records)" if growth is None else f"**{growth:+.2f} MB per record** (least squares)")
        + f"; compiled programs alive after the first record: {r['executables_after_first']}; "
          f"most device arrays alive after a record: {r['max_arrays']}.",
        "",
        "Every record's numbers are in the JSON file next to this one.",
    ]
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="tcn", choices=timeseries.ARCHS)
    p.add_argument("--records", type=int, default=100)
    p.add_argument("--epochs", type=int, default=2, help="most epochs per regime and record")
    p.add_argument("--methods", nargs="+", default=list(timeseries.METHODS))
    p.add_argument("--quick", action="store_true", help=f"{QUICK_RECORDS} records")
    p.add_argument("--tag", help="results file suffix (default: the machine's, e.g. cpu-2core)")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.records = min(args.records, QUICK_RECORDS)
    if args.records < 1 or args.epochs < 1:
        p.error("--records and --epochs must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {
        **_report.header(args, argv),
        "settings": {"arch": args.arch, "records": args.records, "epochs": args.epochs, "methods": args.methods},
        "loadavg_before": _report.loadavg(),
    }
    report["result"] = bench(args)
    report["loadavg_after"] = _report.loadavg()
    _report.write_report(report, args.out_dir / f"long_run_memory_{report['tag']}-{args.arch}", markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
