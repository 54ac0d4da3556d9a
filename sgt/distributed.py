"""Training across processes (several hosts, or one process per GPU) over the same mesh code.

Call `initialize()` at the top of the program, before any JAX computation, in every process;
then `jax.devices()` lists the devices of all processes, `train.make_mesh()` spans them and
`loop.fit` / `train.make_train_step` run unchanged. Every process runs the same program on the
same host data (same dataset, same seed, so the same shuffled batches): each process feeds the
slice of the global batch that lives on its own devices, the gradient reductions cross processes,
and the replicated parameters and metrics are readable on every process.

With one process, every helper here returns its input untouched (no copy, no extra work).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Sharding

CPU_COLLECTIVES = ("gloo", "mpi")


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, cpu_collectives: str | None = None, **kwargs) -> None:
    """Join this process to the others: a thin wrapper of `jax.distributed.initialize`.

    With no arguments the cluster is detected (Cloud TPU, SLURM, Open MPI); otherwise give
    `coordinator_address` ("host:port" of process 0, reachable by all), `num_processes` and this
    process's `process_id` (0 … num_processes-1). Further keywords (`local_device_ids`,
    `initialization_timeout`, `cluster_detection_method`, …) go to `jax.distributed.initialize`.

    `cpu_collectives` ("gloo" or "mpi") sets `jax_cpu_collectives_implementation`, which CPU
    devices need for collectives across processes; by default the configured value is kept, and
    "gloo" is chosen when none is. Calling it again in an initialized process does nothing.
    """
    if jax.distributed.is_initialized():
        return
    if cpu_collectives is not None and cpu_collectives not in CPU_COLLECTIVES:
        raise ValueError(f"cpu_collectives: expected one of {CPU_COLLECTIVES}, got {cpu_collectives!r}")
    if cpu_collectives is not None or jax.config.jax_cpu_collectives_implementation is None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives or "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **kwargs)


def shutdown() -> None:
    """Leave the cluster (optional: JAX also does it at exit)."""
    if jax.distributed.is_initialized():
        jax.distributed.shutdown()


def is_primary() -> bool:
    """True on process 0, the one that writes logs and files shared by all."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier `name` (nothing to wait for with one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def global_array(x: Any, sharding: Sharding):
    """`x`, the same host array on every process, as one global `jax.Array` laid out by `sharding`.

    Each process transfers only the slices that live on its own devices. A sharding whose devices
    all belong to this process (always the case with one process) returns `x` unchanged, so `jit`
    places it as before; so does an array already global.
    """
    if sharding.is_fully_addressable or (isinstance(x, jax.Array) and not x.is_fully_addressable):
        return x
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def global_tree(tree, sharding: Sharding):
    """`global_array` over the leaves of `tree`."""
    return jax.tree.map(lambda x: global_array(x, sharding), tree)


__all__ = ["CPU_COLLECTIVES", "barrier", "global_array", "global_tree", "initialize", "is_primary", "shutdown"]
