"""Train-step speed: ordinary vs saliency guided training (SGT), JAX and a PyTorch peer.

Run from the repository root:

    python benchmarks/step_speed.py                 # full run (all five models), results in benchmarks/results/
    python benchmarks/step_speed.py --models mnist_cnn resnet18
    python benchmarks/step_speed.py --quick         # smoke test: batch 16, 3 steps

For every model name given (default: mnist_cnn resnet20 resnet18 tcn lstm) the script times, on one
fixed random batch:

* JAX: `sgt.train.make_train_step(method="standard")`, the SGT step with
  `saliency_pass="inference"` and with `saliency_pass="shared"`, and the SGT step in its
  low-memory mode (`SGTConfig(low_memory=True)`, inference saliency pass), all with the library's
  default implementations on this backend (`sgt.nn_ops` convolution and pooling, `sgt.masking`
  selection; recorded in the report); for the models named in `--xla-variants` (default: the MNIST
  CNN) also the ordinary and SGT steps with XLA's own convolution and pooling (`conv_impl="xla"`,
  `pool_impl="xla"`), the paths that were the default before `sgt.nn_ops`;
* PyTorch (only if `torch` imports and `benchmarks/peers.py` / `more_peers.py` has a peer for the
  model): an ordinary step and an SGT step written from Algorithm 1 of Ismail et al. (NeurIPS
  2021), on the torch peer of the model, which starts from the same weights as the JAX steps.

For each JAX variant the peak memory of the compiled step is read from XLA's
`compiled.memory_analysis()` (arguments + outputs + temporaries − donated aliases).

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
import sgt.masking  # noqa: E402
import sgt.models  # noqa: E402
import sgt.nn_ops  # noqa: E402
import sgt.train  # noqa: E402

try:  # the PyTorch peer is optional: `pip install -e '.[bench]'`
    import torch
    import torch.nn.functional as F

    import more_peers as peers
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
    steps: int | None = None  # timed steps when --steps is not given (None: the script's default)
    impl_options: tuple[str, ...] = ("conv_impl",)  # the sgt.nn_ops switches the model has


MODELS: dict[str, ModelSpec] = {
    "mnist_cnn": ModelSpec(input_shape=(28, 28, 1), num_classes=10, default_batch=128,
                           options={"num_classes": 10}, impl_options=("conv_impl", "pool_impl")),
    "resnet20": ModelSpec(input_shape=(32, 32, 3), num_classes=10, default_batch=128,
                          options={"num_classes": 10}, steps=10),
    "resnet18": ModelSpec(input_shape=(32, 32, 3), num_classes=10, default_batch=32,
                          options={"num_classes": 10}, steps=5),
    "tcn": ModelSpec(input_shape=(50, 50), num_classes=2, default_batch=50, options={"num_classes": 2}),
    "lstm": ModelSpec(input_shape=(50, 50), num_classes=2, default_batch=50, options={"num_classes": 2},
                      impl_options=()),
}
DEFAULT_MODELS = ["mnist_cnn", "resnet20", "resnet18", "tcn", "lstm"]

# (label, method, SGTConfig options or None, use XLA's own convolution and pooling)
JAX_VARIANTS = (
    ("standard", "standard", None, False),
    ("sgt-inference", "sgt", {"saliency_pass": "inference"}, False),
    ("sgt-shared", "sgt", {"saliency_pass": "shared"}, False),
    ("sgt-inference-lowmem", "sgt", {"saliency_pass": "inference", "low_memory": True}, False),
)
XLA_VARIANTS = (
    ("standard-xla", "standard", None, True),
    ("sgt-inference-xla", "sgt", {"saliency_pass": "inference"}, True),
)
VARIANT_TEXT = {
    "standard": "ordinary",
    "sgt-inference": "SGT, saliency_pass=inference",
    "sgt-shared": "SGT, saliency_pass=shared",
    "sgt-inference-lowmem": "SGT, inference, low_memory=True",
    "standard-xla": "ordinary, XLA conv + pool",
    "sgt-inference-xla": "SGT, inference, XLA conv + pool",
}


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


def peak_memory(jitted, *args) -> dict[str, int]:
    """Bytes of the compiled step's buffers (XLA's memory_analysis), and their peak total."""
    stats = jitted.lower(*args).compile().memory_analysis()
    out = {key: int(getattr(stats, f"{key}_size_in_bytes", 0) or 0)
           for key in ("argument", "output", "temp", "alias", "generated_code")}
    out["peak"] = out["argument"] + out["output"] + out["temp"] - out["alias"]
    return out


def bench_jax(name: str, spec: ModelSpec, x: np.ndarray, y: np.ndarray, *, steps: int, warmup: int,
              k: float, seed: int, xla_variants: bool) -> dict[str, Any]:
    tx = optax.adam(LEARNING_RATE)
    x_dev, y_dev = jax.numpy.asarray(x), jax.numpy.asarray(y)
    steppers, compile_s, memory = {}, {}, {}
    for label, method, sgt_options, use_xla in JAX_VARIANTS + (XLA_VARIANTS if xla_variants else ()):
        impl = {"conv_impl": "xla", "pool_impl": "xla"} if use_xla else {}
        model = sgt.models.get(name, **spec.options, **{o: v for o, v in impl.items() if o in spec.impl_options})
        config = sgt.train.SGTConfig(k=k, **sgt_options) if method == "sgt" else None
        step = sgt.train.make_train_step(model, tx, method=method, config=config)
        box = {"state": sgt.train.create_train_state(model, tx, x, seed)}
        t0 = time.perf_counter()
        memory[label] = peak_memory(step.jitted, box["state"], x_dev, y_dev)  # compiles (the step reuses it)
        memory[label]["compile_s"] = time.perf_counter() - t0

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
    return {label: {**summarize(times[label], len(x)), "first_call_s": compile_s[label], "memory": memory[label]}
            for label in steppers}


# --------------------------------------------------------------------------------------------
# PyTorch peer, from Algorithm 1 of the paper.
# --------------------------------------------------------------------------------------------


def torch_mask_lowest(x, saliency, k: float):
    """x with the k fraction of lowest-|saliency| units of each sample replaced by U[min, max].

    Images x, saliency [B, C, H, W]: a unit is a pixel scored by |channel mean of the saliency|,
    the values are uniform in each sample's own per-channel [min, max]. Time series [B, T, F]: a
    unit is one cell, the values uniform in the sample's [min, max]. Vectorised over the batch.
    """
    if x.dim() == 3:
        b = x.shape[0]
        scores = saliency.abs().reshape(b, -1)
        idx = torch.topk(scores, int(k * scores.shape[1]), dim=1, largest=False).indices
        mask = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, idx, True).view_as(x)
        lo, hi = x.amin(dim=(1, 2), keepdim=True), x.amax(dim=(1, 2), keepdim=True)
        return torch.where(mask, lo + (hi - lo) * torch.rand_like(x), x)
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
    x_t = peers.to_torch(name, x)
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
    """Per JAX variant: time over our ordinary step, and throughput over the torch peer's matching
    step (ordinary variants over torch's ordinary, SGT variants over torch's SGT)."""
    out: dict[str, Any] = {}
    jx = result["jax"]
    for label in jx:
        if label != "standard":
            out[f"jax_{label}_over_standard"] = jx[label]["median_ms"] / jx["standard"]["median_ms"]
    if result.get("torch"):
        tt = result["torch"]
        out["torch_sgt_over_standard"] = tt["sgt"]["median_ms"] / tt["standard"]["median_ms"]
        for label in jx:
            peer = "standard" if label.startswith("standard") else "sgt"
            out[f"jax_{label}_over_torch_{peer}_throughput"] = jx[label]["images_per_s"] / tt[peer]["images_per_s"]
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
        f"- Batch: {batch_text(report)}; timed steps: {report['steps'] or 'per model (below)'} "
        f"(after {report['warmup']} warm-up step(s) per variant, the first of which compiles); SGT k = {report['k']}; "
        f"optimizer Adam lr {LEARNING_RATE:g} in both frameworks",
        f"- Load average (1, 5, 15 min) before / after: {report['loadavg_before']} / {report['loadavg_after']}"
        f" (`uptime` before: {report.get('uptime', '')})",
    ]
    lines += _report.contention_line(report["other_jobs"])
    if report.get("note"):
        lines.append(f"- Note: {report['note']}")
    lines += ["", "Speed numbers come from one process on one machine: compare the ratios, not the "
              "absolute milliseconds across machines.", ""]
    d = report.get("defaults", {})
    if d:
        convs = ", ".join(f"{n} `{r['conv_impl_default']}`" for n, r in report["models"].items()
                          if r.get("conv_impl_default"))
        lines += [f"Default paths on this backend (`{d.get('backend')}`): convolution per model ({convs}), "
                  f"max-pool `{d.get('pool_impl')}`, bottom-k selection `{d.get('selection')}`.", ""]
    summary = ["| model | batch | ours ordinary / torch | ours SGT (inference) / torch SGT | "
               "ours SGT (shared) / torch SGT | ours SGT (low memory) / torch SGT |", "|---|---:|---:|---:|---:|---:|"]
    for name, res in report["models"].items():
        r = res.get("ratios", {})
        if "torch_sgt_over_standard" in r:
            summary.append(
                f"| {name} | {res['batch_size']} | {r['jax_standard_over_torch_standard_throughput']:.2f} | "
                f"{r['jax_sgt-inference_over_torch_sgt_throughput']:.2f} | "
                f"{r['jax_sgt-shared_over_torch_sgt_throughput']:.2f} | "
                f"{r['jax_sgt-inference-lowmem_over_torch_sgt_throughput']:.2f} |")
    if len(summary) > 2:
        lines += ["Throughput ratios, ours / PyTorch peer (above 1: ours is faster), from medians:", "", *summary, ""]
    for name, res in report["models"].items():
        if "skipped" in res:
            lines += [f"## {name}", "", f"Skipped: {res['skipped']}", ""]
            continue
        b = res["batch_size"]
        lines += [f"## {name} (batch {b}, input {tuple(res['input_shape'])}, {res['steps']} timed steps)", "",
                  "| framework | step | median ms/step | mean ms/step | std ms | images/s | × ordinary | "
                  "× torch throughput | peak MB (XLA) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        r = res["ratios"]
        for fw in ("jax", "torch"):
            if not res.get(fw):
                continue
            base = res[fw]["standard"]["median_ms"]
            for label, t in res[fw].items():
                text = VARIANT_TEXT.get(label, label) if fw == "jax" else {
                    "standard": "ordinary", "sgt": "SGT (Algorithm 1)"}[label]
                peer = "standard" if label.startswith("standard") else "sgt"
                vs_torch = r.get(f"jax_{label}_over_torch_{peer}_throughput") if fw == "jax" else None
                mem = t.get("memory", {}).get("peak")
                lines.append(f"| {'JAX (sgt)' if fw == 'jax' else 'PyTorch peer'} | {text} | {t['median_ms']:.2f} | "
                             f"{t['mean_ms']:.2f} | {t['std_ms']:.2f} | {t['images_per_s']:.0f} | "
                             f"{t['median_ms'] / base:.2f} | {'' if vs_torch is None else f'{vs_torch:.2f}'} | "
                             f"{'' if mem is None else f'{mem / 2**20:.0f}'} |")
        if res.get("torch_skipped"):
            lines += ["", f"PyTorch peer: {res['torch_skipped']}"]
        if "torch_sgt_over_standard" in r:
            lines += ["", f"PyTorch SGT / PyTorch ordinary: {r['torch_sgt_over_standard']:.2f}; "
                          f"ours SGT-inference / ours ordinary: {r['jax_sgt-inference_over_standard']:.2f}."]
        jx = res["jax"]
        lines += ["", "JAX compile time (lower + compile), s: " + ", ".join(
            f"{label} {jx[label]['memory']['compile_s']:.1f}" for label in jx), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                   help=f"model names (known to the benchmark: {sorted(MODELS)})")
    p.add_argument("--batch-size", nargs="+", default=None, metavar="N|NAME=N",
                   help="batch size for every model (N) or for one (NAME=N), e.g. '--batch-size resnet18=64'; "
                        "default per model: " + ", ".join(f"{n} {s.default_batch}" for n, s in MODELS.items()))
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per variant (default 20; resnet20 10, resnet18 5)")
    p.add_argument("--xla-variants", nargs="*", default=["mnist_cnn"], metavar="NAME",
                   help="models also timed with XLA's own convolution and pooling (the pre-nn_ops paths)")
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
    if (args.steps is not None and args.steps < 1) or args.warmup < 1:
        p.error("--steps and --warmup must be >= 1")
    return args


def default_conv_path(name: str, spec: ModelSpec, x: np.ndarray) -> str | None:
    """The convolution path the model takes by default here: "xla", "slices" or None (no convolution)."""
    model = sgt.models.get(name, **spec.options)
    program = str(jax.make_jaxpr(lambda x: model.apply(model.init(jax.random.PRNGKey(0), x), x))(x[:1]))
    if "conv_general_dilated" in program:
        return "xla"
    return "slices" if "conv_impl" in spec.impl_options else None


def _uptime() -> str:
    """`uptime`'s line (the load of the shared machine), or "" where it is missing."""
    import subprocess

    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def steps_for(args, name: str) -> int:
    return args.steps or MODELS[name].steps or 20


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
        "steps": args.steps,  # None: per model, in models.<name>.steps
        "warmup": args.warmup,
        "defaults": {"backend": jax.default_backend(),
                     "pool_impl": sgt.nn_ops.default_pool_impl(), "selection": sgt.masking.default_selection()},
        "uptime": _uptime(),
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
        steps = steps_for(args, name)
        print(f"[{name}] batch {batch}, {steps} steps: JAX ...", flush=True)
        res: dict[str, Any] = {"batch_size": batch, "input_shape": list(spec.input_shape), "steps": steps}
        res["conv_impl_default"] = default_conv_path(name, spec, x)
        res["jax"] = bench_jax(name, spec, x, y, steps=steps, warmup=args.warmup, k=args.k, seed=args.seed,
                               xla_variants=name in args.xla_variants)
        if args.no_torch or torch is None:
            res["torch_skipped"] = "--no-torch" if args.no_torch else "torch is not installed"
        elif name not in peers.PEERS:
            res["torch_skipped"] = f"no torch peer for {name} in benchmarks/peers.py or more_peers.py"
        else:
            print(f"[{name}] PyTorch peer ...", flush=True)
            torch.manual_seed(args.seed)
            res["torch"] = bench_torch(name, spec, x, y, steps=steps, warmup=args.warmup, k=args.k,
                                       seed=args.seed)
        res["ratios"] = ratios(res)
        report["models"][name] = res
        for fw in ("jax", "torch"):
            for label, t in (res.get(fw) or {}).items():
                print(f"  {fw:5s} {label:22s} median {t['median_ms']:8.2f} ms  mean {t['mean_ms']:8.2f} ms  "
                      f"{t['images_per_s']:8.0f} img/s")
        for key, val in res["ratios"].items():
            print(f"  {key}: {val:.3f}")
    report["loadavg_after"] = _report.loadavg()
    report["uptime_after"] = _uptime()
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
