"""Convolution and pooling with a choice of implementation, for speed on each backend.

XLA's CPU convolutions can be slow: with XLA's default options an unpadded convolution and its
kernel gradient go to YNNPACK, and on a 2-core CPU one 3×3 convolution of the MNIST CNN (32 → 64
channels, 26×26, batch 128) takes about 335 ms forward + backward through
`lax.conv_general_dilated`, 172 ms as shifted slices and one matrix product, 80–90 ms through XLA's
own convolution (`sgt.xla.compiler_options()`, which the library compiles every program with) and
65–73 ms in PyTorch. Its `reduce_window` max-pool backward (`select_and_scatter`) is slow too. So
this module offers, with the same results:

* `conv(x, kernel, ...)` and the `Conv` module (a drop-in for `flax.linen.Conv`: the same
  parameter names, shapes, initialisers and order of random draws, so checkpoints and
  initialisations are bit-identical), with `impl`:
    - "xla": `lax.conv_general_dilated`;
    - "slices": the patches of every kernel offset taken as (strided) slices of the padded
      input, concatenated along channels, and one matrix product with the kernel reshaped to
      [kernel_size·in, out] ("im2col" without the convolution that `conv_general_dilated_patches`
      uses to build the patches). Its gradients are slices, pads and matrix products.
* `max_pool(x, window, strides)` with `impl`:
    - "xla": `flax.linen.max_pool` (`lax.reduce_window`);
    - "reshape": when the window equals the stride, padding is VALID and the window divides each
      spatial size, a reshape [.., H/k, k, W/k, k, C] and a max over the window axes. Its gradient
      follows `nn.max_pool`'s rule exactly, ties included: the whole cotangent of a window goes to
      its *first* maximal element in row-major window order (`reduce_window`'s select-and-scatter
      keeps the first of equal maxima). Other pools fall back to "xla".

`impl=None` (the default everywhere) means `default_conv_impl()` / `default_pool_impl()`: on
GPU and TPU "xla", whose convolutions there are cuDNN / the TPU's own and were not measured
against the alternatives; on CPU (`jax.default_backend()`, read when the function is traced)
"reshape" pooling and the convolution that was measured fastest for the network: the models of
`sgt.models` each pass their own CPU choice (`default_conv_impl(cpu=...)`: "xla" for the MNIST CNN,
the small CNN and the ResNets, "slices" for the TCN, where both are alike; benchmarks/README.md has
the measurements). The environment variables `SGT_CONV_IMPL` and `SGT_POOL_IMPL` override the
default (e.g. `SGT_CONV_IMPL=xla` to compare), as does an explicit `impl=`.

The two convolution paths agree to float32 rounding (they sum in a different order), not bit for
bit; parameters are identical.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

CONV_IMPLS = ("xla", "slices")
POOL_IMPLS = ("xla", "reshape")

PaddingLike = str | int | Sequence[int | tuple[int, int]]


def _backend(backend: str | None) -> str:
    return backend or jax.default_backend()


def default_conv_impl(backend: str | None = None, *, cpu: str = "slices") -> str:
    """The convolution implementation used when none is given: `SGT_CONV_IMPL` if set, else `cpu`
    on CPU and "xla" on GPU/TPU (not measured there; XLA's own convolutions).

    Which path is fastest on a CPU depends on the network, so each model of `sgt.models` passes its
    measured choice as `cpu` (benchmarks/README.md): "xla" for the MNIST CNN and the small CNN
    (with `sgt.xla.compiler_options()`), the ResNets (many padded convolutions whose patch
    matrices cost more than XLA's convolution) and VGG-16 (not measured; the patch matrices would
    be large); "slices" for the TCN (the two alike).
    """
    env = os.environ.get("SGT_CONV_IMPL")
    if env:
        return _check_impl("SGT_CONV_IMPL", env, CONV_IMPLS)
    return _check_impl("cpu", cpu, CONV_IMPLS) if _backend(backend) == "cpu" else "xla"


def default_pool_impl(backend: str | None = None) -> str:
    """The max-pool implementation used when none is given: `SGT_POOL_IMPL` if set, else
    "reshape" on CPU (measured fastest there) and "xla" on GPU/TPU (not measured)."""
    env = os.environ.get("SGT_POOL_IMPL")
    if env:
        return _check_impl("SGT_POOL_IMPL", env, POOL_IMPLS)
    return "reshape" if _backend(backend) == "cpu" else "xla"


def _check_impl(name: str, impl: str, allowed: tuple[str, ...]) -> str:
    if impl not in allowed:
        raise ValueError(f"{name}: expected one of {allowed}, got {impl!r}")
    return impl


def _tuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f"{name}: expected {n} values (one per spatial axis), got {value}")
    return value


def explicit_padding(padding: PaddingLike, in_shape: Sequence[int], kernel_shape: Sequence[int],
                     strides: Sequence[int], kernel_dilation: Sequence[int]) -> list[tuple[int, int]]:
    """(low, high) padding per spatial axis, as `lax.conv_general_dilated` reads `padding`.

    "VALID", "SAME" (extra pixel at the end, as XLA/Flax), "SAME_LOWER", an int (the same on both
    sides of every axis), or one int or (low, high) pair per axis.
    """
    n = len(in_shape)
    if isinstance(padding, str):
        dilated = [(k - 1) * d + 1 for k, d in zip(kernel_shape, kernel_dilation)]
        return [tuple(p) for p in lax.padtype_to_pads(in_shape, dilated, strides, padding.upper())]
    if isinstance(padding, int):
        return [(padding, padding)] * n
    pads = list(padding)
    if len(pads) != n:
        raise ValueError(f"padding: expected {n} entries (one per spatial axis), got {padding}")
    return [(p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in pads]


def _conv_xla(x, kernel, strides, pads, dilation, precision):
    n = x.ndim - 2
    spatial = "HWD"[:n] if n <= 3 else None
    dn = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
    return lax.conv_general_dilated(x, kernel, strides, pads, rhs_dilation=dilation,
                                    dimension_numbers=dn, precision=precision)


def _conv_slices(x, kernel, strides, pads, dilation, precision):
    n = x.ndim - 2
    ksize, cin, cout = kernel.shape[:n], kernel.shape[-2], kernel.shape[-1]
    x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *[(lo, hi, 0) for lo, hi in pads], (0, 0, 0)])
    size = x.shape[1:-1]
    out = [(s - (k - 1) * d - 1) // st + 1 for s, k, d, st in zip(size, ksize, dilation, strides)]
    if min(out) <= 0:
        raise ValueError(f"conv: the kernel {tuple(ksize)} (dilation {tuple(dilation)}) does not fit "
                         f"the padded input {tuple(size)}")
    taps = []
    for offset in np.ndindex(*ksize):  # row-major, the order of kernel.reshape(-1, cin, cout)
        start = [o * d for o, d in zip(offset, dilation)]
        limit = [s + (m - 1) * st + 1 for s, m, st in zip(start, out, strides)]
        taps.append(lax.slice(x, (0, *start, 0), (x.shape[0], *limit, cin), (1, *strides, 1)))
    cols = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)
    matrix = kernel.reshape(math.prod(ksize) * cin, cout)
    return lax.dot_general(cols, matrix, (((cols.ndim - 1,), (0,)), ((), ())), precision=precision)


def conv(x: jax.Array, kernel: jax.Array, strides: int | Sequence[int] = 1, padding: PaddingLike = "VALID", *,
         kernel_dilation: int | Sequence[int] = 1, precision=None, impl: str | None = None) -> jax.Array:
    """Convolution of channels-last `x` [batch, *spatial, in] with `kernel` [*window, in, out].

    The cross-correlation of `lax.conv_general_dilated` (what `flax.linen.Conv` computes), for 1, 2
    or 3 spatial axes; `padding` as `explicit_padding`. `impl` in `CONV_IMPLS`, default
    `default_conv_impl()`. Both operands must already have the compute dtype.
    """
    impl = _check_impl("impl", impl or default_conv_impl(), CONV_IMPLS)
    n = x.ndim - 2
    if n < 1 or kernel.ndim != n + 2:
        raise ValueError(f"conv: expected x [batch, *spatial, in] and kernel [*window, in, out] with the same "
                         f"number of spatial axes, got {x.shape} and {kernel.shape}")
    if kernel.shape[-2] != x.shape[-1]:
        raise ValueError(f"conv: kernel expects {kernel.shape[-2]} input channels, x has {x.shape[-1]}")
    strides = _tuple(strides, n, "strides")
    dilation = _tuple(kernel_dilation, n, "kernel_dilation")
    pads = explicit_padding(padding, x.shape[1:-1], kernel.shape[:n], strides, dilation)
    body = _conv_xla if impl == "xla" else _conv_slices
    return body(x, kernel, strides, pads, dilation, precision)


class Conv(nn.Module):
    """`flax.linen.Conv` with a choice of implementation (`impl`, see `conv`).

    Same fields, defaults, parameter names ("kernel" [*kernel_size, in, features], "bias"
    [features]), initialisers and order of random draws as `nn.Conv`, and the class has the same
    name, so a model switched from `nn.Conv` to this module keeps its parameter tree (auto-named
    "Conv_0", "Conv_1", …) and its initial values bit for bit. Supported: channels-last inputs
    with a batch axis, strides, kernel dilation, string / int / per-axis padding; not supported
    (use `nn.Conv`): feature groups, input dilation, circular/causal padding, masks.
    """

    features: int
    kernel_size: int | Sequence[int]
    strides: int | Sequence[int] = 1
    padding: PaddingLike = "SAME"
    kernel_dilation: int | Sequence[int] = 1
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None
    kernel_init: Callable = nn.linear.default_kernel_init
    bias_init: Callable = nn.initializers.zeros_init()
    impl: str | None = None

    @nn.compact
    def __call__(self, inputs):
        ksize = (self.kernel_size,) if isinstance(self.kernel_size, int) else tuple(self.kernel_size)
        if inputs.ndim != len(ksize) + 2:
            raise ValueError(f"Conv: expected inputs [batch, *spatial ({len(ksize)} axes), channels], "
                             f"got shape {inputs.shape}")
        kernel = self.param("kernel", self.kernel_init, (*ksize, inputs.shape[-1], self.features), self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        inputs, kernel, bias = nn.dtypes.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = conv(inputs, kernel, self.strides, self.padding, kernel_dilation=self.kernel_dilation,
                 precision=self.precision, impl=self.impl)
        return y if bias is None else y + bias


# --------------------------------------------------------------------------------------------
# Max pooling.
# --------------------------------------------------------------------------------------------


def _window_view(x, window):
    """x [B, *spatial, C] → [B, s1/k1, k1, s2/k2, k2, …, C] (no copy: a reshape)."""
    shape = [x.shape[0]]
    for s, k in zip(x.shape[1:-1], window):
        shape += [s // k, k]
    return x.reshape(*shape, x.shape[-1])


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _pool_reshape(x, window):
    n = len(window)
    return _window_view(x, window).max(axis=tuple(2 + 2 * i for i in range(n)))


@_pool_reshape.defjvp
def _pool_reshape_jvp(window, primals, tangents):
    (x,), (t,) = primals, tangents
    n = len(window)
    axes = tuple(2 + 2 * i for i in range(n))
    xv, tv = _window_view(x, window), _window_view(t, window)
    y = xv.max(axis=axes)
    # Row-major position of every element in its window; the first maximal one takes the tangent.
    shape = [1] * xv.ndim
    position = np.zeros([1] * xv.ndim, np.int32)
    stride = 1
    for i in reversed(range(n)):
        shape_i = list(shape)
        shape_i[axes[i]] = window[i]
        position = position + (np.arange(window[i], dtype=np.int32) * stride).reshape(shape_i)
        stride *= window[i]
    is_max = xv == jnp.expand_dims(y, axes)
    first = jnp.min(jnp.where(is_max, position, stride), axis=axes, keepdims=True)
    chosen = position == first
    return y, jnp.sum(jnp.where(chosen, tv, jnp.zeros((), tv.dtype)), axis=axes)


def reshape_pool_applies(shape: Sequence[int], window: Sequence[int], strides: Sequence[int],
                         padding: PaddingLike) -> bool:
    """Whether the "reshape" max-pool computes this pool (else it falls back to "xla")."""
    valid = isinstance(padding, str) and padding.upper() == "VALID" or (
        not isinstance(padding, str) and all(tuple(p) == (0, 0) for p in padding))
    return (valid and tuple(window) == tuple(strides)
            and all(s % k == 0 for s, k in zip(shape[1:-1], window)))


def max_pool(x: jax.Array, window: Sequence[int], strides: Sequence[int] | None = None,
             padding: PaddingLike = "VALID", *, impl: str | None = None) -> jax.Array:
    """Max pooling of channels-last `x` [batch, *spatial, C], as `flax.linen.max_pool`.

    `impl` in `POOL_IMPLS`, default `default_pool_impl()`; "reshape" applies when the window equals
    the stride, padding is VALID and the window divides every spatial size (else "xla" is used).
    Values and gradients equal `nn.max_pool`'s, ties included (the first maximal element of a
    window, in row-major order, receives the window's cotangent).
    """
    window = tuple(window)
    strides = window if strides is None else tuple(strides)
    impl = _check_impl("impl", impl or default_pool_impl(), POOL_IMPLS)
    if x.ndim != len(window) + 2:
        raise ValueError(f"max_pool: expected x [batch, *spatial ({len(window)} axes), channels], got {x.shape}")
    if impl == "reshape" and reshape_pool_applies(x.shape, window, strides, padding):
        return _pool_reshape(x, window)
    return nn.max_pool(x, window, strides, padding)


__all__ = ["conv", "Conv", "max_pool", "explicit_padding", "default_conv_impl", "default_pool_impl",
           "reshape_pool_applies", "CONV_IMPLS", "POOL_IMPLS"]
