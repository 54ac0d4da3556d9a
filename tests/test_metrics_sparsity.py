"""Gini index and the share of near-zero saliency, on hand-computed vectors."""

import numpy as np
import pytest

from sgt import metrics


def test_gini_by_hand():
    maps = np.array([
        [2.0, 2.0, 2.0, 2.0],    # uniform → 0
        [0.0, 0.0, -5.0, 0.0],   # one nonzero entry of 4 → 1 − 1/4 (sign ignored)
        [0.0, 0.0, 0.0, 0.0],    # no mass → 0
    ])
    np.testing.assert_allclose(metrics.gini(maps), [0.0, 0.75, 0.0], atol=1e-12)
    # (1, 2, 3): 1 − 2·[(1/6)(2.5/3) + (2/6)(1.5/3) + (3/6)(0.5/3)] = 1 − 2·7/18 = 2/9,
    # as Σᵢⱼ|cᵢ − cⱼ| / (2 n Σc) = 8 / 36
    np.testing.assert_allclose(metrics.gini(np.array([[3.0, -1.0, 2.0]])), [2 / 9])


def test_gini_over_every_entry_of_an_image_and_scale_invariance():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(5, 4, 4, 3))
    g = metrics.gini(maps)
    assert g.shape == (5,) and ((0 <= g) & (g < 1)).all()
    np.testing.assert_allclose(metrics.gini(7.0 * maps), g)
    one_hot = np.zeros((1, 4, 4, 3))
    one_hot[0, 1, 2, 0] = 1.0
    np.testing.assert_allclose(metrics.gini(one_hot), [1 - 1 / 48])
    flat = np.abs(maps.reshape(5, -1))
    by_pairs = np.abs(flat[:, :, None] - flat[:, None, :]).sum((1, 2)) / (2 * 48 * flat.sum(1))
    np.testing.assert_allclose(g, by_pairs)


def test_fraction_below_a_tenth_of_the_maximum():
    maps = np.array([
        [10.0, -0.5, 0.99, 1.0, 5.0],  # below 1.0: 0.5 and 0.99 → 2/5
        [1.0, 1.0, 1.0, 1.0, 1.0],     # none
        [0.0, 0.0, 0.0, 0.0, 0.0],     # no entry below a zero maximum
    ])
    np.testing.assert_allclose(metrics.fraction_below(maps), [0.4, 0.0, 0.0])
    np.testing.assert_allclose(metrics.fraction_below(maps, relative=0.5), [0.6, 0.0, 0.0])  # 0.5, 0.99, 1 < 5
    with pytest.raises(ValueError, match="relative"):
        metrics.fraction_below(maps, relative=0.0)


def test_bad_maps_are_rejected():
    with pytest.raises(ValueError, match="non-empty"):
        metrics.gini(np.ones(4))
    with pytest.raises(ValueError, match="non-finite"):
        metrics.gini(np.array([[1.0, np.inf]]))
