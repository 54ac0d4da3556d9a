"""Small helpers for interpreting traced programs (jaxprs), shared by DeepLIFT and Guided Backprop.

These only read jaxprs and re-bind their primitives; every rewrite rule lives with its method.
"""

from __future__ import annotations

from typing import Any, Iterator

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np

# Primitives that call one inner jaxpr on their operands, with the same outputs (inlined by the
# interpreters). The name of `pjit` is "jit" in recent JAX, "pjit" in older versions.
CALLS = frozenset({"jit", "pjit", "closed_call", "core_call", "remat", "remat2", "checkpoint",
                   "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr", "composite"})


def inner(eqn) -> tuple[jex.Jaxpr, list]:
    """The jaxpr a call-like equation runs and its constants; its invars match the eqn's operands."""
    params = eqn.params
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        sub = params.get(key)
        if isinstance(sub, jex.ClosedJaxpr):
            return sub.jaxpr, list(sub.consts)
        if isinstance(sub, jex.Jaxpr):
            return sub, []
    raise NotImplementedError(f"no inner jaxpr found in primitive {eqn.primitive.name!r}")


def bind(eqn, args) -> list:
    """Evaluate one equation on `args`; always returns a list of outputs."""
    out = eqn.primitive.bind(*args, **eqn.primitive.get_bind_params(eqn.params))
    return list(out) if eqn.primitive.multiple_results else [out]


def read(env: dict, atom) -> Any:
    return atom.val if isinstance(atom, jex.Literal) else env[atom]


def write(env: dict, var, value) -> None:
    if not isinstance(var, jex.DropVar):
        env[var] = value


def sub_jaxprs(eqn) -> Iterator[jex.Jaxpr]:
    """Every jaxpr held in the equation's parameters (call bodies, scan/while bodies, cond branches)."""
    for value in eqn.params.values():
        for item in (value if isinstance(value, (tuple, list)) else (value,)):
            if isinstance(item, jex.ClosedJaxpr):
                yield item.jaxpr
            elif isinstance(item, jex.Jaxpr):
                yield item


def has_nested_consts(jaxpr: jex.Jaxpr) -> bool:
    """True if some inner closed jaxpr (e.g. of a jitted function closing over an array) holds constants."""
    for eqn in jaxpr.eqns:
        for value in eqn.params.values():
            for item in (value if isinstance(value, (tuple, list)) else (value,)):
                if isinstance(item, jex.ClosedJaxpr) and (item.consts or has_nested_consts(item.jaxpr)):
                    return True
                if isinstance(item, jex.Jaxpr) and has_nested_consts(item):
                    return True
    return False


def any_eqn(jaxpr: jex.Jaxpr, predicate) -> bool:
    """True if `predicate(eqn)` holds for some equation of `jaxpr`, searched recursively."""
    return any(predicate(eqn) or any(any_eqn(sub, predicate) for sub in sub_jaxprs(eqn))
               for eqn in jaxpr.eqns)


def is_float(x) -> bool:
    """True for inexact (floating or complex) arrays and avals."""
    return jnp.issubdtype(x.dtype, jnp.inexact)


def is_zero_literal(atom) -> bool:
    return isinstance(atom, jex.Literal) and np.ndim(atom.val) == 0 and bool(np.asarray(atom.val) == 0)


def trace(f, x: jax.Array) -> jex.ClosedJaxpr:
    """The jaxpr of `f` on arrays shaped like `x` (works on tracers: under jit and vmap)."""
    return jax.make_jaxpr(f)(jax.ShapeDtypeStruct(x.shape, x.dtype))
