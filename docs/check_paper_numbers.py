"""Check that sgt/experiments/paper_numbers.json loads and that its Table 2 is the one the reports use.

Run from the repository root: `python docs/check_paper_numbers.py` (exit status 0 when consistent).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sgt.experiments import report

PATH = Path(__file__).resolve().parents[1] / "sgt" / "experiments" / "paper_numbers.json"


def main() -> int:
    numbers = json.loads(PATH.read_text())
    table2 = numbers["table2"]
    problems = []
    if tuple(table2["methods"]) != tuple(report.PAPER_METHODS):
        problems.append(f"methods {table2['methods']} != report.PAPER_METHODS {list(report.PAPER_METHODS)}")
    for metric in ("aup", "aur"):
        ours = {arch: [list(pair) for pair in pairs] for arch, pairs in report.PAPER_TABLE2[metric].items()}
        if table2[metric] != ours:
            problems.append(f"table2[{metric!r}] differs from report.PAPER_TABLE2[{metric!r}]")
        for arch, pairs in table2[metric].items():
            if len(pairs) != len(table2["methods"]) or any(len(p) != 2 for p in pairs):
                problems.append(f"table2[{metric!r}][{arch!r}]: expected one [trad, sal] pair per method")
    for problem in problems:
        print("MISMATCH:", problem)
    if not problems:
        print(f"ok: {PATH.name} loads; table2 equals sgt.experiments.report.PAPER_TABLE2")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
