"""Attribution speed: the `sgt.saliency` methods against Captum, same weights and inputs, one process.

Run from the repository root (needs torch and captum: `pip install -e '.[bench]'`):

    python benchmarks/saliency_speed.py                      # full run, results in benchmarks/results/
    python benchmarks/saliency_speed.py --models mnist_cnn   # one model
    python benchmarks/saliency_speed.py --quick              # smoke test: batch 4, 4 steps/samples, 1 repeat

For every model (default: mnist_cnn and resnet18) the Flax model and its PyTorch peer
(`benchmarks/peers.py`, weights copied from the Flax variables) attribute one fixed random batch
to random target classes with each method, ours (jitted) and Captum's:

    Grad        ours: build("Grad", f)                       Captum: Saliency(abs=False)
    InputXGrad  ours: build("InputXGrad", f)                 Captum: InputXGradient
    IG          ours: build("IG", f, baseline=0, steps, method="gausslegendre", batch_size)
                Captum: IntegratedGradients(n_steps, method="gausslegendre", internal_batch_size)
    SmoothGrad  ours: build("SmoothGrad", f, samples, sigma, relative=False, batch_size)
                Captum: NoiseTunnel(Saliency), nt_type="smoothgrad", nt_samples, stdevs=sigma,
                        nt_samples_batch_size, abs=False
    GradSHAP    ours: build("GradSHAP", f, baselines, samples, batch_size)
                Captum: GradientShap(n_samples, stdevs=0)
    DeepLIFT    ours: build("DeepLIFT", f, baseline=0)
                Captum: DeepLift (the peers use nn.ReLU / nn.MaxPool2d modules, which it hooks)
    DeepSHAP    ours: build("DeepSHAP", f, baselines)     Captum: DeepLiftShap
    GuidedBP    ours: build("GuidedBP", f)                 Captum: GuidedBackprop

The method list is `sgt.saliency.REGISTRY` (less `NOT_TIMED`): a method registered there is timed
too, on our side only where Captum has no counterpart here.

The memory knob: `--chunk` images go through the network at once in the sample-expanding methods
(IG, SmoothGrad, GradientSHAP). That is `chunk // batch` path points or noise samples per chunk for
ours (`batch_size`) and for Captum's `nt_samples_batch_size`, and `chunk // batch × batch` images for
Captum's `internal_batch_size`. Captum's GradientShap has no such argument; it is chunked by calling it
once per chunk with `n_samples` = the chunk's samples and averaging the calls weighted by their
sample counts, the loop NoiseTunnel runs for `nt_samples_batch_size`.

Our functions are `jax.jit`-compiled first (lowering + compilation time reported separately), then
each side runs `--warmup` untimed calls; then, `--repeats` times, one call of ours and one of Captum's
in turn (so that a change in the machine's load hits both alike). A call of ours is timed up to
`jax.block_until_ready`; Captum's on the CPU is synchronous (`torch.cuda.synchronize` on a GPU).
The reported time is the median; the ratio is ours / Captum (below 1: ours is faster).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (REPO_ROOT, BENCH_DIR):  # run as `python benchmarks/saliency_speed.py` from a checkout
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import _report  # noqa: E402
import sgt.models  # noqa: E402
import sgt.saliency  # noqa: E402
import sgt.xla  # noqa: E402

try:  # `pip install -e '.[bench]'`
    import captum
    import captum.attr as captum_attr
    import torch

    import peers
except ImportError as _error:  # pragma: no cover - depends on the environment
    torch = captum = captum_attr = peers = None
    _IMPORT_ERROR = _error

DEFAULT_OUT_DIR = REPO_ROOT / "benchmarks" / "results"
QUICK_BATCH, QUICK_STEPS, QUICK_CHUNK = 4, 4, 8
DEFAULT_CHUNK = 320  # images per network pass: 5 path points / samples at batch 64

# Reference timings measured elsewhere (a GPU), quoted in the report as context, with their source.
REFERENCE = json.loads((BENCH_DIR / "reference_timings.json").read_text())


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    input_shape: tuple[int, ...]  # one example, NHWC without the batch axis
    num_classes: int
    default_batch: int


MODELS: dict[str, ModelSpec] = {
    "mnist_cnn": ModelSpec((28, 28, 1), 10, 64),
    "resnet18": ModelSpec((32, 32, 3), 10, 64),
}


# --------------------------------------------------------------------------------------------
# The methods: ours from the registry, Captum's counterpart where there is one.
# --------------------------------------------------------------------------------------------

NOT_TIMED = {"Occlusion": "needs a window per input shape"}


def benchmark_methods() -> tuple[str, ...]:
    """Every registered saliency method the benchmark can call with its context alone."""
    return tuple(name for name in sgt.saliency.names() if name not in NOT_TIMED)




@dataclasses.dataclass(frozen=True)
class Setting:
    """Everything a method's two sides are built from."""

    steps: int  # IG path points
    samples: int  # SmoothGrad / GradientSHAP draws
    sigma: float  # SmoothGrad noise σ, absolute
    chunk_points: int | None  # path points / samples per chunk; None: all at once


def method_options(method: str, s: "Setting") -> dict[str, Any]:
    """The options our side gets beyond the shared context (matching Captum's settings)."""
    return {
        "IG": dict(steps=s.steps, method="gausslegendre", batch_size=s.chunk_points),
        "SmoothGrad": dict(samples=s.samples, sigma=s.sigma, relative=False, batch_size=s.chunk_points),
        "GradSHAP": dict(samples=s.samples, batch_size=s.chunk_points),
    }.get(method, {})


def ours_attribution(method: str, model, s: Setting) -> Callable:
    """A function (variables, x, target, key, baseline, baselines) -> attributions, to be jitted.

    Variables and baselines are arguments, not constants baked into the compiled program.
    """
    def attribute(variables, x, target, key, baseline, baselines):
        def f(z):
            return model.apply(variables, z, train=False)

        attr = sgt.saliency.build(method, f, baseline=baseline, baselines=baselines, **method_options(method, s))
        return attr(x, target, key=key)

    return attribute


def captum_attribution(method: str, net, s: Setting, batch: int) -> Callable:
    """A function (x, target, baseline, baselines) -> attributions (NCHW tensors) with Captum, or None."""
    chunk_images = None if s.chunk_points is None else s.chunk_points * batch
    if method == "Grad":
        sal = captum_attr.Saliency(net)
        return lambda x, t, b, bs: sal.attribute(x, target=t, abs=False)
    if method == "InputXGrad":
        ixg = captum_attr.InputXGradient(net)
        return lambda x, t, b, bs: ixg.attribute(x, target=t)
    if method == "IG":
        ig = captum_attr.IntegratedGradients(net)
        return lambda x, t, b, bs: ig.attribute(x, baselines=b, target=t, n_steps=s.steps, method="gausslegendre",
                                                internal_batch_size=chunk_images)
    if method == "SmoothGrad":
        nt = captum_attr.NoiseTunnel(captum_attr.Saliency(net))
        return lambda x, t, b, bs: nt.attribute(x, nt_type="smoothgrad", nt_samples=s.samples,
                                                nt_samples_batch_size=s.chunk_points, stdevs=s.sigma,
                                                target=t, abs=False)
    if method == "GradSHAP":
        gs = captum_attr.GradientShap(net)

        def gradient_shap(x, t, b, bs):
            per_call = s.samples if s.chunk_points is None else min(s.chunk_points, s.samples)
            total, done = None, 0
            while done < s.samples:
                n = min(per_call, s.samples - done)
                part = gs.attribute(x, baselines=bs, n_samples=n, stdevs=0.0, target=t) * n
                total = part if total is None else total + part
                done += n
            return total / s.samples

        return gradient_shap
    if method == "DeepLIFT":
        dl = captum_attr.DeepLift(net)
        return lambda x, t, b, bs: dl.attribute(x, baselines=b, target=t)
    if method == "DeepSHAP":
        dls = captum_attr.DeepLiftShap(net)
        return lambda x, t, b, bs: dls.attribute(x, baselines=bs, target=t)
    if method == "GuidedBP":
        gbp = captum_attr.GuidedBackprop(net)
        return lambda x, t, b, bs: gbp.attribute(x, target=t)
    return None  # no Captum counterpart: ours is timed alone


def method_settings_text(method: str, s: Setting, batch: int) -> str:
    chunk = ("all at once" if s.chunk_points is None
             else f"chunks of {s.chunk_points} × {batch} = {s.chunk_points * batch} images")
    return {
        "Grad": "signed gradient",
        "IG": f"{s.steps} steps, Gauss–Legendre, zero baseline; {chunk}",
        "SmoothGrad": f"{s.samples} samples, σ = {s.sigma:g} (absolute); {chunk}",
        "GradSHAP": f"{s.samples} samples, stdevs 0; {chunk}",
        "DeepLIFT": "Rescale rule, zero baseline",
        "DeepSHAP": "Rescale rule, every baseline of the pool",
    }.get(method, "")


# --------------------------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------------------------


def summarize(times_s: list[float]) -> dict[str, Any]:
    ms = [t * 1e3 for t in times_s]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "times_ms": ms}


def bench_method(method: str, ours_call: Callable[[], Any], captum_call: Callable[[], Any] | None, *,
                 warmup: int, repeats: int, sync_torch: Callable[[], None]) -> tuple[dict[str, Any], Any, Any]:
    """Time one method both ways (ours alone when `captum_call` is None); returns the record and the
    warm-up outputs of ours and Captum's (None without Captum)."""
    def run_ours():
        return jax.block_until_ready(ours_call())

    def run_captum():
        out = captum_call()
        sync_torch()
        return out

    sides = (("ours", run_ours),) + ((("captum", run_captum),) if captum_call is not None else ())
    record: dict[str, Any] = {side: {} for side, _ in sides}
    captum_out = None
    for side, run in sides:
        t0 = time.perf_counter()
        out = run()
        record[side]["first_call_s"] = time.perf_counter() - t0
        for _ in range(warmup - 1):
            out = run()
        if side == "ours":
            ours_out = np.asarray(out)
        else:
            captum_out = out.detach().cpu().numpy().transpose(0, 2, 3, 1)  # NCHW -> NHWC
        del out
    times: dict[str, list[float]] = {side: [] for side, _ in sides}
    for _ in range(repeats):
        for side, run in sides:
            t0 = time.perf_counter()
            out = run()
            times[side].append(time.perf_counter() - t0)
            del out
    for side in times:
        record[side].update(summarize(times[side]))
    record["ratio_ours_over_captum"] = (record["ours"]["median_ms"] / record["captum"]["median_ms"]
                                        if captum_call is not None else None)
    return record, ours_out, captum_out


AGREE_TOL = 1e-4


def agreement(ours: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    """How far ours is from Captum's: max |ours − Captum| (absolute; relative to max |Captum|), and per
    sample the same relative to that sample's max |Captum|: its median and how many samples are within
    `AGREE_TOL`.

    A gradient is discontinuous where a ReLU input or two max-pool inputs are within float32 rounding
    of a tie, so an isolated sample may differ by much more than rounding in both frameworks (each
    against a float64 reference, too); the per-sample counts show whether a difference is such an
    isolated sample or systematic.
    """
    diff = np.abs(ours - theirs).reshape(ours.shape[0], -1).max(1)
    scale = np.abs(theirs).reshape(theirs.shape[0], -1).max(1)
    per_sample = diff / np.maximum(scale, 1e-30)
    return {"max_abs_diff": float(diff.max()), "max_rel_diff": float(diff.max() / max(scale.max(), 1e-30)),
            "median_sample_rel_diff": float(np.median(per_sample)),
            "samples_within_tol": int((per_sample <= AGREE_TOL).sum()), "samples": int(ours.shape[0]),
            "tol": AGREE_TOL}


def completeness_error(attributions: np.ndarray, gain: np.ndarray) -> float:
    """max over samples of |Σ attributions − (f(x) − f(baseline))_target|, relative to max |gain|."""
    sums = attributions.reshape(attributions.shape[0], -1).astype(np.float64).sum(1)
    return float(np.abs(sums - gain).max() / max(np.abs(gain).max(), 1e-30))


def bench_model(name: str, args, torch_device) -> dict[str, Any]:
    spec = MODELS[name]
    batch = batch_for(args, name)
    chunk_images = chunk_for(args, name)
    chunk_points = None if chunk_images == 0 else max(1, chunk_images // batch)
    s = Setting(steps=args.steps, samples=args.samples, sigma=args.sigma, chunk_points=chunk_points)

    rng = np.random.default_rng(args.seed)
    x = rng.random((batch, *spec.input_shape), dtype=np.float32)
    target = rng.integers(0, spec.num_classes, batch).astype(np.int32)
    baseline = np.zeros_like(x)
    baselines = rng.random((args.shap_baselines, *spec.input_shape), dtype=np.float32)

    model = sgt.models.get(name, num_classes=spec.num_classes)
    variables = peers.perturbed(model.init(jax.random.PRNGKey(args.seed), x[:1], train=False), args.seed)
    peer_check = peers.check_peer(name, variables, x)
    net = peers.torch_peer(name, variables).to(torch_device)
    for p in net.parameters():  # Captum needs input gradients only
        p.requires_grad_(False)

    res: dict[str, Any] = {
        "batch_size": batch,
        "input_shape": list(spec.input_shape),
        "chunk_images": chunk_images if chunk_points is not None else None,
        "chunk_points": chunk_points,
        "peer_logits_check": peer_check,
        "methods": {},
    }
    print(f"[{name}] batch {batch}; chunk: "
          + ("none" if chunk_points is None else f"{chunk_points} points/samples × {batch} = "
                                                 f"{chunk_points * batch} images")
          + f"; torch peer logits max |Δ| {peer_check['max_abs_diff']:.1e}", flush=True)

    jax_args = [jax.device_put(a) for a in (variables, x, target, jax.random.PRNGKey(args.seed + 1),
                                             baseline, baselines)]
    t_x, t_target = peers.to_nchw(x).to(torch_device), torch.from_numpy(target.astype(np.int64)).to(torch_device)
    t_baseline, t_baselines = peers.to_nchw(baseline).to(torch_device), peers.to_nchw(baselines).to(torch_device)
    sync_torch = torch.cuda.synchronize if torch_device.type == "cuda" else (lambda: None)
    logits = np.asarray(model.apply(variables, np.concatenate([x, baseline]), train=False), np.float64)
    gain = logits[np.arange(batch), target] - logits[batch + np.arange(batch), target]

    for method in args.methods:
        entry: dict[str, Any] = {"settings": method_settings_text(method, s, batch)}
        try:
            t0 = time.perf_counter()
            compiled = sgt.xla.jit(ours_attribution(method, model, s)).lower(*jax_args).compile()
            entry["ours_compile_s"] = time.perf_counter() - t0
            theirs = captum_attribution(method, net, s, batch)
            record, ours_out, captum_out = bench_method(
                method, lambda: compiled(*jax_args),
                None if theirs is None else (lambda: theirs(t_x, t_target, t_baseline, t_baselines)),
                warmup=args.warmup, repeats=args.repeats, sync_torch=sync_torch)
        except Exception as e:  # noqa: BLE001 - one failing method should not lose the others' numbers
            print(f"  [error] {method}: {type(e).__name__}: {e}", flush=True)
            entry["error"] = f"{type(e).__name__}: {e}"
            res["methods"][method] = entry
            continue
        entry.update(record)
        info = sgt.saliency.get(method)
        if info.random or captum_out is None:
            entry["agreement"] = None  # different random draws, or nothing to compare with
        else:
            entry["agreement"] = agreement(ours_out, captum_out)
        if info.complete and method != "DeepSHAP":  # DeepSHAP sums to f(x) − mean f(pool), not to `gain`
            entry["completeness_error"] = {"ours": completeness_error(ours_out, gain),
                                           "captum": None if captum_out is None
                                           else completeness_error(captum_out, gain)}
        res["methods"][method] = entry
        a = entry["agreement"]
        agree = ("" if a is None else f"  max rel diff {a['max_rel_diff']:.1e} "
                                      f"({a['samples_within_tol']}/{a['samples']} samples within {a['tol']:.0e})")
        if "completeness_error" in entry:
            agree += f"  completeness error ours {entry['completeness_error']['ours']:.1e}"
        theirs_text = ("no Captum counterpart" if record["ratio_ours_over_captum"] is None else
                       f"Captum {record['captum']['median_ms']:10.1f} ms  ours/Captum "
                       f"{record['ratio_ours_over_captum']:6.2f}")
        print(f"  {method:12s} ours {record['ours']['median_ms']:10.1f} ms  {theirs_text}  "
              f"(compile {entry['ours_compile_s']:.1f} s){agree}", flush=True)
    return res


# --------------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------------

LABELS = {"Grad": "Saliency", "InputXGrad": "InputXGradient", "IG": "Integrated Gradients",
          "SmoothGrad": "SmoothGrad", "GradSHAP": "GradientSHAP", "DeepLIFT": "DeepLIFT", "DeepSHAP": "DeepLIFT-SHAP",
          "GuidedBP": "Guided Backprop"}


def markdown(report: dict[str, Any]) -> str:
    m, v, st = report["machine"], report["versions"], report["settings"]
    lines = [
        f"# Attribution speed, ours vs Captum: `{report['tag']}`",
        "",
        f"- Date (UTC): {report['date_utc']}",
        f"- Command: `{report['command']}`",
        _report.machine_line(m) + f"; Captum / torch on `{report['torch_device']}`",
        f"- Platform: {m['platform']}",
        _report.versions_line(v),
        "- Batch: " + ", ".join(f"{n} {r['batch_size']}" for n, r in report["models"].items()) + "; chunk: "
        + ", ".join(f"{n} " + ("none" if r["chunk_points"] is None else
                               f"{r['chunk_points']} points/samples ({r['chunk_points'] * r['batch_size']} images)")
                    for n, r in report["models"].items()),
        f"- IG steps {st['steps']} (Gauss–Legendre); SmoothGrad / GradientSHAP samples {st['samples']}; "
        f"SmoothGrad σ {st['sigma']:g} (absolute); GradientSHAP baselines: {st['shap_baselines']} random images",
        f"- Timing: median of {report['repeats']} call(s) per side after {report['warmup']} untimed call(s), "
        "ours and Captum alternating; ours jitted, compile time separate",
        f"- Load average (1, 5, 15 min) before / after: {report['loadavg_before']} / {report['loadavg_after']}",
    ]
    lines.append("- Our functions: `sgt.saliency.build(NAME, f, ...)` for " + ", ".join(st["methods"]))
    if m["jax_backend"] != "cpu" and report["torch_device"] == "cpu":
        lines.append(f"- **Not comparable:** ours ran on `{m['jax_device_kind']}`, Captum on the CPU "
                     "(this torch has no CUDA); the ratios compare devices, not implementations.")
    lines += _report.contention_line(report["other_jobs"])
    if report.get("note"):
        lines.append(f"- Note: {report['note']}")
    lines += ["", "Ratio = ours / Captum from the medians (below 1: ours is faster); speed-up = Captum / ours. "
              "Inputs are uniform random images, targets random classes; the weights are a random "
              "initialisation with random biases and BatchNorm statistics, copied into the torch peer. "
              "'max rel diff' = max |ours − Captum| / max |Captum| for the deterministic methods (the "
              "stochastic ones draw different noise), with the number of samples whose own max difference is "
              "within 1e-4 of their max |Captum|: a gradient jumps where a ReLU input or a max-pool pair is "
              "within float32 rounding of a tie, so a few samples may differ in both frameworks (each "
              "against a float64 reference too) while the rest agree to rounding. 'completeness' (IG, DeepLIFT) = max over samples of "
              "|Σ attributions − (f(x) − f(0))_target| / max |f(x) − f(0)|, ours / Captum's: where the two "
              "disagree, it shows which one keeps summation to delta. DeepLIFT through a max-pool (`mnist_cnn`) "
              "is not expected to match Captum's to rounding: the two max-pool rules differ, and Captum's has "
              "known problems (captum issue #1276).", ""]
    for name, res in report["models"].items():
        pc = res["peer_logits_check"]
        lines += [f"## {name} (batch {res['batch_size']}, input {tuple(res['input_shape'])})", "",
                  f"Torch peer vs Flax logits: max |Δ| {pc['max_abs_diff']:.1e} (logits up to "
                  f"{pc['logit_scale']:.3g}).", "",
                  "| method | settings | ours ms | Captum ms | ours / Captum | speed-up | ours compile s "
                  "| max rel diff (samples within 1e-4) | completeness ours / Captum |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for method, e in res["methods"].items():
            label = LABELS.get(method, method)
            if "error" in e:
                lines.append(f"| {label} | {e['settings']} — error: {e['error'][:200]} | | | | | | | |")
                continue
            a = e["agreement"]
            agree = ("n/a (random)" if a is None
                     else f"{a['max_rel_diff']:.1e} ({a['samples_within_tol']}/{a['samples']})")
            r = e["ratio_ours_over_captum"]
            ce = e.get("completeness_error")
            fmt = lambda v: "—" if v is None else f"{v:.1e}"  # noqa: E731
            complete = "" if ce is None else f"{fmt(ce['ours'])} / {fmt(ce['captum'])}"
            theirs = "— | — | —" if r is None else f"{e['captum']['median_ms']:.1f} | {r:.2f} | {1 / r:.2f}×"
            lines.append(f"| {label} | {e['settings']} | {e['ours']['median_ms']:.1f} | {theirs} | "
                         f"{e['ours_compile_s']:.1f} | {agree} | {complete} |")
        lines.append("")
    ref = REFERENCE["captum_h200_resnet18_batch64_ms"]
    lines += ["## Context: GPU reference", "",
              f"Captum on one H200: Saliency {ref['Grad']} ms, IG {ref['IG']} ms, GradientSHAP {ref['GradSHAP']} ms, "
              f"SmoothGrad {ref['SmoothGrad']} ms for ResNet-18 at batch 64 (50 steps / samples); a first jitted "
              f"JAX IG took {REFERENCE['jax_prototype_ig_h200_ms']} ms there ({REFERENCE['source']}). "
              "Those numbers are not from this run or this machine.", ""]
    if m["jax_backend"] == "cpu":
        lines += ["On the CPU, XLA's convolutions were measured at about a third of PyTorch's oneDNN "
                  "throughput (one 3×3 conv of the MNIST CNN: 46 vs 154 GFLOP/s), which bounds "
                  "the ratio of the convolution-heavy methods here.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="NAME",
                   help=f"models ({', '.join(MODELS)})")
    methods = benchmark_methods()
    p.add_argument("--methods", nargs="+", default=list(methods), choices=list(methods), metavar="METHOD",
                   help=f"methods from sgt.saliency.REGISTRY ({', '.join(methods)})")
    p.add_argument("--batch-size", nargs="+", default=None, metavar="N|NAME=N",
                   help="batch for every model (N) or one (NAME=N), e.g. '--batch-size resnet18=16'; "
                        "default 64 for every model")
    p.add_argument("--chunk", nargs="+", default=[str(DEFAULT_CHUNK)], metavar="N|NAME=N",
                   help="images through the network at once in IG / SmoothGrad / GradientSHAP, for every "
                        "model (N) or one (NAME=N); rounded down to a multiple of the batch (at least one "
                        "batch); 0 = everything at once (batch × steps images: a lot of memory); a model not "
                        f"named gets {DEFAULT_CHUNK}")
    p.add_argument("--steps", type=int, default=50, help="Integrated Gradients path points")
    p.add_argument("--samples", type=int, default=50, help="SmoothGrad and GradientSHAP samples")
    p.add_argument("--sigma", type=float, default=0.15,
                   help="SmoothGrad noise σ, absolute (inputs are uniform in [0, 1])")
    p.add_argument("--shap-baselines", type=int, default=16, help="GradientSHAP baseline set size")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per method and side (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per method and side after compiling")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: batch {QUICK_BATCH}, {QUICK_STEPS} steps / samples, chunk {QUICK_CHUNK} "
                        "images, 1 repeat; tag gets '-quick'")
    p.add_argument("--tag", default=None, help="machine tag in the file names (default: e.g. cpu-2core)")
    p.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    p.add_argument("--note", default=None, help="free text added to the report")
    args = p.parse_args(argv)
    try:
        args.batch_all, args.batch_per_model = _report.per_model_ints(args.batch_size, "--batch-size", MODELS)
        args.chunk_all, args.chunk_per_model = _report.per_model_ints(args.chunk, "--chunk", MODELS, minimum=0)
    except ValueError as e:
        p.error(str(e))
    if args.quick:
        args.batch_all, args.batch_per_model = QUICK_BATCH, {}
        args.chunk_all, args.chunk_per_model = QUICK_CHUNK, {}
        args.steps = args.samples = QUICK_STEPS
        args.repeats = 1
    for option in ("steps", "samples", "shap_baselines", "repeats", "warmup"):
        if getattr(args, option) < 1:
            p.error(f"--{option.replace('_', '-')} must be >= 1")
    if args.sigma < 0:
        p.error("--sigma must be >= 0")
    return args


def batch_for(args, name: str) -> int:
    return args.batch_per_model.get(name) or args.batch_all or MODELS[name].default_batch


def chunk_for(args, name: str) -> int:
    """Images per chunk (0: no chunking): --chunk NAME=N, else --chunk N, else DEFAULT_CHUNK."""
    if name in args.chunk_per_model:
        return args.chunk_per_model[name]
    return DEFAULT_CHUNK if args.chunk_all is None else args.chunk_all


def main(argv=None) -> int:
    args = parse_args(argv)
    if torch is None:
        print(f"saliency_speed.py needs torch and captum (pip install -e '.[bench]'): {_IMPORT_ERROR}",
              file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", module="captum")  # DeepLift's note about setting hooks, every call
    torch.set_num_threads(_report.core_count())
    torch_device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    report: dict[str, Any] = {
        **_report.header(args, argv, torch, extra=("captum",)),
        "torch_device": str(torch_device),
        "settings": {"steps": args.steps, "ig_method": "gausslegendre", "samples": args.samples,
                     "sigma": args.sigma, "sigma_kind": "absolute", "shap_baselines": args.shap_baselines,
                     "baseline": "zeros (IG, DeepLIFT)", "batch_size": args.batch_all,
                     "batch_size_per_model": args.batch_per_model, "chunk_images": args.chunk_all,
                     "chunk_images_per_model": args.chunk_per_model, "methods": args.methods},
        "repeats": args.repeats,
        "warmup": args.warmup,
        "seed": args.seed,
        "timing": "per method: jit lowering + compilation timed separately; warm-up call(s) per side; then "
                  "repeats alternating ours / Captum; wall time per call with jax.block_until_ready (ours) "
                  "and synchronous torch (Captum); median reported",
        "loadavg_before": _report.loadavg(),
        "other_jobs": _report.other_sgt_jobs(),
        "note": args.note,
        "models": {},
    }
    for name in args.models:
        report["models"][name] = bench_model(name, args, torch_device)
    report["loadavg_after"] = _report.loadavg()
    report["other_jobs"] = sorted(set(report["other_jobs"]) | set(_report.other_sgt_jobs()))
    _report.write_report(report, args.out_dir / f"saliency_speed_{report['tag']}", markdown(report))
    errors = [(n, m) for n, r in report["models"].items() for m, e in r["methods"].items() if "error" in e]
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
