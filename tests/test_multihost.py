"""Training across processes: 2 processes on this machine, 2 CPU devices each, joined by
`sgt.distributed.initialize` over a coordinator on 127.0.0.1 (gloo CPU collectives), run the same
`loop.fit` (method "sgt", checkpoints in one shared folder) and reach the parameters, metrics and
selected epoch of one process on 4 devices with the same global batch, up to float rounding.

This file is also the worker: `python -m tests.test_multihost PROCESS_ID PORT OUT_DIR`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

from sgt import distributed, loop, train
from sgt.data.base import Dataset
from tests.models import MLP

ROOT = Path(__file__).resolve().parents[1]
N_PROCESSES, DEVICES_PER_PROCESS = 2, 2
TIMEOUT_S = 120
FIT = {"method": "sgt", "epochs": 2, "batch_size": 16, "checkpoint_every": 4, "seed": 0, "progress": False}


def toy_dataset(n=120, classes=3, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n).astype(np.int32)
    x = rng.normal(size=(n, 6, 5)).astype(np.float32)
    x[:, :2, :2] += y[:, None, None]
    return Dataset("toy", x[:96], y[:96], x[96:], y[96:], num_classes=classes)


def run_fit(out_dir: Path, mesh=None, resume=False) -> loop.FitResult:
    """The run every process (and the one-process reference) makes: dropout, BatchNorm, Adam."""
    model = MLP(dropout=0.2, batchnorm=True)
    return loop.fit(model, toy_dataset(), tx=optax.adam(1e-2), out_dir=out_dir, mesh=mesh, resume=resume, **FIT)


def summary(result: loop.FitResult) -> dict[str, np.ndarray]:
    """Final state, selected model and metrics as host arrays, keyed by tree path."""
    flat = {}
    for prefix, tree in (("state", result.state), ("best", result.best)):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            flat[prefix + jax.tree_util.keystr(path)] = np.asarray(leaf)
    for i, record in enumerate(result.history):
        for k, v in record.items():
            if k != "seconds":
                flat[f"history[{i}].{k}"] = np.asarray(v)
    for k, v in result.test.items():
        flat[f"test.{k}"] = np.asarray(v)
    return flat


def worker(process_id: int, port: int, out_dir: Path) -> None:
    jax.config.update("jax_num_cpu_devices", DEVICES_PER_PROCESS)
    distributed.initialize(f"127.0.0.1:{port}", N_PROCESSES, process_id, initialization_timeout=60)
    assert jax.process_count() == N_PROCESSES, jax.process_count()
    assert len(jax.devices()) == N_PROCESSES * DEVICES_PER_PROCESS, jax.devices()
    assert len(jax.local_devices()) == DEVICES_PER_PROCESS, jax.local_devices()
    result = run_fit(out_dir / "run")  # default mesh: all 4 devices of both processes
    np.savez(out_dir / f"process{process_id}.npz", **summary(result))
    distributed.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gloo_available() -> bool:
    try:
        from jax._src.lib import _jax
    except ImportError:
        return True  # a layout we do not know: let the run decide
    return hasattr(_jax, "make_gloo_tcp_collectives")


def start_processes(out_dir: Path) -> None:
    """Both workers to completion, each logging to `out_dir/process<i>.log` (a file, not a pipe that
    could fill up while the other process waits in a collective); fails on an error or timeout."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    port, procs = free_port(), []
    for i in range(N_PROCESSES):
        with open(out_dir / f"process{i}.log", "w") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "tests.test_multihost", str(i), str(port), str(out_dir)],
                                          cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + TIMEOUT_S
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    logs = [(out_dir / f"process{i}.log").read_text()[-4000:] for i in range(N_PROCESSES)]
    failed = [i for i, proc in enumerate(procs) if proc.returncode != 0]
    assert not failed, f"processes {failed} failed or ran past {TIMEOUT_S} s:\n" + "\n".join(
        f"--- process {i} (exit {procs[i].returncode})\n{logs[i]}" for i in failed)


@pytest.mark.skipif(not gloo_available(), reason="this jaxlib has no gloo CPU collectives across processes")
def test_two_processes_reach_the_parameters_of_one_process_with_the_same_global_batch(tmp_path):
    start_processes(tmp_path)

    assert len(jax.devices()) >= N_PROCESSES * DEVICES_PER_PROCESS, "conftest sets 8 CPU devices"
    mesh = train.make_mesh(jax.devices()[:N_PROCESSES * DEVICES_PER_PROCESS])
    reference = summary(run_fit(tmp_path / "reference", mesh))

    for i in range(N_PROCESSES):  # every process holds the replicated result, not only process 0
        with np.load(tmp_path / f"process{i}.npz") as got:
            assert_same(dict(got), reference, f"process {i}")

    # One shared folder: one log line per epoch, and the checkpoint the processes wrote together
    # restores in one process (resuming the finished run trains nothing and gives the same result).
    run = tmp_path / "run"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == FIT["epochs"]
    assert_same(summary(run_fit(run, mesh, resume=True)), reference, "resumed from the 2-process checkpoint")


def assert_same(got: dict, want: dict, who: str) -> None:
    assert sorted(got) == sorted(want), who
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6, err_msg=f"{who}: {key}")


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
