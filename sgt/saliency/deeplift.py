"""DeepLIFT with the Rescale rule (Shrikumar et al. 2017) as a transform of the traced program, and DeepLIFT-SHAP.

`deeplift(f)` traces `f` to a jaxpr and runs it once on the input x and the baseline x̄ together:
every variable v carries its value and its reference value v̄ (the value it takes when the program
runs on the baseline). The program is rebuilt as a JAX function whose forward value is exactly
f(x) and whose reverse-mode derivative is DeepLIFT's chain of *multipliers* m = C / Δ (C the
contribution of a variable's difference-from-reference Δ = v − v̄ to the output's Δ). Then

    attributions = (x − x̄) · ∂[Σ_i y_{i, target_i}] / ∂x        (∂ through the rewritten program)

and the summation-to-delta property Σ attributions_i = f(x)_{i,t} − f(x̄)_{i,t} holds for every
sample (up to float rounding) whatever the architecture, because every rule below distributes its
output's Δ exactly over its inputs' Δs.

Rules, per primitive of the jaxpr ("active" = depends on x; everything else, weights included,
has Δ = 0 and is evaluated once):

- Linear / affine primitives (add, sub, neg, reshape, transpose, broadcast, slice, pad,
  concatenate, gather/scatter/dynamic_slice with constant indices, reduce_sum, cumsum,
  reduce_window_sum, convert_element_type, select_n with a constant predicate, mul, div,
  dot_general and conv_general_dilated with one active operand, …): their ordinary derivative.
  On a model that is affine in x, DeepLIFT is therefore exactly gradient × (x − x̄).
- Nonlinear elementwise primitives of one active operand (exp, log, tanh, logistic, sqrt, rsqrt,
  integer_pow, square, erf, sin, abs, max(x, c) = ReLU, div(c, x), pow, clamp, …): the Rescale
  rule, multiplier = secant slope Δout / Δin. Where the derivative at the midpoint (x + x̄)/2
  reproduces Δout to within float rounding (|Δout − f'·Δin| ≤ 4·eps·|out|, in particular
  Δin = 0), that derivative is used instead: it equals the secant up to rounding and is free of
  the cancellation noise of Δout / Δin at small Δin.
- Elementwise primitives of n = 2…4 active operands (max/min of two variables, div of two
  variables as in softmax and LayerNorm's (x − μ)/σ, pow, atan2, …): the exact n-player Shapley
  split of Δout. For two players a, b: C_a = ½[f(a, b) − f(ā, b) + f(a, b̄) − f(ā, b̄)],
  m_a = C_a / Δa (with the same derivative fallback), and likewise for b; C_a + C_b = Δout.
- Bilinear primitives with both operands active (mul of two variables as in LSTM gates,
  dot_general of queries and keys, convolution of two activations): the same Shapley split,
  which for a bilinear map is closed-form: C_a = B(Δa, (b + b̄)/2), C_b = B((a + ā)/2, Δb), so the
  multiplier is the derivative at the midpoint of the other operand (no division, no fallback).
- Max/min pooling (reduce_window_max/min, reduce_max/min over axes): Captum's `maxpool` rule.
  The pooled difference Δo = o − ō of each window is routed to the arg-max of x's window when
  o ≥ ō, else to the arg-max of the baseline's window, and divided by each input's Δ (the plain
  gradient where |Δin| is at rounding level). Summation-to-delta holds exactly.
- select_n (jnp.where) with an active predicate (e.g. a ReLU written jnp.where(x > 0, x, 0)):
  where the predicate agrees between x and x̄, the ordinary (linear) rule; where it flips,
  Δout is split over the active float cases in proportion to |Δcase| (for one active case this
  is the secant Δout / Δcase). A `cond` whose branch index depends on x evaluates every branch
  and applies the same rule. Values that depend on x only through comparisons or integer casts
  (a step function such as (x > 0).astype(float)) carry no multiplier: their share of Δ is lost
  and shows up in the completeness delta.
- Softmax is handled as its composed primitives (reduce_max → pool rule, sub, exp → secant,
  reduce_sum, div → two-player Shapley), which keeps summation-to-delta exact.
- stop_gradient is the identity here: DeepLIFT attributes the change of f's value, which a
  stop_gradient does not change (softmax subtracts a stop-gradient max).
- Calls (jit, closed_call, remat, custom_jvp_call, custom_vjp_call): a call that is elementwise in
  a single active operand (jax.nn.relu, relu6, silu, softplus, …) is one nonlinearity with its
  own secant slope (its derivative fallback uses the call's custom derivative, so relu'(0) = 0);
  any other call is inlined.
- scan (flax nn.RNN, LSTMs), cond with a constant index: rebuilt with lax.scan / lax.switch whose
  carry holds (value, reference) for every active carry (found by a fixed point over the body).
  `while` with an active carry is rejected: JAX cannot reverse-differentiate while loops (use
  lax.scan, or fori_loop with static bounds, which lowers to scan).
- Anything else with an active operand (sort, top_k, cumprod, reduce_prod, data-dependent
  gather indices, …) raises NotImplementedError naming the primitive.

DeepLIFT-SHAP (`deeplift_shap`) is the mean of the DeepLIFT attributions of x against each
baseline of a set (Captum's DeepLiftShap), optionally chunked over baselines.

Agreement with Captum 0.9 (float64): equal to ~1e-17 on ReLU CNNs with `nn.ReLU` modules and on
networks with a MaxPool2d module alone. Where a ReLU module directly precedes or follows a
MaxPool2d, Captum 0.9 itself violates summation-to-delta (its adjacent-hook bug,
meta-pytorch/captum#1104) and the two disagree.

Both functions are jit-, vmap- and sharding-compatible. Called outside any transformation,
they compile the rewritten program once per program and input shape and reuse it; f's
parameters are passed to it as arguments, never embedded as constants.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend.core import Literal

from sgt import xla
from sgt._checks import is_concrete
from sgt.saliency import _jaxpr as jx
from sgt.saliency._common import (Classifier, check_batch_size, check_target, per_sample_score, resolve_baseline,
                                  target_score)

__all__ = ["deeplift", "deeplift_shap"]

# --------------------------------------------------------------------------------------------
# primitive classes

LINEAR = frozenset({
    "add", "sub", "neg", "add_any", "reshape", "transpose", "broadcast_in_dim", "squeeze",
    "expand_dims", "slice", "dynamic_slice", "dynamic_update_slice", "gather", "scatter-add",
    "scatter_add", "scatter", "concatenate", "pad", "reduce_sum", "cumsum", "reduce_window_sum",
    "convert_element_type", "copy", "copy_p", "rev", "reduce_precision", "split", "real", "imag",
    "conj", "complex", "sharding_constraint", "mesh_cast", "reshard", "device_put",
    "optimization_barrier", "psum", "pvary", "name", "stack", "unstack", "tile",
})
# operands that are indices: they must not depend on x for the op to be linear
INDEX_OPERANDS = {"gather": slice(1, 2), "dynamic_slice": slice(1, None), "dynamic_update_slice": slice(2, None),
                  "scatter-add": slice(1, 2), "scatter_add": slice(1, 2), "scatter": slice(1, 2)}
BILINEAR = frozenset({"mul", "dot_general", "conv_general_dilated"})
ELEMENTWISE = frozenset({
    "exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "sin", "cos", "tan", "asin", "acos",
    "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "integer_pow",
    "square", "pow", "erf", "erfc", "erf_inv", "lgamma", "digamma", "polygamma", "igamma",
    "igammac", "zeta", "bessel_i0e", "bessel_i1e", "regularized_incomplete_beta", "abs", "sign",
    "floor", "ceil", "round", "max", "min", "atan2", "rem", "clamp", "nextafter", "div",
})
POOLS = {"reduce_max": "max", "reduce_window_max": "max", "reduce_min": "min", "reduce_window_min": "min"}
# elementwise primitives of any kind, for recognising a call as one elementwise nonlinearity
ANY_ELEMENTWISE = ELEMENTWISE | {
    "add", "sub", "neg", "mul", "add_any", "select_n", "convert_element_type", "stop_gradient", "copy",
    "copy_p", "reduce_precision", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "xor",
    "is_finite",
}
MAX_PLAYERS = 4


class Pair:
    """A variable of the program: its value on x, its value on the baseline, and whether it depends on x."""

    __slots__ = ("val", "ref", "active")

    def __init__(self, val, ref, active: bool):
        self.val, self.ref, self.active = val, ref, active

    @classmethod
    def const(cls, val) -> "Pair":
        return cls(val, val, False)

    def promoted(self) -> "Pair":
        return self if self.active else Pair(self.val, self.val, True)


def _flatten(pairs: Sequence[Pair], active: Sequence[bool]) -> list:
    out = []
    for p, a in zip(pairs, active):
        out += [p.promoted().val, p.promoted().ref] if a else [p.val]
    return out


def _unflatten(arrays: Sequence, active: Sequence[bool]) -> list[Pair]:
    arrays, out = list(arrays), []
    for a in active:
        out.append(Pair(arrays.pop(0), arrays.pop(0), True) if a else Pair.const(arrays.pop(0)))
    return out


def _conform(pairs: Sequence[Pair], active: Sequence[bool]) -> list[Pair]:
    """Promote to the statically expected activity (a body may leave a carry constant on one path)."""
    out = []
    for p, a in zip(pairs, active):
        if p.active and not a:
            raise AssertionError("deeplift: internal error, activity analysis missed a dependency on x")
        out.append(p.promoted() if a else p)
    return out


# --------------------------------------------------------------------------------------------
# activity analysis (which variables depend on x); mirrors the interpreter exactly


def active_outs(jaxpr, in_active: Sequence[bool]) -> list[bool]:
    env = dict(zip(jaxpr.invars, in_active))
    rd = lambda v: False if isinstance(v, Literal) else env.get(v, False)
    for eqn in jaxpr.eqns:
        act = [rd(v) for v in eqn.invars]
        outs = _eqn_active(eqn, act) if any(act) else [False] * len(eqn.outvars)
        for v, a in zip(eqn.outvars, outs):
            jx.write(env, v, a)
    return [rd(v) for v in jaxpr.outvars]


def _eqn_active(eqn, act: list[bool]) -> list[bool]:
    name = eqn.primitive.name
    if name in jx.CALLS:
        return active_outs(jx.inner(eqn)[0], act)
    if name == "scan":
        return _scan_activity(eqn, act)[1]
    if name == "cond" and not act[0]:
        branches = [active_outs(b.jaxpr, act[1:]) for b in eqn.params["branches"]]
        return [any(col) for col in zip(*branches)]
    return [True] * len(eqn.outvars)


def _scan_activity(eqn, act: list[bool]) -> tuple[list[bool], list[bool]]:
    """(activity of the carry, activity of the scan's outputs), by a fixed point over the body."""
    n_consts, n_carry = eqn.params["num_consts"], eqn.params["num_carry"]
    body = eqn.params["jaxpr"].jaxpr
    carry = list(act[n_consts:n_consts + n_carry])
    while True:
        outs = active_outs(body, act[:n_consts] + carry + act[n_consts + n_carry:])
        new = [a or b for a, b in zip(carry, outs[:n_carry])]
        if new == carry:
            return carry, carry + outs[n_carry:]
        carry = new


def _is_elementwise_unit(eqn, act: list[bool]) -> bool:
    """A call elementwise in its one active float operand, with one output of the same shape."""
    active = [v for v, a in zip(eqn.invars, act) if a]
    if len(active) != 1 or len(eqn.outvars) != 1:
        return False
    shape, out = active[0].aval.shape, eqn.outvars[0].aval
    if not (jx.is_float(active[0].aval) and jx.is_float(out) and out.shape == shape):
        return False
    return _elementwise_body(jx.inner(eqn)[0], act, shape)


def _elementwise_body(jaxpr, act: Sequence[bool], shape) -> bool:
    env = dict(zip(jaxpr.invars, act))
    rd = lambda v: False if isinstance(v, Literal) else env.get(v, False)
    for eqn in jaxpr.eqns:
        a = [rd(v) for v in eqn.invars]
        if any(a):
            if any(v.aval.shape != shape for v, ai in zip(eqn.invars, a) if ai):
                return False
            name = eqn.primitive.name
            if name in jx.CALLS:
                if not _elementwise_body(jx.inner(eqn)[0], a, shape):
                    return False
            elif name not in ANY_ELEMENTWISE:
                return False
        outs = _eqn_active(eqn, a) if any(a) else [False] * len(eqn.outvars)
        for v, o in zip(eqn.outvars, outs):
            jx.write(env, v, o)
    return all(rd(v) for v in jaxpr.outvars)


# --------------------------------------------------------------------------------------------
# nodes: a value with a chosen vector-Jacobian product


def _attach(out, inputs: Sequence, residuals: Sequence, backward):
    """`out` as a function of `inputs` whose VJP is `backward(residuals, g)` (a list, one per input).

    The forward value is `out` itself, untouched; `backward` must use only `residuals`.
    """

    @jax.custom_vjp
    def node(out, inputs, residuals):
        return out

    def fwd(out, inputs, residuals):
        return out, residuals

    def bwd(residuals, g):
        return jnp.zeros_like(g), tuple(backward(residuals, g)), tuple(jnp.zeros_like(r) for r in residuals)

    node.defvjp(fwd, bwd)
    return node(out, tuple(inputs), tuple(residuals))


def _unbroadcast(ct, shape):
    """Sum a cotangent of an elementwise output back to an operand that was broadcast (rank 0 or size-1 axes)."""
    shape = tuple(shape)
    if ct.shape == shape:
        return ct
    lead = ct.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and ct.shape[lead + i] != 1)
    return jnp.sum(ct, axis=axes).reshape(shape)


def _multipliers_node(out, inputs, multipliers):
    shapes = [jnp.shape(i) for i in inputs]

    def backward(ms, g):
        return [_unbroadcast(g * m, s).astype(i.dtype) for m, s, i in zip(ms, shapes, inputs)]

    return _attach(out, inputs, multipliers, backward)


def _derivative(fn, ops: list, k: int, out_aval):
    """∂fn/∂ops[k], elementwise, shaped like the output."""

    def along(u):
        return fn(*ops[:k], u, *ops[k + 1:])

    if jnp.shape(ops[k]) == out_aval.shape:  # vjp of an elementwise map with ones = its diagonal
        _, vjp = jax.vjp(along, ops[k])
        return vjp(jnp.ones(out_aval.shape, out_aval.dtype))[0]
    return jax.jvp(along, (ops[k],), (jnp.ones_like(ops[k]),))[1]


def _safe_div(num, den):
    return num / jnp.where(den == 0, jnp.ones_like(den), den)


def _shapley(fn, ins: Sequence[Pair], out_aval) -> Pair:
    """Elementwise rule: secant (1 active operand) or exact Shapley split (2–4 active operands)."""
    players = [i for i, p in enumerate(ins) if p.active]
    n = len(players)
    if n > MAX_PLAYERS or any(not jx.is_float(ins[i].val) for i in players):
        raise NotImplementedError(f"deeplift: elementwise op with {n} active operands (or an active "
                                  f"integer operand) is not supported")
    vals = [lax.stop_gradient(p.val) for p in ins]
    refs = [lax.stop_gradient(p.ref) for p in ins]

    def point(mask, mid=None):
        ops = list(refs)
        for j, k in enumerate(players):
            if mask >> j & 1:
                ops[k] = vals[k]
        if mid is not None:
            ops[players[mid]] = (vals[players[mid]] + refs[players[mid]]) / 2
        return ops

    table = {mask: fn(*point(mask)) for mask in range(2 ** n)}
    out_val, out_ref = table[2 ** n - 1], table[0]
    scale = jnp.max(jnp.stack([jnp.abs(t) for t in table.values()]), axis=0)
    tol = 4 * jnp.finfo(out_aval.dtype).eps * scale
    multipliers = []
    for j, k in enumerate(players):
        contribution, derivative = 0.0, 0.0
        for mask in range(2 ** n):
            if mask >> j & 1:
                continue
            s = bin(mask).count("1")
            w = math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
            contribution = contribution + w * (table[mask | 1 << j] - table[mask])
            derivative = derivative + w * _derivative(fn, point(mask, mid=j), k, out_aval)
        delta = vals[k] - refs[k]
        use_derivative = (delta == 0) | (jnp.abs(contribution - derivative * delta) <= tol)
        m = jnp.where(use_derivative, derivative, _safe_div(contribution, delta))
        m = jnp.where(jnp.isfinite(m), m, jnp.where(jnp.isfinite(derivative), derivative, 0.0))
        multipliers.append(m.astype(out_aval.dtype))
    out = _multipliers_node(out_val, [ins[k].val for k in players], multipliers)
    return Pair(out, out_ref, True)


def _bilinear(fn, a: Pair, b: Pair) -> Pair:
    """Both operands of a bilinear map active: Shapley split = derivative at the other's midpoint."""
    a_val, b_val = lax.stop_gradient(a.val), lax.stop_gradient(b.val)
    out_val, out_ref = fn(a_val, b_val), fn(a.ref, b.ref)
    a_mid, b_mid = (a_val + a.ref) / 2, (b_val + b.ref) / 2

    def backward(res, g):
        a_mid, b_mid = res
        ct_a = jax.vjp(lambda u: fn(u, b_mid), a_mid)[1](g)[0]
        ct_b = jax.vjp(lambda u: fn(a_mid, u), b_mid)[1](g)[0]
        return [ct_a, ct_b]

    return Pair(_attach(out_val, [a.val, b.val], [a_mid, b_mid], backward), out_ref, True)


def _pool(fn, kind: str, u: Pair) -> Pair:
    """Max/min pooling: Captum's rule, Δo routed to the arg-max of x (o ≥ ō) or of the baseline."""
    u_val = lax.stop_gradient(u.val)
    out_val, out_ref = fn(u_val), fn(u.ref)
    winner_x = out_val >= out_ref if kind == "max" else out_val <= out_ref
    delta = out_val - out_ref
    zero = jnp.zeros_like(delta)
    share_x, share_ref = jnp.where(winner_x, delta, zero), jnp.where(winner_x, zero, delta)
    eps = jnp.finfo(u_val.dtype).eps

    def backward(res, g):
        u_val, u_ref, share_x, share_ref = res
        unpool_x = jax.vjp(fn, u_val)[1]
        unpool_ref = jax.vjp(fn, u_ref)[1]
        routed = unpool_x(g * share_x)[0] + unpool_ref(g * share_ref)[0]
        d_in = u_val - u_ref
        small = (u_val == u_ref) | (jnp.abs(d_in) <= 8 * eps * jnp.maximum(jnp.abs(u_val), jnp.abs(u_ref)))
        m = jnp.where(small, unpool_x(g)[0], _safe_div(routed, jnp.where(small, 1, d_in)))
        return [jnp.where(jnp.isfinite(m), m, 0.0).astype(u_val.dtype)]

    return Pair(_attach(out_val, [u.val], [u_val, u.ref, share_x, share_ref], backward), out_ref, True)


def _select(pred: Pair, cases: Sequence[Pair]) -> Pair:
    """select_n with a predicate that depends on x (see the module docstring)."""
    p_val, p_ref = pred.val, pred.ref
    vals = [lax.stop_gradient(c.val) for c in cases]
    out_val, out_ref = lax.select_n(p_val, *vals), lax.select_n(p_ref, *[c.ref for c in cases])
    players = [k for k, c in enumerate(cases) if c.active]
    if not jx.is_float(out_val) or not players:
        return Pair(out_val, out_ref, True)
    deltas = {k: vals[k] - cases[k].ref for k in players}
    total = sum(jnp.abs(d) for d in deltas.values())
    keep = (p_val == p_ref) | (total == 0) | ~jnp.isfinite(total)
    d_out = out_val - out_ref
    multipliers = []
    for k in players:
        linear = (p_val.astype(jnp.int32) == k).astype(out_val.dtype)
        m = jnp.where(keep, linear, _safe_div(d_out * jnp.sign(deltas[k]), jnp.where(keep, 1, total)))
        multipliers.append(jnp.where(jnp.isfinite(m), m, linear))
    out = _multipliers_node(out_val, [cases[k].val for k in players], multipliers)
    return Pair(out, out_ref, True)


# --------------------------------------------------------------------------------------------
# the interpreter


def run(jaxpr, consts: Sequence, args: Sequence[Pair]) -> list[Pair]:
    """Evaluate `jaxpr` on (value, reference) pairs; values carry DeepLIFT's multipliers as derivatives."""
    env: dict = {}
    for v, c in zip(jaxpr.constvars, consts):
        env[v] = Pair.const(c)
    for v, p in zip(jaxpr.invars, args):
        env[v] = p
    rd = lambda v: Pair.const(v.val) if isinstance(v, Literal) else env[v]
    for eqn in jaxpr.eqns:
        ins = [rd(v) for v in eqn.invars]
        if any(p.active for p in ins):
            outs = _rule(eqn, ins)
        else:
            outs = [Pair.const(o) for o in jx.bind(eqn, [p.val for p in ins])]
        for v, o in zip(eqn.outvars, outs):
            jx.write(env, v, o)
    return [rd(v) for v in jaxpr.outvars]


def _both(eqn, ins: Sequence[Pair]) -> list[Pair]:
    """Evaluate the equation on values and on references (linear rule: its own derivative)."""
    outs = jx.bind(eqn, [p.val for p in ins])
    refs = jx.bind(eqn, [p.ref for p in ins])
    return [Pair(o, r, True) for o, r in zip(outs, refs)]


def _unsupported(eqn, why: str = ""):
    return NotImplementedError(
        f"deeplift: no DeepLIFT rule for primitive {eqn.primitive.name!r} with an operand that depends on "
        f"the input{why}; see sgt.saliency.deeplift for the supported operations")


def _call_rule(eqn, ins: list[Pair]) -> list[Pair]:
    """A call elementwise in one active operand is one nonlinearity; any other call is inlined."""
    if _is_elementwise_unit(eqn, [p.active for p in ins]):
        return _elementwise_rule(eqn, ins)
    jaxpr, consts = jx.inner(eqn)
    return run(jaxpr, consts, ins)


def _while_rule(eqn, ins: list[Pair]) -> list[Pair]:
    raise _unsupported(eqn, ": JAX cannot reverse-differentiate while loops whose carry depends on "
                            "the input; use lax.scan or fori_loop with static bounds")


def _identity_rule(eqn, ins: list[Pair]) -> list[Pair]:
    """stop_gradient: DeepLIFT attributes the change of f's value, which stop_gradient does not alter."""
    return [Pair(ins[0].val, ins[0].ref, True)]


def _elementwise_rule(eqn, ins: list[Pair]) -> list[Pair]:
    """Rescale (one active operand) or the exact Shapley split of Δout (two to four)."""
    return [_shapley(lambda *ops: jx.bind(eqn, ops)[0], ins, eqn.outvars[0].aval)]


def _bilinear_rule(eqn, ins: list[Pair]) -> list[Pair]:
    if ins[0].active and ins[1].active:
        return [_bilinear(lambda a, b: jx.bind(eqn, [a, b])[0], ins[0], ins[1])]
    return _both(eqn, ins)


def _div_rule(eqn, ins: list[Pair]) -> list[Pair]:
    """x / c is linear; c / x and x / y are elementwise nonlinearities."""
    return _both(eqn, ins) if not ins[1].active else _elementwise_rule(eqn, ins)


def _select_rule(eqn, ins: list[Pair]) -> list[Pair]:
    return _both(eqn, ins) if not ins[0].active else [_select(ins[0], ins[1:])]


def _pool_rule(eqn, ins: list[Pair]) -> list[Pair]:
    if len(ins) != 1:
        raise _unsupported(eqn, " with several operands")
    return [_pool(lambda u: jx.bind(eqn, [u])[0], POOLS[eqn.primitive.name], ins[0])]


# The rule of every primitive DeepLIFT supports, applied when an operand depends on the input.
RULES: dict[str, Callable[..., list[Pair]]] = {
    **{name: _call_rule for name in jx.CALLS},
    **{name: _both for name in LINEAR},
    **{name: _elementwise_rule for name in ELEMENTWISE},
    **{name: _bilinear_rule for name in BILINEAR},
    **{name: _pool_rule for name in POOLS},
    "div": _div_rule,
    "select_n": _select_rule,
    "stop_gradient": _identity_rule,
    "scan": lambda eqn, ins: _scan(eqn, ins),
    "cond": lambda eqn, ins: _cond(eqn, ins),
    "while": _while_rule,
}
STRUCTURED = frozenset({*jx.CALLS, "scan", "cond", "while"})  # rules that handle any output type


def _rule(eqn, ins: list[Pair]) -> list[Pair]:
    name = eqn.primitive.name
    if name not in STRUCTURED and not any(jx.is_float(v.aval) for v in eqn.outvars):
        # comparisons, argmax, integer casts: values only, no multiplier
        vals = jx.bind(eqn, [lax.stop_gradient(p.val) for p in ins])
        return [Pair(o, r, True) for o, r in zip(vals, jx.bind(eqn, [p.ref for p in ins]))]
    if name in INDEX_OPERANDS and any(p.active for p in ins[INDEX_OPERANDS[name]]):
        raise _unsupported(eqn, " through its indices")
    rule = RULES.get(name)
    if rule is None:
        raise _unsupported(eqn)
    return rule(eqn, ins)


def _scan(eqn, ins: list[Pair]) -> list[Pair]:
    p = eqn.params
    n_consts, n_carry = p["num_consts"], p["num_carry"]
    act = [q.active for q in ins]
    carry_act, out_act = _scan_activity(eqn, act)
    consts, init, xs = ins[:n_consts], ins[n_consts:n_consts + n_carry], ins[n_consts + n_carry:]
    xs_act, ys_act = act[n_consts + n_carry:], out_act[n_carry:]
    body = p["jaxpr"]

    def step(carry, x):
        outs = run(body.jaxpr, body.consts, consts + _unflatten(carry, carry_act) + _unflatten(x, xs_act))
        return (_flatten(_conform(outs[:n_carry], carry_act), carry_act),
                _flatten(_conform(outs[n_carry:], ys_act), ys_act))

    carry, ys = lax.scan(step, _flatten(init, carry_act), _flatten(xs, xs_act), length=p["length"],
                         reverse=p["reverse"], unroll=p["unroll"])
    return _unflatten(carry, carry_act) + _unflatten(ys, ys_act)


def _cond(eqn, ins: list[Pair]) -> list[Pair]:
    index, ops = ins[0], ins[1:]
    branches = eqn.params["branches"]
    if index.active:  # x and the baseline may take different branches: evaluate all, then select
        outs = [run(b.jaxpr, b.consts, ops) for b in branches]
        return [_select(index, list(col)) for col in zip(*outs)]
    in_act = [q.active for q in ops]
    out_act = _eqn_active(eqn, [False] + in_act)

    def branch(b):
        return lambda *flat: _flatten(_conform(run(b.jaxpr, b.consts, _unflatten(flat, in_act)), out_act), out_act)

    flat = lax.switch(index.val, [branch(b) for b in branches], *_flatten(ops, in_act))
    return _unflatten(flat, out_act)


# --------------------------------------------------------------------------------------------
# public API


def _check_x(x) -> None:
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise ValueError(f"x: DeepLIFT needs a floating-point input, got dtype {jnp.result_type(x)} "
                         f"(attribute token models at their embeddings)")
    if jnp.ndim(x) < 1:
        raise ValueError("x: expected a batch [batch, ...], got a scalar")


def _trace(f: Classifier, x):
    closed = jx.trace(f, x)
    out_aval = closed.out_avals[0]
    if len(closed.out_avals) != 1 or out_aval.ndim != 2 or out_aval.shape[0] != x.shape[0]:
        raise ValueError(f"f: expected one output of logits [batch, classes] = [{x.shape[0]}, C], "
                         f"got {[a.shape for a in closed.out_avals]}")
    return closed


def _attribute(jaxpr, consts, x, ref, target):
    """(attributions, f(x), f(baseline)) of DeepLIFT against the per-sample baseline `ref`; f = jaxpr."""
    # the baseline is often a constant under jit: keep XLA from constant-folding its whole pass
    ref = lax.optimization_barrier(ref)

    def score(xv):
        (out,) = run(jaxpr, consts, [Pair(xv, ref, True)])
        out = out.promoted()
        return target_score(out.val, target), (out.val, out.ref)

    multipliers, (logits, logits_ref) = jax.grad(score, has_aux=True)(x)
    return (x - ref) * multipliers, logits, logits_ref


# Outside any transformation (all arrays concrete), the rewritten program is compiled once per
# program and shapes and reused: executed op by op it would compile hundreds of small kernels on
# every new shape. The key is the printed jaxpr; the constants (f's parameters) are passed as
# arguments on every call, so a changed parameter value is always seen. (Custom derivative rules
# print by name only; they enter DeepLIFT only through the derivative fallback at Δ ≈ 0.)
_EXECUTORS: "OrderedDict[tuple, Callable]" = OrderedDict()
_MAX_EXECUTORS = 32


def _call(compute, closed, *arrays, static=()):
    """compute(jaxpr, consts, *arrays), jitted and cached when nothing is traced, else inline."""
    consts = list(closed.consts)
    if not all(is_concrete(a) for a in [*consts, *arrays]):
        return compute(closed.jaxpr, consts, *arrays)
    if jx.has_nested_consts(closed.jaxpr):  # constants the printed key cannot see: compile afresh
        return xla.jit(functools.partial(compute, closed.jaxpr))(consts, *arrays)
    avals = tuple((jnp.shape(a), str(jnp.result_type(a))) for a in [*consts, *arrays])
    key = (compute.__name__, static, str(closed.jaxpr), avals)
    executor = _EXECUTORS.get(key)
    if executor is None:
        executor = _EXECUTORS[key] = xla.jit(functools.partial(compute, closed.jaxpr))
        if len(_EXECUTORS) > _MAX_EXECUTORS:
            _EXECUTORS.popitem(last=False)
    else:
        _EXECUTORS.move_to_end(key)
    return executor(consts, *arrays)


def deeplift(f: Classifier, *, baseline=None, return_delta: bool = False):
    """DeepLIFT with the Rescale rule, computed by rewriting the traced program of `f` (module docstring).

    `baseline`: None (zeros), an array shaped like one example x.shape[1:] (shared by the batch)
    or like x (one per sample). Attributions are (x − baseline) · multipliers, shaped like x; they
    sum over each sample to f(x)[i, t_i] − f(baseline)[i, t_i]. With `return_delta`, `attribute`
    returns (attributions, delta) with delta[i] = Σ attributions[i] − (f(x)[i, t_i] −
    f(baseline)[i, t_i]), zero up to float rounding. `key` is ignored (deterministic method).
    Samples must not interact inside `f` (inference mode).
    """

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None):
        del key
        _check_x(x)
        check_target(target, x.shape[0])
        ref = resolve_baseline(baseline, x)
        attributions, logits, logits_ref = _call(_attribute, _trace(f, x), x, ref, jnp.asarray(target))
        if not return_delta:
            return attributions
        total = attributions.reshape(x.shape[0], -1).sum(axis=1)
        return attributions, total - (per_sample_score(logits, target) - per_sample_score(logits_ref, target))

    return attribute


def deeplift_shap(f: Classifier, *, baselines, batch_size: int | None = None, return_delta: bool = False):
    """DeepLIFT-SHAP: the mean over a set of baselines of each input's DeepLIFT attributions.

    `baselines` [n_baselines, *x.shape[1:]]: every sample is attributed against every baseline
    (Captum's DeepLiftShap) and the n attributions are averaged; the average sums to
    f(x)_t − mean_j f(baseline_j)_t. `batch_size` bounds memory: that many baselines are processed
    at once (`jax.lax.map(..., batch_size=…)`); None processes all of them together (vmap).
    With `return_delta`, `attribute` returns (attributions, delta) with delta[i] = Σ attributions[i]
    − (f(x)[i, t_i] − mean_j f(baseline_j)[t_i]), one per sample (Captum gives one per sample and
    baseline), zero up to float rounding.
    """
    check_batch_size(batch_size)

    def attribute(x: jax.Array, target: jax.Array, *, key: jax.Array | None = None):
        del key
        _check_x(x)
        check_target(target, x.shape[0])
        bases = jnp.asarray(baselines)
        if bases.ndim != x.ndim or bases.shape[1:] != x.shape[1:] or bases.shape[0] < 1:
            raise ValueError(f"baselines: expected shape [n_baselines, *{x.shape[1:]}] with n_baselines ≥ 1, "
                             f"got {bases.shape}")
        attributions, gain = _call(_shap, _trace(f, x), x, bases.astype(x.dtype), jnp.asarray(target),
                                   static=batch_size)
        if not return_delta:
            return attributions
        return attributions, attributions.reshape(x.shape[0], -1).sum(axis=1) - gain

    def _shap(jaxpr, consts, x, bases, target):
        """(mean attributions, mean over baselines of f(x)_t − f(baseline)_t)."""
        def one(b):
            attributions, logits, logits_ref = _attribute(jaxpr, consts, x, jnp.broadcast_to(b, x.shape), target)
            return attributions, per_sample_score(logits, target) - per_sample_score(logits_ref, target)

        if batch_size is None:
            attributions, gains = jax.vmap(one)(bases)
        else:
            attributions, gains = lax.map(one, bases, batch_size=int(batch_size))
        return attributions.mean(axis=0), gains.mean(axis=0)

    return attribute
