"""Removal-curve speed: `sgt.metrics.removal_curve` against Quantus's `PixelFlipping`, on trained MNIST
weights, the MNIST test set and the same attributions, in one process.

Run from the repository root (needs torch and quantus: `pip install -e '.[bench]'`; MNIST as for
`sgt reproduce mnist`, e.g. `SGT_DATA_DIR=...`):

    python benchmarks/removal_speed.py                 # the full test set (10,000 images)
    python benchmarks/removal_speed.py --quick         # 500 images, tag '-quick'
    python benchmarks/removal_speed.py --n-test 2000   # the first 2,000 test images

The computation, the same on both sides
---------------------------------------
Quantus's PixelFlipping (Bach et al. 2015; Quantus docs, "Faithfulness" metrics) sorts each sample's
flattened attributions in descending order, then replaces `features_in_step` more of the top features
by a baseline at every step, cumulatively, and after each step records the model's output for the
sample's label. With U = 784 pixels and step k (Quantus requires k to divide U) that is the top
k, 2k, …, U pixels: U / k evaluations, no evaluation of the intact image. Ours is the paper's removal
curve (`sgt.metrics.removal_curve`, Fig. 3): the top max(1, ⌊p·U⌋) pixels replaced for every fraction
p, accuracy returned. With p = k/U, 2k/U, …, 1 the removed sets are the same.

* Steps: `--features-in-step` 98 (12.5 %) by default, 8 evaluations. 78 (≈ 10 %) is refused by
  Quantus 0.6.0 (784 % 78 ≠ 0); 98 is the divisor of 784 nearest to it.
* Channels: Quantus treats every entry of a channel-first image as a feature (attributions broadcast
  over channels), ours removes a pixel in all channels; with MNIST's one channel they coincide.
* Weights: `--weights FILE.msgpack`, else the ordinary MNIST CNN of `sgt reproduce mnist`
  (`runs/*/cache/.../models/ordinary_seed0`, the one trained longest), else one epoch of ordinary
  training here.
  Quantus runs on the torch peer (`benchmarks/peers.py`, the weights copied; its logits are checked).
* Inputs: normalised MNIST test images (x − 0.1307) / 0.3081; both replace removed pixels by the
  background, (0 − 0.1307) / 0.3081 = −0.4242 (a constant Quantus baseline, `perturb_baseline`).
* Attributions: Grad as in the MNIST experiment (`sgt.experiments.mnist.grad_scores`: |∂ log p_y / ∂x|,
  channel mean), [B, 28, 28]. Every sample has ties (exact zeros, from dead ReLUs), which Quantus
  orders by numpy's unstable argsort and we by a key; so both get the same tie-free scores,
  784 − rank, the rank from `sgt.metrics.removal_ranks(grad, key=None)` (equal scores: lower flat
  index first). That is the ranking of the Grad scores themselves; checked: our curve on the raw
  scores with key=None is the same. Quantus gets them as `a_batch` [B, 1, 28, 28] with
  `normalise=False, abs=False` (normalising would only rescale them).
* What is compared: ours returns the accuracy per step. Quantus returns, per sample and step, the
  model output at the label; to make that the correctness of the prediction, the timed Quantus run
  gets the peer wrapped to output one-hot(argmax logits) with `softmax=False`, and the mean over
  samples is the accuracy per step (the wrapper replaces the softmax Quantus would add: one argmax
  per batch). Separately, on `--check-n` images, Quantus's default output (softmax probability of
  the label, plain peer) is compared with the same probabilities from JAX (`sgt.metrics.remove_top`
  and the Flax model), and per-sample correctness with the timed run.

Timing: the images are cut into chunks (`--chunk`); for each, our call and Quantus's call are timed
in turn (alternating which goes first), so that a change in the machine's load hits both alike; the
totals are the sums. Both evaluate `--batch-size` images per network pass. Before that, each side
runs untimed on the first chunk (and on a smaller last chunk's shape): our first call includes jit
compilation, reported separately as first call − timed call on the same chunk. Our call returns
numpy (synchronised); torch on the CPU is synchronous. Not timed: the Grad attributions (reported).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (REPO_ROOT, BENCH_DIR):  # run as `python benchmarks/removal_speed.py` from a checkout
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import flax.serialization  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import _report  # noqa: E402
import sgt.models  # noqa: E402
from sgt import metrics  # noqa: E402
from sgt.experiments import mnist as mnist_exp  # noqa: E402

# torch, quantus and the peers are imported by `main` (`pip install -e '.[bench]'`), so that the
# helpers above the timing code import without them (tests/test_removal_speed_agreement.py).
torch = quantus = peers = None


def _import_peers() -> str | None:
    """Import torch, quantus and benchmarks/peers.py into this module; the error text if one is missing."""
    global torch, quantus, peers
    try:
        import quantus as _quantus
        import torch as _torch

        import peers as _peers
    except ImportError as error:  # pragma: no cover - depends on the environment
        return str(error)
    torch, quantus, peers = _torch, _quantus, _peers
    return None

DEFAULT_OUT_DIR = REPO_ROOT / "benchmarks" / "results"
UNITS = 28 * 28
BACKGROUND = float(mnist_exp.BACKGROUND)
QUICK_N = 500


# --------------------------------------------------------------------------------------------
# Matching the two computations.
# --------------------------------------------------------------------------------------------


def step_counts(units: int, features_in_step: int) -> list[int]:
    """Pixels removed after each PixelFlipping step: k, 2k, …, U (k must divide U, as Quantus requires)."""
    if features_in_step < 1 or units % features_in_step:
        raise ValueError(f"features_in_step: must divide the {units} features (Quantus asserts it), "
                         f"got {features_in_step}")
    return [features_in_step * (i + 1) for i in range(units // features_in_step)]


def fractions_for(counts: list[int], units: int) -> list[float]:
    """Fractions p whose removal count max(1, ⌊p·U⌋) is each of `counts` (checked)."""
    fractions = [c / units if metrics.removal_count(c / units, units) == c else (c + 0.5) / units for c in counts]
    got = [metrics.removal_count(p, units) for p in fractions]
    if got != list(counts):
        raise AssertionError(f"fractions {fractions} remove {got}, expected {counts}")
    return fractions


def tie_free(scores: np.ndarray) -> np.ndarray:
    """U − rank as float32: the ranking of `scores` (equal scores: lower flat index first), without ties."""
    ranks = np.asarray(metrics.removal_ranks(scores, key=None)).reshape(len(scores), -1)
    return (ranks.shape[1] - ranks).astype(np.float32).reshape(scores.shape)


# --------------------------------------------------------------------------------------------
# Weights.
# --------------------------------------------------------------------------------------------


def find_weights() -> tuple[Path, dict] | None:
    """The ordinary MNIST CNN trained longest by `sgt reproduce mnist` under runs/ (full training set)."""
    found = []
    for record_path in REPO_ROOT.glob("runs/*/cache/mnist_mnist_cnn_*/models/ordinary_seed0.json"):
        blob = record_path.with_suffix(".msgpack")
        record = json.loads(record_path.read_text())
        if blob.exists() and not record.get("settings", {}).get("train_subset"):
            found.append((record.get("epochs", 0), str(blob), blob, record))
    if not found:
        return None
    _, _, blob, record = max(found)
    return blob, record


def weights(args, ds) -> tuple[dict, dict[str, Any]]:
    """(variables, description) from --weights, the experiment's cache, or a one-epoch training run."""
    if args.weights is not None:
        blob = Path(args.weights)
        record_path = blob.with_suffix(".json")
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
    else:
        found = find_weights()
        blob, record = found if found is not None else (None, None)
    if blob is not None:
        variables = flax.serialization.msgpack_restore(blob.read_bytes())
        try:
            path = str(blob.relative_to(REPO_ROOT))
        except ValueError:
            path = str(blob)
        return variables, {"source": "file", "path": path, "epochs": record.get("epochs"),
                           "best_epoch": record.get("best_epoch"), "test_accuracy": record.get("test_accuracy"),
                           "method": record.get("method")}
    settings = mnist_exp.Settings(epochs=1)
    print("[removal_speed] no cached MNIST model under runs/: training one epoch (ordinary)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        variables, record = mnist_exp.train_model(settings, ds, "standard", 0, Path(tmp), progress=True)
    return variables, {"source": "trained here", "epochs": 1, "test_accuracy": record["test_accuracy"],
                       "method": "standard", "train_seconds": record["train_seconds"]}


# --------------------------------------------------------------------------------------------
# The two sides.
# --------------------------------------------------------------------------------------------


def argmax_one_hot(net):
    """`net` whose output is one-hot(argmax logits): Quantus's output at the label is then 1 for a
    correct prediction, 0 otherwise."""

    class ArgmaxOneHot(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            logits = self.net(x)
            return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)

    return ArgmaxOneHot().eval()


def quantus_metric(features_in_step: int):
    return quantus.PixelFlipping(features_in_step=features_in_step, normalise=False, abs=False,
                                 perturb_baseline=BACKGROUND, disable_warnings=True, display_progressbar=False)


def run_quantus(metric, net, x_nchw, y, a_nchw, batch_size: int, softmax: bool) -> np.ndarray:
    """Quantus's [n, steps] outputs at the label."""
    with warnings.catch_warnings():  # "perturbation caused no change": a step whose pixels were background
        warnings.simplefilter("ignore")
        out = metric(model=net, x_batch=x_nchw, y_batch=y, a_batch=a_nchw, channel_first=True, softmax=softmax,
                     device="cpu", batch_size=batch_size)
    return np.asarray(out, np.float64)


def run_ours(f, x, y, scores, fractions, batch_size: int, key) -> np.ndarray:
    return metrics.removal_curve(f, x, y, scores, fractions, replacement=BACKGROUND, key=key, batch_size=batch_size)


def jax_label_probabilities(model, variables, x, y, scores, fractions,
                            batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(softmax probability of the label, correctness) [n, steps] with our removal, for the check."""
    apply = jax.jit(lambda v, z: model.apply(v, z, train=False))
    probs, correct = [], []
    for p in fractions:
        removed = np.asarray(metrics.remove_top(x, scores, p, BACKGROUND))
        logits = np.concatenate([np.asarray(apply(variables, removed[i:i + batch_size]))
                                 for i in range(0, len(x), batch_size)])
        probs.append(np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1))[np.arange(len(x)), y])
        correct.append(logits.argmax(-1) == y)
    return np.stack(probs, 1).astype(np.float64), np.stack(correct, 1)


def chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def bench(args) -> dict[str, Any]:
    ds = mnist_exp.load(mnist_exp.Settings(), args.data_dir)
    n = min(args.n_test, len(ds.x_test))
    x, y = ds.x_test[:n], ds.y_test[:n].astype(np.int32)
    variables, weights_info = weights(args, ds)
    model = sgt.models.get("mnist_cnn", num_classes=ds.num_classes)
    f = mnist_exp.classify(model, variables)
    print(f"[removal_speed] weights: {weights_info}", flush=True)

    peer_check = peers.check_peer("mnist_cnn", variables, x[:64])
    net = peers.torch_peer("mnist_cnn", variables)
    for p in net.parameters():
        p.requires_grad_(False)
    onehot = argmax_one_hot(net)

    tic = time.perf_counter()
    grad = mnist_exp.grad_scores(model, mnist_exp.Settings(), variables, x, y)
    grad_seconds = time.perf_counter() - tic
    flat = grad.reshape(n, -1)
    sorted_flat = np.sort(flat, axis=1)
    ties_per_sample = (np.diff(sorted_flat, axis=1) == 0).sum(1)
    scores = tie_free(grad)
    counts = step_counts(UNITS, args.features_in_step)
    fractions = fractions_for(counts, UNITS)
    key = jax.random.PRNGKey(args.seed)
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    a_nchw = np.ascontiguousarray(scores[:, None])
    y64 = y.astype(np.int64)
    metric = quantus_metric(args.features_in_step)
    print(f"[removal_speed] {n} images; Grad attributions {grad_seconds:.1f} s; {len(counts)} steps of "
          f"{args.features_in_step} pixels; torch peer logits max |Δ| {peer_check['max_abs_diff']:.1e}", flush=True)

    parts = chunks(n, args.chunk)
    # Warm-up, untimed: every chunk shape once per side (our first call compiles).
    warm: dict[str, Any] = {}
    for size in sorted({p.stop - p.start for p in parts}, reverse=True):
        part = slice(0, size)
        t0 = time.perf_counter()
        run_ours(f, x[part], y[part], scores[part], fractions, args.batch_size, key)
        warm.setdefault("ours_first_call_s", time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_quantus(metric, onehot, x_nchw[part], y64[part], a_nchw[part], args.batch_size, softmax=False)
        warm.setdefault("quantus_first_call_s", time.perf_counter() - t0)
    print(f"[removal_speed] warm-up on {parts[0].stop} images: ours {warm['ours_first_call_s']:.1f} s (with "
          f"compilation), Quantus {warm['quantus_first_call_s']:.1f} s", flush=True)

    ours_times, quantus_times = [], []
    ours_correct = np.zeros(len(counts), np.float64)
    quantus_out = []
    for i, part in enumerate(parts):
        order = ("ours", "quantus") if i % 2 == 0 else ("quantus", "ours")
        for side in order:
            t0 = time.perf_counter()
            if side == "ours":
                acc = run_ours(f, x[part], y[part], scores[part], fractions, args.batch_size, key)
                ours_times.append(time.perf_counter() - t0)
                ours_correct += acc * (part.stop - part.start)
            else:
                out = run_quantus(metric, onehot, x_nchw[part], y64[part], a_nchw[part], args.batch_size,
                                  softmax=False)
                quantus_times.append(time.perf_counter() - t0)
                quantus_out.append(out)
        print(f"  chunk {i + 1}/{len(parts)} ({part.stop - part.start} images): ours {ours_times[-1]:.1f} s, "
              f"Quantus {quantus_times[-1]:.1f} s", flush=True)
    quantus_out = np.concatenate(quantus_out)
    if not np.isin(quantus_out, (0.0, 1.0)).all():
        raise AssertionError("Quantus's outputs through the one-hot wrapper should be 0 or 1")
    ours_acc = ours_correct / n
    quantus_acc = quantus_out.mean(0)
    ours_total, quantus_total = sum(ours_times), sum(quantus_times)

    # Checks, untimed: raw Grad scores with key=None give our curve too; probabilities on a subset.
    raw_curve = run_ours(f, x, y, grad, fractions, args.batch_size, None)
    m = min(args.check_n, n)
    q_probs = run_quantus(metric, net, x_nchw[:m], y64[:m], a_nchw[:m], args.batch_size, softmax=True)
    j_probs, j_correct = jax_label_probabilities(model, variables, x[:m], y[:m], scores[:m], fractions,
                                                 args.batch_size)
    mismatch = np.argwhere(j_correct != quantus_out[:m].astype(bool))
    result = {
        "n_test": n,
        "weights": weights_info,
        "peer_logits_check": peer_check,
        "grad_attribution_s": grad_seconds,
        "grad_ties": {"samples_with_ties": int((ties_per_sample > 0).sum()),
                      "max_tied_pairs_in_a_sample": int(ties_per_sample.max()),
                      "zero_scores": int((flat == 0).sum())},
        "counts": counts,
        "fractions": fractions,
        "warmup": warm,
        "ours_compile_s_estimate": warm["ours_first_call_s"] - ours_times[0],
        "chunks": [p.stop - p.start for p in parts],
        "ours_chunk_s": ours_times,
        "quantus_chunk_s": quantus_times,
        "ours_s": ours_total,
        "quantus_s": quantus_total,
        "ratio_quantus_over_ours": quantus_total / ours_total,
        "ours_ms_per_image": 1e3 * ours_total / n,
        "quantus_ms_per_image": 1e3 * quantus_total / n,
        "curve": {"ours_accuracy": ours_acc.tolist(), "quantus_accuracy": quantus_acc.tolist(),
                  "ours_correct": np.rint(ours_acc * n).astype(int).tolist(),
                  "quantus_correct": np.rint(quantus_acc * n).astype(int).tolist(),
                  "max_abs_diff": float(np.abs(ours_acc - quantus_acc).max()),
                  "raw_grad_key_none_accuracy": raw_curve.tolist(),
                  "raw_grad_max_abs_diff": float(np.abs(raw_curve - ours_acc).max())},
        "probability_check": {"n": m, "max_abs_diff": float(np.abs(q_probs - j_probs).max()),
                              "mean_abs_diff": float(np.abs(q_probs - j_probs).mean()),
                              "correctness_mismatches": int(len(mismatch)),
                              "mismatch_sample_step": mismatch.tolist()[:20]},
    }
    print(f"[removal_speed] ours {ours_total:.1f} s, Quantus {quantus_total:.1f} s, Quantus / ours "
          f"{result['ratio_quantus_over_ours']:.2f}; accuracy curves max |Δ| {result['curve']['max_abs_diff']:.2e}; "
          f"probabilities ({m} images) max |Δ| {result['probability_check']['max_abs_diff']:.1e}", flush=True)
    return result


# --------------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    m, v, r = report["machine"], report["versions"], report["result"]
    w, c, pc = r["weights"], r["curve"], r["probability_check"]
    weights_text = ((f"`{w['path']}`" if w["source"] == "file" else "trained here")
                    + f" (ordinary training, {w['epochs']} epoch(s), best epoch {w.get('best_epoch')}, "
                      f"test accuracy {w['test_accuracy']})")
    lines = [
        f"# Removal-curve speed, ours vs Quantus PixelFlipping: `{report['tag']}`",
        "",
        f"- Date (UTC): {report['date_utc']}",
        f"- Command: `{report['command']}`",
        _report.machine_line(m) + "; Quantus / torch on the CPU",
        f"- Platform: {m['platform']}",
        _report.versions_line(v),
        f"- Data: the first {r['n_test']} MNIST test images, normalised; weights: {weights_text}; torch peer "
        f"logits max |Δ| {r['peer_logits_check']['max_abs_diff']:.1e}",
        f"- Steps: {len(r['counts'])} of {report['settings']['features_in_step']} pixels, cumulative: the top "
        f"{', '.join(map(str, r['counts']))} of 784 pixels replaced by the background {BACKGROUND:.4f}; ours at "
        f"fractions {', '.join(f'{p:.4g}' for p in r['fractions'])}",
        f"- Batch {report['settings']['batch_size']} images per network pass on both sides; chunks of "
        f"{', '.join(map(str, r['chunks']))} images timed in turn (ours / Quantus alternating first)",
        f"- Load average (1, 5, 15 min) before / after: {report['loadavg_before']} / {report['loadavg_after']}",
    ]
    lines += _report.contention_line(report["other_jobs"])
    if report.get("note"):
        lines.append(f"- Note: {report['note']}")
    lines += [
        "",
        "| side | call | total s | ms / image | first call s (untimed warm-up) |",
        "|---|---|---:|---:|---:|",
        f"| ours | `sgt.metrics.removal_curve(f, x, y, scores, fractions, replacement=BACKGROUND, key=…, "
        f"batch_size={report['settings']['batch_size']})` | {r['ours_s']:.1f} | {r['ours_ms_per_image']:.2f} | "
        f"{r['warmup']['ours_first_call_s']:.1f} (compilation ≈ {r['ours_compile_s_estimate']:.1f}) |",
        f"| Quantus {v.get('quantus')} | `PixelFlipping(features_in_step={report['settings']['features_in_step']}, "
        f"perturb_baseline={BACKGROUND:.4f}, normalise=False, abs=False)` on the torch peer | {r['quantus_s']:.1f} | "
        f"{r['quantus_ms_per_image']:.2f} | {r['warmup']['quantus_first_call_s']:.1f} |",
        "",
        f"**Quantus / ours: {r['ratio_quantus_over_ours']:.2f}** (above 1: ours is faster). Not timed: the Grad "
        f"attributions ({r['grad_attribution_s']:.1f} s, JAX), given to both sides.",
        "",
        "## Agreement",
        "",
        "Accuracy after each step (ours: `removal_curve`; Quantus: mean over samples of its output at the label, "
        "the peer wrapped to output one-hot(argmax), `softmax=False`):",
        "",
        "| pixels removed | " + " | ".join(map(str, r["counts"])) + " |",
        "|---|" + "---:|" * len(r["counts"]),
        "| ours | " + " | ".join(f"{a:.4f}" for a in c["ours_accuracy"]) + " |",
        "| Quantus | " + " | ".join(f"{a:.4f}" for a in c["quantus_accuracy"]) + " |",
        "",
        f"- Max |Δ accuracy| over the steps: {c['max_abs_diff']:.2e} (correct counts ours "
        f"{c['ours_correct']}, Quantus {c['quantus_correct']}).",
        f"- Ties: {r['grad_ties']['samples_with_ties']} of {r['n_test']} samples have tied Grad scores "
        f"({r['grad_ties']['zero_scores']} exact zeros in all); both sides got the tie-free scores 784 − rank "
        f"(equal scores: lower flat index first). Our curve on the raw Grad scores with `key=None`: max |Δ| "
        f"{c['raw_grad_max_abs_diff']:.1e} from it.",
        f"- On the first {pc['n']} images, Quantus's default output (softmax probability of the label, plain peer) "
        f"against the same from JAX (`sgt.metrics.remove_top`, Flax model): max |Δ| {pc['max_abs_diff']:.1e}, "
        f"mean {pc['mean_abs_diff']:.1e}; per-sample correctness (JAX vs the timed Quantus run): "
        f"{pc['correctness_mismatches']} of {pc['n'] * len(r['counts'])} (sample, step) pairs differ.",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--n-test", type=int, default=10000, help="test images (the first N of the test set)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_N} test images; tag gets '-quick'")
    p.add_argument("--features-in-step", type=int, default=98,
                   help="pixels per PixelFlipping step; must divide 784 (Quantus asserts it): 98 = 12.5 %%, "
                        "the divisor nearest to 10 %%")
    p.add_argument("--batch-size", type=int, default=500, help="images per network pass, both sides")
    p.add_argument("--chunk", type=int, default=2000, help="images per timed call (ours and Quantus in turn)")
    p.add_argument("--check-n", type=int, default=500, help="images of the probability check (untimed)")
    p.add_argument("--weights", default=None,
                   help="MNIST CNN variables (.msgpack, as the experiment's cache writes); default: the ordinary "
                        "model trained longest under runs/, else one epoch of training here")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: SGT_DATA_DIR or the data cache)")
    p.add_argument("--seed", type=int, default=0, help="removal_curve's tie-break key (no ties remain)")
    p.add_argument("--tag", default=None, help="machine tag in the file names (default: e.g. cpu-2core)")
    p.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    p.add_argument("--note", default=None, help="free text added to the report")
    args = p.parse_args(argv)
    if args.quick:
        args.n_test = min(args.n_test, QUICK_N)
    for option in ("n_test", "batch_size", "chunk", "check_n"):
        if getattr(args, option) < 1:
            p.error(f"--{option.replace('_', '-')} must be >= 1")
    try:
        step_counts(UNITS, args.features_in_step)
    except ValueError as e:
        p.error(str(e))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    missing = _import_peers()
    if missing is not None:
        print(f"removal_speed.py needs torch and quantus (pip install -e '.[bench]'): {missing}", file=sys.stderr)
        return 2
    torch.set_num_threads(_report.core_count())
    report: dict[str, Any] = {
        **_report.header(args, argv, torch, extra=("quantus",)),
        "settings": {"n_test": args.n_test, "features_in_step": args.features_in_step,
                     "batch_size": args.batch_size, "chunk": args.chunk, "check_n": args.check_n,
                     "replacement": BACKGROUND, "seed": args.seed,
                     "attributions": "Grad, |d log p_y / dx| channel mean, as 784 - rank (ties by flat index)"},
        "timing": "chunks timed in turn, ours and Quantus alternating first; untimed warm-up per chunk shape "
                  "and side first (ours: jit compilation); wall time; sums reported",
        "loadavg_before": _report.loadavg(),
        "other_jobs": _report.other_sgt_jobs(),
        "note": args.note,
    }
    report["result"] = bench(args)
    report["loadavg_after"] = _report.loadavg()
    report["other_jobs"] = sorted(set(report["other_jobs"]) | set(_report.other_sgt_jobs()))
    _report.write_report(report, args.out_dir / f"removal_speed_{report['tag']}", markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
