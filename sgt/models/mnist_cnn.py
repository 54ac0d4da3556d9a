"""The MNIST CNN of the authors' code (the PyTorch MNIST example network)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from sgt import nn_ops


def _torch_init(fan_in: int) -> dict:
    """PyTorch's default for Conv2d and Linear, which the authors' network trained with: weights and
    biases U(±1/√fan_in). (Flax's default: lecun_normal weights, √3 times wider, and zero biases.)"""
    bound = fan_in ** -0.5
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)  # noqa: E731
    return dict(kernel_init=uniform, bias_init=uniform)


class MnistCNN(nn.Module):
    """conv32(3×3) → ReLU → conv64(3×3) → ReLU → maxpool 2 → dropout .25 → fc128 → ReLU → dropout .5 → fc.

    Input NHWC [B, 28, 28, 1]; output logits. The authors' network ends in log_softmax, which
    changes nothing in cross-entropy but makes their saliency the gradient of log p(y|x); here the
    saliency is that of the logit.

    `conv_impl` / `pool_impl` choose how the convolutions and the max-pool are computed
    (`sgt.nn_ops`; default: the fastest measured on the current backend, on CPU XLA's convolution
    compiled with `sgt.xla.compiler_options()`, as every program of the library is; in your own
    `jax.jit` use `sgt.xla.jit`, or `conv_impl="slices"`, which needs no compile option). They
    change neither the parameters nor, beyond float rounding, the outputs.
    """

    num_classes: int = 10
    dtype: jnp.dtype = jnp.float32
    conv_impl: str | None = None
    pool_impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = jnp.asarray(x, self.dtype)
        conv = lambda n, x: nn_ops.Conv(n, (3, 3), padding="VALID", dtype=self.dtype,  # noqa: E731
                                        impl=self.conv_impl or nn_ops.default_conv_impl(cpu="xla"),
                                        **_torch_init(9 * x.shape[-1]))(x)
        dense = lambda n, x: nn.Dense(n, dtype=self.dtype, **_torch_init(x.shape[-1]))(x)  # noqa: E731
        x = nn.relu(conv(32, x))
        x = nn.relu(conv(64, x))
        x = nn_ops.max_pool(x, (2, 2), strides=(2, 2), impl=self.pool_impl)
        x = nn.Dropout(0.25, deterministic=not train)(x)
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(dense(128, x))
        x = nn.Dropout(0.5, deterministic=not train)(x)
        return dense(self.num_classes, x).astype(jnp.float32)
