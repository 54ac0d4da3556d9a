"""CIFAR residual networks: ResNet-18 with a 3×3 stem, and the 6n+2-layer ResNets of the authors' code.

Inputs are NHWC images; outputs are float32 logits. Convolutions have no bias (each is followed by
BatchNorm); BatchNorm uses PyTorch's defaults (running-average momentum 0.1, i.e. Flax 0.9; ε 1e-5).
Padding is symmetric as in PyTorch (`padding=1` for 3×3), so a stride-2 3×3 convolution reads the
same pixels as the reference (Flax "SAME" would pad only the bottom/right).

`conv_impl` chooses how the convolutions are computed (`sgt.nn_ops`; default: XLA's own, which on
a 2-core CPU was about 1.5× faster than "slices" for these networks); it changes neither the
parameters nor, beyond float rounding, the outputs.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from sgt import nn_ops

# PyTorch `kaiming_normal_` (fan_in, gain √2, untruncated), the authors' CIFAR ResNet init.
kaiming_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def conv3x3(features: int, stride: int, dtype, kernel_init=kaiming_normal, name=None,
            impl: str | None = None) -> nn_ops.Conv:
    return nn_ops.Conv(features, (3, 3), strides=stride, padding=((1, 1), (1, 1)), use_bias=False,
                       kernel_init=kernel_init, dtype=dtype, name=name,
                       impl=impl or nn_ops.default_conv_impl(cpu="xla"))


def batch_norm(train: bool, dtype, name=None) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, name=name)


class BasicBlock(nn.Module):
    """y = relu(BN(conv3×3(relu(BN(conv3×3_stride(x))))) + shortcut(x)).

    shortcut: identity when shape is kept; otherwise "B" = BN(conv1×1_stride(x)) (ResNet-18) or
    "A" = x[:, ::2, ::2] with zero channels padded on both sides (Idelbayev; no parameters).
    """

    features: int
    stride: int = 1
    shortcut: str = "B"
    dtype: jnp.dtype = jnp.float32
    conv_impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool):
        conv = lambda stride: conv3x3(self.features, stride, self.dtype, impl=self.conv_impl)  # noqa: E731
        y = nn.relu(batch_norm(train, self.dtype)(conv(self.stride)(x)))
        y = batch_norm(train, self.dtype)(conv(1)(y))
        if self.stride != 1 or x.shape[-1] != self.features:
            if self.shortcut == "A":
                pad = (self.features - x.shape[-1]) // 2
                x = x[:, ::self.stride, ::self.stride, :]
                x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (pad, self.features - x.shape[-1] - pad)))
            else:
                x = nn_ops.Conv(self.features, (1, 1), strides=self.stride, use_bias=False,
                                kernel_init=kaiming_normal, dtype=self.dtype,
                                impl=self.conv_impl or nn_ops.default_conv_impl(cpu="xla"))(x)
                x = batch_norm(train, self.dtype)(x)
        return nn.relu(y + x)


class ResNet18(nn.Module):
    """ResNet-18 for 32×32 inputs (the common CIFAR variant: 3×3 stride-1 stem, no max-pool).

    conv3×3(64)-BN-ReLU → BasicBlocks [2, 2, 2, 2] at 64/128/256/512 channels (strides 1, 2, 2, 2;
    1×1 conv + BN projection shortcuts) → global average pool → linear. 11,173,962 parameters
    for 10 classes.
    """

    num_classes: int = 10
    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    dtype: jnp.dtype = jnp.float32
    conv_impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = jnp.asarray(x, self.dtype)
        x = nn.relu(batch_norm(train, self.dtype)(conv3x3(64, 1, self.dtype, impl=self.conv_impl)(x)))
        for stage, blocks in enumerate(self.stage_sizes):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                x = BasicBlock(64 * 2**stage, stride, "B", self.dtype, self.conv_impl)(x, train)
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)


class CifarResNet(nn.Module):
    """The authors' CIFAR ResNet (Idelbayev's code): depth 6n+2, e.g. ResNet-20/32/56 for n = 3/5/9.

    conv3×3(16)-BN-ReLU → 3 stages of n BasicBlocks at 16/32/64 channels (strides 1, 2, 2), option-A
    shortcuts → global average pool → Linear(64, classes). Convolutions and the linear weight are
    Kaiming-normal (fan_in); the linear bias is zero.
    """

    num_classes: int = 10
    depth: int = 32
    dtype: jnp.dtype = jnp.float32
    conv_impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.depth < 8 or (self.depth - 2) % 6:
            raise ValueError(f"depth: expected 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {self.depth}")
        n = (self.depth - 2) // 6
        x = jnp.asarray(x, self.dtype)
        x = nn.relu(batch_norm(train, self.dtype)(conv3x3(16, 1, self.dtype, impl=self.conv_impl)(x)))
        for stage in range(3):
            for block in range(n):
                stride = 2 if stage > 0 and block == 0 else 1
                x = BasicBlock(16 * 2**stage, stride, "A", self.dtype, self.conv_impl)(x, train)
        x = x.mean(axis=(1, 2))
        x = nn.Dense(self.num_classes, kernel_init=kaiming_normal, dtype=self.dtype)(x)
        return x.astype(jnp.float32)
