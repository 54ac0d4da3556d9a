"""VGG-16 (torchvision layout) with the authors' BIRD classifier head, and an ImageNet weight loader.

Module names mirror torchvision's `features` indices (`features/conv_0`, `features/conv_2`, …,
`features/conv_28`), so a torchvision state dict maps onto the parameters by name.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from sgt import nn_ops

# torchvision "D" configuration: conv widths, "M" = 2×2 max-pool with stride 2.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def conv_indices(config=VGG16_CONFIG) -> list[int]:
    """Indices of the convolutions in torchvision's `features` Sequential (conv, ReLU, …, MaxPool)."""
    indices, i = [], 0
    for item in config:
        if item == "M":
            i += 1
        else:
            indices.append(i)
            i += 2
    return indices


def adaptive_avg_pool(x, size: int):
    """PyTorch's AdaptiveAvgPool2d(size) on NHWC: output cell i averages rows ⌊iH/s⌋ … ⌈(i+1)H/s⌉ − 1.

    An identity for H = W = s (224×224 inputs give 7×7 features); smaller maps are repeated.
    """

    def matrix(n):  # [size, n] averaging weights
        p = np.zeros((size, n), np.float32)
        for i in range(size):
            lo, hi = (i * n) // size, math.ceil((i + 1) * n / size)
            p[i, lo:hi] = 1.0 / (hi - lo)
        return jnp.asarray(p, x.dtype)

    if x.shape[1:3] == (size, size):
        return x
    return jnp.einsum("ih,jw,bhwc->bijc", matrix(x.shape[1]), matrix(x.shape[2]), x)


def conv3x3(features: int, index: int, dtype=jnp.float32, impl: str | None = None) -> nn_ops.Conv:
    """torchvision's Conv2d(·, features, 3, padding=1) at `features.{index}` (He-normal fan_out init)."""
    return nn_ops.Conv(features, (3, 3), padding=((1, 1), (1, 1)), dtype=dtype,
                       impl=impl or nn_ops.default_conv_impl(cpu="xla"),
                       kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"), name=f"conv_{index}")


class VGG16Features(nn.Module):
    """The 13 convolutions (3×3, padding 1, bias, ReLU) and 5 max-pools; [B, H, W, 3] → [B, H/32, W/32, 512].

    `conv_impl` / `pool_impl`: see `sgt.nn_ops`; the convolution default is XLA's own on every
    backend. In training the "slices" convolution would keep each convolution's patch matrix (9× its
    input) for the backward pass, about 0.1 GB per 224×224 image for the first block.
    """

    dtype: jnp.dtype = jnp.float32
    conv_impl: str | None = None
    pool_impl: str | None = None

    @nn.compact
    def __call__(self, x):
        indices = iter(conv_indices())
        for item in VGG16_CONFIG:
            if item == "M":
                x = nn_ops.max_pool(x, (2, 2), strides=(2, 2), impl=self.pool_impl)
            else:
                x = nn.relu(conv3x3(item, next(indices), self.dtype, self.conv_impl)(x))
        return x


class VGG16(nn.Module):
    """VGG-16 features → adaptive average pool to 7×7 → flatten (25088) → the authors' head.

    Head (BIRD code): Linear(25088, 4048) → ReLU → Dropout(0.4) → Linear(4048, 2048) → ReLU →
    Dropout(0.4) → Linear(2048, classes); `head` sets the hidden widths. The flatten follows
    PyTorch's C·H·W order, so a torchvision classifier could be ported too. Default 260 classes
    (BIRD): 125,100,052 parameters, 14,714,688 of them convolutional. Load ImageNet convolutions with
    `load_vgg16_features`.
    """

    num_classes: int = 260
    head: Sequence[int] = (4048, 2048)
    dropout: float = 0.4
    dtype: jnp.dtype = jnp.float32
    conv_impl: str | None = None  # `sgt.nn_ops`; default: the fastest measured on the backend
    pool_impl: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = VGG16Features(self.dtype, self.conv_impl, self.pool_impl, name="features")(jnp.asarray(x, self.dtype))
        x = adaptive_avg_pool(x, 7)
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # PyTorch flatten order
        for width in self.head:
            x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)


def load_vgg16_features(params: Mapping, path) -> dict:
    """`params` (of `VGG16`) with the convolutions replaced by those in the .npz file at `path`.

    The file holds torchvision state-dict arrays named `features.{i}.weight` [out, in, 3, 3] (OIHW)
    and `features.{i}.bias` [out]; other keys (e.g. `classifier.*`) are ignored. Kernels are
    converted OIHW → HWIO: kernel[h, w, c_in, c_out] = weight[c_out, c_in, h, w]. Returns a new
    tree; `params` is not modified. Make the file on a machine with internet access::

        import numpy as np, torchvision
        net = torchvision.models.vgg16(weights="IMAGENET1K_V1")
        np.savez("vgg16_features.npz", **{f"features.{k}": v.numpy()
                                           for k, v in net.features.state_dict().items()})

    The ImageNet weights expect RGB inputs in [0, 1] normalised with mean (0.485, 0.456, 0.406)
    and std (0.229, 0.224, 0.225).
    """
    features = dict(params["features"])
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    for i in conv_indices():
        name = f"conv_{i}"
        for key in (f"features.{i}.weight", f"features.{i}.bias"):
            if key not in arrays:
                raise ValueError(f"path: {path} has no array {key!r} (expected torchvision's VGG-16 "
                                 f"`features.<index>.weight/bias` names)")
        kernel = np.transpose(arrays[f"features.{i}.weight"], (2, 3, 1, 0))
        bias = arrays[f"features.{i}.bias"]
        old = features[name]
        for what, new in (("kernel", kernel), ("bias", bias)):
            if new.shape != old[what].shape:
                raise ValueError(f"path: features.{i} {what} has shape {new.shape} after conversion, "
                                 f"the model expects {old[what].shape}")
        features[name] = {"kernel": jnp.asarray(kernel, old["kernel"].dtype),
                          "bias": jnp.asarray(bias, old["bias"].dtype)}
    return {**params, "features": features}
