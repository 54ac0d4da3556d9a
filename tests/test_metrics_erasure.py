"""ERASER comprehensiveness / sufficiency / AOPC and the plausibility scores, checked by hand."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgt.metrics import erasure
from sgt.metrics.erasure import (
    BINS,
    auprc,
    delete_tokens,
    erasure_count,
    erasure_scores,
    random_token_scores,
    token_f1,
    top_tokens,
)

# Bag of words: logit_1 = Σ w[token] over the real tokens, logit_0 = 0, so p_1 = σ(S) and p_0 = σ(−S).
# Ids: 0 pad (0), 1 → 2.0, 2 → −1.0, 3 → 0.5, 4 → 1.0, 8 a query word (0.25), 9 SEP (0).
WEIGHTS = np.array([0.0, 2.0, -1.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.25, 0.0], np.float32)
QUERY, SEP = 8, 9


def _bag_of_words(weights, record=None):
    """prob_fn in numpy (no compilation; any callable will do), optionally recording what it is fed."""
    w = np.asarray(weights, np.float64)

    def prob_fn(tokens, lengths):
        tokens, lengths = np.asarray(tokens), np.asarray(lengths)
        if record is not None:
            record.append((tokens, lengths))
        real = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
        s = np.where(real, w[tokens], 0.0).sum(1)
        p1 = 1.0 / (1.0 + np.exp(-s))
        return np.stack([1.0 - p1, p1], axis=1).astype(np.float32)

    return prob_fn


def _jitted_bag_of_words(weights):
    """The same model as a jitted JAX function."""
    w = jnp.asarray(weights)

    @jax.jit
    def prob_fn(tokens, lengths):
        real = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]
        s = jnp.where(real, w[tokens], 0.0).sum(1)
        return jax.nn.softmax(jnp.stack([jnp.zeros_like(s), s], axis=1), axis=1)

    return prob_fn


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def _hand_case():
    nan = np.nan
    tokens = np.array([[1, 2, 3, 4, 0, 0],
                       [2, 2, 3, 0, 0, 0],
                       [QUERY, SEP, 1, 2, 4, 0]], np.int32)
    lengths = np.array([4, 3, 5], np.int32)
    rankable = np.array([[1, 1, 1, 1, 0, 0],
                         [1, 1, 1, 0, 0, 0],
                         [0, 0, 1, 1, 1, 0]], bool)
    scores = np.array([[0.9, 0.1, 0.5, 0.7, 0.0, 0.0],
                       [0.2, 0.8, 0.3, 0.0, 0.0, 0.0],
                       [nan, nan, 0.1, 0.3, 0.2, nan]], np.float32)  # NaN off the rankable set is ignored
    return tokens, lengths, rankable, scores


# Bins (0.25, 0.5, 1.0). σ = sigmoid; each value is p_c(x) − p_c(x').
# Row 0: S = 2 − 1 + 0.5 + 1 = 2.5, c = 1. Ranking: pos0 (id 1), pos3 (id 4), pos2 (id 3), pos1 (id 2).
#   t=.25, m=⌈1⌉=1: delete id 1 → S = 0.5;          keep only id 1 → S = 2
#   t=.5,  m=2:     delete ids 1, 4 → S = −0.5;     keep ids 1, 4 → S = 3
#   t=1,   m=4:     delete all → empty, S = 0;      keep all → S = 2.5
# Row 1: S = −1 − 1 + 0.5 = −1.5, c = 0, p_0 = σ(−S). Ranking: pos1 (id 2), pos2 (id 3), pos0 (id 2).
#   t=.25, m=⌈0.75⌉=1: delete pos1 → S = −0.5, p_0 = σ(0.5);   keep pos1 → S = −1, p_0 = σ(1)
#   t=.5,  m=⌈1.5⌉=2:  delete pos1, pos2 → S = −1;            keep pos1, pos2 → S = −0.5
#   t=1,   m=3:        delete all → S = 0, p_0 = 0.5;          keep all
# Row 2 (pair: query 0.25, SEP 0, document ids 1, 2, 4): S = 0.25 + 2 − 1 + 1 = 2.25, c = 1, n = 3.
#   Ranking: pos3 (id 2), pos4 (id 4), pos2 (id 1).
#   t=.25, m=1: delete id 2 → S = 3.25;             keep query, SEP, id 2 → S = −0.75
#   t=.5,  m=2: delete ids 2, 4 → S = 2.25;         keep query, SEP, ids 2, 4 → S = 0.25
#   t=1,   m=3: delete the document → S = 0.25;     keep all
s = _sigmoid
HAND_COMP = np.array([[s(2.5) - s(0.5), s(2.5) - s(-0.5), s(2.5) - 0.5],
                      [s(1.5) - s(0.5), s(1.5) - s(1.0), s(1.5) - 0.5],
                      [s(2.25) - s(3.25), 0.0, s(2.25) - s(0.25)]])
HAND_SUFF = np.array([[s(2.5) - s(2.0), s(2.5) - s(3.0), 0.0],
                      [s(1.5) - s(1.0), s(1.5) - s(0.5), 0.0],
                      [s(2.25) - s(-0.75), s(2.25) - s(0.25), 0.0]])
del s
HAND_BINS = (0.25, 0.5, 1.0)


def test_hand_computed_bag_of_words_per_bin_and_per_example():
    tokens, lengths, rankable, scores = _hand_case()
    out = erasure_scores(_bag_of_words(WEIGHTS), tokens, lengths, scores, bins=HAND_BINS, rankable=rankable)
    np.testing.assert_array_equal(out["predicted"], [1, 0, 1])
    np.testing.assert_allclose(out["full_probability"], [_sigmoid(2.5), _sigmoid(1.5), _sigmoid(2.25)], rtol=1e-6)
    np.testing.assert_allclose(out["per_example_comprehensiveness"], HAND_COMP, atol=1e-6)
    np.testing.assert_allclose(out["per_example_sufficiency"], HAND_SUFF, atol=1e-6)
    np.testing.assert_allclose(out["comprehensiveness"], HAND_COMP.mean(0), atol=1e-6)
    np.testing.assert_allclose(out["sufficiency"], HAND_SUFF.mean(0), atol=1e-6)
    np.testing.assert_array_equal(out["bins"], HAND_BINS)
    # AOPC: the plain mean over the bins (not a trapezoid)
    assert out["aopc_comprehensiveness"] == pytest.approx(HAND_COMP.mean(0).mean(), abs=1e-6)
    assert out["aopc_sufficiency"] == pytest.approx(HAND_SUFF.mean(0).mean(), abs=1e-6)
    assert out["aopc_comprehensiveness"] == pytest.approx(np.mean(out["comprehensiveness"]), abs=1e-12)


def test_pair_layout_inputs_seen_by_the_model():
    """Query and SEP are never deleted and are kept in sufficiency; the rest shifts left."""
    tokens, lengths, rankable, scores = _hand_case()
    record = []
    erasure_scores(_bag_of_words(WEIGHTS, record), tokens, lengths, scores, bins=HAND_BINS, rankable=rankable,
                   pad_id=0)
    # calls: full, then per bin (deleted, kept)
    assert len(record) == 1 + 2 * len(HAND_BINS)
    full, (d25, k25, d50, k50, d100, k100) = record[0], record[1:]
    np.testing.assert_array_equal(full[0], tokens)
    np.testing.assert_array_equal(d25[0][2], [QUERY, SEP, 1, 4, 0, 0])
    np.testing.assert_array_equal(k25[0][2], [QUERY, SEP, 2, 0, 0, 0])
    np.testing.assert_array_equal(d50[0][2], [QUERY, SEP, 1, 0, 0, 0])
    np.testing.assert_array_equal(k50[0][2], [QUERY, SEP, 2, 4, 0, 0])
    np.testing.assert_array_equal(d100[0][2], [QUERY, SEP, 0, 0, 0, 0])
    np.testing.assert_array_equal(k100[0][2], tokens[2])
    np.testing.assert_array_equal([d25[1][2], k25[1][2], d50[1][2], k50[1][2], d100[1][2], k100[1][2]],
                                  [4, 3, 3, 4, 2, 5])
    # single-text rows: row 0 at t = 1 is deleted to an empty row of length 0
    np.testing.assert_array_equal(d100[0][0], [0] * 6)
    assert d100[1][0] == 0
    np.testing.assert_array_equal(d25[0][0], [2, 3, 4, 0, 0, 0])
    np.testing.assert_array_equal(k50[0][0], [1, 4, 0, 0, 0, 0])


@pytest.mark.parametrize("n, expected", [(1, [1, 1, 1, 1, 1]), (3, [1, 1, 1, 1, 2]), (10, [1, 1, 1, 2, 5]),
                                         (30, [1, 2, 3, 6, 15])])
def test_count_is_an_exact_ceiling(n, expected):
    assert [int(erasure_count(t, n)) for t in BINS] == expected
    # the floating-point traps the exact count avoids: 0.07·100 and float32's 0.1 (as a float64) times 30
    assert math.ceil(0.07 * 100) == 8 and int(erasure_count(0.07, 100)) == 7
    assert math.ceil(float(np.float32(0.1)) * 30) == 4 and int(erasure_count(np.float32(0.1), 30)) == 3
    assert int(erasure_count(0.1, 30)) == 3
    # and the selection really holds that many tokens
    scores = np.linspace(1.0, 0.0, n, dtype=np.float32)[None, :]
    for t, m in zip(BINS, expected):
        assert int(top_tokens(scores, np.ones((1, n), bool), t).sum()) == m


@pytest.mark.parametrize("n", [1, 3, 10, 30])
def test_counts_through_the_metric_with_equal_weights(n):
    """Every token weighs a: p_1 = σ(a·length), so the values depend only on m = ⌈t·n⌉, not on which tokens."""
    a = 0.1
    tokens = np.ones((1, 32), np.int32)
    tokens[:, n:] = 0
    weights = np.array([0.0, a], np.float32)
    scores = np.asarray(random_token_scores(jax.random.key(n), tokens.shape))
    out = erasure_scores(_bag_of_words(weights), tokens, np.array([n]), scores)
    m = np.array([-(-t_n // 100) for t_n in (1 * n, 5 * n, 10 * n, 20 * n, 50 * n)])  # ⌈t·n⌉ with t in percent
    comp = [_sigmoid(a * n) - _sigmoid(a * (n - k)) for k in m]
    suff = [_sigmoid(a * n) - _sigmoid(a * k) for k in m]
    np.testing.assert_allclose(out["per_example_comprehensiveness"][0], comp, atol=1e-6)
    np.testing.assert_allclose(out["per_example_sufficiency"][0], suff, atol=1e-6)


def test_whole_row_deleted_is_an_empty_row_fed_as_is():
    """n = 1: every default bin selects the one token, so comprehensiveness sees all padding, length 0."""
    record = []
    out = erasure_scores(_bag_of_words(WEIGHTS, record), np.array([[3, 0, 0]]), np.array([1]),
                         np.array([[0.5, 0.0, 0.0]], np.float32))
    deleted = record[1::2]
    for tok, length in deleted:
        np.testing.assert_array_equal(tok, [[0, 0, 0]])
        np.testing.assert_array_equal(length, [0])
    # id 3 weighs 0.5: c = 1, p = σ(0.5); the empty row scores σ(0) = 0.5; keeping the token changes nothing
    np.testing.assert_allclose(out["per_example_comprehensiveness"][0], [_sigmoid(0.5) - 0.5] * 5, atol=1e-6)
    np.testing.assert_allclose(out["per_example_sufficiency"][0], [0.0] * 5, atol=1e-6)


def test_delete_tokens_by_hand():
    tokens = np.array([[5, 6, 7, 8], [1, 2, 3, 0], [4, 4, 9, 9]], np.int32)
    keep = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], bool)
    out, lengths = delete_tokens(tokens, keep)
    np.testing.assert_array_equal(out, [[5, 7, 0, 0], [0, 0, 0, 0], [4, 9, 9, 0]])
    np.testing.assert_array_equal(lengths, [2, 0, 3])
    out, lengths = jax.jit(lambda t, k: delete_tokens(t, k, pad_id=-1))(tokens, keep)
    np.testing.assert_array_equal(out, [[5, 7, -1, -1], [-1, -1, -1, -1], [4, 9, 9, -1]])
    np.testing.assert_array_equal(lengths, [2, 0, 3])


def test_ties_by_position_without_key_and_pair_rankable():
    rankable = np.array([[0, 0, 1, 1, 1, 1, 0]], bool)  # query, SEP, 4 document tokens, pad
    scores = np.full((1, 7), 2.0, np.float32)
    scores[0, [0, 1, 6]] = 99.0  # high scores off the rankable set are never selected
    np.testing.assert_array_equal(top_tokens(scores, rankable, 0.5), [[0, 0, 1, 1, 0, 0, 0]])
    scores[0, 4] = -0.0
    scores[0, 5] = 0.0  # −0.0 and 0.0 tie; position decides
    np.testing.assert_array_equal(top_tokens(scores, rankable, 0.75), [[0, 0, 1, 1, 1, 0, 0]])


def test_random_ties_with_a_key_and_batch_size_independence():
    batch, width = 5, 40
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 5, size=(batch, width)).astype(np.int32)
    lengths = np.array([40, 33, 20, 7, 1])
    tokens[np.arange(width)[None, :] >= lengths[:, None]] = 0
    scores = np.zeros((batch, width), np.float32)  # all tied: the key decides
    key = jax.random.key(3)
    sel = np.asarray(top_tokens(scores, np.arange(width)[None, :] < lengths[:, None], 0.5, key=key))
    assert (sel.sum(1) == [20, 17, 10, 4, 1]).all()
    assert not sel[0, :20].all()  # not the positional order
    np.testing.assert_array_equal(sel, top_tokens(scores, np.arange(width)[None, :] < lengths[:, None], 0.5,
                                                  key=key))
    prob_fn = _jitted_bag_of_words(WEIGHTS)
    one = erasure_scores(prob_fn, tokens, lengths, scores, key=key)
    for size in (2,):
        chunked = erasure_scores(prob_fn, tokens, lengths, scores, key=key, batch_size=size)
        for name in one:
            np.testing.assert_allclose(chunked[name], one[name], rtol=0, atol=1e-7, err_msg=name)


def test_batched_equals_unbatched():
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 10, size=(5, 12)).astype(np.int32)
    lengths = np.array([12, 9, 4, 2, 11])
    tokens[np.arange(12)[None, :] >= lengths[:, None]] = 0
    scores = rng.normal(size=(5, 12)).astype(np.float32)
    record = []
    one = erasure_scores(_bag_of_words(WEIGHTS), tokens, lengths, scores)
    two = erasure_scores(_bag_of_words(WEIGHTS, record), tokens, lengths, scores, batch_size=2)
    assert {r[0].shape for r in record} == {(2, 12)}  # the last chunk is padded to the same shape
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=0, atol=1e-7, err_msg=name)


def test_matches_a_plain_python_reference_with_ties_and_pairs():
    """Random rows with a query prefix, integer scores full of ties, batch_size 3: against a direct loop."""
    rng = np.random.default_rng(2)
    batch, width, bins = 7, 15, (0.1, 0.3, 0.5, 0.9, 1.0)
    weights = rng.normal(size=12)
    tokens = rng.integers(1, 12, size=(batch, width)).astype(np.int32)
    lengths = rng.integers(1, width + 1, size=batch)
    query = np.minimum(rng.integers(0, 4, size=batch), lengths - 1)
    position = np.arange(width)[None, :]
    rankable = (position >= query[:, None]) & (position < lengths[:, None])
    tokens[position >= lengths[:, None]] = 0
    scores = rng.integers(0, 4, size=(batch, width))
    out = erasure_scores(_bag_of_words(weights), tokens, lengths, scores, bins=bins, rankable=rankable,
                         batch_size=3)

    def p1(seq):
        return 1.0 / (1.0 + math.exp(-sum(weights[x] for x in seq)))

    for i in range(batch):
        real = range(lengths[i])
        doc = [j for j in real if rankable[i, j]]
        order = sorted(doc, key=lambda j: (-scores[i, j], j))
        c = int(out["predicted"][i])
        prob = (lambda seq: p1(seq)) if c == 1 else (lambda seq: 1.0 - p1(seq))
        full = prob([tokens[i, j] for j in real])
        for k, pct in enumerate((10, 30, 50, 90, 100)):
            top = set(order[:-(-pct * len(doc) // 100)])
            deleted = [tokens[i, j] for j in real if j not in top]
            kept = [tokens[i, j] for j in real if j in top or not rankable[i, j]]
            assert out["per_example_comprehensiveness"][i, k] == pytest.approx(full - prob(deleted), abs=1e-6)
            assert out["per_example_sufficiency"][i, k] == pytest.approx(full - prob(kept), abs=1e-6)


def test_random_scores_and_an_equal_weight_model():
    """All tokens weigh the same: any ranking, random included, gives the hand value."""
    tokens = np.array([[1] * 10, [1] * 4 + [0] * 6])
    lengths = np.array([10, 4])
    weights = np.array([0.0, 0.3], np.float32)
    scores = random_token_scores(jax.random.key(0), tokens.shape)
    assert scores.dtype == jnp.float32 and scores.shape == (2, 10)
    assert float(scores.min()) >= 0.0 and float(scores.max()) < 1.0
    out = erasure_scores(_bag_of_words(weights), tokens, lengths, scores, bins=(0.5,))
    # row 0: S = 3, t = .5 deletes 5 → S = 1.5, keeps 5 → 1.5;  row 1: S = 1.2, deletes / keeps 2 → S = 0.6
    row0 = _sigmoid(3.0) - _sigmoid(1.5)
    row1 = _sigmoid(1.2) - _sigmoid(0.6)
    np.testing.assert_allclose(out["comprehensiveness"], [(row0 + row1) / 2], atol=1e-6)
    np.testing.assert_allclose(out["sufficiency"], [(row0 + row1) / 2], atol=1e-6)
    # row i of the random scores does not depend on the other rows' draws being used
    again = random_token_scores(jax.random.key(0), tokens.shape)
    np.testing.assert_array_equal(scores, again)


@pytest.mark.parametrize("change, message", [
    ({"tokens": np.ones((2, 4), np.float32)}, "tokens: expected integer"),
    ({"tokens": np.ones((4,), np.int32)}, "tokens: expected int token ids"),
    ({"lengths": np.array([4, 4, 4])}, "lengths: expected an integer array of shape"),
    ({"lengths": np.array([4.0, 2.0])}, "lengths: expected integers"),
    ({"lengths": np.array([5, 2])}, r"lengths: every length must lie in \[0, 4\]"),
    ({"scores": np.zeros((2, 5), np.float32)}, "scores: expected shape"),
    ({"scores": np.array([[0.0, np.nan, 0, 0], [0, 0, 0, 0]], np.float32)}, "scores: 1 rankable"),
    ({"bins": (0.0, 0.5)}, r"bins: every bin must lie in \(0, 1\]"),
    ({"bins": (0.5, 1.5)}, r"bins: every bin must lie in \(0, 1\]"),
    ({"bins": ()}, "bins: expected a non-empty"),
    ({"rankable": np.ones((2, 4), bool)}, "rankable: marks padding"),
    ({"rankable": np.ones((2, 3), bool)}, "rankable: expected a boolean array of shape"),
    ({"rankable": np.array([[1, 1, 0, 0], [0, 0, 0, 0]], bool)}, "rankable: rows \\[1\\] have no rankable"),
    ({"batch_size": 0}, "batch_size"),
])
def test_errors(change, message):
    args = {"tokens": np.array([[1, 2, 3, 4], [1, 2, 0, 0]], np.int32), "lengths": np.array([4, 2]),
            "scores": np.zeros((2, 4), np.float32), "bins": BINS, "rankable": None, "batch_size": None}
    args.update(change)
    with pytest.raises(ValueError, match=message):
        erasure_scores(_bag_of_words(WEIGHTS), args.pop("tokens"), args.pop("lengths"), args.pop("scores"), **args)


def test_errors_from_prob_fn_and_helpers():
    tokens, lengths = np.array([[1, 2]], np.int32), np.array([2])
    logits = lambda t, n: jnp.stack([jnp.zeros(t.shape[0]), jnp.full(t.shape[0], 3.0)], axis=1)
    with pytest.raises(ValueError, match="prob_fn: expected probabilities in"):
        erasure_scores(logits, tokens, lengths, np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"prob_fn: expected probabilities \[batch, classes\]"):
        erasure_scores(lambda t, n: jnp.ones(t.shape[0]), tokens, lengths, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="keep: expected a boolean array"):
        delete_tokens(tokens, np.ones((1, 2), np.int32))
    with pytest.raises(ValueError, match="keep: expected a boolean array of shape"):
        delete_tokens(tokens, np.ones((1, 3), bool))
    with pytest.raises(ValueError, match=r"fraction: must lie in \(0, 1\]"):
        top_tokens(np.zeros((1, 2)), np.ones((1, 2), bool), 0.0)
    with pytest.raises(ValueError, match="tokens_shape"):
        random_token_scores(jax.random.key(0), (3,))


# --------------------------------------------------------------------------- plausibility

NAN = np.nan
PL_SCORES = np.array([[5, 1, 4, 3, 2], [4, 3, 2, 1, NAN], [1, 2, 3, 4, 5]], np.float32)
PL_RATIONALE = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]], bool)
PL_RANKABLE = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)


def test_token_f1_perfect_and_reversed():
    rationale = np.array([[1, 1, 0, 0]], bool)
    rankable = np.ones((1, 4), bool)
    perfect = token_f1(np.array([[0.9, 0.8, 0.1, 0.2]]), rationale, rankable)
    assert perfect == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "rows": 1}
    reversed_ = token_f1(np.array([[0.1, 0.2, 0.9, 0.8]]), rationale, rankable)
    assert reversed_ == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "rows": 1}


def test_token_f1_by_hand():
    # Row 0: ranking pos0, pos2, pos3, pos4, pos1; rationale {0, 1}.
    #   own share (m = 2): pred {0, 2} → 1 hit: P = R = F1 = 1/2.   t = 0.6, m = ⌈3⌉ = 3: pred {0, 2, 3}:
    #   P = 1/3, R = 1/2, F1 = 2·(1/6)/(5/6) = 0.4
    # Row 1: n = 4, ranking pos0..pos3; rationale {3}. Own share m = 1: pred {0}, 0 hits.
    #   t = 0.6: m = ⌈2.4⌉ = 3, 0 hits.
    # Row 2: no rationale → skipped.
    own = token_f1(PL_SCORES, PL_RATIONALE, PL_RANKABLE)
    assert own["rows"] == 2
    assert own["precision"] == pytest.approx(0.25) and own["recall"] == pytest.approx(0.25)
    assert own["f1"] == pytest.approx(0.25)
    fixed = token_f1(PL_SCORES, PL_RATIONALE, PL_RANKABLE, 0.6)
    assert fixed["precision"] == pytest.approx(1 / 6) and fixed["recall"] == pytest.approx(0.25)
    assert fixed["f1"] == pytest.approx(0.2)


def test_auprc_by_hand():
    rankable = np.ones((1, 5), bool)
    rationale = np.array([[1, 1, 0, 0, 0]], bool)
    assert auprc(np.array([[5.0, 4, 3, 2, 1]]), rationale, rankable) == pytest.approx(1.0)
    # reversed: the rationale comes 4th and 5th: AP = (1/4 + 2/5) / 2 = 0.325
    assert auprc(np.array([[1.0, 2, 5, 4, 3]]), rationale, rankable) == pytest.approx(0.325)
    # all tied: one threshold, AP = precision of everything = 2/5
    assert auprc(np.zeros((1, 5)), rationale, rankable) == pytest.approx(0.4)
    # partial tie, scores [3, 2, 2, 1], rationale {1, 3}: thresholds 3 (P 0, ΔR 0), 2 (P 1/3, ΔR 1/2),
    # 1 (P 2/4, ΔR 1/2) → AP = 1/6 + 1/4 = 5/12; the tie is not split in the rationale token's favour
    tie = auprc(np.array([[3.0, 2, 2, 1]]), np.array([[0, 1, 0, 1]], bool), np.ones((1, 4), bool))
    assert tie == pytest.approx(5 / 12)
    # rows: row 0 of PL (ranking 0, 2, 3, 4, 1: positives at 1st and 5th → (1 + 2/5) / 2 = 0.7),
    # row 1 (positive 4th of 4 rankable, the NaN pad ignored → 1/4), row 2 skipped → mean 0.475
    assert auprc(PL_SCORES, PL_RATIONALE, PL_RANKABLE) == pytest.approx((0.7 + 0.25) / 2)


def test_auprc_agrees_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 5, size=(20, 30)).astype(np.float32)  # many ties
    rankable = np.ones((20, 30), bool)
    rankable[:, 25:] = False
    rationale = (rng.random((20, 30)) < 0.3) & rankable
    rationale[0] = False  # skipped
    expected = np.mean([metrics.average_precision_score(rationale[i, :25], scores[i, :25]) for i in range(1, 20)])
    assert auprc(scores, rationale, rankable) == pytest.approx(expected, abs=1e-12)


def test_plausibility_errors():
    with pytest.raises(ValueError, match="rationale: no row has a rationale token"):
        auprc(np.zeros((1, 3)), np.zeros((1, 3), bool), np.ones((1, 3), bool))
    with pytest.raises(ValueError, match="rationale: marks tokens that are not rankable"):
        token_f1(np.zeros((1, 3)), np.array([[1, 0, 0]], bool), np.array([[0, 1, 1]], bool))
    with pytest.raises(ValueError, match="rationale: expected a boolean array of shape"):
        auprc(np.zeros((1, 3)), np.ones((1, 2), bool), np.ones((1, 3), bool))
    with pytest.raises(ValueError, match="scores: 1 rankable positions hold non-finite"):
        auprc(np.array([[np.inf, 0, 0]]), np.array([[1, 0, 0]], bool), np.ones((1, 3), bool))


def test_exports():
    assert set(erasure.__all__) >= {"BINS", "top_tokens", "delete_tokens", "erasure_scores", "random_token_scores",
                                    "token_f1", "auprc"}
