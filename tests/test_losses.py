import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgt.losses import cross_entropy, kl_divergence, sgt_loss


def test_kl_hand_computed():
    # p = softmax([0, ln 3]) = (1/4, 3/4); q = (1/2, 1/2)
    p_logits = jnp.array([[0.0, np.log(3.0)]])
    q_logits = jnp.array([[0.0, 0.0]])
    expected = 0.25 * np.log(0.25 / 0.5) + 0.75 * np.log(0.75 / 0.5)
    np.testing.assert_allclose(kl_divergence(p_logits, q_logits), expected, rtol=1e-6)


def test_kl_is_batchmean_and_zero_on_equal_inputs():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    per_sample = [float(kl_divergence(p[i:i + 1], q[i:i + 1])) for i in range(5)]
    np.testing.assert_allclose(kl_divergence(p, q), np.mean(per_sample), rtol=1e-6)
    np.testing.assert_allclose(kl_divergence(p, p), 0.0, atol=1e-7)
    assert float(kl_divergence(p, q)) > 0


def test_kl_gradient_flows_into_the_clean_branch():
    p, q = jnp.array([[1.0, -1.0, 0.5]]), jnp.array([[0.0, 0.3, 0.2]])
    grad_p = jax.grad(kl_divergence, argnums=0)(p, q)
    assert float(jnp.abs(grad_p).sum()) > 1e-3


def test_sgt_loss_is_ce_plus_lambda_kl():
    rng = np.random.default_rng(1)
    clean, masked = jnp.asarray(rng.normal(size=(4, 3))), jnp.asarray(rng.normal(size=(4, 3)))
    labels = jnp.array([0, 2, 1, 1])
    ce = -np.mean(np.asarray(jax.nn.log_softmax(clean))[np.arange(4), labels])
    np.testing.assert_allclose(cross_entropy(clean, labels), ce, rtol=1e-6)
    np.testing.assert_allclose(sgt_loss(clean, masked, labels, lam=2.5),
                               ce + 2.5 * float(kl_divergence(clean, masked)), rtol=1e-6)


def test_negative_lambda_and_bad_shapes_are_rejected():
    logits = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="lam"):
        sgt_loss(logits, logits, jnp.array([0, 1]), lam=-0.1)
    with pytest.raises(ValueError, match="q_logits"):
        kl_divergence(logits, jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="labels"):
        cross_entropy(logits, jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="logits"):
        cross_entropy(jnp.zeros(3), jnp.array([0]))
