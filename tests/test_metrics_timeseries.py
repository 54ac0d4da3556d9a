import numpy as np
import pytest

from sgt.metrics import (
    LEVELS,
    aup_aur,
    aupr,
    euclidean,
    masked_accuracy,
    masked_accuracy_auc,
    mass_masks,
    precision_recall,
    random_baseline,
    rescale,
    weighted_jaccard,
)


def _box(shape, t, f):
    """Boolean truth of `shape` = (N, T, F), True on the slices t, f of every sample."""
    truth = np.zeros(shape, bool)
    truth[:, t, f] = True
    return truth


# --------------------------------------------------------------------------- rescale


def test_rescale_is_per_sample_min_max_of_the_magnitude():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(4, 5, 3)) * np.array([1.0, 10.0, 0.01, 3.0])[:, None, None]
    out = rescale(raw)
    np.testing.assert_allclose(out.reshape(4, -1).min(1), 0.0)
    np.testing.assert_allclose(out.reshape(4, -1).max(1), 1.0)
    np.testing.assert_array_equal(rescale(-raw), out)  # the sign is dropped
    # hand case: |[-2, 1, 3, -5]| = [2, 1, 3, 5]; min 1, max 5 → (v - 1) / 4
    np.testing.assert_allclose(rescale(np.array([[[-2.0, 1.0], [3.0, -5.0]]])), [[[0.25, 0.0], [0.5, 1.0]]])


def test_rescale_maps_a_constant_sample_to_zeros():
    raw = np.stack([np.full((2, 3), -4.0), np.arange(6.0).reshape(2, 3)])
    out = rescale(raw)
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_allclose(out[1], np.arange(6.0).reshape(2, 3) / 5)


# --------------------------------------------------------------------------- mass masks


def _reference_masks(scaled, levels):
    """Direct per-sample sort-and-accumulate: add the largest cells until the mass reaches p·S."""
    out = np.zeros((len(levels), *scaled.shape), bool)
    for n, sample in enumerate(scaled):
        flat = sample.ravel()
        order = sorted(range(flat.size), key=lambda i: -flat[i])
        total = sum(flat[i] for i in order)
        for li, p in enumerate(levels):
            chosen, acc = [], 0.0
            if total > 0:
                for i in order:
                    chosen.append(i)
                    acc += flat[i]
                    if acc >= p * total:
                        break
            mask = np.zeros(flat.size, bool)
            mask[chosen] = True
            out[li, n] = mask.reshape(sample.shape)
    return out


def test_mass_masks_match_a_direct_sort_and_accumulate_loop():
    rng = np.random.default_rng(1)
    scaled = rescale(rng.normal(size=(6, 7, 4)))  # random floats: no ties
    levels = (0.05, 0.1, 0.25, 0.5, 0.6, 0.9, 0.99)
    masks = mass_masks(scaled, levels)
    assert masks.shape == (7, 6, 7, 4)
    np.testing.assert_array_equal(masks, _reference_masks(scaled, levels))
    np.testing.assert_array_equal(mass_masks(scaled), _reference_masks(scaled, LEVELS))


def test_mass_masks_count_mass_not_cells_and_skip_empty_samples():
    # one sample [4, 2, 1, 1] (S = 8) and one all-zero sample
    scaled = np.array([[4.0, 2.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    masks = mass_masks(scaled, (0.5, 0.6, 0.8))
    # p = 0.5: 4 ≥ 4 → k = 1;  p = 0.6: 4 < 4.8 ≤ 6 → k = 2;  p = 0.8: 6 < 6.4 ≤ 7 → k = 3
    np.testing.assert_array_equal(masks[:, 0].sum(-1), [1, 2, 3])
    np.testing.assert_array_equal(masks[2, 0], [True, True, True, False])
    assert not masks[:, 1].any()  # S = 0 selects nothing


def test_mass_masks_break_ties_by_cell_index():
    scaled = np.ones((1, 2, 2))  # four tied cells, S = 4; p = 0.5 → k = 2 → the first two in C order
    np.testing.assert_array_equal(mass_masks(scaled, (0.5,))[0, 0], [[True, True], [False, False]])


# --------------------------------------------------------------------------- precision / recall


def test_saliency_exactly_on_the_box():
    shape = (2, 4, 3)
    truth = _box(shape, slice(1, 3), slice(0, 2))  # 2×2 box, 4 cells
    saliency = truth * 1.0  # 1 inside, 0 outside → rescales to itself
    prec, rec = precision_recall(saliency, truth)
    # only box cells (value 1) get selected, so FP = 0 → precision 1 everywhere
    np.testing.assert_allclose(prec, np.ones(9))
    # S = 4, k_p = ceil(4p): p = .1,.2 → 1; .3,.4,.5 → 2; .6,.7 → 3; .8,.9 → 4; recall = k_p / 4
    expected_rec = np.array([1, 1, 2, 2, 2, 3, 3, 4, 4]) / 4
    np.testing.assert_allclose(rec, expected_rec)
    aup, aur = aup_aur(saliency, truth)
    # AUP = 0.1·(1/2 + 7·1 + 1/2) = 0.8
    assert aup == pytest.approx(0.8)
    # AUR = 0.1·(0.25/2 + (1 + 2 + 2 + 2 + 3 + 3 + 4)/4 + 1/2) = 0.1·(0.125 + 4.25 + 0.5) = 0.4875
    assert aur == pytest.approx(0.4875)
    # precision 1 along recall 0.25 … 1 → AUPR = 0.75
    assert aupr(saliency, truth) == pytest.approx(0.75)


def test_saliency_uniform_over_all_cells():
    # 3×4 grid (12 cells), box = time step 0 (flat cells 0..3); raw saliency 1 everywhere except
    # the last cell (0), so the rescaled map is 1 on cells 0..10 and 0 on cell 11: S = 11.
    shape = (1, 3, 4)
    truth = _box(shape, slice(0, 1), slice(None))
    saliency = np.ones(shape)
    saliency[0, 2, 3] = 0.0
    prec, rec = precision_recall(saliency, truth)
    # k_p = ceil(11p) = 2, 3, …, 10; ties go to the lower cell index, so the first k cells are
    # selected: TP = min(k, 4), FP = k − TP, FN = 4 − TP
    k = np.arange(2, 11)
    np.testing.assert_allclose(prec, np.minimum(k, 4) / k)  # 1, 1, 1, 4/5, 4/6, …, 4/10
    np.testing.assert_allclose(rec, np.minimum(k, 4) / 4)  # 1/2, 3/4, 1, 1, …, 1
    aup, aur = aup_aur(saliency, truth)
    # AUP = 0.1·(1/2 + 1 + 1 + 4/5 + 4/6 + 4/7 + 4/8 + 4/9 + 0.4/2)
    assert aup == pytest.approx(0.1 * (0.5 + 2 + 0.8 + 4 / 6 + 4 / 7 + 0.5 + 4 / 9 + 0.2))
    # AUR = 0.1·(0.5/2 + 0.75 + 6·1 + 1/2) = 0.75
    assert aur == pytest.approx(0.75)


def test_saliency_only_outside_the_box_scores_zero():
    shape = (2, 4, 3)
    truth = _box(shape, slice(0, 2), slice(0, 1))
    rng = np.random.default_rng(2)
    saliency = rng.uniform(0.1, 1.0, size=shape) * ~truth  # box cells are 0, the minimum
    prec, rec = precision_recall(saliency, truth)
    # TP = 0 and FP > 0 → precision 0; TP = FN = 0 → recall undefined for every sample → 0
    np.testing.assert_array_equal(prec, np.zeros(9))
    np.testing.assert_array_equal(rec, np.zeros(9))
    assert aup_aur(saliency, truth) == (0.0, 0.0)


def test_samples_with_a_zero_denominator_are_left_out_of_the_mean():
    shape = (2, 4, 3)
    truth = _box(shape, slice(1, 3), slice(0, 2))
    saliency = np.where(truth, 1.0, 0.0)
    saliency[1] = np.where(truth[1], 0.0, 1.0)  # sample 1: only outside the box
    prec, rec = precision_recall(saliency, truth)
    # precision: sample 0 → 1, sample 1 → 0 (FP > 0, counted) → mean 0.5
    np.testing.assert_allclose(prec, np.full(9, 0.5))
    # recall: sample 1 has TP + FN = 0 → left out; the mean is sample 0's ceil(4p)/4 alone
    np.testing.assert_allclose(rec, np.array([1, 1, 2, 2, 2, 3, 3, 4, 4]) / 4)


def test_worked_example_with_distinct_values():
    # raw [0.5, −3, 1, 0, 2, 4] → |·| / 4 = s = [.125, .75, .25, 0, .5, 1], S = 2.625
    # descending: 1 (cell 5), .75 (1), .5 (4), .25 (2), .125 (0), 0 (3); cumsum 1, 1.75, 2.25, 2.5, …
    saliency = np.array([[0.5, -3.0, 1.0, 0.0, 2.0, 4.0]])
    truth = np.array([[False, True, True, False, False, False]])  # box mass .75 + .25 = 1
    levels = (0.3, 0.5, 0.8, 0.9)
    # p·S = .7875, 1.3125, 2.1, 2.3625 → k = 1, 2, 3, 4
    masks = mass_masks(rescale(saliency), levels)
    np.testing.assert_array_equal(masks[:, 0].sum(-1), [1, 2, 3, 4])
    np.testing.assert_array_equal(masks[3, 0], [False, True, True, False, True, True])
    prec, rec = precision_recall(saliency, truth, levels=levels)
    # k=1: {5}: TP 0, FP 1 → P 0, R 0
    # k=2: {5,1}: TP .75, FP 1 → P .75/1.75 = 3/7, R .75
    # k=3: {5,1,4}: TP .75, FP 1.5 → P 1/3, R .75
    # k=4: {5,1,4,2}: TP 1, FP 1.5 → P .4, R 1
    np.testing.assert_allclose(prec, [0, 3 / 7, 1 / 3, 0.4])
    np.testing.assert_allclose(rec, [0, 0.75, 0.75, 1.0])
    aup, aur = aup_aur(saliency, truth, levels=levels)
    # trapezoids with widths .2, .3, .1
    assert aup == pytest.approx(0.2 * (3 / 7) / 2 + 0.3 * (3 / 7 + 1 / 3) / 2 + 0.1 * (1 / 3 + 0.4) / 2)
    assert aur == pytest.approx(0.2 * 0.75 / 2 + 0.3 * 0.75 + 0.1 * 1.75 / 2)
    # sorted by recall (ties keep level order): (0,0), (.75,3/7), (.75,1/3), (1,.4)
    assert aupr(saliency, truth, levels=levels) == pytest.approx(0.75 * (3 / 7) / 2 + 0.25 * (1 / 3 + 0.4) / 2)


# --------------------------------------------------------------------------- random baseline


def test_random_baseline_permutes_the_features_of_one_input_map():
    rng = np.random.default_rng(3)
    maps = [rng.normal(size=(3, 5, 6)) for _ in range(3)]
    out = random_baseline(maps, np.random.default_rng(7))
    # which map, and which permutation: each output feature column [N, T] equals one input column
    matches = [i for i, m in enumerate(maps) if np.isin(out, m).all()]
    assert len(matches) == 1
    source = maps[matches[0]]
    perm = [next(i for i in range(6) if np.array_equal(out[..., j], source[..., i])) for j in range(6)]
    assert sorted(perm) == list(range(6))
    np.testing.assert_array_equal(out, source[..., perm])  # one permutation for all samples and steps
    # values per sample and per (sample, time step) are kept, hence the time profile too
    np.testing.assert_array_equal(np.sort(out.reshape(3, -1), 1), np.sort(source.reshape(3, -1), 1))
    np.testing.assert_array_equal(np.sort(out, -1), np.sort(source, -1))
    np.testing.assert_allclose(out.sum(-1), source.sum(-1), rtol=1e-12)


def test_random_baseline_is_seeded_and_varies_with_the_seed():
    rng = np.random.default_rng(4)
    maps = [rng.normal(size=(2, 3, 8)) for _ in range(2)]
    first = random_baseline(maps, np.random.default_rng(11))
    np.testing.assert_array_equal(first, random_baseline(maps, np.random.default_rng(11)))
    outs = [random_baseline(maps, np.random.default_rng(seed)) for seed in range(40)]
    chosen = {next(i for i, m in enumerate(maps) if np.isin(o, m).all()) for o in outs}
    assert chosen == {0, 1}  # both maps get picked
    assert any(not np.array_equal(o, maps[0]) and not np.array_equal(o, maps[1]) for o in outs)
    assert len({o.tobytes() for o in outs}) > 2  # different seeds, different permutations


# --------------------------------------------------------------------------- masked accuracy


def _recording_predict(calls):
    """Label 1 when the mean of time steps 0..1 (scaled input) exceeds 0.5, else 0; records its inputs."""

    def predict(x):
        calls.append(np.array(x))
        return (x[:, :2].mean((1, 2)) > 0.5).astype(int)

    return predict


def test_masked_accuracy_end_points_and_mass_masking():
    rng = np.random.default_rng(5)
    n, t, f = 8, 4, 3
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    x_raw = rng.uniform(0, 0.8, size=(n, t, f))
    x_raw[y == 1, :2] += 1.4  # class 1: the first two steps are high (scaled mean > 0.5)
    x_raw[[0, 1]] = x_raw[[1, 0]]  # two samples now carry the wrong pattern → unmasked accuracy 6/8
    saliency = rng.normal(size=(n, t, f))
    replacement = rng.uniform(0, 0.2, size=(t, f))  # background: predicted class 0

    def scale(x):
        return x / 2.0

    calls = []
    acc = masked_accuracy(_recording_predict(calls), x_raw, y, saliency, replacement, scale)
    assert acc.shape == (11,)
    assert acc[0] == pytest.approx(6 / 8)  # p = 0: nothing masked
    np.testing.assert_array_equal(calls[0], scale(x_raw))
    # p = 1: every input is the replacement, predicted 0 → accuracy = share of label 0 = 4/8
    np.testing.assert_array_equal(calls[-1], np.broadcast_to(scale(replacement), x_raw.shape))
    assert acc[-1] == pytest.approx(np.mean(y == 0))
    # p = 0.5: exactly the mass-mask cells carry the replacement values
    mask = mass_masks(rescale(saliency), (0.5,))[0]
    np.testing.assert_array_equal(calls[5], scale(np.where(mask, replacement, x_raw)))
    assert np.all((acc >= 0) & (acc <= 1))


def test_masked_accuracy_auc_is_a_trapezoid_over_the_levels():
    acc = np.array([1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0, 0, 0, 0])
    # 0.1·(1/2 + 1 + .8 + .6 + .4 + .2 + 0 + … + 0/2) = 0.35
    assert masked_accuracy_auc(acc) == pytest.approx(0.35)
    # general levels: widths .5, .5 → .5·(1 + .5)/2 + .5·(.5 + 0)/2 = 0.5
    assert masked_accuracy_auc(np.array([1.0, 0.5, 0.0]), levels=(0.0, 0.5, 1.0)) == pytest.approx(0.5)


# --------------------------------------------------------------------------- 2019 metrics


def test_weighted_jaccard_and_euclidean():
    truth = np.array([[True, True, False, False], [False, True, True, False]])
    perfect = truth * 3.0
    np.testing.assert_allclose(weighted_jaccard(perfect, truth), [1.0, 1.0])
    np.testing.assert_allclose(euclidean(perfect, truth), [0.0, 0.0])
    # sample 0: raw [2, 1, −1, 0] → S̃ = [1, .5, .5, 0], R = [1, 1, 0, 0]
    #   Σmin = 1 + .5 + 0 + 0 = 1.5, Σmax = 1 + 1 + .5 + 0 = 2.5 → WJac .6
    #   R − S̃ = [0, .5, −.5, 0] → ‖·‖ = √.5, ‖R‖ = √2 → Euc .5
    # sample 1: raw [4, 0, 0, 0] → S̃ = [1, 0, 0, 0], R = [0, 1, 1, 0]
    #   Σmin = 0, Σmax = 3 → WJac 0;  ‖R − S̃‖ = √3, ‖R‖ = √2 → Euc √1.5
    saliency = np.array([[2.0, 1.0, -1.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(weighted_jaccard(saliency, truth), [0.6, 0.0])
    np.testing.assert_allclose(euclidean(saliency, truth), [0.5, np.sqrt(1.5)])


# --------------------------------------------------------------------------- validation


def test_shape_mismatch_is_rejected():
    saliency = np.zeros((2, 4, 3))
    with pytest.raises(ValueError, match="truth"):
        precision_recall(saliency, np.zeros((2, 3, 4), bool))
    with pytest.raises(ValueError, match="truth"):
        weighted_jaccard(saliency, np.zeros((2, 4), bool))
    def predict(x):
        return np.zeros(len(x))

    with pytest.raises(ValueError, match="x_raw"):
        masked_accuracy(predict, np.zeros((2, 4, 4)), np.zeros(2), saliency, np.zeros((4, 3)), lambda x: x)
    with pytest.raises(ValueError, match="replacement"):
        masked_accuracy(predict, np.zeros((2, 4, 3)), np.zeros(2), saliency, np.zeros((3, 4)), lambda x: x)
    with pytest.raises(ValueError, match="maps"):
        random_baseline([np.zeros((2, 4, 3)), np.zeros((2, 4, 4))], np.random.default_rng(0))
    with pytest.raises(ValueError, match="accuracies"):
        masked_accuracy_auc(np.zeros(9))


@pytest.mark.parametrize("levels", [(0.0, 0.5), (0.5, 1.0), (1.2,), (-0.1, 0.5), (0.5, 0.3), ((0.1, 0.2),), ()])
def test_levels_outside_the_open_unit_interval_are_rejected(levels):
    saliency = np.random.default_rng(6).normal(size=(2, 4, 3))
    truth = np.zeros((2, 4, 3), bool)
    with pytest.raises(ValueError, match="levels"):
        precision_recall(saliency, truth, levels=levels)


def test_non_finite_saliency_and_non_binary_truth_are_rejected():
    saliency = np.ones((2, 2, 2))
    saliency[1, 0, 1] = np.nan
    with pytest.raises(ValueError, match="saliency"):
        rescale(saliency)
    with pytest.raises(ValueError, match="saliency"):
        aup_aur(np.where(np.isnan(saliency), np.inf, saliency), np.zeros((2, 2, 2), bool))
    with pytest.raises(ValueError, match="truth"):
        precision_recall(np.ones((2, 2, 2)), np.full((2, 2, 2), 2))
    with pytest.raises(ValueError, match="scaled"):
        mass_masks(-np.ones((1, 3)))
