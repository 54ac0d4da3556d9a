"""The MNIST CNN of the authors' code (the PyTorch MNIST example network)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

# PyTorch's default initialisation of Conv2d and Linear, which the authors' network trained with:
# weights and biases U(±1/√fan_in) (Flax's default is lecun_normal weights, √3 times larger, and zero biases).
_torch_kernel = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


def _torch_bias(fan_in: int):
    bound = fan_in ** -0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class MnistCNN(nn.Module):
    """conv32(3×3) → ReLU → conv64(3×3) → ReLU → maxpool 2 → dropout .25 → fc128 → ReLU → dropout .5 → fc.

    Input NHWC [B, 28, 28, 1]; output logits. The authors' network ends in log_softmax, which
    changes nothing in cross-entropy but makes their saliency the gradient of log p(y|x); here the
    saliency is that of the logit (design.md §1).
    """

    num_classes: int = 10
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = jnp.asarray(x, self.dtype)
        x = nn.relu(nn.Conv(32, (3, 3), padding="VALID", dtype=self.dtype,
                            kernel_init=_torch_kernel, bias_init=_torch_bias(9))(x))
        x = nn.relu(nn.Conv(64, (3, 3), padding="VALID", dtype=self.dtype,
                            kernel_init=_torch_kernel, bias_init=_torch_bias(9 * 32))(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.Dropout(0.25, deterministic=not train)(x)
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(128, dtype=self.dtype, kernel_init=_torch_kernel, bias_init=_torch_bias(9216))(x))
        x = nn.Dropout(0.5, deterministic=not train)(x)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=_torch_kernel, bias_init=_torch_bias(128))(x)
        return logits.astype(jnp.float32)
