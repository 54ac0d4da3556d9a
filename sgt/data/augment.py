"""Label-preserving image augmentation for NHWC batches: pure, jittable functions of a JAX key.

`augment(key, x)` is the standard CIFAR recipe: pad 4 pixels on each side, crop back to the original
size at a random offset per sample, and flip left-right with probability 1/2 per sample. The output
depends only on (key, x); labels are never touched. Jit with the integer arguments static, e.g.
`jax.jit(augment, static_argnames="padding")`.

The padding value is `fill` (0 by default). On images that are already normalised, 0 is the mean
colour; to pad with black as torchvision does (it pads before normalising) pass the normalised black,
e.g. `fill=sgt.data.cifar10.PAD_BLACK`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def flip(x: jax.Array) -> jax.Array:
    """Left-right mirror of every image of [N, H, W, C] (its own inverse)."""
    return x[:, :, ::-1, :]


def pad(x: jax.Array, padding: int, fill=0.0) -> jax.Array:
    """[N, H, W, C] -> [N, H + 2p, W + 2p, C], framed by `fill` (a scalar or one value per channel)."""
    out = jnp.broadcast_to(jnp.asarray(fill, x.dtype), (x.shape[0], x.shape[1] + 2 * padding,
                                                        x.shape[2] + 2 * padding, x.shape[3]))
    return jax.lax.dynamic_update_slice(out, x, (0, padding, padding, 0))


def crop(x: jax.Array, offsets: jax.Array, height: int, width: int) -> jax.Array:
    """Per sample i, the window x[i, r:r + height, c:c + width] with (r, c) = offsets[i] (int [N, 2])."""
    def one(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, image.shape[-1]))
    return jax.vmap(one)(x, offsets)


def random_crop(key: jax.Array, x: jax.Array, padding: int = 4, fill=0.0) -> jax.Array:
    """Pad by `padding`, then crop back to the input size at an offset drawn uniformly from
    {0, .., 2·padding}² per sample (offset (padding, padding) is the input itself)."""
    offsets = jax.random.randint(key, (x.shape[0], 2), 0, 2 * padding + 1)
    return crop(pad(x, padding, fill), offsets, x.shape[1], x.shape[2])


def random_flip(key: jax.Array, x: jax.Array, p: float = 0.5) -> jax.Array:
    """Each image mirrored left-right with probability `p`, independently."""
    mirrored = jax.random.bernoulli(key, p, (x.shape[0],))
    return jnp.where(mirrored[:, None, None, None], flip(x), x)


def augment(key: jax.Array, x: jax.Array, padding: int = 4, fill=0.0) -> jax.Array:
    """`random_crop` then `random_flip`, from two keys split off `key`."""
    crop_key, flip_key = jax.random.split(key)
    return random_flip(flip_key, random_crop(crop_key, x, padding, fill))
