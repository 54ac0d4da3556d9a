"""Post-processing of maps: magnitude, channel reduction, per-sample scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.saliency_cases import (jit)
from sgt.saliency.postprocess import absolute, reduce_channels, scale


# ---------------------------------------------------------------- post-processing


def test_absolute_and_channel_reduction():
    a = jnp.array([[[[1.0, -3.0], [-2.0, 2.0]]]])  # NHWC: 1×1×2×2
    np.testing.assert_array_equal(absolute(a), jnp.abs(a))
    np.testing.assert_allclose(reduce_channels(a), [[[-1.0, 0.0]]])
    np.testing.assert_allclose(reduce_channels(a, "sum"), [[[-2.0, 0.0]]])
    with pytest.raises(ValueError, match="how"):
        reduce_channels(a, "max")


def test_scale_per_sample_to_unit_and_symmetric_ranges():
    a = jnp.array([[[-2.0, 0.0], [2.0, 6.0]], [[5.0, 5.0], [5.0, 5.0]]])
    np.testing.assert_allclose(scale(a), [[[0.0, 0.25], [0.5, 1.0]], [[0, 0], [0, 0]]])
    np.testing.assert_allclose(scale(a, range=(-1, 1)), [[[-1.0, -0.5], [0.0, 1.0]], [[0, 0], [0, 0]]])
    np.testing.assert_allclose(jit(scale)(a), scale(a))
    per_example = jax.vmap(lambda s: scale(s[None])[0])(a)
    np.testing.assert_allclose(per_example, scale(a))
    with pytest.raises(ValueError, match="range"):
        scale(a, range=(1, -1))
