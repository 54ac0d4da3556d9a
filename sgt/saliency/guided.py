"""Guided Backpropagation (Springenberg et al. 2015) by rewriting the ReLUs of the traced program.

The gradient of the target logit, except that every ReLU's backward pass also zeroes negative
incoming gradients: ∂/∂x relu(x) · g  becomes  [x > 0] · max(g, 0).

`f` is traced to a jaxpr; a ReLU is an elementwise `max(v, 0)` with a literal zero (the form of
`jax.nn.relu`, `flax.linen.relu` and `jnp.maximum(v, 0)`), found through jit, custom_jvp /
custom_vjp calls (whose own derivative rule is then replaced), remat, scan, cond and while
bodies. Everything else keeps its ordinary derivative. A ReLU written another way (e.g.
`jnp.where(v > 0, v, 0)`) is not recognised and is differentiated as written.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from sgt.saliency import _jaxpr as jx
from sgt.saliency._common import Classifier, check_target, target_score

__all__ = ["guided_backprop", "guided_relu"]


@jax.custom_vjp
def guided_relu(x):
    """ReLU whose backward pass passes only positive gradients at positive inputs."""
    return jnp.maximum(x, jnp.zeros((), x.dtype))


def _guided_relu_fwd(x):
    return guided_relu(x), x


def _guided_relu_bwd(x, g):
    return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_relu_fwd, _guided_relu_bwd)


def _is_relu(eqn) -> bool:
    if eqn.primitive.name != "max" or len(eqn.invars) != 2:
        return False
    a, b = eqn.invars
    return ((jx.is_zero_literal(b) and not jx.is_zero_literal(a) and jx.is_float(a.aval)) or
            (jx.is_zero_literal(a) and not jx.is_zero_literal(b) and jx.is_float(b.aval)))


def _has_relu(eqn) -> bool:
    return any(jx.any_eqn(sub, _is_relu) for sub in jx.sub_jaxprs(eqn))


def run(jaxpr, consts: Sequence, args: Sequence) -> list:
    """Evaluate `jaxpr` with every ReLU replaced by `guided_relu`."""
    env: dict = {}
    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        ins = [jx.read(env, v) for v in eqn.invars]
        name = eqn.primitive.name
        if _is_relu(eqn):
            operand = ins[1] if jx.is_zero_literal(eqn.invars[0]) else ins[0]
            outs = [guided_relu(jnp.broadcast_to(operand, eqn.outvars[0].aval.shape))]
        elif not _has_relu(eqn):
            outs = jx.bind(eqn, ins)
        elif name in jx.CALLS:
            sub, sub_consts = jx.inner(eqn)
            outs = run(sub, sub_consts, ins)
        elif name == "scan":
            outs = _scan(eqn, ins)
        elif name == "cond":
            branches = [(lambda b: lambda *ops: run(b.jaxpr, b.consts, ops))(b) for b in eqn.params["branches"]]
            outs = list(lax.switch(ins[0], branches, *ins[1:]))
        elif name == "while":
            outs = _while(eqn, ins)
        else:
            raise NotImplementedError(f"guided_backprop: cannot rewrite ReLUs inside primitive {name!r}")
        for v, o in zip(eqn.outvars, outs):
            jx.write(env, v, o)
    return [jx.read(env, v) for v in jaxpr.outvars]


def _scan(eqn, ins):
    p = eqn.params
    n_consts, n_carry = p["num_consts"], p["num_carry"]
    consts, init, xs = ins[:n_consts], ins[n_consts:n_consts + n_carry], ins[n_consts + n_carry:]
    body = p["jaxpr"]

    def step(carry, x):
        outs = run(body.jaxpr, body.consts, list(consts) + list(carry) + list(x))
        return outs[:n_carry], outs[n_carry:]

    carry, ys = lax.scan(step, list(init), list(xs), length=p["length"], reverse=p["reverse"], unroll=p["unroll"])
    return list(carry) + list(ys)


def _while(eqn, ins):
    p = eqn.params
    n_cond, n_body = p["cond_nconsts"], p["body_nconsts"]
    cond_consts, body_consts, init = ins[:n_cond], ins[n_cond:n_cond + n_body], ins[n_cond + n_body:]
    cond, body = p["cond_jaxpr"], p["body_jaxpr"]
    return list(lax.while_loop(lambda c: run(cond.jaxpr, cond.consts, list(cond_consts) + list(c))[0],
                               lambda c: run(body.jaxpr, body.consts, list(body_consts) + list(c)),
                               list(init)))


def guided_backprop(f: Classifier):
    """Guided Backpropagation: ∂f(x)_target/∂x with every ReLU's backward pass rectified.

    Returns an array shaped like x (signed; take `jnp.abs` for magnitudes). `key` is ignored.
    """

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        del key
        check_target(target, x.shape[0])
        closed = jx.trace(f, x)

        def score(xv):
            return target_score(run(closed.jaxpr, closed.consts, [xv])[0], target)

        return jax.grad(score)(x)

    return attribute
