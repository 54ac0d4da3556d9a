"""The embedded image set "shapes" (sgt.data.shapes) and its default model (small_cnn)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgt import data, models
from sgt.data import shapes


@pytest.fixture(scope="module")
def scene():
    return shapes.scene(5, 4000)


def test_masks_are_exactly_the_pixels_the_object_overwrote(scene):
    s = scene
    # on a blank background the drawn pixels are exactly the mask
    blank = np.full_like(s.background, 0.5)
    np.testing.assert_array_equal(shapes.paste(blank, s.body, s.rim, s.intensity) != 0.5, s.masks)
    # on the real background: untouched outside the mask, the body at its intensity, the outline dark
    np.testing.assert_array_equal(s.images[~s.masks], s.background[~s.masks])
    level = np.broadcast_to(s.intensity[:, None, None], s.body.shape).astype(np.float32)
    np.testing.assert_array_equal(s.images[s.body], level[s.body])
    assert np.all(s.images[s.rim] == shapes.OUTLINE)
    assert not np.any(s.body & s.rim)
    # the masks are the shapes the labels name, redrawn from the recorded placement
    np.testing.assert_array_equal(s.body, shapes.object_fill(s.labels, s.centres, s.radii))
    # every object lies whole inside the image, its outline included
    assert np.all(s.body.sum((1, 2)) > 0)
    assert not np.any(s.masks[:, [0, -1]]) and not np.any(s.masks[:, :, [0, -1]])


def test_outline_is_the_8_neighbourhood_ring():
    body = np.zeros((1, 5, 5), bool)
    body[0, 2, 2] = True
    want = np.zeros((1, 5, 5), bool)
    want[0, 1:4, 1:4] = True
    want[0, 2, 2] = False
    np.testing.assert_array_equal(shapes.outline(body), want)


def test_shape_mask_tells_the_classes_apart():
    square, disk, triangle, cross = range(4)
    inside = lambda u, v: [bool(shapes.shape_mask(c, np.array(u), np.array(v))) for c in range(4)]  # noqa: E731
    assert inside(0.0, 0.0) == [True, True, True, True]
    assert inside(-0.75, -0.75) == [True, False, False, False]  # top-left corner: only the square
    assert inside(0.0, 0.95) == [False, True, False, True]  # bottom tip: disk and cross
    assert inside(0.75, 0.75)[triangle] and not inside(0.75, 0.75)[cross]
    assert inside(0.95, 0.0)[disk] and not inside(0.95, 0.0)[square]


def test_deterministic_per_seed_and_different_across_seeds():
    a, b, c = shapes.load(3, n_train=40, n_test=16), shapes.load(3, n_train=40, n_test=16), shapes.load(4, 40, 16)
    for name in ("x_train", "y_train", "x_test", "y_test", "truth_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x_train, c.x_train)


def test_load_shapes_dtypes_and_ranges():
    ds = data.load("shapes", seed=1, n_train=64, n_test=32)
    assert ds.name == "shapes" and ds.num_classes == len(shapes.CLASSES) == 4
    assert ds.x_train.shape == (64, 28, 28, 1) and ds.x_test.shape == (32, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32 and ds.truth_test.dtype == bool
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    # the object is the only bright thing: background <= 0.6 < body
    np.testing.assert_array_equal(ds.x_test > shapes.BACKGROUND_MAX, ds.truth_test & (ds.x_test > 0))
    assert 0.05 < ds.truth_test.mean() < 0.3


def test_labels_are_balanced(scene):
    share = np.bincount(scene.labels, minlength=4) / len(scene.labels)
    assert np.all(np.abs(share - 0.25) < 0.03), share


def _probe_accuracy(x, y, n_fit):
    """Held-out accuracy of a ridge least-squares linear probe (one-hot targets) fitted on the first `n_fit`."""
    a = np.c_[x.reshape(len(x), -1).astype(np.float64), np.ones(len(x))]
    w = np.linalg.solve(a[:n_fit].T @ a[:n_fit] + np.eye(a.shape[1]), a[:n_fit].T @ np.eye(4)[y[:n_fit]])
    return float(np.mean(np.argmax(a[n_fit:] @ w, 1) == y[n_fit:]))


def test_background_carries_no_label_information(scene):
    s = scene
    # by construction: the background is a function of its own random stream only
    np.testing.assert_array_equal(s.background, shapes.backgrounds(np.random.default_rng([5, 2]), 4000))
    # and empirically: a linear probe on the background is at chance on held-out data (1000 test
    # images: one standard error 0.014), while the same probe on the images is well above it
    assert abs(_probe_accuracy(s.background, s.labels, 3000) - 0.25) < 0.05
    assert _probe_accuracy(s.images, s.labels, 3000) > 0.33


@pytest.mark.parametrize("call, name", [
    (lambda: shapes.load(n_train=0), "n_train"),
    (lambda: shapes.load(n_test=2.5), "n_test"),
    (lambda: shapes.load(size=8), "size"),
    (lambda: shapes.load(clutter=-1), "clutter"),
    (lambda: shapes.scene(0, 4, radius=(1.0, 3.0)), "radius"),
    (lambda: shapes.scene(0, 4, size=16, radius=(4.0, 7.0)), "radius"),
])
def test_bad_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        call()


def test_registered_as_the_embedded_default_with_its_training_defaults():
    entry = data.get("shapes")
    assert entry.kind == "image" and not entry.files
    d = entry.defaults
    assert d.model == "small_cnn" and d.batch_size % 8 == 0
    assert (d.k, d.lam) == (0.85, 10.0)


def test_small_cnn_shapes_and_parameter_count():
    net = models.get("small_cnn")
    x = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
    variables = jax.eval_shape(lambda x: net.init(jax.random.PRNGKey(0), x), x)
    assert jax.eval_shape(net.apply, variables, x).shape == (2, 4)
    conv = lambda k, i, o: k * k * i * o + o  # noqa: E731
    assert models.count_params(net, x) == conv(3, 1, 8) + conv(3, 8, 16) + conv(3, 16, 16) + 16 * 4 + 4
    with pytest.raises(ValueError, match="^pooling:"):
        jax.eval_shape(lambda x: models.get("small_cnn", pooling="sum").init(jax.random.PRNGKey(0), x), x)
