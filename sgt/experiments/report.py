"""Tables and figures from the cached time-series records (Table 2 analogue, Fig. 6 analogue)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

ARCH_LABELS = {"lstm": "LSTM", "lstm_cell_attention": "LSTM+Input", "tcn": "TCN", "transformer": "Transformer"}

# The published numbers (the paper's Table 2, Trad / Sal per method), with their source in the file.
PAPER = json.loads((Path(__file__).parent / "paper_numbers.json").read_text())
PAPER_METHODS = tuple(PAPER["table2"]["methods"])
PAPER_TABLE2 = {metric: {arch: [tuple(pair) for pair in pairs] for arch, pairs in PAPER["table2"][metric].items()}
                for metric in ("aup", "aur")}


def passes_gate(record: dict, gate: float) -> bool:
    """Both regimes reach `gate` test accuracy (the benchmark evaluates only such models)."""
    return all(r["test_accuracy"] >= gate for r in record["regimes"].values())


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, float)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return float(v.mean()), float(se)


def diff_table(records: list[dict], methods: Sequence[str], gate: float) -> list[dict]:
    """Per (arch, method, regime): Diff = mean over gated datasets of (score − random), for AUP and AUR;
    mean and standard error over seeds (each seed's Diff is its own mean over datasets)."""
    rows = []
    archs = [a for a in ARCH_LABELS if any(r["arch"] == a for r in records)]
    for arch in archs:
        recs = [r for r in records if r["arch"] == arch and passes_gate(r, gate)]
        seeds = sorted({r["seed"] for r in recs})
        for method in methods:
            for regime in ("Trad", "Sal"):
                row = {"arch": arch, "method": method, "regime": regime,
                       "datasets": len({r["dataset"] for r in recs}), "runs": len(recs),
                       "runs_total": sum(r["arch"] == arch for r in records)}
                for metric in ("aup", "aur"):
                    per_seed = []
                    for s in seeds:
                        d = [r["regimes"][regime]["scores"][method][metric]
                             - r["regimes"][regime]["scores"]["Random"][metric] for r in recs if r["seed"] == s]
                        per_seed.append(np.mean(d))
                    row[f"diff_{metric}"], row[f"diff_{metric}_se"] = mean_se(per_seed) if per_seed else (np.nan,) * 2
                    i = PAPER_METHODS.index(method) if method in PAPER_METHODS else None
                    paper = PAPER_TABLE2[metric].get(arch)
                    row[f"paper_{metric}"] = paper[i][regime == "Sal"] if paper and i is not None else np.nan
                rows.append(row)
    return rows


def write_table(rows: list[dict], out: Path, stem: str = "table2") -> tuple[Path, Path]:
    """CSV (one row per arch × method × regime) and Markdown (Trad / Sal side by side, paper beside ours)."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{stem}.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fmt = lambda m, se: "n/a" if np.isnan(m) else f"{m:+.3f} ± {se:.3f}"  # noqa: E731
    lines = []
    for metric in ("aup", "aur"):
        lines += [f"### Diff({metric.upper()}) vs random: ours (mean ± s.e. over seeds) | paper",
                  "", "| Arch | Method | Trad (ours) | Sal (ours) | Sal − Trad (ours) | Trad (paper) | Sal (paper) "
                  "| Sal − Trad (paper) | runs in / total |", "|---|---|---|---|---|---|---|---|---|"]
        by = {(r["arch"], r["method"], r["regime"]): r for r in rows}
        for (arch, method, regime), r in by.items():
            if regime != "Trad":
                continue
            s = by[(arch, method, "Sal")]
            ours = s[f"diff_{metric}"] - r[f"diff_{metric}"]
            paper = s[f"paper_{metric}"] - r[f"paper_{metric}"]
            lines.append(f"| {ARCH_LABELS[arch]} | {method} | {fmt(r[f'diff_{metric}'], r[f'diff_{metric}_se'])} "
                         f"| {fmt(s[f'diff_{metric}'], s[f'diff_{metric}_se'])} | {ours:+.3f} "
                         f"| {r[f'paper_{metric}']:+.3f} | {s[f'paper_{metric}']:+.3f} | {paper:+.3f} "
                         f"| {r['runs']} / {r['runs_total']} |")
        lines.append("")
    md_path = out / f"{stem}.md"
    md_path.write_text("\n".join(lines))
    return csv_path, md_path


def write_accuracy(records: list[dict], gate: float, out: Path) -> Path:
    """Markdown: per (dataset, arch), mean test accuracy of each regime and how many seeds pass the gate."""
    archs = [a for a in ARCH_LABELS if any(r["arch"] == a for r in records)]
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    lines = ["| Dataset | " + " | ".join(f"{ARCH_LABELS[a]} Trad / Sal (in)" for a in archs) + " |",
             "|---|" + "---|" * len(archs)]
    for d in datasets:
        cells = []
        for a in archs:
            recs = [r for r in records if r["dataset"] == d and r["arch"] == a]
            if not recs:
                cells.append("")
                continue
            acc = {g: np.mean([r["regimes"][g]["test_accuracy"] for r in recs]) for g in ("Trad", "Sal")}
            n_in = sum(passes_gate(r, gate) for r in recs)
            cells.append(f"{acc['Trad']:.2f} / {acc['Sal']:.2f} ({n_in}/{len(recs)})")
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    path = out / "accuracy.md"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Mean test accuracy over seeds; (in) = seeds where both regimes reach {gate:.0%} and enter "
                    "Table 2.\n\n" + "\n".join(lines) + "\n")
    return path


def plot_diffs(rows: list[dict], path: Path) -> Path:
    """Grouped bars: Diff(AUP) and Diff(AUR) per architecture and method, Trad vs Sal (×: the paper's)."""
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by = {(r["arch"], r["method"], r["regime"]): r for r in rows}
    fig, axes = plt.subplots(2, len(archs), figsize=(3.6 * len(archs), 6), squeeze=False, sharey="row")
    for row, metric in enumerate(("aup", "aur")):
        for col, arch in enumerate(archs):
            ax = axes[row, col]
            xs = np.arange(len(methods))
            for j, (regime, color) in enumerate((("Trad", "tab:gray"), ("Sal", "tab:green"))):
                vals = [by[(arch, m, regime)][f"diff_{metric}"] for m in methods]
                errs = [by[(arch, m, regime)][f"diff_{metric}_se"] for m in methods]
                ax.bar(xs + (j - 0.5) * 0.38, vals, 0.38, yerr=errs, color=color, label=regime)
                paper = [by[(arch, m, regime)][f"paper_{metric}"] for m in methods]
                ax.scatter(xs + (j - 0.5) * 0.38, paper, marker="x", color="k", s=18, zorder=3,
                           label="paper" if j else None)
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xticks(xs, methods, rotation=45, ha="right", fontsize=8)
            ax.set_title(f"{ARCH_LABELS[arch]}", fontsize=10)
            if col == 0:
                ax.set_ylabel(f"Diff({metric.upper()}) vs random")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def vanishing_rows(records: list[dict], methods: Sequence[str]) -> list[dict]:
    """Per (arch, dataset, method, regime): raw AUP/AUR, Diff vs random, WJac, Euc, test accuracy; mean over seeds."""
    rows = []
    keys = sorted({(r["arch"], r["dataset"]) for r in records}, key=lambda k: (k[0], _box_order(k[1])))
    for arch, dataset in keys:
        recs = [r for r in records if r["arch"] == arch and r["dataset"] == dataset]
        for method in methods:
            for regime in ("Trad", "Sal"):
                sc = [r["regimes"][regime]["scores"] for r in recs]
                row = {"arch": arch, "dataset": dataset, "method": method, "regime": regime, "seeds": len(recs),
                       "test_accuracy": float(np.mean([r["regimes"][regime]["test_accuracy"] for r in recs]))}
                for metric in ("aup", "aur"):
                    row[metric], row[f"{metric}_se"] = mean_se([s[method][metric] for s in sc])
                    row[f"diff_{metric}"], _ = mean_se([s[method][metric] - s["Random"][metric] for s in sc])
                row["wjac"], _ = mean_se([s[method]["wjac"] for s in sc])
                row["euc"], _ = mean_se([s[method]["euc"] for s in sc])
                rows.append(row)
    return rows


def _box_order(name: str) -> int:
    order = ("TopBox", "MiddleBox", "BottomBox")
    return order.index(name) if name in order else len(order)


def plot_vanishing(rows: list[dict], records: list[dict], path: Path, method: str = "Grad") -> Path:
    """Fig. 6 analogue: AUP and AUR of `method` vs the box position (early / middle / late), Trad vs Sal,
    one column per architecture, plus the mean saliency per time step."""
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    fig, axes = plt.subplots(3, len(archs), figsize=(4.2 * len(archs), 9), squeeze=False)
    for col, arch in enumerate(archs):
        for row, metric in enumerate(("aup", "aur")):
            ax = axes[row, col]
            for regime, color in (("Trad", "tab:gray"), ("Sal", "tab:green")):
                sel = [r for r in rows if r["arch"] == arch and r["method"] == method and r["regime"] == regime]
                sel.sort(key=lambda r: _box_order(r["dataset"]))
                ax.errorbar([r["dataset"] for r in sel], [r[metric] for r in sel],
                            yerr=[r[f"{metric}_se"] for r in sel],
                            marker="o", color=color, label=regime, capsize=3)
            ax.set_ylabel(f"{metric.upper()} ({method})")
            ax.set_title(ARCH_LABELS.get(arch, arch), fontsize=10)
            ax.set_ylim(bottom=0)
            if row == 0 and col == 0:
                ax.legend(fontsize=8)
        ax = axes[2, col]
        for dataset, style in (("TopBox", ":"), ("MiddleBox", "--"), ("BottomBox", "-")):
            for regime, color in (("Trad", "tab:gray"), ("Sal", "tab:green")):
                prof = [r["regimes"][regime]["grad_time_profile"] for r in records
                        if r["arch"] == arch and r["dataset"] == dataset]
                if prof:
                    ax.plot(np.mean(prof, 0), style, color=color, label=f"{dataset} {regime}")
        ax.set_xlabel("time step")
        ax.set_ylabel("mean rescaled |grad|")
        if col == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_vanishing(rows: list[dict], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "vanishing.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| Arch | Box | Method | Regime | test acc | AUP | AUR | Diff AUP | Diff AUR | WJac | Euc |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {ARCH_LABELS.get(r['arch'], r['arch'])} | {r['dataset']} | {r['method']} | {r['regime']} "
                     f"| {r['test_accuracy']:.3f} | {r['aup']:.3f} ± {r['aup_se']:.3f} | {r['aur']:.3f} ± "
                     f"{r['aur_se']:.3f} | {r['diff_aup']:+.3f} | {r['diff_aur']:+.3f} | {r['wjac']:.3f} "
                     f"| {r['euc']:.3f} |")
    md_path = out / "vanishing.md"
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def sal_minus_trad(rows: list[dict], method: str, metric: str, source: str = "diff") -> float:
    """Sal − Trad of `method`'s Diff(`metric`) in diff_table `rows` of one architecture: ours
    (`source="diff"`) or the paper's (`source="paper"`); nan where a regime is missing."""
    by = {r["regime"]: r[f"{source}_{metric}"] for r in rows if r["method"] == method}
    return by.get("Sal", np.nan) - by.get("Trad", np.nan)


def sign_agreement(rows: list[dict], methods: Sequence[str]) -> tuple[int, int]:
    """(agreeing, compared): over methods × {AUP, AUR} of diff_table `rows` (one architecture), how many
    cells where both ours and the paper's Sal − Trad are known have the same sign (np.sign)."""
    pairs = [(sal_minus_trad(rows, m, metric), sal_minus_trad(rows, m, metric, "paper"))
             for m in methods for metric in ("aup", "aur")]
    known = [(ours, paper) for ours, paper in pairs if np.isfinite(ours) and np.isfinite(paper)]
    return sum(np.sign(ours) == np.sign(paper) for ours, paper in known), len(known)


def plot_ablation_profiles(variants: Sequence[tuple[str, dict, list[dict]]], gate: float, path: Path) -> Path:
    """The gradient's mean rescaled saliency per time step (`grad_time_profile`) of the ordinary and
    the saliency-guided models, from (name, {option: value}, records) per variant of one
    architecture: one row per dataset, one column per λ; in each panel the ordinary model (black,
    the first variant's record) and every variant's SGT model with that λ, dotted where its test
    accuracy is below `gate`."""
    lams = sorted({options["λ"] for _, options, _ in variants})
    datasets = list(dict.fromkeys(r["dataset"] for _, _, recs in variants for r in recs))
    fig, axes = plt.subplots(len(datasets), len(lams), figsize=(4.2 * len(lams), 3.2 * len(datasets)),
                             squeeze=False, sharex=True)
    label = lambda options: ", ".join(f"{k} {v}" for k, v in options.items() if k != "λ")  # noqa: E731
    colors = {name: plt.cm.tab10(i % 10) for i, name in enumerate(dict.fromkeys(label(o) for _, o, _ in variants))}
    for row, dataset in enumerate(datasets):
        for col, lam in enumerate(lams):
            ax = axes[row, col]
            trad = next((r for _, _, recs in variants for r in recs if r["dataset"] == dataset), None)
            if trad is not None:
                ax.plot(trad["regimes"]["Trad"]["grad_time_profile"], color="black", lw=2, label="ordinary")
            for _, options, recs in variants:
                if options["λ"] != lam:
                    continue
                for r in recs:
                    if r["dataset"] == dataset:
                        sal = r["regimes"]["Sal"]
                        ax.plot(sal["grad_time_profile"], color=colors[label(options)], lw=1, label=label(options),
                                linestyle="-" if sal["test_accuracy"] >= gate else ":")
            ax.set_title(f"{dataset}, λ = {lam:g}", fontsize=9)
            if col == 0:
                ax.set_ylabel("mean rescaled |grad|")
            if row == len(datasets) - 1:
                ax.set_xlabel("time step")
    axes[0, -1].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_ablation(variants: Sequence[tuple[str, str, str, list[dict]]], methods: Sequence[str], gate: float,
                   out: Path, stem: str = "ablation") -> tuple[Path, Path]:
    """The ablation table from (name, what it changes, architecture, records) per variant.

    Per variant: `diff_table` of its records (Diff(AUP), Diff(AUR) of Trad and Sal per method, gated
    as Table 2) and the sign agreement of Sal − Trad with the paper's for that architecture
    (`sign_agreement`). Writes a CSV (the diff_table rows with a `variant` column) and Markdown: a
    summary (runs in the table, mean Diff over methods, agreement), then per metric one row per
    variant with Trad / Sal per method, the paper's rows first.
    """
    out.mkdir(parents=True, exist_ok=True)
    tables = [(name, changes, arch, diff_table([r for r in recs if r["arch"] == arch], methods, gate))
              for name, changes, arch, recs in variants]
    csv_rows = [{"variant": name, **row} for name, _, _, rows in tables for row in rows]
    csv_path = out / f"{stem}.csv"
    with csv_path.open("w", newline="") as fh:
        fields = ["variant", *(list(csv_rows[0])[1:] if csv_rows else [])]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(csv_rows)
    num = lambda v: "n/a" if not np.isfinite(v) else f"{v:+.3f}"  # noqa: E731
    mean = lambda rows, regime, metric: float(np.mean([r[f"diff_{metric}"] for r in rows  # noqa: E731
                                                       if r["regime"] == regime])) if rows else np.nan
    lines = [f"Each variant: one seed; Diff = method − random, mean over the datasets where both regimes reach "
             f"{gate:.0%} test accuracy; agreement = cells (method × AUP/AUR) whose Sal − Trad has the paper's "
             "sign.", "",
             "| Variant | changes | model | runs in / total | Diff(AUP) Trad / Sal (mean over methods) "
             "| Diff(AUR) Trad / Sal | Sal − Trad sign as the paper |", "|---|---|---|---|---|---|---|"]
    for name, changes, arch, rows in tables:
        runs = f"{rows[0]['runs']} / {rows[0]['runs_total']}" if rows else "0 / 0"
        agree, known = sign_agreement(rows, methods)
        lines.append(f"| {name} | {changes} | {ARCH_LABELS.get(arch, arch)} | {runs} "
                     f"| {num(mean(rows, 'Trad', 'aup'))} / {num(mean(rows, 'Sal', 'aup'))} "
                     f"| {num(mean(rows, 'Trad', 'aur'))} / {num(mean(rows, 'Sal', 'aur'))} "
                     f"| {agree} / {known} |")
    for metric in ("aup", "aur"):
        lines += ["", f"### Diff({metric.upper()}) vs random, Trad / Sal (Sal − Trad)", "",
                  "| Variant | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for arch in dict.fromkeys(arch for _, _, arch, _ in tables):  # the paper's rows
            paper = PAPER_TABLE2[metric].get(arch)
            cells = []
            for m in methods:
                if paper is None or m not in PAPER_METHODS:
                    cells.append("n/a")
                    continue
                trad, sal = paper[PAPER_METHODS.index(m)]
                cells.append(f"{num(trad)} / {num(sal)} ({num(sal - trad)})")
            lines.append(f"| paper, {ARCH_LABELS.get(arch, arch)} | " + " | ".join(cells) + " |")
        for name, _, _, rows in tables:
            by = {(r["method"], r["regime"]): r[f"diff_{metric}"] for r in rows}
            cells = [f"{num(by.get((m, 'Trad'), np.nan))} / {num(by.get((m, 'Sal'), np.nan))} "
                     f"({num(sal_minus_trad(rows, m, metric))})" for m in methods]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    md_path = out / f"{stem}.md"
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path
