import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgt import masking


def test_lowest_k_matches_a_direct_sort():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 7, 3))  # distinct values: no ties
    mask = np.asarray(masking.lowest_k(jnp.asarray(scores), 6))
    for s, m in zip(scores, mask):
        expected = np.zeros(s.size, bool)
        expected[np.argsort(s.ravel())[:6]] = True
        np.testing.assert_array_equal(m.ravel(), expected)


def test_fraction_k_is_floored_and_exact_per_sample():
    scores = jnp.asarray(np.random.default_rng(1).normal(size=(4, 10)))
    mask = masking.lowest_k(scores, 0.55)  # floor(5.5) = 5
    np.testing.assert_array_equal(mask.sum(1), [5, 5, 5, 5])


def test_magnitude_and_signed_rankings_differ_as_specified():
    saliency = jnp.array([[-3.0, 0.1, 2.0, -0.2]])
    # magnitude: |s| = 3, .1, 2, .2 → two lowest are 0.1 and -0.2
    mag = masking.lowest_k(masking.unit_scores(saliency, "magnitude"), 2)
    np.testing.assert_array_equal(mag, [[False, True, False, True]])
    # signed: two lowest are -3 and -0.2
    signed = masking.lowest_k(masking.unit_scores(saliency, "signed"), 2)
    np.testing.assert_array_equal(signed, [[True, False, False, True]])


def test_image_units_are_pixels_scored_by_the_signed_channel_mean():
    # one 1x3 image with 2 channels: channel means (0, 2, -1.5) → magnitude ranks pixel 0 lowest
    saliency = jnp.array([[[[1.0, -1.0], [2.0, 2.0], [-1.0, -2.0]]]])
    np.testing.assert_allclose(masking.unit_scores(saliency, "signed"), [[[0.0, 2.0, -1.5]]])
    x = jnp.arange(6.0).reshape(1, 1, 3, 2)
    masked = masking.mask_lowest(x, saliency, 1, fill="constant", value=-9.0)
    np.testing.assert_array_equal(masked, [[[[-9.0, -9.0], [2.0, 3.0], [4.0, 5.0]]]])


def test_uniform_fill_stays_in_each_samples_own_range_per_channel():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.uniform(size=(3, 8, 8, 2)) * np.array([1.0, 10.0]) + np.arange(3)[:, None, None, None])
    fill = np.asarray(masking.uniform_fill(jax.random.PRNGKey(0), x))
    lo, hi = np.asarray(x).min(axis=(1, 2)), np.asarray(x).max(axis=(1, 2))
    assert np.all(fill >= lo[:, None, None, :]) and np.all(fill <= hi[:, None, None, :])
    # the fill spans most of each range (not a constant)
    spread = fill.max(axis=(1, 2)) - fill.min(axis=(1, 2))
    assert np.all(spread > 0.8 * (hi - lo))


def test_time_series_fill_uses_the_whole_sample_range_and_mean():
    x = jnp.array([[[0.0, 4.0], [1.0, 3.0]], [[10.0, 10.0], [10.0, 14.0]]])
    np.testing.assert_allclose(masking.mean_fill(x)[:, 0, 0], [2.0, 11.0])
    fill = np.asarray(masking.uniform_fill(jax.random.PRNGKey(1), x))
    assert fill[0].min() >= 0 and fill[0].max() <= 4 and fill[1].min() >= 10 and fill[1].max() <= 14


def test_mask_lowest_replaces_exactly_the_k_least_salient_cells():
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(2, 5, 4)))
    saliency = jnp.asarray(rng.normal(size=(2, 5, 4)))
    masked = masking.mask_lowest(x, saliency, 7, key=jax.random.PRNGKey(0), fill="mean")
    changed = np.asarray(masked != x)
    expected = np.asarray(masking.lowest_k(jnp.abs(saliency), 7))
    np.testing.assert_array_equal(changed, expected)


@pytest.mark.parametrize("k, message", [
    (0, "k: must satisfy"), (-3, "k: must satisfy"), (20, "k: must satisfy"), (25, "k: must satisfy"),
    (0.0, r"k: a fraction must lie in \(0, 1\)"), (1.0, "fraction"), (1.5, "fraction"),
    (0.01, "masks no unit"), ("half", "k: expected"),
])
def test_bad_k_is_rejected(k, message):
    with pytest.raises(ValueError, match=message):
        masking.lowest_k(jnp.zeros((2, 4, 5)), k)


def test_bad_arguments_are_rejected():
    x = jnp.zeros((2, 4))
    with pytest.raises(ValueError, match="saliency: expected the shape"):
        masking.mask_lowest(x, jnp.zeros((2, 5)), 1)
    with pytest.raises(ValueError, match="rank_by"):
        masking.unit_scores(x, "abs")
    with pytest.raises(ValueError, match="fill"):
        masking.mask_lowest(x, x, 1, fill="zeros")
    with pytest.raises(ValueError, match="key"):
        masking.mask_lowest(x, x, 1, fill="uniform")
    with pytest.raises(ValueError, match="scores"):
        masking.lowest_k(jnp.zeros(4), 1)


@pytest.mark.parametrize("shape, k", [((5, 7, 3), 6), ((4, 28, 28), 0.5), ((3, 50, 50), 0.8), ((2, 9), 1)])
def test_every_selection_gives_the_same_mask_on_tie_free_scores(shape, k):
    scores = jnp.asarray(np.random.default_rng(4).normal(size=shape), jnp.float32)
    masks = {s: np.asarray(masking.lowest_k(scores, k, selection=s)) for s in masking.SELECTIONS}
    for s, m in masks.items():
        np.testing.assert_array_equal(m, masks["radix"], err_msg=s)


def test_exact_selections_break_ties_by_lower_index():
    scores = jnp.array([[1.0, 0.5, 0.5, 0.5, 2.0, 0.5], [3.0, 3.0, 3.0, 3.0, 3.0, 3.0]])
    for selection in ("radix", "top_k"):
        np.testing.assert_array_equal(masking.lowest_k(scores, 2, selection=selection),
                                      [[False, True, True, False, False, False],
                                       [True, True, False, False, False, False]])


def test_default_selection_follows_the_backend():
    assert masking.default_selection("cpu") == "radix"
    assert masking.default_selection("gpu") == masking.default_selection("tpu") == "top_k"
    with pytest.raises(ValueError, match="selection"):
        masking.lowest_k(jnp.zeros((2, 4)), 1, selection="sort")
