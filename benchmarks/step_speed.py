"""Train-step speed: ordinary vs saliency guided training (SGT), JAX and a PyTorch peer.

Run from the repository root:

    python benchmarks/step_speed.py                 # full run, results in benchmarks/results/
    python benchmarks/step_speed.py --models mnist_cnn resnet18
    python benchmarks/step_speed.py --quick         # smoke test: batch 16, 3 steps

For every model name given (default: mnist_cnn) the script times, on one fixed random batch:

* JAX: `sgt.train.make_train_step(method="standard")`, and the SGT step with
  `saliency_pass="inference"` and with `saliency_pass="shared"`;
* PyTorch (only if `torch` imports and `benchmarks/peers.py` has a peer for the model): an
  ordinary step and an SGT step written from Algorithm 1 of Ismail et al. (NeurIPS 2021), on the
  torch peer of the model, which starts from the same weights as the JAX steps.

Everything runs in one process, so the numbers to read are the ratios (SGT / ordinary, ours /
torch); absolute milliseconds depend on the machine and on whatever else it is running.
Within one framework the variants are timed round-robin (step i of every variant before step
i + 1 of any), so slow drift of the machine's load hits all of them alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (REPO_ROOT, BENCH_DIR):  # run as `python benchmarks/step_speed.py` from a checkout
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import _report  # noqa: E402
import sgt.models  # noqa: E402
import sgt.train  # noqa: E402

try:  # the PyTorch peer is optional: `pip install -e '.[bench]'`
    import torch
    import torch.nn.functional as F

    import peers
except ImportError:  # pragma: no cover - depends on the environment
    torch = peers = None

DEFAULT_OUT_DIR = REPO_ROOT / "benchmarks" / "results"
LEARNING_RATE = 1e-3
QUICK_BATCH, QUICK_STEPS = 16, 3


# --------------------------------------------------------------------------------------------
# Models benchmarked, by the name they have in `sgt.models.REGISTRY`.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the benchmark needs to know about one model.

    input_shape: one example, NHWC without the batch axis (the torch peer gets it as NCHW).
    default_batch: the batch when --batch-size does not set one; ResNet-18's is 32, a CPU-friendly
        size (at 128 one of its SGT steps takes many seconds on 2 cores).
    options: keyword arguments for `sgt.models.get`.
    The torch peer, if any, is `peers.torch_peer(name, variables)` (benchmarks/peers.py).
    """

    input_shape: tuple[int, ...]
    num_classes: int
    default_batch: int
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {
    "mnist_cnn": ModelSpec(input_shape=(28, 28, 1), num_classes=10, default_batch=128,
                           options={"num_classes": 10}),
    "resnet18": ModelSpec(input_shape=(32, 32, 3), num_classes=10, default_batch=32,
                          options={"num_classes": 10}),
}

JAX_VARIANTS = (  # (label, method, saliency_pass)
    ("standard", "standard", None),
    ("sgt-inference", "sgt", "inference"),
    ("sgt-shared", "sgt", "shared"),
)


# --------------------------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------------------------


def summarize(times_s: list[float], batch: int) -> dict[str, Any]:
    ms = [t * 1e3 for t in times_s]
    median = statistics.median(ms)
    return {
        "median_ms": median,
        "mean_ms": statistics.fmean(ms),
        "std_ms": statistics.stdev(ms) if len(ms) > 1 else 0.0,
        "min_ms": min(ms),
        "max_ms": max(ms),
        "images_per_s": batch / (median / 1e3),
        "steps_ms": ms,
    }


def time_round_robin(steppers: dict[str, Callable[[], None]], steps: int) -> dict[str, list[float]]:
    """Seconds per call of each stepper (which must block until its step is done), interleaved."""
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for _ in range(steps):
        for name, run in steppers.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    return times


# --------------------------------------------------------------------------------------------
# JAX (this library).
# --------------------------------------------------------------------------------------------


def initial_variables(name: str, spec: ModelSpec, x: np.ndarray, seed: int) -> dict[str, Any]:
    """The Flax variables every JAX variant starts from (`sgt.train.create_train_state`), as numpy."""
    model = sgt.models.get(name, **spec.options)
    state = sgt.train.create_train_state(model, optax.adam(LEARNING_RATE), x, seed)
    variables = {"params": state.params}
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
    return jax.tree.map(np.asarray, variables)


def bench_jax(name: str, spec: ModelSpec, x: np.ndarray, y: np.ndarray, *, steps: int, warmup: int,
              k: float, seed: int) -> dict[str, Any]:
    model = sgt.models.get(name, **spec.options)
    tx = optax.adam(LEARNING_RATE)
    x_dev, y_dev = jax.numpy.asarray(x), jax.numpy.asarray(y)
    steppers, compile_s = {}, {}
    for label, method, saliency_pass in JAX_VARIANTS:
        config = sgt.train.SGTConfig(k=k, saliency_pass=saliency_pass) if method == "sgt" else None
        step = sgt.train.make_train_step(model, tx, method=method, config=config)
        box = {"state": sgt.train.create_train_state(model, tx, x, seed)}

        def run(step=step, box=box):
            # The state is donated: always rebind it.
            box["state"], metrics = step(box["state"], x_dev, y_dev)
            jax.block_until_ready((box["state"], metrics))

        t0 = time.perf_counter()
        run()  # compiles
        compile_s[label] = time.perf_counter() - t0
        for _ in range(max(warmup - 1, 0)):
            run()
        steppers[label] = run
    times = time_round_robin(steppers, steps)
    return {label: {**summarize(times[label], len(x)), "first_call_s": compile_s[label]} for label in steppers}


# --------------------------------------------------------------------------------------------
# PyTorch peer, from Algorithm 1 of the paper.
# --------------------------------------------------------------------------------------------


def torch_mask_lowest(x, saliency, k: float):
    """x with the k fraction of lowest-|saliency| pixels of each sample replaced by U[min, max].

    x, saliency: [B, C, H, W]. A pixel's score is |channel mean of the saliency|; the replacement
    values are uniform in each sample's own per-channel [min, max]. Vectorised over the batch.
    """
    b, c, h, w = x.shape
    scores = saliency.mean(dim=1).abs().reshape(b, h * w)
    count = int(k * h * w)
    idx = torch.topk(scores, count, dim=1, largest=False).indices
    mask = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, idx, True).view(b, 1, h, w)
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    fill = lo + (hi - lo) * torch.rand_like(x)
    return torch.where(mask, fill, x)


def make_torch_steps(model, opt, k: float):
    def standard_step(x, y):
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    def sgt_step(x, y):
        # 1. Saliency: gradient of the true-label logit w.r.t. the input, inference mode.
        model.eval()
        x_in = x.detach().requires_grad_(True)
        target_logits = model(x_in).gather(1, y[:, None]).sum()
        (saliency,) = torch.autograd.grad(target_logits, x_in)
        model.train()
        # 2. Mask the k lowest-saliency pixels with random values.
        with torch.no_grad():
            x_masked = torch_mask_lowest(x, saliency, k)
        # 3. CE on the clean input + KL(clean || masked), clean branch not detached.
        opt.zero_grad(set_to_none=True)
        clean = model(x)
        masked = model(x_masked)
        kl = F.kl_div(F.log_softmax(masked, dim=1), F.log_softmax(clean, dim=1),
                      reduction="batchmean", log_target=True)
        loss = F.cross_entropy(clean, y) + kl
        loss.backward()
        opt.step()
        return loss

    return standard_step, sgt_step


def bench_torch(name: str, spec: ModelSpec, x: np.ndarray, y: np.ndarray, *, steps: int, warmup: int,
                k: float, seed: int) -> dict[str, Any]:
    x_t = peers.to_nchw(x)
    y_t = torch.from_numpy(y.astype(np.int64))  # torch's cross-entropy takes int64 labels
    # Both torch models start from the weights (and BatchNorm statistics) the JAX steps start from.
    variables = initial_variables(name, spec, x, seed)
    standard_model, sgt_model = peers.torch_peer(name, variables), peers.torch_peer(name, variables)
    standard_step, _ = make_torch_steps(standard_model, torch.optim.Adam(standard_model.parameters(), LEARNING_RATE), k)
    _, sgt_step = make_torch_steps(sgt_model, torch.optim.Adam(sgt_model.parameters(), LEARNING_RATE), k)
    # torch on CPU runs synchronously, so a step is done when the call returns (`.item()` syncs anyway).
    steppers = {"standard": lambda: standard_step(x_t, y_t).item(),
                "sgt": lambda: sgt_step(x_t, y_t).item()}
    first_s = {}
    for label, run in steppers.items():
        t0 = time.perf_counter()
        run()
        first_s[label] = time.perf_counter() - t0
        for _ in range(max(warmup - 1, 0)):
            run()
    times = time_round_robin(steppers, steps)
    return {label: {**summarize(times[label], len(x)), "first_call_s": first_s[label]} for label in steppers}


# --------------------------------------------------------------------------------------------
# Report (machine and version helpers: benchmarks/_report.py).
# --------------------------------------------------------------------------------------------


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """SGT / ordinary per framework, and our SGT throughput over the torch SGT throughput."""
    out: dict[str, Any] = {}
    jx = result["jax"]
    for label in ("sgt-inference", "sgt-shared"):
        out[f"jax_{label}_over_standard"] = jx[label]["median_ms"] / jx["standard"]["median_ms"]
    if result.get("torch"):
        tt = result["torch"]
        out["torch_sgt_over_standard"] = tt["sgt"]["median_ms"] / tt["standard"]["median_ms"]
        out["jax_standard_over_torch_standard_throughput"] = (
            jx["standard"]["images_per_s"] / tt["standard"]["images_per_s"])
        for label in ("sgt-inference", "sgt-shared"):
            out[f"jax_{label}_over_torch_sgt_throughput"] = jx[label]["images_per_s"] / tt["sgt"]["images_per_s"]
    return out


def batch_text(report: dict[str, Any]) -> str:
    """The batch of each model run, e.g. "mnist_cnn 128, resnet18 32"."""
    sizes = {name: res["batch_size"] for name, res in report["models"].items() if "batch_size" in res}
    return ", ".join(f"{name} {b}" for name, b in sizes.items()) or "none (every model skipped)"


def markdown(report: dict[str, Any]) -> str:
    m, v = report["machine"], report["versions"]
    lines = [
        f"# Train-step speed: `{report['tag']}`",
        "",
        f"- Date (UTC): {report['date_utc']}",
        f"- Command: `{report['command']}`",
        _report.machine_line(m),
        f"- Platform: {m['platform']}",
        _report.versions_line(v) + ("" if v.get("torch") else " (torch not installed: no PyTorch peer)"),
        f"- Batch: {batch_text(report)}; timed steps: {report['steps']} "
        f"(after {report['warmup']} warm-up step(s) per variant, the first of which compiles); SGT k = {report['k']}; "
        f"optimizer Adam lr {LEARNING_RATE:g} in both frameworks",
        f"- Load average (1, 5, 15 min) before / after: {report['loadavg_before']} / {report['loadavg_after']}",
    ]
    lines += _report.contention_line(report["other_jobs"])
    if report.get("note"):
        lines.append(f"- Note: {report['note']}")
    lines += ["", "Speed numbers come from one process on one machine: compare the ratios, not the "
              "absolute milliseconds across machines.", ""]
    for name, res in report["models"].items():
        if "skipped" in res:
            lines += [f"## {name}", "", f"Skipped: {res['skipped']}", ""]
            continue
        b = res["batch_size"]
        lines += [f"## {name} (batch {b}, input {tuple(res['input_shape'])})", "",
                  "| framework | step | median ms/step | mean ms/step | std ms | images/s | × ordinary |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for fw, label_map in (("jax", {"standard": "ordinary", "sgt-inference": "SGT, saliency_pass=inference",
                                       "sgt-shared": "SGT, saliency_pass=shared"}),
                              ("torch", {"standard": "ordinary", "sgt": "SGT (Algorithm 1)"})):
            if not res.get(fw):
                continue
            base = res[fw]["standard"]["median_ms"]
            for label, text in label_map.items():
                t = res[fw][label]
                lines.append(f"| {'JAX (sgt)' if fw == 'jax' else 'PyTorch peer'} | {text} | {t['median_ms']:.2f} | "
                             f"{t['mean_ms']:.2f} | {t['std_ms']:.2f} | {t['images_per_s']:.0f} | "
                             f"{t['median_ms'] / base:.2f} |")
        if res.get("torch_skipped"):
            lines += ["", f"PyTorch peer: {res['torch_skipped']}"]
        r = res["ratios"]
        lines += ["", "| ratio (from medians) | value |", "|---|---:|",
                  f"| JAX SGT-inference / JAX ordinary | {r['jax_sgt-inference_over_standard']:.2f} |",
                  f"| JAX SGT-shared / JAX ordinary | {r['jax_sgt-shared_over_standard']:.2f} |"]
        if "torch_sgt_over_standard" in r:
            lines += [
                f"| PyTorch SGT / PyTorch ordinary | {r['torch_sgt_over_standard']:.2f} |",
                f"| ours SGT-inference throughput / torch SGT throughput | "
                f"{r['jax_sgt-inference_over_torch_sgt_throughput']:.2f} |",
                f"| ours SGT-shared throughput / torch SGT throughput | "
                f"{r['jax_sgt-shared_over_torch_sgt_throughput']:.2f} |",
                f"| ours ordinary throughput / torch ordinary throughput | "
                f"{r['jax_standard_over_torch_standard_throughput']:.2f} |",
            ]
        jx = res["jax"]
        lines += ["", "JAX first call (compile + one step), s: " + ", ".join(
            f"{label} {jx[label]['first_call_s']:.1f}" for label in jx), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", nargs="+", default=["mnist_cnn"],
                   help=f"model names (known to the benchmark: {sorted(MODELS)})")
    p.add_argument("--batch-size", nargs="+", default=None, metavar="N|NAME=N",
                   help="batch size for every model (N) or for one (NAME=N), e.g. '--batch-size resnet18=64'; "
                        "default per model: " + ", ".join(f"{n} {s.default_batch}" for n, s in MODELS.items()))
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first (the first compiles)")
    p.add_argument("--k", type=float, default=0.5, help="fraction of pixels masked by SGT")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: batch {QUICK_BATCH}, {QUICK_STEPS} steps, 1 warm-up step; tag gets '-quick'")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer even if torch is installed")
    p.add_argument("--tag", default=None, help="machine tag in the file names (default: e.g. cpu-2core)")
    p.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    p.add_argument("--note", default=None, help="free text added to the report")
    args = p.parse_args(argv)
    try:
        args.batch_all, args.batch_per_model = _report.per_model_ints(args.batch_size, "--batch-size", MODELS)
    except ValueError as e:
        p.error(str(e))
    if args.quick:
        args.batch_all, args.batch_per_model, args.steps, args.warmup = QUICK_BATCH, {}, QUICK_STEPS, 1
    if args.steps < 1 or args.warmup < 1:
        p.error("--steps and --warmup must be >= 1")
    return args


def batch_for(args, name: str) -> int:
    """--batch-size NAME=N, else --batch-size N, else the model's default."""
    return args.batch_per_model.get(name) or args.batch_all or MODELS[name].default_batch


def main(argv=None) -> int:
    args = parse_args(argv)
    cores = _report.core_count()
    if torch is not None:
        torch.set_num_threads(cores)
    tag = args.tag or _report.default_tag() + ("-quick" if args.quick else "")
    report: dict[str, Any] = {
        "tag": tag,
        "date_utc": _report.utc_now(),
        "command": _report.command_line(argv),
        "python_executable": sys.executable,
        "machine": _report.machine_info(torch),
        "versions": _report.versions(),
        "batch_size": args.batch_all,  # None: per model; each model's batch is in models.<name>.batch_size
        "batch_size_per_model": args.batch_per_model,
        "steps": args.steps,
        "warmup": args.warmup,
        "k": args.k,
        "seed": args.seed,
        "optimizer": f"adam(lr={LEARNING_RATE:g})",
        "timing": "round-robin over the variants of one framework; per-step wall time with "
                  "jax.block_until_ready (JAX) / synchronous CPU execution (torch)",
        "loadavg_before": _report.loadavg(),
        "other_jobs": _report.other_sgt_jobs(),
        "note": args.note,
        "models": {},
    }
    for name in args.models:
        if name not in sgt.models.REGISTRY:
            print(f"[skip] {name}: not in sgt.models.REGISTRY ({sorted(sgt.models.REGISTRY)})")
            report["models"][name] = {"skipped": "not in sgt.models.REGISTRY"}
            continue
        if name not in MODELS:
            print(f"[skip] {name}: no benchmark spec (input shape, batch) in benchmarks/step_speed.py MODELS")
            report["models"][name] = {"skipped": "no benchmark spec in MODELS"}
            continue
        spec = MODELS[name]
        batch = batch_for(args, name)
        rng = np.random.default_rng(args.seed)
        x = rng.random((batch, *spec.input_shape), dtype=np.float32)
        y = rng.integers(0, spec.num_classes, batch).astype(np.int32)
        print(f"[{name}] batch {batch}, {args.steps} steps: JAX ...", flush=True)
        res: dict[str, Any] = {"batch_size": batch, "input_shape": list(spec.input_shape)}
        res["jax"] = bench_jax(name, spec, x, y, steps=args.steps, warmup=args.warmup, k=args.k, seed=args.seed)
        if args.no_torch or torch is None:
            res["torch_skipped"] = "--no-torch" if args.no_torch else "torch is not installed"
        elif name not in peers.PEERS:
            res["torch_skipped"] = f"no torch peer for {name} in benchmarks/peers.py"
        else:
            print(f"[{name}] PyTorch peer ...", flush=True)
            torch.manual_seed(args.seed)
            res["torch"] = bench_torch(name, spec, x, y, steps=args.steps, warmup=args.warmup, k=args.k,
                                       seed=args.seed)
        res["ratios"] = ratios(res)
        report["models"][name] = res
        for fw in ("jax", "torch"):
            for label, t in (res.get(fw) or {}).items():
                print(f"  {fw:5s} {label:14s} median {t['median_ms']:8.2f} ms  mean {t['mean_ms']:8.2f} ms  "
                      f"{t['images_per_s']:8.0f} img/s")
        for key, val in res["ratios"].items():
            print(f"  {key}: {val:.3f}")
    report["loadavg_after"] = _report.loadavg()
    still_running = _report.other_sgt_jobs()
    report["other_jobs"] = sorted(set(report["other_jobs"]) | set(still_running))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"step_speed_{tag}"
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    Path(f"{stem}.md").write_text(markdown(report) + "\n")
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
