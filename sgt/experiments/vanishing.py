"""Fig. 6: the vanishing-saliency comparison. The informative box sits early, in the middle or late
(TopBox / MiddleBox / BottomBox, 100 × 100); an ordinarily trained LSTM's saliency favours late
time steps, and the paper reports that saliency guided training removes that bias.

The records are made by the time-series runner (`sgt.experiments.timeseries.run`) on these three
sets; the attention LSTM gets r = 20 hops there (`timeseries.build_model`).
"""

from __future__ import annotations

import time

from sgt.data import timeseries as tsdata
from sgt.experiments import timeseries

MODELS = ("lstm", "lstm_cell_attention")
SALIENCY_BATCH = 10  # 300 test samples of 100 × 100 do not fit in memory at once


def add_arguments(parser) -> None:
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=timeseries.ARCHS)
    timeseries.add_common_arguments(parser, out="runs/vanishing", saliency_batch=SALIENCY_BATCH)


def reproduce(args) -> str:
    """Run (or read) the records of the three boxes and write vanishing.{csv,md,png}; returns the text."""
    from sgt.experiments import report

    start = time.time()
    records = timeseries.run(list(tsdata.VANISHING), args.models, args.seeds, settings=timeseries.settings_from(args),
                             methods=args.methods, out=args.out, progress=not args.no_progress,
                             train_missing=not args.report_only)
    rows = report.vanishing_rows(records, args.methods)
    paths = [*report.write_vanishing(rows, args.out), report.plot_vanishing(rows, records, args.out / "vanishing.png")]
    return ((args.out / "vanishing.md").read_text() + f"\n{len(records)} runs ({(time.time() - start) / 60:.1f} min "
            f"this call); wrote " + ", ".join(map(str, paths)))
