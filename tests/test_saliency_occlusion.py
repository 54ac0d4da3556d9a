"""Occlusion: hand cases on a linear model, windows over two axes, bad windows."""

import jax.numpy as jnp
import numpy as np
import pytest

from tests.saliency_cases import (RNG, TARGET, X, linear, occlusion)


def test_occlusion_hand_cases_on_a_linear_model():
    w = np.array([1.0, -2.0, 3.0, 0.5, 4.0], np.float32)
    f = lambda x: (x @ w)[:, None]
    x = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    t = jnp.array([0])
    c = w * (np.asarray(x[0]) - 1.0)  # each entry's own drop when replaced by the baseline 1: (0, −2, 6, 1.5, 16)
    # window 1: the attribution is each entry's own drop w·(x − b)
    np.testing.assert_allclose(occlusion(f, window=(1,), stride=(1,), baseline=1.0)(x, t), [c], rtol=1e-6)
    # window 2, stride 1: windows {0,1} {1,2} {2,3} {3,4}; an entry averages the windows covering it
    pair = [c[0] + c[1], c[1] + c[2], c[2] + c[3], c[3] + c[4]]  # (−2, 4, 7.5, 17.5)
    expected = [pair[0], (pair[0] + pair[1]) / 2, (pair[1] + pair[2]) / 2, (pair[2] + pair[3]) / 2, pair[3]]
    np.testing.assert_allclose(occlusion(f, window=(2,), stride=(1,), baseline=1.0)(x, t), [expected], rtol=1e-6)
    # window 2, stride 2 on 5 entries: ⌈3/2⌉ + 1 = 3 windows {0,1} {2,3} {4} (the last is cut at the edge)
    expected = [c[0] + c[1]] * 2 + [c[2] + c[3]] * 2 + [c[4]]
    np.testing.assert_allclose(occlusion(f, window=2, stride=2, baseline=1.0)(x, t), [expected], rtol=1e-6)


def test_occlusion_two_axes_and_per_sample_baseline():
    # linear model on 3×4 inputs with 2×2 windows, stride 2: the windows tile the input, so every entry gets
    # its window's total drop Σ w·(x − b) over the window.
    w = RNG.normal(size=(3, 4)).astype(np.float32)
    f = lambda x: jnp.einsum("bij,ij->b", x, w)[:, None]
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    b = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    drop = w * (x - b)
    expected = np.zeros_like(x)
    for r0 in (0, 2):
        for c0 in (0, 2):
            expected[:, r0:r0 + 2, c0:c0 + 2] = drop[:, r0:r0 + 2, c0:c0 + 2].sum((1, 2))[:, None, None]
    attr = occlusion(f, window=(2, 2), stride=(2, 2), baseline=b)(jnp.asarray(x), jnp.array([0, 0]))
    np.testing.assert_allclose(attr, expected, rtol=1e-5, atol=1e-6)
    chunked = occlusion(f, window=(2, 2), stride=(2, 2), baseline=b, batch_size=2)(jnp.asarray(x), jnp.array([0, 0]))
    np.testing.assert_allclose(chunked, attr, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=(2, 4), stride=(1, 1)), "window.*exceeds"),
    (dict(window=(2,), stride=(1, 1)), "window"),
    (dict(window=(1, 2), stride=(1, 3)), "stride.*exceed"),
    (dict(window=(1, 0), stride=(1, 1)), "window"),
    (dict(window=(1, 1), stride=(1, 1), baseline=np.zeros(5)), "baseline"),
])
def test_occlusion_rejects_bad_windows(kwargs, message):
    with pytest.raises(ValueError, match=message):
        occlusion(linear, **kwargs)(jnp.asarray(X), TARGET)


def test_occlusion_stride_may_exceed_a_window_that_spans_the_axis():
    attr = occlusion(linear, window=(2, 1), stride=(5, 1))(jnp.asarray(X), TARGET)
    assert attr.shape == X.shape
