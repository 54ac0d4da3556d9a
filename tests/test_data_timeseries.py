"""The 70 synthetic benchmark sets and the vanishing-saliency sets (docs/timeseries.md)."""

import functools

import numpy as np
import pytest

from sgt import data
from sgt.data import synthetic
from sgt.data import timeseries as ts

# The spec's §1.2 table, written out again so that the module's own table is checked against it:
# type → ((box_t, box_f), (t_start, f_start)); "U" = uniform per sample, "C" = 1 for class 1, 29 for class 0.
SPEC_BOXES = {
    "Middle": ((30, 30), (10, 10)),
    "SmallMiddle": ((14, 14), (18, 18)),
    "Moving_Middle": ((30, 30), ("U", "U")),
    "Moving_SmallMiddle": ((15, 15), ("U", "U")),
    "RareTime": ((6, 40), (22, 5)),
    "Moving_RareTime": ((6, 40), ("U", "U")),
    "RareFeature": ((40, 6), (5, 22)),
    "Moving_RareFeature": ((40, 6), ("U", "U")),
    "PostionalTime": ((20, 20), ("U", "C")),
    "PostionalFeature": ((20, 20), ("C", "U")),
}
SPEC_VANISHING = {"TopBox": (0, 30, 10, 90), "MiddleBox": (20, 80, 20, 80), "BottomBox": (70, 100, 10, 90)}
NARMA_HEAD = [0.10289114, 0.47665753, 0.47150087, 0.28911974, 0.19737395]  # timesynth 0.2.4 NARMA(order=10)


@functools.cache
def raw(name, seed=0, n_train=1000, n_test=10):
    return ts.raw(name, seed, n_train, n_test)


@functools.cache
def vanishing(name, seed=0):
    return ts.raw(name, seed), ts.vanishing(name, seed)


def box_starts(truth):
    """(t_start, f_start, box cell count) per sample of boolean masks [n, T, F]."""
    return truth.any(axis=2).argmax(axis=1), truth.any(axis=1).argmax(axis=1), truth.sum(axis=(1, 2))


def test_names():
    assert len(ts.NAMES) == len(set(ts.NAMES)) == 70
    assert ts.NAMES[:2] == ("Middle_Box", "Middle_Harmonic") and ts.NAMES[7] == "SmallMiddle_Box"
    assert ts.NAMES[-1] == "PostionalFeature_NARMA"
    assert set(ts.TYPES) == set(SPEC_BOXES)
    assert ts.parse("Moving_RareTime_CAR") == ("Moving_RareTime", "CAR")


@pytest.mark.parametrize("gen", ts.GENERATORS)
def test_deterministic_from_the_seed(gen):
    name = f"Moving_Middle_{gen}"
    a, b, c = ts.raw(name, 3, 40, 5), ts.raw(name, 3, 40, 5), ts.raw(name, 4, 40, 5)
    for field in ("x_train", "y_train", "truth_train", "x_test", "y_test", "truth_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train) and not np.array_equal(a.x_test, c.x_test)


def test_datasets_with_the_same_seed_have_their_own_streams():
    a, b, c = ts.raw("Middle_Box", 0, 200, 5), ts.raw("SmallMiddle_Box", 0, 200, 5), ts.raw("Middle_CAR", 0, 200, 5)
    assert not np.array_equal(a.y_train, b.y_train) and not np.array_equal(a.y_train, c.y_train)
    assert not np.array_equal(ts.raw("TopBox", 0, 5, 5).y_train, ts.raw("MiddleBox", 0, 5, 5).y_train)


@pytest.mark.parametrize("type_", ts.TYPES)
def test_box_geometry_matches_the_spec(type_):
    (box_t, box_f), (rule_t, rule_f) = SPEC_BOXES[type_]
    d = raw(f"{type_}_Box")
    t0, f0, count = box_starts(d.truth_train)
    assert np.all(count == box_t * box_f)
    np.testing.assert_array_equal(d.truth_train, ts.box_mask(t0, f0, box_t, box_f))  # one exact rectangle
    for start, rule, box in [(t0, rule_t, box_t), (f0, rule_f, box_f)]:
        if rule == "U":  # rng.integers(50 − box): every value of 0 … 49 − box, nothing beyond
            np.testing.assert_array_equal(np.unique(start), np.arange(50 - box))
        elif rule == "C":
            np.testing.assert_array_equal(start, np.where(d.y_train == 1, 1, 29))
        else:
            assert np.all(start == rule)
    assert d.truth_test.shape == d.x_test.shape and np.all(d.truth_test.sum(axis=(1, 2)) == box_t * box_f)


@pytest.mark.parametrize("type_", ts.TYPES)
def test_box_shift_per_class(type_):
    d = raw(f"{type_}_Box")
    positional = "C" in SPEC_BOXES[type_][1]
    for label, expected in [(1, 1.0), (0, 1.0 if positional else -1.0)]:
        rows = d.y_train == label
        inside = d.x_train[rows][d.truth_train[rows]]
        assert abs(inside.mean() - expected) < 0.03 and abs(inside.std() - 1.0) < 0.03


@pytest.mark.parametrize("name", ["Middle_Box", "PostionalTime_NARMA", "Moving_RareFeature_CAR", "TopBox"])
def test_labels_are_balanced_binary_classes(name):
    d = raw(name)
    assert d.y_train.dtype.kind == "i" and set(np.unique(d.y_train)) == {0, 1}
    assert 0.4 < d.y_train.mean() < 0.6


def test_gaussian_box_statistics():
    d = raw("Middle_Box", 0, 2000)
    pos, neg, box = d.x_train[d.y_train == 1], d.x_train[d.y_train == 0], d.truth_train[0]
    assert abs(pos[:, box].mean() - 1.0) < 0.02 and abs(neg[:, box].mean() + 1.0) < 0.02
    assert abs(d.x_train[:, ~box].mean()) < 0.01 and abs(d.x_train[:, ~box].std() - 1.0) < 0.01


@pytest.mark.parametrize("gen", ts.GENERATORS)
def test_benchmark_scales_each_cell_with_the_train_range(gen):
    name = f"Moving_SmallMiddle_{gen}"
    ds, r = ts.benchmark(name, 1, 200, 30), ts.raw(name, 1, 200, 30)
    assert ds.name == name and ds.num_classes == 2 and ds.x_train.dtype == np.float32
    np.testing.assert_array_equal(ds.x_train.min(axis=0), 0.0)
    np.testing.assert_array_equal(ds.x_train.max(axis=0), 1.0)
    lo, hi = r.x_train.min(axis=0), r.x_train.max(axis=0)
    np.testing.assert_allclose(ds.x_test, (r.x_test - lo) / (hi - lo), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ds.truth_test, r.truth_test)
    np.testing.assert_array_equal(ds.y_test, r.y_test)


def test_minmax_fit_gives_constant_cells_range_one():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    lo, scale = ts.minmax_fit(x)
    np.testing.assert_array_equal(lo, [1.0, 5.0])
    np.testing.assert_array_equal(scale, [2.0, 1.0])


def outside(name, n=1000):
    """Raw out-of-box train values [n, T, F] of `name`, NaN inside the box."""
    d = raw(name, 0, n)
    return np.where(d.truth_train, np.nan, d.x_train)


def test_irregular_times():
    t = ts.irregular_times(np.random.default_rng(0), 500)
    assert t.shape == (500, 50) and np.all(np.diff(t, axis=1) >= 0)
    assert -1.5 < t.min() < 0 and 20 < t.max() < 21.5  # 50 of linspace(0, 20, 100), jittered by N(0, 0.2²)
    assert abs(np.diff(t, axis=1).mean() - 20 / 49) < 0.02


def test_harmonic_is_sin_4pi_t_shared_by_the_features():
    times = ts.irregular_times(np.random.default_rng(5), 20)
    np.testing.assert_allclose(ts.harmonic(np.random.default_rng(5), 20), np.sin(4 * np.pi * times)[:, :, None]
                               * np.ones(50), atol=1e-12)
    x = outside("Middle_Harmonic")
    assert abs(np.nanstd(x[:, :, 0] - x[:, :, 45]) - 0.3 * np.sqrt(2)) < 0.01  # only the noise differs
    assert abs(np.nanvar(x) - (0.5 + 0.09)) < 0.03


def test_gaussian_process_marginal_variance_and_independent_features():
    assert ts.matern32(np.array([0.0, 1.0]))[0, 1] == pytest.approx((1 + np.sqrt(3)) * np.exp(-np.sqrt(3)))
    x = outside("Middle_GaussianProcess")
    assert abs(np.nanvar(x) - 1.09) < 0.05
    assert abs(np.corrcoef(x[:, :, 0].ravel(), x[:, :, 45].ravel())[0, 1]) < 0.03
    assert np.corrcoef(x[:, :-1, 0].ravel(), x[:, 1:, 0].ravel())[0, 1] > 0.6  # smooth in time


def test_pseudo_periodic_variance():
    # E[a²]·E[sin²(ωτ)] + 0.3² with a ~ N(1, 0.5²): 1.25·½ + 0.09
    assert abs(np.nanvar(outside("Middle_PseudoPeriodic")) - (1.25 * 0.5 + 0.09)) < 0.03


def test_autoregressive_is_ar1_with_phi_09_and_sigma_05():
    s = ts.autoregressive(np.random.default_rng(0), 2000)
    assert abs(s[:, 0].std() - 0.5) < 0.01  # x_0 = 0.9·0 + 0.5·ε
    late = s[:, 30:]
    assert abs(late.var() - 0.25 / (1 - 0.81)) < 0.05
    assert abs(np.corrcoef(late[:, :-1].ravel(), late[:, 1:].ravel())[0, 1] - 0.9) < 0.01
    assert abs(np.nanvar(outside("Middle_AutoRegressive")[:, 30:]) - (0.25 / 0.19 + 0.09)) < 0.06


def test_car_is_nearly_flat():
    s = ts.car(np.random.default_rng(0), 200)
    assert np.all(s[:, 0] == 0.01) and np.abs(s).max() < 0.05
    x = outside("Middle_CAR")
    assert abs(np.nanmean(x)) < 0.005 and abs(np.nanstd(x) - 0.3) < 0.005


def test_narma_base_is_the_same_in_every_sample_and_feature():
    np.testing.assert_allclose(ts.narma_path()[:5], NARMA_HEAD, atol=1e-7)
    x = raw("Middle_NARMA").x_train[:, :, 40:]  # features 40-49 lie outside the box
    assert abs(x.std(axis=0).mean() - 0.3) < 0.01  # per cell, only the noise varies
    np.testing.assert_allclose(x.mean(axis=(0, 2)), ts.narma_path(), atol=0.01)


def test_non_gaussian_generators_add_the_shift():
    d = raw("Middle_CAR")
    for label, sign in [(1, 1.0), (0, -1.0)]:
        rows = d.y_train == label
        inside = d.x_train[rows][d.truth_train[rows]]
        assert abs(inside.mean() - sign) < 0.01 and abs(inside.std() - 0.3) < 0.01  # CAR ≈ 0: shift + noise


def test_background_is_box_free_and_of_the_generator():
    rng = np.random.default_rng(0)
    assert ts.background("RareTime_Box", rng, 3).shape == (3, 50, 50)
    assert abs(ts.background("RareTime_CAR", rng, 200).std() - 0.3) < 0.01
    np.testing.assert_allclose(ts.background("Middle_NARMA", rng, 400).mean(axis=(0, 2)), ts.narma_path(), atol=0.02)
    assert ts.background("TopBox", rng, 2).shape == (2, 100, 100)


@pytest.mark.parametrize("name", ts.VANISHING)
def test_vanishing_sets(name):
    r, ds = vanishing(name)
    assert ds.x_train.shape == (1000, 100, 100) and ds.x_test.shape == (300, 100, 100)
    assert ds.x_train.dtype == np.float32 and ds.name == name and ds.num_classes == 2
    t0, t1, f0, f1 = SPEC_VANISHING[name]
    box = np.zeros((100, 100), bool)
    box[t0:t1, f0:f1] = True
    assert np.all(ds.truth_test == box) and np.all(r.truth_train == box)
    assert np.abs(ds.x_train.mean(axis=0)).max() < 1e-5
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1.0, atol=1e-4)
    for label, sign in [(1, 1.0), (0, -1.0)]:
        assert abs(r.x_train[r.y_train == label][:, box].mean() - sign) < 0.01
    assert abs(r.x_train[:, ~box].mean()) < 0.01 and abs(r.x_train[:, ~box].std() - 1.0) < 0.01


def test_middle_is_the_middle_box_benchmark():
    a, b = synthetic.middle(2), ts.benchmark("Middle_Box", 2)
    assert a.name == "middle"
    for field in ("x_train", "y_train", "x_test", "y_test", "truth_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_load_dispatches_the_new_names():
    assert "Moving_RareTime_CAR" in data.DATASETS and "TopBox" in data.DATASETS and "middle" in data.DATASETS
    np.testing.assert_array_equal(data.load("Moving_RareTime_CAR", seed=1).x_test,
                                  ts.benchmark("Moving_RareTime_CAR", 1).x_test)
    np.testing.assert_array_equal(data.load("TopBox").x_test, vanishing("TopBox")[1].x_test)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match=r"name: unknown dataset 'Middle_Foo'.*Moving_RareTime.*NARMA"):
        ts.raw("Middle_Foo")
    with pytest.raises(ValueError, match="name: unknown dataset 'TopBox'"):
        ts.benchmark("TopBox")
    with pytest.raises(ValueError, match="name: unknown vanishing-saliency set 'Middle_Box'"):
        ts.vanishing("Middle_Box")
    with pytest.raises(ValueError, match="generator: unknown generator 'Sine'"):
        ts.base_signals("Sine", np.random.default_rng(0), 2)
    with pytest.raises(ValueError, match="name: unknown dataset 'Box'"):
        ts.background("Box", np.random.default_rng(0), 2)
    with pytest.raises(ValueError, match=r"dataset: unknown dataset 'Middle_Sine'.*<Type>_<Gen>"):
        data.load("Middle_Sine")
