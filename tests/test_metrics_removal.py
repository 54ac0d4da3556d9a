"""Removal curves, their area, the random ranking and ROAR's images, checked by hand."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgt import metrics
from sgt.metrics import removal


def _linear(w):
    """A linear classifier over the flattened input (samples do not interact)."""
    return lambda x: x.reshape(x.shape[0], -1) @ w


def _data(batch=6, h=4, w=5, c=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, h, w, c)).astype(np.float32) + 3.0  # never equal to the replacements
    scores = rng.normal(size=(batch, h, w)).astype(np.float32)
    return x, scores


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.35, 0.5, 0.9, 1.0])
def test_exactly_the_top_units_are_removed_and_nothing_else(fraction):
    x, scores = _data()
    units = 20
    count = max(1, int(fraction * units))
    out = np.asarray(metrics.remove_top(x, scores, fraction, replacement=-7.0))
    changed = (out != x)
    assert (changed.all(-1) == changed.any(-1)).all()  # a pixel changes in all channels or in none
    pixels = changed.any(-1)
    assert (pixels.reshape(len(x), -1).sum(1) == count).all()
    for i in range(len(x)):
        top = np.argsort(-scores[i].ravel(), kind="stable")[:count]
        assert set(np.flatnonzero(pixels[i])) == set(top)
    np.testing.assert_array_equal(out[pixels], -7.0)
    np.testing.assert_array_equal(out[~pixels], x[~pixels])


def test_fraction_zero_changes_nothing_and_small_fractions_remove_one():
    x, scores = _data()
    np.testing.assert_array_equal(metrics.remove_top(x, scores, 0.0, replacement=-7.0), x)
    assert metrics.removal_count(0.0, 20) == 0
    assert metrics.removal_count(0.01, 20) == 1  # ⌊0.2⌋ = 0 → at least one
    assert metrics.removal_count(0.3, 784) == 235
    with pytest.raises(ValueError, match="fraction"):
        metrics.removal_count(1.5, 20)


def test_replacement_by_an_array():
    x, scores = _data()
    per_sample = np.arange(x.size, dtype=np.float32).reshape(x.shape) * -1.0
    out = np.asarray(metrics.remove_top(x, scores, 0.3, replacement=per_sample))
    pixels = (out != x).any(-1)
    np.testing.assert_array_equal(out[pixels], per_sample[pixels])
    per_channel = np.array([-1.0, -2.0], np.float32)  # broadcast over samples and pixels
    out = np.asarray(metrics.remove_top(x, scores, 0.3, replacement=per_channel))
    np.testing.assert_array_equal(out[pixels], np.broadcast_to(per_channel, out[pixels].shape))
    with pytest.raises(ValueError, match="replacement"):
        metrics.remove_top(x, scores, 0.3, replacement=np.zeros(3))


def test_inputs_without_a_channel_axis_and_bad_scores():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 10)).astype(np.float32) + 5
    s = np.tile(np.arange(10.0), (3, 1))
    out = np.asarray(metrics.remove_top(x, s, 0.2, replacement=0.0))
    np.testing.assert_array_equal(out[:, 8:], 0.0)
    np.testing.assert_array_equal(out[:, :8], x[:, :8])
    with pytest.raises(ValueError, match="scores: expected shape"):
        metrics.remove_top(x, s[:, :9], 0.2)
    with pytest.raises(ValueError, match="non-finite"):
        metrics.remove_top(x, np.where(s == 3, np.nan, s), 0.2)


def test_the_random_ranking_is_a_permutation():
    scores = metrics.random_scores(jax.random.PRNGKey(0), (5, 4, 6))
    assert scores.shape == (5, 4, 6)
    flat = np.asarray(scores).reshape(5, -1)
    for row in flat:
        np.testing.assert_array_equal(np.sort(row), np.arange(24))
    assert len({tuple(r) for r in flat}) == 5  # each sample its own order
    ranks = np.asarray(metrics.removal_ranks(scores)).reshape(5, -1)
    np.testing.assert_array_equal(ranks, 23 - flat)  # the highest score goes first
    again = metrics.random_scores(jax.random.PRNGKey(0), (5, 4, 6))
    np.testing.assert_array_equal(again, scores)


def test_ties_by_index_without_a_key_and_at_random_with_one():
    scores = np.zeros((200, 10), np.float32)
    scores[:, 0] = -0.0  # −0.0 ties with 0.0
    scores[:, 9] = 1.0  # the one clear winner
    ranks = np.asarray(metrics.removal_ranks(scores))
    np.testing.assert_array_equal(ranks[:, 9], 0)
    np.testing.assert_array_equal(ranks[:, :9], np.tile(np.arange(1, 10), (200, 1)))  # lower index first
    mask = np.asarray(metrics.top_mask(scores, 0.3, key=jax.random.PRNGKey(3)))
    assert (mask.sum(1) == 3).all() and mask[:, 9].all()
    chosen = mask[:, :9].mean(0)  # the two tied picks are uniform over the 9 zeros: 2/9 each
    assert np.all(np.abs(chosen - 2 / 9) < 0.1)
    rows = {tuple(np.flatnonzero(m)) for m in mask}
    assert len(rows) > 10
    np.testing.assert_array_equal(mask, metrics.top_mask(scores, 0.3, key=jax.random.PRNGKey(3)))
    assert not np.array_equal(mask, metrics.top_mask(scores, 0.3, key=jax.random.PRNGKey(4)))


def test_curve_counts_correct_predictions_by_hand():
    """Two classes; class 1 wins iff the sum of the first two features is positive."""
    w = jnp.zeros((4, 2)).at[0, 1].set(1.0).at[1, 1].set(1.0)
    f = _linear(w)
    x = np.array([[1.0, 1.0, 0.0, 0.0],    # label 1: logits (0, 2)
                  [1.0, 0.5, 0.0, 0.0],    # label 1
                  [-1.0, -1.0, 0.0, 0.0],  # label 0: logits (0, −2)
                  [2.0, -1.0, 0.0, 0.0]], np.float32)  # label 1 (sum 1)
    y = np.array([1, 1, 0, 1])
    scores = np.array([[4, 3, 2, 1], [4, 3, 2, 1], [4, 3, 2, 1], [1, 4, 3, 2]], np.float32)
    acc = metrics.removal_curve(f, x, y, scores, fractions=(0.0, 0.25, 0.5, 0.75), replacement=0.0)
    # p = .25 removes feature 0 (feature 1 for sample 3): sums 1, .5, −1, 2 → all correct
    # p = .5 removes features 0, 1 (1, 2 for sample 3): samples 0-2 tie at (0, 0), argmax → class 0,
    # so 0, 1 are wrong and 2 right; sample 3 keeps x₀ = 2 → right. p = .75 (3 units) likewise
    np.testing.assert_allclose(acc, [1.0, 1.0, 0.5, 0.5])
    assert isinstance(acc, np.ndarray)
    acc = metrics.removal_curve(f, x, y, scores, fractions=(0.0, 0.25), replacement=np.full((4, 4), -3.0, np.float32))
    np.testing.assert_allclose(acc, [1.0, 0.25])  # −3 pushes samples 0, 1, 3 to class 0


def test_batched_equals_unbatched_with_and_without_a_key():
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(size=(4 * 5 * 2, 3)), jnp.float32)
    f = _linear(w)
    x, _ = _data(batch=11)
    scores = np.round(rng.normal(size=(11, 4, 5)), 0).astype(np.float32)  # many ties
    y = np.asarray(jnp.argmax(f(x), -1))
    per_sample = rng.normal(size=x.shape).astype(np.float32)
    for key in (None, jax.random.PRNGKey(2)):
        for replacement in (0.0, per_sample):
            whole = metrics.removal_curve(f, x, y, scores, replacement=replacement, key=key)
            for batch in (1, 4, 11, 50):
                chunks = metrics.removal_curve(f, x, y, scores, replacement=replacement, key=key, batch_size=batch)
                np.testing.assert_array_equal(chunks, whole)
    assert whole[0] == 1.0 and whole.shape == (10,)


def test_a_partial_classifier_gives_the_same_curve():
    rng = np.random.default_rng(3)
    x, scores = _data(batch=8)
    def apply(w, x):
        return x.reshape(x.shape[0], -1) @ w

    results = []
    for seed in (0, 1):
        w = jnp.asarray(np.random.default_rng(seed).normal(size=(40, 3)), jnp.float32)
        y = rng.integers(0, 3, 8)
        plain = metrics.removal_curve(functools.partial(apply, w), x, y, scores, batch_size=3)
        traced = metrics.removal_curve(jax.tree_util.Partial(apply, w), x, y, scores, batch_size=3)
        np.testing.assert_array_equal(traced, plain)
        results.append(plain)
    assert not np.array_equal(*results)


def test_a_key_changes_only_the_order_among_ties():
    f = _linear(jnp.eye(6, 2))
    x = np.ones((4, 6), np.float32)
    y = np.zeros(4, np.int32)
    distinct = np.tile(np.arange(6.0, 0, -1), (4, 1))
    a = metrics.removal_curve(f, x, y, distinct, fractions=(0.0, 0.2, 0.5))
    b = metrics.removal_curve(f, x, y, distinct, fractions=(0.0, 0.2, 0.5), key=jax.random.PRNGKey(1))
    np.testing.assert_array_equal(a, b)


def test_auc_by_the_trapezoid():
    # 0.1 · ((1 + .8)/2 + (.8 + .4)/2 + (.4 + .2)/2) = 0.1 · (0.9 + 0.6 + 0.3) = 0.18
    assert metrics.removal_auc([1.0, 0.8, 0.4, 0.2], [0.0, 0.1, 0.2, 0.3]) == pytest.approx(0.18)
    # uneven spacing: 0.5·(1 + .5)/2 + 0.25·(.5 + 0)/2 = 0.375 + 0.0625
    assert metrics.removal_auc([1.0, 0.5, 0.0], [0.0, 0.5, 0.75]) == pytest.approx(0.4375)
    assert metrics.removal_auc(np.ones(10)) == pytest.approx(0.9)  # default fractions 0 … 0.9
    with pytest.raises(ValueError, match="one per fraction"):
        metrics.removal_auc([1.0, 0.5])
    with pytest.raises(ValueError, match="increasing"):
        metrics.removal_auc([1.0, 0.5], [0.5, 0.1])


def test_roar_set_differs_exactly_at_the_masked_pixels():
    x, scores = _data(batch=9)
    mean = metrics.channel_mean(x)
    np.testing.assert_allclose(mean, x.mean((0, 1, 2)), rtol=1e-6)
    for fraction in (0.1, 0.5, 0.9):
        key = jax.random.PRNGKey(0)
        masked = metrics.roar_set(x, scores, fraction, key=key, batch_size=4)
        pixels = np.asarray(metrics.top_mask(scores, fraction, key=key))
        changed = masked != x
        np.testing.assert_array_equal(changed.any(-1), pixels)
        np.testing.assert_array_equal(changed.all(-1), pixels)
        np.testing.assert_array_equal(masked[pixels], np.broadcast_to(mean, masked[pixels].shape))
        assert (pixels.reshape(9, -1).sum(1) == max(1, int(fraction * 20))).all()
    # a given fill (the training mean, for a test set) is used as it is
    masked = metrics.roar_set(x, scores, 0.5, fill=np.float32(-1.0))
    np.testing.assert_array_equal(masked[np.asarray(metrics.top_mask(scores, 0.5))], -1.0)


def test_roar_with_ties_matches_unbatched():
    x, _ = _data(batch=7)
    scores = np.zeros((7, 4, 5), np.float32)
    key = jax.random.PRNGKey(5)
    np.testing.assert_array_equal(metrics.roar_set(x, scores, 0.3, key=key, batch_size=2),
                                  metrics.roar_set(x, scores, 0.3, key=key, batch_size=None))
    np.testing.assert_array_equal(metrics.roar_set(x, scores, 0.3, key=key),
                                  np.asarray(metrics.remove_top(x, scores, 0.3, metrics.channel_mean(x), key=key)))


def test_bad_arguments():
    x, scores = _data()
    f = _linear(jnp.ones((40, 2)))
    y = np.zeros(len(x), np.int32)
    with pytest.raises(ValueError, match="fractions"):
        metrics.removal_curve(f, x, y, scores, fractions=(0.0, 1.2))
    with pytest.raises(ValueError, match="y: expected"):
        metrics.removal_curve(f, x, y[:3], scores)
    with pytest.raises(ValueError, match="batch_size"):
        metrics.removal_curve(f, x, y, scores, batch_size=0)
    assert removal.FRACTIONS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
