"""Per-operation profile of one jitted train step on the CPU: where does the time go?

Run from the repository root:

    python benchmarks/profile_step.py                              # MNIST CNN, SGT step, batch 128
    python benchmarks/profile_step.py --model resnet20 --batch-size 64 --method standard
    python benchmarks/profile_step.py --conv-impl xla --pool-impl xla   # the plain-XLA paths

The step (`sgt.train.make_train_step`) is compiled, run a few times, then traced with
`jax.profiler` for `--steps` steps. Every event that the XLA CPU runtime records for an HLO
instruction (a fusion, a dot, a convolution, a copy, ...) is matched to the instruction in the
compiled program, and the times are summed per instruction over all threads and steps. The table
lists the instructions by total time with their opcode, their share of all instruction time and the
JAX operation they came from (the `op_name` metadata: `transpose(jvp(...))` marks the backward pass).
Instruction times add up over the threads that run concurrently, so their sum can exceed the wall
time of a step. The report also groups the time by kind (convolution or matrix product, data
movement, elementwise and reductions, ...).
"""

from __future__ import annotations

import argparse
import collections
import glob
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (REPO_ROOT, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import sgt.models  # noqa: E402
import sgt.train  # noqa: E402

INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*\S+(?:\{[^}]*\})?\s+([\w\-]+)\(")
OP_NAME = re.compile(r'op_name="([^"]*)"')
KIND = re.compile(r'"kind":"([^"]*)"|kind=(k\w+)')


def instructions(hlo_text: str) -> dict[str, dict[str, str]]:
    """name → {opcode, op_name, kind} for every instruction of the compiled HLO module."""
    out = {}
    for line in hlo_text.splitlines():
        m = INSTRUCTION.match(line)
        if not m:
            continue
        name, opcode = m.groups()
        op = OP_NAME.search(line)
        kinds = [k for pair in KIND.findall(line) for k in pair if k]
        out[name] = {"opcode": opcode, "op_name": op.group(1) if op else "",
                     "kind": kinds[-1] if kinds else ""}
    return out


def category(info: dict[str, str], name: str) -> str:
    """A coarse kind of work for an instruction."""
    op, kind, jax_op = info["opcode"], info["kind"], info["op_name"]
    if op in ("convolution", "dot") or "ynn" in kind or "xnn" in kind or "onednn" in kind or "dot_general" in jax_op \
            or "conv_general" in jax_op:
        return "matrix products / convolutions"
    if op in ("copy", "concatenate", "slice", "pad", "transpose", "dynamic-slice", "dynamic-update-slice") \
            or any(w in name for w in ("copy", "concatenate", "slice", "pad", "transpose")):
        return "data movement (copy, concatenate, slice, pad, transpose)"
    if op in ("sort",) or "sort" in name or "top_k" in jax_op:
        return "sort / top-k"
    if op in ("while", "call", "conditional"):
        return "control flow (while, call)"
    if "select-and-scatter" in op or "reduce-window" in op or "reduce_window" in name or "select_and_scatter" in name:
        return "reduce-window / select-and-scatter (pooling)"
    if "rng" in name or "threefry" in jax_op or "random" in jax_op:
        return "random numbers"
    return "elementwise / reductions (fusions)"


def profile(step_fn, args, steps: int, trace_dir: str):
    from jax._src.lib import _profile_data

    jax.profiler.start_trace(trace_dir)
    state = args[0]
    for _ in range(steps):
        state, metrics = step_fn(state, *args[1:])
        jax.block_until_ready((state, metrics))
    jax.profiler.stop_trace()
    path = sorted(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True))[-1]
    data = _profile_data.ProfileData.from_file(path)
    totals: dict[str, float] = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            for event in line.events:
                totals[event.name] += event.duration_ns
    return state, totals


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mnist_cnn", choices=sorted(sgt.models.REGISTRY))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--method", default="sgt", choices=("standard", "sgt"))
    p.add_argument("--saliency-pass", default="inference", choices=sgt.train.SALIENCY_PASSES)
    p.add_argument("--conv-impl", default=None, help="sgt.nn_ops convolution implementation (default: backend's)")
    p.add_argument("--pool-impl", default=None, help="sgt.nn_ops max-pool implementation (mnist_cnn, vgg16)")
    p.add_argument("--selection", default=None, help="sgt.masking selection (default: backend's)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", default=None, help="also write the Markdown report to this file")
    args = p.parse_args(argv)

    options = {}
    if args.conv_impl and args.model not in ("lstm", "lstm_cell_attention", "transformer", "bilstm"):
        options["conv_impl"] = args.conv_impl
    if args.pool_impl and args.model in ("mnist_cnn", "vgg16"):
        options["pool_impl"] = args.pool_impl
    model = sgt.models.get(args.model, **options)
    entry = sgt.models.REGISTRY[args.model]
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch_size, *entry.input_shape)).astype(np.float32)
    num_classes = 10 if args.model not in ("lstm", "lstm_cell_attention", "tcn", "transformer", "bilstm") else 2
    y = rng.integers(0, num_classes, args.batch_size).astype(np.int32)
    tx = optax.adam(1e-3)
    config = None
    if args.method == "sgt":
        extra = {"selection": args.selection} if args.selection else {}
        config = sgt.train.SGTConfig(saliency_pass=args.saliency_pass, **extra)
    step = sgt.train.make_train_step(model, tx, method=args.method, config=config)
    state = sgt.train.create_train_state(model, tx, x, 0)
    compiled = step.jitted.lower(state, x, y).compile()
    table = instructions(compiled.as_text())
    for _ in range(3):
        state, m = step(state, x, y)
        jax.block_until_ready((state, m))
    wall = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        state, m = step(state, x, y)
        jax.block_until_ready((state, m))
        wall.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as trace_dir:
        state, totals = profile(step, (state, x, y), args.steps, trace_dir)

    rows = [(name, ns / args.steps / 1e6, table[name]) for name, ns in totals.items() if name in table]
    rows.sort(key=lambda r: -r[1])
    total = sum(r[1] for r in rows)
    by_kind: dict[str, float] = collections.Counter()
    for name, ms, info in rows:
        by_kind[category(info, name)] += ms
    label = f"{args.model}, {args.method}" + (f" (saliency_pass={args.saliency_pass})" if args.method == "sgt" else "")
    lines = [f"# Profile: {label}, batch {args.batch_size}", "",
             f"- Command: `python benchmarks/profile_step.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
             f"- JAX {jax.__version__}, backend {jax.default_backend()}; conv_impl {args.conv_impl or 'default'}, "
             f"pool_impl {args.pool_impl or 'default'}",
             f"- Wall time per step (median of {args.steps}, untraced): {1e3 * statistics.median(wall):.1f} ms; "
             f"instruction time summed over threads: {total:.1f} ms per step", "",
             "| kind | ms per step | share |", "|---|---:|---:|"]
    for kind, ms in by_kind.most_common():
        lines.append(f"| {kind} | {ms:.1f} | {100 * ms / total:.0f} % |")
    lines += ["", "| instruction | opcode | ms per step | share | from (JAX op) |", "|---|---|---:|---:|---|"]
    for name, ms, info in rows[:args.top]:
        op_name = info["op_name"].replace("|", "/")
        if len(op_name) > 90:
            op_name = "…" + op_name[-89:]
        lines.append(f"| `{name}` | {info['opcode']} | {ms:.1f} | {100 * ms / total:.1f} % | `{op_name}` |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
