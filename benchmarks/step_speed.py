"""Train-step speed: ordinary vs saliency guided training (SGT), JAX and a PyTorch peer.

Run from the repository root:

    python benchmarks/step_speed.py                 # full run (all five models), results in benchmarks/results/
    python benchmarks/step_speed.py --models mnist_cnn resnet18
    python benchmarks/step_speed.py --quick         # smoke test: batch 16, 3 steps
    python benchmarks/step_speed.py --dtypes float32 bfloat16 --selections radix top_k   # also bf16, both selections
    bash benchmarks/gpu.sh                          # the GPU run (one invocation of this script)

For every model name given (default: mnist_cnn resnet20 resnet18 tcn lstm) the script times, on one
fixed random batch:

* JAX: `sgt.train.make_train_step(method="standard")`, the SGT step with
  `saliency_pass="inference"` and with `saliency_pass="shared"`, and the SGT step in its
  low-memory mode (`SGTConfig(low_memory=True)`, inference saliency pass), all with the library's
  default implementations on this backend (`sgt.nn_ops` convolution and pooling, `sgt.masking`
  selection; recorded in the report); for the models named in `--xla-variants` (default: the MNIST
  CNN) also the ordinary and SGT steps with XLA's own convolution and pooling (`conv_impl="xla"`,
  `pool_impl="xla"`), the paths that were the default before `sgt.nn_ops`; for each bottom-k
  selection in `--selections` other than the backend's default, the SGT inference step with it
  (`sgt-inference-<selection>`); with `--dtypes ... bfloat16`, the ordinary and both SGT steps of
  the model built with bfloat16 compute (`sgt.models.get(name, dtype=jnp.bfloat16)`; parameters
  stay float32), labelled `...-bf16`;
* PyTorch (only if `torch` imports and `benchmarks/peers.py` / `more_peers.py` has a peer for the
  model): an ordinary step and an SGT step written from Algorithm 1 of Ismail et al. (NeurIPS
  2021), on the torch peer of the model, which starts from the same weights as the JAX steps; with
  bfloat16 among `--dtypes` also both under `torch.autocast(..., dtype=torch.bfloat16)`. Torch
  runs on CUDA when JAX's backend is a GPU and torch sees one, else on the CPU.

For each JAX variant the peak memory of the compiled step is read from XLA's
`compiled.memory_analysis()` (arguments + outputs + temporaries − donated aliases), its FLOPs per
step from XLA's `cost_analysis()`, hence the achieved FLOP/s (and, with `--peak-tflops`, the
fraction of a peak you give); on a GPU also the device allocator's peak (`memory_stats()`, which
cannot be reset: a running maximum) and, for torch, `torch.cuda.max_memory_allocated()`, reset
before each variant.

Everything runs in one process, so the numbers to read are the ratios (SGT / ordinary, ours /
torch); absolute milliseconds depend on the machine and on whatever else it is running.
Within one framework the variants are timed round-robin (step i of every variant before step
i + 1 of any), so slow drift of the machine's load hits all of them alike.
"""

from __future__ import annotations

import argparse
import contextlib
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
import jax.numpy as jnp  # noqa: E402
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
# The bfloat16-compute variants: label suffix "-bf16" on these (no low-memory or XLA-path ones).
BF16_VARIANTS = ("standard", "sgt-inference", "sgt-shared")
BF16_SUFFIX = "-bf16"
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
VARIANT_TEXT = {
    "standard": "ordinary",
    "sgt-inference": "SGT, saliency_pass=inference",
    "sgt-shared": "SGT, saliency_pass=shared",
    "sgt-inference-lowmem": "SGT, inference, low_memory=True",
    "standard-xla": "ordinary, XLA conv + pool",
    "sgt-inference-xla": "SGT, inference, XLA conv + pool",
}
TORCH_TEXT = {
    "standard": "ordinary",
    "sgt": "SGT (Algorithm 1)",
    "standard-autocast": "ordinary, autocast bf16",
    "sgt-autocast": "SGT (Algorithm 1), autocast bf16",
}
# Every label --variants accepts (the selection variants come from --selections instead).
BASE_LABELS = tuple(v[0] for v in JAX_VARIANTS + XLA_VARIANTS) + tuple(l + BF16_SUFFIX for l in BF16_VARIANTS)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One JAX step to time: `label` in the results, `method` and `sgt_options` for
    `make_train_step` / `SGTConfig`, `use_xla` XLA's own convolution and pooling, `dtype` the
    model's compute dtype (a key of DTYPES)."""

    label: str
    method: str
    sgt_options: dict[str, Any] | None = None
    use_xla: bool = False
    dtype: str = "float32"


def variant_text(label: str) -> str:
    """What a JAX variant is, in words, e.g. "SGT, saliency_pass=shared, bf16 compute"."""
    if label.endswith(BF16_SUFFIX):
        return variant_text(label[: -len(BF16_SUFFIX)]) + ", bf16 compute"
    if label in VARIANT_TEXT:
        return VARIANT_TEXT[label]
    if label.startswith("sgt-inference-"):
        return f"SGT, inference, selection={label[len('sgt-inference-'):]}"
    return label


def jax_variants(dtypes: list[str], selections: list[str], only: list[str] | None, xla: bool,
                 backend: str) -> list[Variant]:
    """The JAX steps to time for one model.

    float32: JAX_VARIANTS, one `sgt-inference-<selection>` per selection that is not the backend's
    default (the default one is `sgt-inference`), and XLA_VARIANTS when `xla`; bfloat16:
    BF16_VARIANTS with the suffix. `only` (from --variants) keeps those labels among JAX_VARIANTS,
    XLA_VARIANTS and the bf16 ones, always with the ordinary step of each dtype (the base of the
    ratios); the selection variants are kept whatever `only` says.
    """
    default = sgt.masking.default_selection(backend)
    out: list[Variant] = []
    if "float32" in dtypes:
        out += [Variant(label, method, options, use_xla) for label, method, options, use_xla in JAX_VARIANTS]
        out += [Variant(f"sgt-inference-{sel}", "sgt", {"saliency_pass": "inference", "selection": sel})
                for sel in dict.fromkeys(selections) if sel != default]
        if xla:
            out += [Variant(label, method, options, use_xla) for label, method, options, use_xla in XLA_VARIANTS]
    if "bfloat16" in dtypes:
        base = {label: (method, options) for label, method, options, _ in JAX_VARIANTS}
        out += [Variant(label + BF16_SUFFIX, *base[label], dtype="bfloat16") for label in BF16_VARIANTS]
    if only is not None:
        keep = set(only) | {"standard", "standard" + BF16_SUFFIX}
        out = [v for v in out if v.label in keep or v.label not in BASE_LABELS]
    return out


def base_label(label: str) -> str:
    """The ordinary step a JAX variant is compared with: the one of its own compute dtype."""
    return "standard" + BF16_SUFFIX if label.endswith(BF16_SUFFIX) else "standard"


def torch_peer_label(label: str) -> str:
    """The torch step a JAX variant is compared with: ordinary or SGT, autocast for bf16 ones."""
    kind = "standard" if label.startswith("standard") else "sgt"
    return kind + ("-autocast" if label.endswith(BF16_SUFFIX) else "")


# Speed targets for the GPU (ratio key in `ratios()`, comparison, threshold), checked in the report.
GOALS = (
    ("ours SGT (inference) / torch SGT throughput, float32", "jax_sgt-inference_over_torch_sgt_throughput", ">=", 1.5),
    ("ours SGT (shared) / torch SGT throughput, float32", "jax_sgt-shared_over_torch_sgt_throughput", ">=", 1.5),
    ("ours SGT (inference, bf16) / torch SGT autocast throughput",
     "jax_sgt-inference-bf16_over_torch_sgt-autocast_throughput", ">=", 2.5),
    ("ours SGT (shared, bf16) / torch SGT autocast throughput",
     "jax_sgt-shared-bf16_over_torch_sgt-autocast_throughput", ">=", 2.5),
    ("ours SGT (shared) / ours ordinary time, float32", "jax_sgt-shared_over_standard", "<=", 2.3),
    ("ours SGT (inference) / ours ordinary time, float32", "jax_sgt-inference_over_standard", "<=", 2.4),
    ("ours SGT (shared, bf16) / ours ordinary (bf16) time", "jax_sgt-shared-bf16_over_standard-bf16", "<=", 2.3),
    ("ours SGT (inference, bf16) / ours ordinary (bf16) time", "jax_sgt-inference-bf16_over_standard-bf16", "<=", 2.4),
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


def _flops(analysed) -> float | None:
    """The "flops" entry of an XLA cost analysis (a dict, or a list of one per program in older JAX)."""
    try:
        cost = analysed.cost_analysis()
    except Exception:  # noqa: BLE001 - not every backend or version offers it
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    flops = (cost or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


def compile_stats(jitted, *args) -> tuple[dict[str, int], dict[str, Any]]:
    """Compile the step for `args` (the jitted function then reuses this executable) and read
    XLA's analyses: the bytes of the compiled step's buffers and their peak total
    (`memory_analysis`), and its FLOPs per call (`cost_analysis` of the compiled program, with
    that of the lowered, unoptimised one beside it and used where the compiled one has none)."""
    lowered = jitted.lower(*args)
    compiled = lowered.compile()
    stats = compiled.memory_analysis()
    memory = {key: int(getattr(stats, f"{key}_size_in_bytes", 0) or 0)
              for key in ("argument", "output", "temp", "alias", "generated_code")}
    memory["peak"] = memory["argument"] + memory["output"] + memory["temp"] - memory["alias"]
    flops = {"compiled": _flops(compiled), "lowered": _flops(lowered)}
    flops["per_step"] = flops["compiled"] or flops["lowered"]
    flops["source"] = "compiled" if flops["compiled"] else ("lowered" if flops["lowered"] else None)
    return memory, flops


def device_memory() -> dict[str, int] | None:
    """The first local device's allocator statistics (GPU/TPU; None on the CPU backend).

    XLA offers no reset of `peak_bytes_in_use`: it is the maximum since the process started.
    """
    try:
        stats = jax.local_devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - not implemented on every backend
        return None
    if not stats:
        return None
    return {key: int(stats[key]) for key in ("bytes_in_use", "peak_bytes_in_use", "bytes_limit") if key in stats}


def bench_jax(name: str, spec: ModelSpec, x: np.ndarray, y: np.ndarray, *, variants: list[Variant], steps: int,
              warmup: int, k: float, seed: int, peak_tflops: dict[str, float]) -> dict[str, Any]:
    tx = optax.adam(LEARNING_RATE)
    x_dev, y_dev = jnp.asarray(x), jnp.asarray(y)
    backend_selection = sgt.masking.default_selection()
    steppers, extra = {}, {}
    for v in variants:
        options = dict(spec.options)
        if v.use_xla:
            options.update({o: "xla" for o in ("conv_impl", "pool_impl") if o in spec.impl_options})
        if v.dtype != "float32":
            options["dtype"] = DTYPES[v.dtype]
        model = sgt.models.get(name, **options)
        config = sgt.train.SGTConfig(k=k, **v.sgt_options) if v.method == "sgt" else None
        step = sgt.train.make_train_step(model, tx, method=v.method, config=config)
        box = {"state": sgt.train.create_train_state(model, tx, x, seed)}
        device_before = device_memory()
        t0 = time.perf_counter()
        memory, flops = compile_stats(step.jitted, box["state"], x_dev, y_dev)  # compiles (the step reuses it)
        memory["compile_s"] = time.perf_counter() - t0

        def run(step=step, box=box):
            # The state is donated: always rebind it.
            box["state"], metrics = step(box["state"], x_dev, y_dev)
            jax.block_until_ready((box["state"], metrics))

        t0 = time.perf_counter()
        run()  # the first call (the compiled program is reused)
        first_s = time.perf_counter() - t0
        for _ in range(max(warmup - 1, 0)):
            run()
        device_after = device_memory()
        extra[v.label] = {
            "first_call_s": first_s, "memory": memory, "flops": flops, "dtype": v.dtype,
            "selection": ((v.sgt_options or {}).get("selection") or backend_selection) if v.method == "sgt" else None,
        }
        if device_after is not None:
            extra[v.label]["device_memory"] = {
                "bytes_in_use_before": (device_before or {}).get("bytes_in_use"),
                "bytes_in_use_after": device_after.get("bytes_in_use"),
                "peak_bytes_in_use_so_far": device_after.get("peak_bytes_in_use"),
            }
        print(f"  jax   {v.label:26s} compiled in {memory['compile_s']:6.1f} s, first call {first_s:7.3f} s", flush=True)
        steppers[v.label] = run
    times = time_round_robin(steppers, steps)
    out = {}
    for label in steppers:
        res = {**summarize(times[label], len(x)), **extra[label]}
        per_step = res["flops"]["per_step"]
        if per_step:
            res["achieved_tflops"] = per_step / (res["median_ms"] / 1e3) / 1e12
            peak = peak_tflops.get(res["dtype"])
            if peak:
                res["fraction_of_peak"] = res["achieved_tflops"] / peak
        out[label] = res
    return out


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


def make_torch_steps(model, opt, k: float, amp: Callable[[], Any] = contextlib.nullcontext):
    """The ordinary and the SGT (Algorithm 1) step of `model`; `amp()` is the context around the
    forward computations (`torch.autocast(...)` for mixed precision), backward passes outside it."""

    def standard_step(x, y):
        model.train()
        opt.zero_grad(set_to_none=True)
        with amp():
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        return loss

    def sgt_step(x, y):
        # 1. Saliency: gradient of the true-label logit w.r.t. the input, inference mode.
        model.eval()
        x_in = x.detach().requires_grad_(True)
        with amp():
            target_logits = model(x_in).float().gather(1, y[:, None]).sum()
        (saliency,) = torch.autograd.grad(target_logits, x_in)
        model.train()
        # 2. Mask the k lowest-saliency pixels with random values.
        with torch.no_grad():
            x_masked = torch_mask_lowest(x, saliency.float(), k)
        # 3. CE on the clean input + KL(clean || masked), clean branch not detached.
        opt.zero_grad(set_to_none=True)
        with amp():
            clean = model(x).float()
            masked = model(x_masked).float()
            kl = F.kl_div(F.log_softmax(masked, dim=1), F.log_softmax(clean, dim=1),
                          reduction="batchmean", log_target=True)
            loss = F.cross_entropy(clean, y) + kl
        loss.backward()
        opt.step()
        return loss

    return standard_step, sgt_step


def torch_device() -> str:
    """"cuda" when JAX runs on a GPU and torch sees one, else "cpu" (the peer runs where our steps run)."""
    if jax.default_backend() == "gpu" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def torch_settings(device: str) -> dict[str, Any]:
    """The torch switches that change its GPU arithmetic or kernels, as set for this run."""
    if device != "cuda":
        return {"device": device}
    return {"device": device, "device_name": torch.cuda.get_device_name(0),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}


def bench_torch(name: str, spec: ModelSpec, x: np.ndarray, y: np.ndarray, *, steps: int, warmup: int,
                k: float, seed: int, dtypes: list[str], device: str) -> dict[str, Any]:
    cuda = device == "cuda"
    x_t = peers.to_torch(name, x).to(device)
    y_t = torch.from_numpy(y.astype(np.int64)).to(device)  # torch's cross-entropy takes int64 labels
    # Every torch model starts from the weights (and BatchNorm statistics) the JAX steps start from.
    variables = initial_variables(name, spec, x, seed)
    autocast = lambda: torch.autocast(device_type=device, dtype=torch.bfloat16)  # noqa: E731
    variants = []  # (label, SGT or not, forward context)
    if "float32" in dtypes:
        variants += [("standard", False, contextlib.nullcontext), ("sgt", True, contextlib.nullcontext)]
    if "bfloat16" in dtypes:
        variants += [("standard-autocast", False, autocast), ("sgt-autocast", True, autocast)]
    sync = torch.cuda.synchronize if cuda else (lambda: None)  # torch on CPU runs synchronously
    steppers, first_s, memory = {}, {}, {}
    for label, is_sgt, amp in variants:
        if cuda:  # the variant's own peak: its model, optimizer state and step, above what is already held
            sync()
            torch.cuda.reset_peak_memory_stats()
            baseline = torch.cuda.memory_allocated()
        model = peers.torch_peer(name, variables).to(device)
        steps_pair = make_torch_steps(model, torch.optim.Adam(model.parameters(), LEARNING_RATE), k, amp)
        step = steps_pair[1] if is_sgt else steps_pair[0]

        def run(step=step):
            step(x_t, y_t)
            sync()

        t0 = time.perf_counter()
        run()
        first_s[label] = time.perf_counter() - t0
        for _ in range(max(warmup - 1, 0)):
            run()
        if cuda:
            sync()
            peak = torch.cuda.max_memory_allocated()
            memory[label] = {"peak_bytes": peak - baseline, "peak_total_bytes": peak, "baseline_bytes": baseline}
        print(f"  torch {label:26s} first call {first_s[label]:7.3f} s", flush=True)
        steppers[label] = run
    times = time_round_robin(steppers, steps)
    out = {}
    for label in steppers:
        out[label] = {**summarize(times[label], len(x)), "first_call_s": first_s[label], "device": device}
        if label in memory:
            out[label]["device_memory"] = memory[label]
    return out


# --------------------------------------------------------------------------------------------
# Report (machine and version helpers: benchmarks/_report.py).
# --------------------------------------------------------------------------------------------


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Per JAX variant: time over our ordinary step of the same compute dtype
    (`jax_<label>_over_<base>`), a bf16 variant's time over its float32 one, and throughput over
    the torch peer's matching step (`jax_<label>_over_torch_<peer>_throughput`: ordinary over
    ordinary, SGT over SGT, bf16 over autocast); torch's SGT / ordinary per precision."""
    out: dict[str, Any] = {}
    jx = result["jax"]
    for label in jx:
        base = base_label(label)
        if label != base and base in jx:
            out[f"jax_{label}_over_{base}"] = jx[label]["median_ms"] / jx[base]["median_ms"]
    for label in jx:
        if label.endswith(BF16_SUFFIX) and label[: -len(BF16_SUFFIX)] in jx:
            out[f"jax_{label}_over_{label[: -len(BF16_SUFFIX)]}"] = (
                jx[label]["median_ms"] / jx[label[: -len(BF16_SUFFIX)]]["median_ms"])
    tt = result.get("torch") or {}
    for suffix in ("", "-autocast"):
        if f"sgt{suffix}" in tt and f"standard{suffix}" in tt:
            out[f"torch_sgt{suffix}_over_standard{suffix}"] = (
                tt[f"sgt{suffix}"]["median_ms"] / tt[f"standard{suffix}"]["median_ms"])
    for label in jx:
        peer = torch_peer_label(label)
        if peer in tt:
            out[f"jax_{label}_over_torch_{peer}_throughput"] = jx[label]["images_per_s"] / tt[peer]["images_per_s"]
    return out


def goals(ratio: dict[str, Any]) -> list[dict[str, Any]]:
    """The GOALS whose ratio was measured, each with its value and whether it is met."""
    out = []
    for text, key, op, threshold in GOALS:
        if key in ratio:
            value = ratio[key]
            out.append({"goal": text, "ratio": key, "target": f"{op} {threshold}", "value": value,
                        "met": value >= threshold if op == ">=" else value <= threshold})
    return out


def selection_line(jx: dict[str, Any]) -> str | None:
    """Which bottom-k selection made the float32 SGT inference step fastest, if several were timed."""
    timed = {t["selection"]: t["median_ms"] for label, t in jx.items()
             if (label == "sgt-inference" or (label.startswith("sgt-inference-") and t.get("dtype") == "float32"
                                              and label[len("sgt-inference-"):] in sgt.masking.SELECTIONS))}
    if len(timed) < 2:
        return None
    best = min(timed, key=timed.get)
    return ("Bottom-k selection in the SGT inference step (float32), median ms: "
            + ", ".join(f"`{sel}` {ms:.2f}" for sel, ms in timed.items()) + f"; fastest here: `{best}`.")


def batch_text(report: dict[str, Any]) -> str:
    """The batch of each model run, e.g. "mnist_cnn 128, resnet18 32"."""
    sizes = {name: res["batch_size"] for name, res in report["models"].items() if "batch_size" in res}
    return ", ".join(f"{name} {b}" for name, b in sizes.items()) or "none (every model skipped)"


def _mb(nbytes) -> str:
    return "" if nbytes is None else f"{nbytes / 2**20:.0f}"


def markdown(report: dict[str, Any]) -> str:
    m, v = report["machine"], report["versions"]
    ts = report.get("torch_settings") or {}
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
        f"optimizer Adam lr {LEARNING_RATE:g} in both frameworks; compute dtypes: {', '.join(report.get('dtypes', ['float32']))}",
        f"- Load average (1, 5, 15 min) before / after: {report['loadavg_before']} / {report['loadavg_after']}"
        f" (`uptime` before: {report.get('uptime', '')})",
    ]
    if ts:
        lines.append("- PyTorch peer on `" + ts["device"] + "`" + (
            f" ({ts['device_name']}, CUDA {ts['cuda']}, cuDNN {ts['cudnn']}; cudnn.benchmark {ts['cudnn_benchmark']}, "
            f"cuDNN TF32 {ts['cudnn_allow_tf32']}, matmul TF32 {ts['matmul_allow_tf32']})" if ts["device"] == "cuda" else "")
            + f"; JAX default matmul precision: {report.get('jax_default_matmul_precision')}")
    if report.get("peak_tflops"):
        lines.append("- Peak FLOP/s for the fraction column (given with --peak-tflops, not measured): "
                     + ", ".join(f"{d} {t:g} TFLOP/s" for d, t in report["peak_tflops"].items()))
    lines += _report.contention_line(report["other_jobs"])
    if report.get("note"):
        lines.append(f"- Note: {report['note']}")
    if report.get("incomplete"):
        lines.append(f"- **Incomplete:** {report['incomplete']}")
    lines += ["", "Speed numbers come from one process on one machine: compare the ratios, not the "
              "absolute milliseconds across machines.", ""]
    d = report.get("defaults", {})
    if d:
        convs = ", ".join(f"{n} `{r['conv_impl_default']}`" for n, r in report["models"].items()
                          if r.get("conv_impl_default"))
        lines += [f"Default paths on this backend (`{d.get('backend')}`): convolution per model ({convs}), "
                  f"max-pool `{d.get('pool_impl')}`, bottom-k selection `{d.get('selection')}`.", ""]
    # Summary: ours / torch throughput for every JAX variant that has a torch counterpart.
    columns = list(dict.fromkeys(label for res in report["models"].values() for label in res.get("jax", {})
                                 if f"jax_{label}_over_torch_{torch_peer_label(label)}_throughput" in res.get("ratios", {})))
    if columns:
        lines += ["Throughput ratios, ours / PyTorch peer (above 1: ours is faster), from medians "
                  "(labels as in the tables below; `-bf16` against torch under autocast):", "",
                  "| model | batch | " + " | ".join(f"`{c}` / torch `{torch_peer_label(c)}`" for c in columns) + " |",
                  "|---|---:|" + "---:|" * len(columns)]
        for name, res in report["models"].items():
            r = res.get("ratios", {})
            if any(f"jax_{c}_over_torch_{torch_peer_label(c)}_throughput" in r for c in columns):
                cells = [r.get(f"jax_{c}_over_torch_{torch_peer_label(c)}_throughput") for c in columns]
                lines.append(f"| {name} | {res['batch_size']} | "
                             + " | ".join("" if c is None else f"{c:.2f}" for c in cells) + " |")
        lines.append("")
    goal_rows = [(name, g) for name, res in report["models"].items() for g in res.get("goals", [])]
    if goal_rows:
        lines += ["Speed targets (set for GPU runs; on a CPU only informative), from medians:", "",
                  "| model | target | ratio | value | met |", "|---|---|---|---:|---|"]
        lines += [f"| {name} | {g['goal']} | {g['target']} | {g['value']:.2f} | {'yes' if g['met'] else '**no**'} |"
                  for name, g in goal_rows]
        lines.append("")
    for name, res in report["models"].items():
        if "skipped" in res:
            lines += [f"## {name}", "", f"Skipped: {res['skipped']}", ""]
            continue
        b = res["batch_size"]
        rows = [(fw, label, t) for fw in ("jax", "torch") for label, t in (res.get(fw) or {}).items()]
        has_device = any("device_memory" in t for _, _, t in rows)
        has_flops = any("achieved_tflops" in t for _, _, t in rows)
        has_peak = any("fraction_of_peak" in t for _, _, t in rows)
        head = ["framework", "step", "median ms/step", "mean ms/step", "std ms", "images/s", "× ordinary",
                "× torch throughput", "peak MB (XLA)"]
        head += ["GPU peak MB (allocator)"] * has_device + ["TFLOP/s (XLA count)"] * has_flops + ["% of peak"] * has_peak
        lines += [f"## {name} (batch {b}, input {tuple(res['input_shape'])}, {res['steps']} timed steps)", "",
                  "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
        r = res["ratios"]
        for fw, label, t in rows:
            if fw == "jax":
                text, base = variant_text(label), res["jax"].get(base_label(label))
                peer = torch_peer_label(label)
                vs_torch = r.get(f"jax_{label}_over_torch_{peer}_throughput")
            else:
                text, vs_torch = TORCH_TEXT.get(label, label), None
                base = res["torch"].get("standard-autocast" if label.endswith("-autocast") else "standard")
            dm = t.get("device_memory", {})
            cells = [("JAX (sgt)" if fw == "jax" else "PyTorch peer"), text, f"{t['median_ms']:.2f}",
                     f"{t['mean_ms']:.2f}", f"{t['std_ms']:.2f}", f"{t['images_per_s']:.0f}",
                     "" if base is None else f"{t['median_ms'] / base['median_ms']:.2f}",
                     "" if vs_torch is None else f"{vs_torch:.2f}", _mb(t.get("memory", {}).get("peak"))]
            if has_device:
                cells.append(_mb(dm.get("peak_bytes_in_use_so_far") if fw == "jax" else dm.get("peak_bytes")))
            if has_flops:
                cells.append("" if "achieved_tflops" not in t else f"{t['achieved_tflops']:.3g}")
            if has_peak:
                cells.append("" if "fraction_of_peak" not in t else f"{100 * t['fraction_of_peak']:.3g}")
            lines.append("| " + " | ".join(cells) + " |")
        if has_device:
            lines += ["", "GPU peak MB: for JAX the allocator's peak since the process started, read after the "
                          "variant's warm-up (XLA cannot reset it, so it only grows down the table); for torch "
                          "`torch.cuda.max_memory_allocated()` during the variant's set-up and warm-up, reset "
                          "before it, less what was allocated before (its model, optimizer state and steps)."]
        if res.get("torch_skipped"):
            lines += ["", f"PyTorch peer: {res['torch_skipped']}"]
        if "torch_sgt_over_standard" in r and "jax_sgt-inference_over_standard" in r:
            lines += ["", f"PyTorch SGT / PyTorch ordinary: {r['torch_sgt_over_standard']:.2f}; "
                          f"ours SGT-inference / ours ordinary: {r['jax_sgt-inference_over_standard']:.2f}."]
        if "torch_sgt-autocast_over_standard-autocast" in r:
            lines += ["", f"PyTorch SGT / ordinary under autocast: {r['torch_sgt-autocast_over_standard-autocast']:.2f}."]
        bf16 = [(label[: -len(BF16_SUFFIX)], r[f"jax_{label}_over_{label[: -len(BF16_SUFFIX)]}"])
                for label in res.get("jax", {})
                if label.endswith(BF16_SUFFIX) and f"jax_{label}_over_{label[: -len(BF16_SUFFIX)]}" in r]
        if bf16:
            lines += ["", "bf16 compute / float32 time, ours: " + ", ".join(f"`{label}` {v:.2f}" for label, v in bf16)
                      + "."]
        sel = selection_line(res.get("jax", {}))
        if sel:
            lines += ["", sel]
        jx = res.get("jax", {})
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
    p.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=["float32"],
                   help="compute dtypes: float32 times every variant; bfloat16 adds the ordinary and both SGT steps "
                        "with the model at bf16 compute (parameters stay float32; labels '...-bf16') and the torch "
                        "peer's two steps under torch.autocast(dtype=torch.bfloat16)")
    p.add_argument("--selections", nargs="+", choices=list(sgt.masking.SELECTIONS), default=[],
                   help="bottom-k selections (sgt.masking.lowest_k) for the float32 SGT inference step: one variant "
                        "'sgt-inference-<selection>' per selection other than the backend's default (the default "
                        "one is 'sgt-inference'), to see which is fastest here")
    p.add_argument("--variants", nargs="+", choices=list(BASE_LABELS), default=None, metavar="LABEL",
                   help="run only these JAX variants (always with the ordinary step of each dtype, the base of the "
                        "ratios; selection variants come from --selections and XLA-path ones need --xla-variants); "
                        f"labels: {' '.join(BASE_LABELS)}; default: all")
    p.add_argument("--peak-tflops", nargs="+", default=None, metavar="T|DTYPE=T",
                   help="the accelerator's peak in TFLOP/s, for the '%% of peak' column: one number for every dtype "
                        "or DTYPE=T per compute dtype. For an NVIDIA H200 (SXM) the vendor's datasheet gives about "
                        "989 dense bf16 tensor-core TFLOP/s and 67 plain fp32 ('float32=67 bfloat16=989'); these "
                        "are datasheet figures, not measurements. At JAX's default precision XLA may run float32 "
                        "convolutions and matrix products on TF32 tensor cores (datasheet about 495 dense), so a "
                        "float32 fraction of the plain-fp32 figure can exceed 1; without it, no fraction")
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
    try:
        args.peak_tflops = parse_peak_tflops(args.peak_tflops)
    except ValueError as e:
        p.error(str(e))
    if args.quick:
        args.batch_all, args.batch_per_model, args.steps, args.warmup = QUICK_BATCH, {}, QUICK_STEPS, 1
    if (args.steps is not None and args.steps < 1) or args.warmup < 1:
        p.error("--steps and --warmup must be >= 1")
    return args


def parse_peak_tflops(values: list[str] | None) -> dict[str, float]:
    """`--peak-tflops T` or `DTYPE=T ...`: peak TFLOP/s per compute dtype (a bare T for all)."""
    out: dict[str, float] = {}
    for entry in values or []:
        dtype, sep, number = entry.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"--peak-tflops: expected T or DTYPE=T, got {entry!r}") from None
        if not value > 0:
            raise ValueError(f"--peak-tflops: expected a positive number, got {entry!r}")
        if sep and dtype not in DTYPES:
            raise ValueError(f"--peak-tflops: unknown dtype {dtype!r} in {entry!r}; expected one of {list(DTYPES)}")
        out.update({dtype: value} if sep else {d: value for d in DTYPES})
    return out


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


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    """Write `step_speed_<tag>.json` and `.md` under `out_dir` (again after every model)."""
    report["loadavg_after"] = _report.loadavg()
    report["uptime_after"] = _uptime()
    report["other_jobs"] = sorted(set(report["other_jobs"]) | set(_report.other_sgt_jobs()))
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"step_speed_{report['tag']}"
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    Path(f"{stem}.md").write_text(markdown(report) + "\n")
    return stem


def bench_model(name: str, args, device: str | None) -> dict[str, Any]:
    """Every variant of one model, JAX then torch, with the ratios and the targets."""
    spec = MODELS[name]
    batch = batch_for(args, name)
    rng = np.random.default_rng(args.seed)
    x = rng.random((batch, *spec.input_shape), dtype=np.float32)
    y = rng.integers(0, spec.num_classes, batch).astype(np.int32)
    steps = steps_for(args, name)
    print(f"[{name}] batch {batch}, {steps} steps: JAX ...", flush=True)
    res: dict[str, Any] = {"batch_size": batch, "input_shape": list(spec.input_shape), "steps": steps}
    res["conv_impl_default"] = default_conv_path(name, spec, x)
    variants = jax_variants(args.dtypes, args.selections, args.variants, name in args.xla_variants,
                            jax.default_backend())
    res["jax"] = bench_jax(name, spec, x, y, variants=variants, steps=steps, warmup=args.warmup, k=args.k,
                           seed=args.seed, peak_tflops=args.peak_tflops)
    if args.no_torch or torch is None:
        res["torch_skipped"] = "--no-torch" if args.no_torch else "torch is not installed"
    elif name not in peers.PEERS:
        res["torch_skipped"] = f"no torch peer for {name} in benchmarks/peers.py or more_peers.py"
    else:
        print(f"[{name}] PyTorch peer on {device} ...", flush=True)
        torch.manual_seed(args.seed)
        res["torch"] = bench_torch(name, spec, x, y, steps=steps, warmup=args.warmup, k=args.k,
                                   seed=args.seed, dtypes=args.dtypes, device=device)
    res["ratios"] = ratios(res)
    res["goals"] = goals(res["ratios"])
    for fw in ("jax", "torch"):
        for label, t in (res.get(fw) or {}).items():
            print(f"  {fw:5s} {label:26s} median {t['median_ms']:8.2f} ms  mean {t['mean_ms']:8.2f} ms  "
                  f"{t['images_per_s']:8.0f} img/s" + (f"  {t['achieved_tflops']:.3g} TFLOP/s"
                                                       if "achieved_tflops" in t else ""))
    for key, val in res["ratios"].items():
        print(f"  {key}: {val:.3f}")
    for g in res["goals"]:
        print(f"  target {g['goal']}: {g['value']:.2f} {g['target']}: {'met' if g['met'] else 'NOT met'}")
    return res


def main(argv=None) -> int:
    args = parse_args(argv)
    cores = _report.core_count()
    device = None
    if torch is not None and not args.no_torch:
        torch.set_num_threads(cores)
        device = torch_device()
        if device == "cuda":  # fixed shapes: let cuDNN pick its fastest algorithms, as XLA autotunes its own
            torch.backends.cudnn.benchmark = True
    report: dict[str, Any] = {
        **_report.header(args, argv, torch),
        "batch_size": args.batch_all,  # None: per model; each model's batch is in models.<name>.batch_size
        "batch_size_per_model": args.batch_per_model,
        "steps": args.steps,  # None: per model, in models.<name>.steps
        "warmup": args.warmup,
        "dtypes": args.dtypes,
        "selections": args.selections,
        "variants": args.variants,
        "peak_tflops": args.peak_tflops,
        "defaults": {"backend": jax.default_backend(),
                     "pool_impl": sgt.nn_ops.default_pool_impl(), "selection": sgt.masking.default_selection()},
        "jax_default_matmul_precision": getattr(jax.config, "jax_default_matmul_precision", None),
        "torch_settings": torch_settings(device) if device else None,
        "uptime": _uptime(),
        "k": args.k,
        "seed": args.seed,
        "optimizer": f"adam(lr={LEARNING_RATE:g})",
        "timing": "round-robin over the variants of one framework; per-step wall time with "
                  "jax.block_until_ready (JAX) / torch.cuda.synchronize (torch on CUDA) / synchronous CPU "
                  "execution (torch on the CPU)",
        "loadavg_before": _report.loadavg(),
        "other_jobs": _report.other_sgt_jobs(),
        "note": args.note,
        "models": {},
    }
    for index, name in enumerate(args.models):
        if name not in sgt.models.REGISTRY:
            print(f"[skip] {name}: not in sgt.models.REGISTRY ({sorted(sgt.models.REGISTRY)})")
            report["models"][name] = {"skipped": "not in sgt.models.REGISTRY"}
            continue
        if name not in MODELS:
            print(f"[skip] {name}: no benchmark spec (input shape, batch) in benchmarks/step_speed.py MODELS")
            report["models"][name] = {"skipped": "no benchmark spec in MODELS"}
            continue
        try:
            report["models"][name] = bench_model(name, args, device)
        except KeyboardInterrupt:  # e.g. `timeout -s INT`: keep what the finished models measured
            report["incomplete"] = f"interrupted during {name}; not run: {', '.join(args.models[index:])}"
            stem = write_report(report, args.out_dir)
            print(f"interrupted: wrote {stem}.json and {stem}.md with the finished models")
            return 130
        remaining = args.models[index + 1:]
        report["incomplete"] = f"still to run: {', '.join(remaining)}" if remaining else None
        stem = write_report(report, args.out_dir)  # after every model, so a time limit loses only the current one
    report.pop("incomplete", None)
    stem = write_report(report, args.out_dir)
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
