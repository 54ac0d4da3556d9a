"""The Fig. 3 gap and the Gini index against training epochs, seed 0: one Markdown table from the
recorded runs' CSV files (`python results/mnist/epoch_sweep.py`)."""

import csv
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = {2: HERE / "seed0_2epochs", 5: HERE / "seed0_5epochs", 10: HERE / "seed0_10epochs"}
METHODS = ("Grad", "SmoothGrad", "IG", "DeepLIFT", "GradSHAP", "DeepSHAP")


def rows(path: Path) -> dict:
    with path.open() as f:
        return {r["method"]: r for r in csv.DictReader(f)}


def accuracies(folder: Path) -> tuple[str, str]:
    text = (folder / "mnist.md").read_text()
    found = dict(re.findall(r"^\| (ordinary|sgt) \| ([\d.]+) %", text, re.M))
    return found.get("ordinary", ""), found.get("sgt", "")


def main() -> str:
    present = {e: f for e, f in RUNS.items() if (f / "fig3_areas.csv").exists()}
    head = "| | " + " | ".join(f"{e} epochs" for e in present) + " |"
    lines = ["Removal-curve area, SGT − ordinary (negative: SGT's ranking finds what the model uses)", "",
             head, "|---|" + "---:|" * len(present)]
    areas = {e: rows(f / "fig3_areas.csv") for e, f in present.items()}
    sparsity = {e: rows(f / "sparsity.csv") for e, f in present.items()}
    for m in METHODS:
        lines.append(f"| {m} | " + " | ".join(f"{float(areas[e][m]['diff']):+.3f}" for e in present) + " |")
    lines += ["", "Gini index of the maps, ordinary → SGT (higher: sparser)", "", head,
              "|---|" + "---:|" * len(present)]
    for m in METHODS:
        cells = [f"{float(sparsity[e][m]['ordinary_gini']):.3f} → {float(sparsity[e][m]['sgt_gini']):.3f}"
                 for e in present]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", head, "|---|" + "---:|" * len(present)]
    acc = {e: accuracies(f) for e, f in present.items()}
    lines.append("| test accuracy ordinary / SGT (%) | " + " | ".join(f"{a} / {b}" for a, b in acc.values()) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
