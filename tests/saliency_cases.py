"""Tiny classifiers, data and jitted method factories shared by the saliency tests."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sgt.saliency import (gradient as eager_gradient, gradient_shap as eager_gradient_shap,
                          input_x_gradient as eager_input_x_gradient,
                          integrated_gradients as eager_integrated_gradients, occlusion as eager_occlusion,
                          smoothgrad as eager_smoothgrad)

# The tests' programs are tiny, so XLA's compile time dominates: compile without backend optimisation
# (about 3× faster to compile here; results agree to float rounding).
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def jitted(factory):
    """The method factory, with every attribute function it returns wrapped in `jit`.

    Eager JAX dispatches (and compiles) op by op, which makes the sampling methods slow on a shared
    CPU; jitting compiles each test's program once. `test_jit_matches_eager` checks eager mode.
    """
    return functools.wraps(factory)(lambda *args, **kwargs: jit(factory(*args, **kwargs)))


gradient = jitted(eager_gradient)
input_x_gradient = jitted(eager_input_x_gradient)
occlusion = jitted(eager_occlusion)
integrated_gradients = jitted(eager_integrated_gradients)
smoothgrad = jitted(eager_smoothgrad)
gradient_shap = jitted(eager_gradient_shap)

RNG = np.random.default_rng(0)
W_LIN = RNG.normal(size=(6, 3)).astype(np.float32)
B_LIN = RNG.normal(size=3).astype(np.float32)
W1 = RNG.normal(size=(6, 8)).astype(np.float32) / 2
W2 = RNG.normal(size=(8, 3)).astype(np.float32)
X = RNG.normal(size=(8, 2, 3)).astype(np.float32)
TARGET = jnp.array([0, 2, 1, 2, 1, 0, 0, 2])


def linear(x):
    return x.reshape(len(x), -1) @ W_LIN + B_LIN


def mlp(x):
    return jnp.tanh(x.reshape(len(x), -1) @ W1) @ W2


def weight_of_target(target, shape=(2, 3)):
    """∂linear/∂x for each sample's target, shaped like x."""
    return W_LIN[:, np.asarray(target)].T.reshape(len(target), *shape)


KEY = jax.random.key(0)


