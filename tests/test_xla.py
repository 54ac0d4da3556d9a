"""sgt.xla: per-backend compile options and the `jit` that applies them."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sgt import models, train, xla

RNG = np.random.default_rng(0)


def conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv_and_grads(x, kernel):
    """The convolution and its input and kernel gradients for an all-ones cotangent (no reduction)."""
    y, vjp = jax.vjp(conv, x, kernel)
    return (y, *vjp(jnp.ones_like(y)))


def library_convolutions(hlo: str) -> int:
    """Convolutions inside YNNPACK library fusions of an optimised HLO module's text."""
    bodies = dict(re.findall(r"^%?([\w.\-]+) [^\n]*\{\n(.*?)\n\}", hlo, flags=re.S | re.M))
    called = re.findall(r'calls=%?([\w.\-]+)[^\n]*"__ynn_fusion"', hlo)
    return sum(bodies.get(name, "").count(" convolution(") for name in called)


def test_options_per_backend_and_environment(monkeypatch):
    monkeypatch.delenv("SGT_XLA_OPTIONS", raising=False)
    assert xla.compiler_options("cpu") == xla.CPU_OPTIONS
    assert xla.compiler_options("gpu") is None and xla.compiler_options("tpu") is None
    monkeypatch.setenv("SGT_XLA_OPTIONS", "default")
    assert xla.compiler_options("cpu") is None
    monkeypatch.setenv("SGT_XLA_OPTIONS", "fast")
    with pytest.raises(ValueError, match="SGT_XLA_OPTIONS"):
        xla.compiler_options("cpu")


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are CPU options")
def test_jit_keeps_convolutions_out_of_library_fusions_with_the_same_values(monkeypatch):
    monkeypatch.delenv("SGT_XLA_OPTIONS", raising=False)
    x = jnp.asarray(RNG.normal(size=(4, 14, 14, 16)), jnp.float32)  # large enough for XLA to use YNNPACK
    kernel = jnp.asarray(RNG.normal(size=(3, 3, 16, 32)) * 0.1, jnp.float32)
    ours = xla.jit(conv_and_grads)
    assert library_convolutions(ours.lower(x, kernel).compile().as_text()) == 0
    # XLA's defaults put the convolution and its kernel gradient into YNNPACK fusions; if a new
    # jaxlib stops doing so, the option may no longer be needed (re-measure, benchmarks/README.md)
    assert library_convolutions(jax.jit(conv_and_grads).lower(x, kernel).compile().as_text()) == 2
    for got, want in zip(ours(x, kernel), jax.jit(conv_and_grads)(x, kernel)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))


def test_jit_chooses_its_options_at_the_first_call_and_nests(monkeypatch):
    calls = []
    monkeypatch.setattr(xla, "compiler_options", lambda: calls.append(1) or None)
    doubled = xla.jit(lambda x: 2 * x)
    assert calls == []  # applying jit (e.g. at import) decides nothing and starts no backend
    assert float(doubled(jnp.float32(3))) == 6 and calls == [1]
    assert float(doubled(jnp.float32(4))) == 8 and calls == [1]  # compiled once, options read once
    assert float(jax.jit(lambda x: doubled(x) + 1)(jnp.float32(3))) == 7  # nested: no top-level-only error
    assert float(jax.grad(doubled)(jnp.float32(3))) == 2
    static = xla.jit(lambda x, n: x * n, static_argnums=1)
    assert float(static(jnp.float32(3), 5)) == 15
    with pytest.raises(TypeError, match="compiler_options"):
        xla.jit(lambda x: x, compiler_options={})


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are CPU options")
def test_train_step_is_compiled_with_the_options(monkeypatch):
    monkeypatch.delenv("SGT_XLA_OPTIONS", raising=False)
    model = models.get("mnist_cnn", conv_impl="xla")
    x = jnp.asarray(RNG.uniform(size=(8, 28, 28, 1)), jnp.float32)
    y = jnp.arange(8) % 10
    state = train.create_train_state(model, optax.sgd(0.1), x[:1], seed=0)
    step = train.make_train_step(model, optax.sgd(0.1), method="sgt")
    assert library_convolutions(step.jitted.lower(state, x, y).compile().as_text()) == 0
    monkeypatch.setenv("SGT_XLA_OPTIONS", "default")  # XLA's defaults: the comparison the benchmarks make
    default = train.make_train_step(model, optax.sgd(0.1), method="sgt")
    fresh = lambda: train.create_train_state(model, optax.sgd(0.1), x[:1], seed=0)  # noqa: E731 (steps donate it)
    (new, metrics), (new_default, metrics_default) = step(fresh(), x, y), default(fresh(), x, y)
    np.testing.assert_allclose(metrics["loss"], metrics_default["loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(new_default.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
