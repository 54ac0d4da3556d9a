"""Summarise the k/λ search: per config, mean over gated (dataset, model) of Sal − Trad Diff, Grad and IG."""
import glob, json, sys
from collections import defaultdict
rows = defaultdict(list)
for f in sorted(glob.glob(sys.argv[1] + "/cache/*/*.json")):
    r = json.load(open(f)); tag = f.split("/")[-2]
    if min(v["test_accuracy"] for v in r["regimes"].values()) < 0.9:
        rows[tag].append((r["arch"], r["dataset"], None)); continue
    d = lambda reg, m, k: r["regimes"][reg]["scores"][m][k] - r["regimes"][reg]["scores"]["Random"][k]
    gain = {f"{m} {k}": d("Sal", m, k) - d("Trad", m, k) for m in ("Grad", "IG") for k in ("aup", "aur")}
    rows[tag].append((r["arch"], r["dataset"], gain))
for tag, rs in rows.items():
    ok = [g for *_, g in rs if g]
    mean = {k: sum(g[k] for g in ok) / len(ok) for k in ok[0]} if ok else {}
    print(tag, f"gated in {len(ok)}/{len(rs)}", {k: round(v, 3) for k, v in mean.items()},
          "mean", round(sum(mean.values()) / max(1, len(mean)), 3))
