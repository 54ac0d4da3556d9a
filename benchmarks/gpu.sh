#!/usr/bin/env bash
# The GPU train-step benchmark: ONE run of benchmarks/step_speed.py on a GPU machine.
#
#   bash benchmarks/gpu.sh              # on the GPU machine, from the repository root
#   bash benchmarks/gpu.sh --dry-run    # anywhere: the same command with --quick, on whatever backend JAX
#                                       # has (the CPU here), with the Python on PATH; also SGT_GPU_DRY_RUN=1
#   bash benchmarks/gpu.sh --steps 10   # any other argument is passed on to step_speed.py (a later one wins)
#
# What it runs: ResNet-18 (CIFAR stem, batch 512) and the TCN (batch 50); JAX variants ordinary,
# SGT inference, SGT shared and SGT low-memory at float32 compute, ordinary and SGT shared at
# bfloat16 compute, the SGT inference step with both the radix and the top_k bottom-k selection;
# the PyTorch peer (Algorithm 1) at float32 and under bfloat16 autocast, on CUDA. The report has
# the speed targets (ours / torch throughput, SGT / ordinary time) and the peak memory and FLOP/s.
#
# Python: the first of
#   1. $PYTHON, if set;
#   2. `python3`, if it already imports JAX with a GPU backend, Flax and Optax (a ready-made CUDA image, which
#      may have no network at all: nothing is installed then; the repository is found through PYTHONPATH);
#   3. a new virtual environment ($SGT_GPU_VENV, default /tmp/sgt-gpu-venv) with
#      `pip install -e '.[bench]' 'jax[cuda13]'` (JAX's documented extra for NVIDIA GPUs with CUDA 13;
#      SGT_JAX_CUDA=cuda12 for a CUDA 12 driver). The bench extra pins torch==2.13.0, whose PyPI wheel for
#      Linux x86-64 is a CUDA build.
#
# Results: benchmarks/results/step_speed_<tag>.json and .md, the tag from the card's name (e.g.
# gpu-nvidia-h200), written again after each model; copied with the log to $OUT when it is set.
# A dry run writes to $OUT, or else to a fresh temporary folder (quick results are not kept in the repo).
#
# Time budget (aim: under 5 minutes in all on an H200, compilation included):
#   start-up: imports, GPU initialisation, the first small compilations          ~ 30 s
#   ResNet-18: 7 JAX compilations; XLA's GPU compile of an SGT step of ResNet-18 takes ~20-40 s, the
#     ordinary step about half that, and cuDNN autotuning results are shared between variants
#     (the same convolutions recur)                                               ~ 120-200 s
#   TCN: 7 small compilations                                                     ~ 20-40 s
#   timing: (3 warm-up + 20 timed) steps x 11 variants per model; a ResNet-18 SGT step at batch 512 is
#     tens of milliseconds on an H200, the TCN's a few                            ~ 15-30 s
#   PyTorch peer: CUDA start-up, cuDNN benchmark mode's first calls              ~ 15-30 s
#   total ~ 3.5-5 minutes. The `timeout` below (SGT_GPU_TIMEOUT, default 420 s) stops it at 7 minutes,
#   within a device command's 10-minute limit; on SIGINT step_speed.py writes the models it finished.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

dry=${SGT_GPU_DRY_RUN:-0}
pass=()
for arg in "$@"; do
    if [[ $arg == --dry-run ]]; then dry=1; else pass+=("$arg"); fi
done

export PYTHONUNBUFFERED=1
# JAX preallocates a share of the GPU's memory; leave the rest to the PyTorch peer in the same process.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.5}

probe='import jax, flax, optax, numpy; print(jax.default_backend())'
if [[ $dry == 1 ]]; then
    py=${PYTHON:-python3}
elif [[ -n ${PYTHON:-} ]]; then
    py=$PYTHON
elif [[ $(python3 -c "$probe" 2>/dev/null | tail -n 1) == gpu ]]; then
    py=python3
    echo "gpu.sh: using $(command -v python3): JAX already has a GPU backend; nothing installed"
else
    venv=${SGT_GPU_VENV:-/tmp/sgt-gpu-venv}
    echo "gpu.sh: installing into $venv"
    python3 -m venv "$venv" || exit 1
    "$venv/bin/python" -m pip install -q --upgrade pip || exit 1
    "$venv/bin/python" -m pip install -q -e '.[bench]' "jax[${SGT_JAX_CUDA:-cuda13}]" || {
        echo "gpu.sh: pip install failed (no package index reachable? then set PYTHON to an interpreter with JAX for CUDA)"
        exit 1
    }
    py=$venv/bin/python
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}  # `import sgt` without an install

if [[ $dry == 1 ]]; then
    results=${OUT:-$(mktemp -d)}
    quick=(--quick)
    limit=${SGT_GPU_TIMEOUT:-1800}  # a 2-core CPU compiles slowly
else
    results=$ROOT/benchmarks/results
    quick=()
    limit=${SGT_GPU_TIMEOUT:-420}
    command -v nvidia-smi >/dev/null && nvidia-smi -L
fi
mkdir -p "$results"
log=${OUT:-$results}/step_speed_gpu$([[ $dry == 1 ]] && echo -dry-run).log
marker=$(mktemp)

cmd=("$py" benchmarks/step_speed.py
    --models resnet18 tcn --batch-size resnet18=512 tcn=50
    --dtypes float32 bfloat16 --selections radix top_k
    --variants standard sgt-inference sgt-shared sgt-inference-lowmem standard-bf16 sgt-shared-bf16
    --xla-variants
    --steps 20 --warmup 3
    --peak-tflops float32=67 bfloat16=989
    --out-dir "$results"
    --note "benchmarks/gpu.sh; peak TFLOP/s are the NVIDIA H200 SXM datasheet's dense fp32 and bf16 figures"
    "${quick[@]}" "${pass[@]}")
echo "gpu.sh: ${cmd[*]}"
echo "gpu.sh: time limit ${limit} s; log $log"
start=$SECONDS
timeout --signal=INT --kill-after=60 "$limit" "${cmd[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo "gpu.sh: step_speed.py exited with $rc after $((SECONDS - start)) s" | tee -a "$log"

mapfile -t written < <(find "$results" -maxdepth 1 -name 'step_speed_*' -newer "$marker" | sort)
rm -f "$marker"
if [[ -n ${OUT:-} && $results != "$OUT" && ${#written[@]} -gt 0 ]]; then
    cp "${written[@]}" "$OUT"/
fi
echo "gpu.sh: written${OUT:+ (and copied to \$OUT)}:"
printf '  %s\n' "${written[@]}"
exit "$rc"
