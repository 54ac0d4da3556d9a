"""XLA compile options chosen per backend, and `jit`, which applies them.

On CPU, XLA (jax 0.10) hands most convolutions above a small size, and their kernel gradients,
to YNNPACK ("individual convolution" library fusions). For the convolutions of this project's
models that path is several times slower than XLA's own (Eigen) convolution: on a 2-core CPU one
3×3 convolution of the MNIST CNN (32 → 64 channels, 26×26, batch 128) takes about 340 ms forward +
backward through YNNPACK and 80–90 ms without it, against 65 ms in PyTorch; whole train steps run
1.3–3× faster without it (benchmarks/README.md). `compiler_options()` therefore keeps XLA's other
CPU library fusions (matrix products and reductions through YNNPACK, which are fast) and leaves
convolutions to XLA. On GPU and TPU nothing is changed.

The options apply to one compilation only (`jax.jit(..., compiler_options=...)`), never to the
process: the library passes them to every program it compiles. For your own `jax.jit` of a model
or saliency method, use `sgt.xla.jit` (or pass `compiler_options=sgt.xla.compiler_options()`).
`SGT_XLA_OPTIONS=default` turns them off, to compare with XLA's defaults.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import jax

CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


def compiler_options(backend: str | None = None) -> dict[str, Any] | None:
    """The per-compilation XLA options for `backend` (default `jax.default_backend()`): `CPU_OPTIONS`
    on CPU, None (XLA's defaults) elsewhere or when `SGT_XLA_OPTIONS=default`."""
    setting = os.environ.get("SGT_XLA_OPTIONS", "")
    if setting not in ("", "default"):
        raise ValueError(f"SGT_XLA_OPTIONS: expected unset or 'default', got {setting!r}")
    if setting == "default" or (backend or jax.default_backend()) != "cpu":
        return None
    return dict(CPU_OPTIONS)


def jit(fun: Callable | None = None, **jit_kwargs) -> Callable:
    """`jax.jit(fun, compiler_options=compiler_options(), **jit_kwargs)`, also as a decorator
    (`@jit` or `@jit(static_argnums=...)`).

    The backend is read at the first call, not when `jit` is applied, so decorating at import time
    does not start JAX's backends (`jax.distributed.initialize` must run before they start). Called
    with traced arguments (inside another `jit`, `grad` or `vmap`), it is a plain `jax.jit`: the
    enclosing program's compilation decides. Other attributes (`lower`, `trace`, `eval_shape`, ...)
    are those of the jitted function.
    """
    if fun is None:
        return functools.partial(jit, **jit_kwargs)
    if "compiler_options" in jit_kwargs:
        raise TypeError("jit: compiler_options are chosen by sgt.xla.compiler_options(); use jax.jit to set your own")
    return _Jitted(fun, jit_kwargs)


class _Jitted:
    def __init__(self, fun: Callable, jit_kwargs: dict[str, Any]):
        functools.update_wrapper(self, fun)
        self._plain = jax.jit(fun, **jit_kwargs)
        self._fun, self._jit_kwargs, self._with_options = fun, jit_kwargs, None

    def _jitted(self):
        if self._with_options is None:
            options = compiler_options()
            self._with_options = (self._plain if options is None
                                  else jax.jit(self._fun, compiler_options=options, **self._jit_kwargs))
        return self._with_options

    def __call__(self, *args, **kwargs):
        # inside another transformation the outer program is the one compiled, and JAX accepts
        # compile options on a top-level jit only
        traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs)))
        return (self._plain if traced else self._jitted())(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._jitted(), name)


__all__ = ["CPU_OPTIONS", "compiler_options", "jit"]
