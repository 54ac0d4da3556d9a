"""Saliency guided training for token ids: the masking rule, embedding saliency, the fused text step."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sgt import losses, text, train
from sgt.models import TextClassifier

POSITION_WEIGHT = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0], np.float32)


class PositionBag(nn.Module):
    """logits_c = Σ_t a_t (e_t · W[:, c]) over real tokens, a_t fixed: ∂logit_y/∂e_t = a_t W[:, y]."""

    classes: int = 2
    vocab: int = 12
    dim: int = 3

    def setup(self):
        self.table = self.param("table", nn.initializers.normal(1.0), (self.vocab, self.dim))
        self.w = self.param("w", nn.initializers.normal(1.0), (self.dim, self.classes))

    def embed(self, ids):
        return jnp.take(self.table, ids, axis=0)

    def __call__(self, ids, train: bool = False):
        e = self.perturb(text.EMBEDDED, self.embed(ids))
        a = jnp.asarray(POSITION_WEIGHT[: ids.shape[1]]) * (ids != 0)
        return jnp.einsum("bt,btd,dc->bc", a, e, self.w)


# --------------------------------------------------------------------------- the masking rule


def test_lowest_tokens_are_replaced_by_the_preceding_kept_token():
    ids = jnp.array([[5, 6, 7, 8, 9, 0, 0]])
    scores = jnp.array([[4.0, 5.0, 1.0, 6.0, 2.0, 0.0, 0.0]])  # padding scores 0 but is never ranked
    # n = 5, k = 0.5 -> 2 lowest: positions 2 (1.0) and 4 (2.0); each takes the kept token before it
    np.testing.assert_array_equal(text.mask_tokens(ids, scores, 0.5), [[5, 6, 6, 8, 8, 0, 0]])


def test_a_low_salient_first_token_takes_the_following_kept_token():
    ids = jnp.array([[5, 6, 7, 8]])
    scores = jnp.array([[0.1, 0.2, 9.0, 3.0]])  # k = 0.5 of 4 -> positions 0 and 1
    np.testing.assert_array_equal(text.mask_tokens(ids, scores, 0.5), [[7, 7, 7, 8]])


def test_all_but_one_masked_leaves_the_most_salient_token_everywhere():
    ids = jnp.array([[5, 6, 7, 8, 0], [4, 3, 0, 0, 0]])
    scores = jnp.array([[1.0, 7.0, 2.0, 3.0, 0.0], [5.0, 1.0, 0.0, 0.0, 0.0]])
    masked = text.mask_tokens(ids, scores, 10)  # a count above n - 1 masks n - 1 tokens
    np.testing.assert_array_equal(masked, [[6, 6, 6, 6, 0], [4, 4, 0, 0, 0]])


def test_count_per_text_is_a_fraction_of_its_own_length():
    n = jnp.array([0, 1, 2, 3, 10, 30])
    np.testing.assert_array_equal(text.token_counts(0.5, n), [0, 0, 1, 1, 5, 15])
    np.testing.assert_array_equal(text.token_counts(0.1, n), [0, 0, 0, 0, 1, 3])  # 0.1·30 = 3, not 2
    np.testing.assert_array_equal(text.token_counts(2, n), [0, 0, 1, 2, 2, 2])


def test_magnitude_and_signed_ranking_of_token_scores():
    ids = jnp.array([[5, 6, 7, 8]])
    saliency = jnp.array([[[-3.0, -1.0], [0.5, 0.0], [1.0, 1.0], [-0.1, 0.0]]])  # sums -4, 0.5, 2, -0.1
    np.testing.assert_allclose(text.token_scores(saliency, "magnitude"), [[4.0, 0.5, 2.0, 0.1]])
    np.testing.assert_array_equal(text.mask_tokens(ids, saliency, 0.5, rank_by="magnitude"), [[5, 5, 7, 7]])
    np.testing.assert_array_equal(text.mask_tokens(ids, saliency, 0.5, rank_by="signed"), [[6, 6, 7, 7]])


def test_pairs_rank_and_mask_only_the_document_after_the_separator():
    sep = 2
    ids = jnp.array([[7, 8, sep, 5, 6, 9, 4, 0], [3, 4, 5, 6, 0, 0, 0, 0]])
    scores = jnp.array([[0.0, 0.0, 0.0, 1.0, 4.0, 2.0, 3.0, 0.0], [4.0, 1.0, 3.0, 2.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(text.rankable(ids, 0, sep)[0], [0, 0, 0, 1, 1, 1, 1, 0])
    masked = text.mask_tokens(ids, scores, 0.5, sep_id=sep)
    # document [5 6 9 4] scores [1 4 2 3]: positions 3 and 5 masked; 3 has no kept document token
    # before it (the query and SEP are not candidates) so it takes 6; 5 takes the 6 before it.
    # The row without a SEP is ranked whole.
    np.testing.assert_array_equal(masked, [[7, 8, sep, 6, 6, 6, 4, 0], [3, 3, 5, 5, 0, 0, 0, 0]])


def test_padding_is_never_masked_or_used_as_a_replacement():
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 50, (32, 12)).astype(np.int32)
    lengths = rng.integers(1, 13, 32)
    ids[np.arange(12)[None, :] >= lengths[:, None]] = 0
    masked = np.asarray(text.mask_tokens(jnp.asarray(ids), jnp.asarray(rng.normal(size=(32, 12))), 0.6))
    np.testing.assert_array_equal(masked == 0, ids == 0)
    changed = (masked != ids).sum(axis=1)
    assert np.all(changed <= np.floor(0.6 * lengths + 1e-6))
    for new, old, n in zip(masked, ids, lengths):  # every token of x̃ is one of the row's own tokens
        assert set(new[:n]) <= set(old[:n])


# --------------------------------------------------------------------------- embedding saliency


def _bag(seed=0):
    model = PositionBag()
    ids = jnp.array([[4, 5, 6, 7, 8, 0, 0, 0], [9, 10, 11, 3, 4, 5, 6, 7]], jnp.int32)
    variables = model.init(jax.random.PRNGKey(seed), ids)
    return model, variables["params"], ids


def test_token_saliency_is_the_summed_embedding_gradient():
    model, params, ids = _bag()
    target = jnp.array([1, 0])
    grads = text.embedding_saliency(model, params, {}, ids, target, score=lambda z, t: z[jnp.arange(2), t].sum())
    w = np.asarray(params["w"])
    a = POSITION_WEIGHT[None, :] * (np.asarray(ids) != 0)
    expected = a[:, :, None] * w[:, [1, 0]].T[:, None, :]
    np.testing.assert_allclose(grads, expected, rtol=1e-6)
    np.testing.assert_allclose(text.token_scores(grads, "signed"), expected.sum(-1), rtol=1e-6)


def test_embedding_classifier_reproduces_the_model_and_its_gradients():
    model = TextClassifier(vocab_size=30, embed_dim=4, hidden=3, pool="max")
    ids = jnp.array([[4, 5, 6, 0], [7, 8, 9, 10]], jnp.int32)
    variables = model.init(jax.random.PRNGKey(1), ids)
    e, f = text.embedding_classifier(model, variables["params"], {}, ids)
    np.testing.assert_allclose(f(e), model.apply(variables, ids), rtol=1e-6)
    np.testing.assert_allclose(e, variables["params"]["embedding"][ids])
    direct = text.embedding_saliency(model, variables["params"], {}, ids, jnp.array([0, 1]),
                                     score=lambda z, t: z[jnp.arange(2), t].sum())
    via_f = jax.grad(lambda e: f(e)[jnp.arange(2), jnp.array([0, 1])].sum())(e)
    np.testing.assert_allclose(direct, via_f, rtol=1e-5, atol=1e-7)


def test_a_model_without_a_perturbation_point_is_rejected():
    class Plain(nn.Module):
        @nn.compact
        def __call__(self, ids, train: bool = False):
            return nn.Dense(2)(nn.Embed(10, 3)(ids).sum(1))

    ids = jnp.array([[1, 2, 3]])
    params = Plain().init(jax.random.PRNGKey(0), ids)["params"]
    with pytest.raises(ValueError, match="perturb"):
        text.zero_perturbations(Plain(), params, {}, ids)


# --------------------------------------------------------------------------- the fused text step


@pytest.mark.parametrize("saliency_pass", ["inference", "shared"])
def test_text_step_masks_the_hand_computed_sequence(saliency_pass):
    model, _, ids = _bag()
    y = jnp.array([1, 0])
    tx = optax.sgd(0.1)
    mesh = train.make_mesh(jax.devices()[:1])
    state = train.create_train_state(model, tx, ids, 0, mesh)
    params = jax.device_get(state.params)
    # target-logit gradient summed over d: a_t · Σ_d W[d, y]; magnitude ranking = a_t |Σ_d W[d, y]|,
    # so within a row the order is that of a_t = 3, 1, 4, 1.5, 5, 9, 2, 6.
    # Row 0 (n = 5): k = 0.5 -> 2 lowest a_t: positions 1 (1.0) and 3 (1.5) -> [4, 4, 6, 6, 8].
    # Row 1 (n = 8): 4 lowest: positions 1 (1), 3 (1.5), 6 (2), 0 (3); position 0 has no kept token
    # before it and takes position 2's token.
    expected = jnp.array([[4, 4, 6, 6, 8, 0, 0, 0], [11, 11, 11, 11, 4, 5, 5, 7]], jnp.int32)
    f = lambda x: model.apply({"params": params}, x)  # noqa: E731
    loss = losses.sgt_loss(f(ids), f(expected), y, lam=0.7)
    config = train.SGTConfig(k=0.5, lam=0.7, saliency_pass=saliency_pass)
    step = train.make_train_step(model, tx, config=config, mesh=mesh)
    _, metrics = step(state, np.asarray(ids), np.asarray(y))
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    assert metrics["kl"] > 0


def _text_batch(n=16, length=10, vocab=40, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocab, (n, length)).astype(np.int32)
    lengths = rng.integers(2, length + 1, n)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids, (ids[:, 0] % 2).astype(np.int32)


@pytest.mark.parametrize("config", [train.SGTConfig(k=0.3, lam=1.0),
                                    train.SGTConfig(k=0.5, rank_by="signed", saliency_pass="shared", sep_id=2)])
def test_text_step_one_device_equals_eight_devices(config):
    assert len(jax.devices()) == 8, "conftest sets 8 CPU devices"
    model = TextClassifier(vocab_size=40, embed_dim=6, hidden=5, dropout=0.2, pool="max")
    x, y = _text_batch()
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
        mesh = train.make_mesh(devices)
        tx = optax.adam(1e-2)
        state = train.create_train_state(model, tx, x, 0, mesh)
        step = train.make_train_step(model, tx, config=config, mesh=mesh)
        for _ in range(3):
            state, metrics = step(state, x, y)
        results.append((jax.device_get(state.params), jax.device_get(metrics)))
    for a, b in zip(jax.tree.leaves(results[0][0]), jax.tree.leaves(results[1][0])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[0][1]["loss"], results[1][1]["loss"], rtol=1e-5)


def test_text_sgt_training_lowers_the_loss_and_lambda_zero_is_ordinary_training():
    model = TextClassifier(vocab_size=40, embed_dim=6, hidden=5, dropout=0.0)
    x, y = _text_batch(seed=1)
    tx = optax.adam(1e-2)
    mesh = train.make_mesh(jax.devices()[:1])
    finals = {}
    for name, method, config in (("sgt", "sgt", train.SGTConfig(lam=1.0)),
                                 ("lam0", "sgt", train.SGTConfig(lam=0.0)),
                                 ("standard", "standard", None)):
        state = train.create_train_state(model, tx, x, 0, mesh)
        step = train.make_train_step(model, tx, method=method, config=config, mesh=mesh)
        losses_ = []
        for _ in range(30):
            state, metrics = step(state, x, y)
            losses_.append(float(metrics["loss"]))
        finals[name] = jax.device_get(state.params)
        if name == "sgt":
            assert losses_[-1] < 0.5 * losses_[0]
    for a, b in zip(jax.tree.leaves(finals["lam0"]), jax.tree.leaves(finals["standard"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bad_token_config_is_rejected():
    with pytest.raises(ValueError, match="sep_id"):
        train.SGTConfig(sep_id=0)
    with pytest.raises(ValueError, match="pad_id"):
        train.SGTConfig(pad_id=1.5)
