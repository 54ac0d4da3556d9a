"""The removal-curve benchmark compares like with like: our removal curve at the fractions the
benchmark picks equals pixel flipping as Quantus defines it (cumulative steps of k features in
descending attribution order, a constant baseline, the model's output at the label after each step),
here written out in numpy on a tiny linear model. With torch and quantus installed, Quantus itself is
checked too (skipped otherwise).
"""

import importlib.util
import math
import sys
import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from sgt import metrics

ROOT = Path(__file__).resolve().parent.parent
H, W, CLASSES, BASELINE = 4, 6, 3, -0.5
UNITS = H * W


def _load_benchmark():
    saved = list(sys.path)  # the script puts the repository and benchmarks/ on sys.path
    try:
        spec = importlib.util.spec_from_file_location("removal_speed", ROOT / "benchmarks" / "removal_speed.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


bench = _load_benchmark()


def _case(seed=0, batch=40):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, H, W, 1)).astype(np.float32)
    y = rng.integers(0, CLASSES, batch).astype(np.int32)
    w = rng.normal(size=(UNITS, CLASSES)).astype(np.float32)
    scores = np.abs(rng.normal(size=(batch, H, W))).astype(np.float32)
    scores[:, 0, :3] = 0.0  # ties, as the zeros of a gradient map
    scores[:, 2, 2] = scores[:, 2, 3]
    return x, y, w, scores


def pixel_flipping_numpy(predict, x_flat, y, a_flat, features_in_step, baseline):
    """Quantus's semantics: sort descending, replace the next `features_in_step` features each step
    (cumulatively), record predict(x)[label] after every step; ceil(U / k) steps."""
    order = np.argsort(-a_flat, axis=1, kind="stable")
    xp, rows, out = x_flat.copy(), np.arange(len(x_flat))[:, None], []
    for step in range(math.ceil(a_flat.shape[1] / features_in_step)):
        xp[rows, order[:, step * features_in_step:(step + 1) * features_in_step]] = baseline
        out.append(predict(xp)[np.arange(len(x_flat)), y])
    return np.stack(out, 1)


@pytest.mark.parametrize("features_in_step", [1, 4, 6, 8, 24])
def test_our_curve_is_pixel_flipping_accuracy(features_in_step):
    x, y, w, scores = _case()
    counts = bench.step_counts(UNITS, features_in_step)
    fractions = bench.fractions_for(counts, UNITS)
    tie_free = bench.tie_free(scores)
    assert all(len(np.unique(row)) == UNITS for row in tie_free.reshape(len(x), -1))  # no ties left

    def one_hot_argmax(flat):
        return np.eye(CLASSES)[(flat @ w).argmax(-1)]

    expected = pixel_flipping_numpy(one_hot_argmax, x.reshape(len(x), -1), y, tie_free.reshape(len(x), -1),
                                    features_in_step, np.float32(BASELINE)).mean(0)
    f = lambda z: z.reshape(z.shape[0], -1) @ jnp.asarray(w)  # noqa: E731
    ours = metrics.removal_curve(f, x, y, tie_free, fractions, replacement=BASELINE, key=None)
    np.testing.assert_allclose(ours, expected, atol=1e-12)
    # The tie-free scores rank as the raw scores do with key=None (equal scores: lower flat index first).
    raw = metrics.removal_curve(f, x, y, scores, fractions, replacement=BASELINE, key=None)
    np.testing.assert_allclose(raw, ours, atol=1e-12)


def test_step_counts_and_fractions():
    assert bench.step_counts(784, 98) == [98 * i for i in range(1, 9)]
    assert bench.fractions_for(bench.step_counts(784, 98), 784) == [i / 8 for i in range(1, 9)]
    p = bench.fractions_for([78, 156, 234, 784], 784)  # k/U that floors below k is nudged up
    assert [metrics.removal_count(v, 784) for v in p] == [78, 156, 234, 784]
    with pytest.raises(ValueError, match="divide"):
        bench.step_counts(784, 78)  # Quantus asserts that the step divides the features


def test_quantus_pixel_flipping_matches():
    torch = pytest.importorskip("torch")
    quantus = pytest.importorskip("quantus")
    x, y, w, scores = _case(seed=1)
    tie_free = bench.tie_free(scores)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(UNITS, CLASSES, bias=False)).eval()
    with torch.no_grad():
        net[1].weight.copy_(torch.from_numpy(w.T.copy()))
    metric = quantus.PixelFlipping(features_in_step=6, normalise=False, abs=False, perturb_baseline=BASELINE,
                                   disable_warnings=True)
    kwargs = dict(x_batch=x.transpose(0, 3, 1, 2).copy(), y_batch=y.astype(np.int64), a_batch=tie_free[:, None].copy(),
                  channel_first=True, device="cpu", batch_size=16)
    bench.torch = torch  # what the benchmark's main() imports; its one-hot wrapper needs it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = np.asarray(metric(model=net, softmax=True, **kwargs))
        correct = np.asarray(metric(model=bench.argmax_one_hot(net), softmax=False, **kwargs))
    fractions = bench.fractions_for(bench.step_counts(UNITS, 6), UNITS)
    f = lambda z: z.reshape(z.shape[0], -1) @ jnp.asarray(w)  # noqa: E731
    np.testing.assert_allclose(correct.mean(0), metrics.removal_curve(f, x, y, tie_free, fractions,
                                                                      replacement=BASELINE), atol=1e-12)
    expected = pixel_flipping_numpy(lambda flat: _softmax(flat @ w), x.reshape(len(x), -1), y,
                                    tie_free.reshape(len(x), -1), 6, np.float32(BASELINE))
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
