"""The time-series experiment: aggregation by hand, the six methods' baselines, caching and the CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgt import cli, many
from sgt.experiments import report, timeseries as ts


def _record(dataset, seed, arch="tcn", acc=(1.0, 1.0), grad=((0.5, 0.4), (0.6, 0.5)), rand=(0.2, 0.3)):
    """Grad scores (aup, aur) for Trad and Sal; the random baseline's (aup, aur) in both regimes."""
    regimes = {}
    for regime, a, g in zip(("Trad", "Sal"), acc, grad):
        regimes[regime] = {"test_accuracy": a, "scores": {"Grad": {"aup": g[0], "aur": g[1], "wjac": 0.1, "euc": 0.9},
                                                          "Random": {"aup": rand[0], "aur": rand[1]}},
                           "grad_time_profile": [0.0, 1.0]}
    return {"dataset": dataset, "arch": arch, "seed": seed, "regimes": regimes}


def test_diff_table_by_hand():
    records = [
        _record("A", 0, grad=((0.5, 0.4), (0.6, 0.5))),  # Trad diff aup 0.3, Sal 0.4
        _record("B", 0, grad=((0.3, 0.4), (0.4, 0.5))),  # Trad 0.1, Sal 0.2 → seed 0: Trad 0.2, Sal 0.3
        _record("A", 1, grad=((0.6, 0.4), (0.8, 0.5))),  # Trad 0.4, Sal 0.6 → seed 1 (B gated out)
        _record("B", 1, acc=(1.0, 0.5), grad=((0.9, 0.9), (0.9, 0.9))),  # Sal below the 90 % gate
    ]
    rows = {(r["method"], r["regime"]): r for r in report.diff_table(records, ["Grad"], gate=0.9)}
    trad, sal = rows[("Grad", "Trad")], rows[("Grad", "Sal")]
    # per seed: Trad (0.2, 0.4) → mean 0.3, s.e. = std(ddof=1)/√2 = 0.1414/1.414 = 0.1
    assert trad["diff_aup"] == pytest.approx(0.3) and trad["diff_aup_se"] == pytest.approx(0.1)
    assert sal["diff_aup"] == pytest.approx((0.3 + 0.6) / 2) and sal["diff_aup_se"] == pytest.approx(0.15)
    assert trad["diff_aur"] == pytest.approx(0.1) and trad["diff_aur_se"] == pytest.approx(0.0)
    assert (trad["runs"], trad["runs_total"], trad["datasets"]) == (3, 4, 2)
    assert (trad["paper_aup"], sal["paper_aup"]) == (0.106, 0.168)  # TCN Grad in the paper's Table 2


def test_tables_and_figures_are_written(tmp_path):
    records = [_record("A", s, arch=a) for s in (0, 1) for a in ("lstm", "tcn")]
    rows = report.diff_table(records, ["Grad"], gate=0.9)
    csv_path, md_path = report.write_table(rows, tmp_path)
    text = md_path.read_text()
    assert "| TCN | Grad | +0.300 ± 0.000 | +0.400 ± 0.000 | +0.100 | +0.106 | +0.168 | +0.062 | 2 / 2 |" in text
    assert csv_path.read_text().count("\n") == 1 + 2 * 2
    assert report.plot_diffs(rows, tmp_path / "t.png").exists()
    records.append(_record("B", 0, arch="tcn", acc=(0.95, 0.5)))
    accuracy = report.write_accuracy(records, 0.9, tmp_path).read_text()
    assert "| B |  | 0.95 / 0.50 (0/1) |" in accuracy and "| A | 1.00 / 1.00 (2/2) | 1.00 / 1.00 (2/2) |" in accuracy
    van = [_record(b, s, arch="lstm") | {"dataset": b} for b in ("BottomBox", "TopBox") for s in (0, 1)]
    vrows = report.vanishing_rows(van, ["Grad"])
    assert [r["dataset"] for r in vrows][::2] == ["TopBox", "BottomBox"]  # early → late
    assert vrows[0]["aup"] == pytest.approx(0.5) and vrows[0]["diff_aup"] == pytest.approx(0.3)
    report.write_vanishing(vrows, tmp_path)
    assert report.plot_vanishing(vrows, van, tmp_path / "v.png").exists()


def test_the_table2_figure_draws_each_cell(tmp_path, monkeypatch):
    """Rows AUP / AUR × one panel per architecture; in each, one bar per (method, regime) at its Diff."""
    figures = []
    monkeypatch.setattr(report.plt, "close", figures.append)
    records = [_record("A", s, arch=a, grad=((0.5, 0.4), (0.7, 0.5)) if a == "tcn" else ((0.3, 0.3), (0.2, 0.6)))
               for s in (0, 1) for a in ("lstm", "tcn")]
    report.plot_diffs(report.diff_table(records, ["Grad"], gate=0.9), tmp_path / "t.png")
    (fig,) = figures
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["LSTM", "TCN", "LSTM", "TCN"]
    heights = [[round(p.get_height(), 6) for p in ax.patches] for ax in fig.axes]
    # Diff = score − random (0.2 AUP, 0.3 AUR); Trad bar then Sal bar
    assert heights == [[0.1, 0.0], [0.3, 0.5], [0.0, 0.3], [0.1, 0.2]]


def test_the_six_methods_follow_the_benchmark_settings():
    """Baselines in [0, 1); the completeness of IG and DeepLIFT against their own random baseline."""
    w = jax.random.normal(jax.random.PRNGKey(0), (12, 2))
    f = lambda x: jax.nn.softmax(jnp.tanh(x.reshape(x.shape[0], -1) @ w), -1)  # noqa: E731
    x = jax.random.uniform(jax.random.PRNGKey(1), (3, 4, 3))
    y = jnp.array([0, 1, 1])
    methods = ts.attribution_methods(f, x, jax.random.PRNGKey(2), ts.METHODS)
    maps = {n: m(x, y, key=jax.random.PRNGKey(3)) for n, m in methods.items()}
    assert all(v.shape == x.shape for v in maps.values())
    assert (maps["Grad"] >= 0).all() and (maps["SmoothGrad"] >= 0).all()
    base = jax.random.uniform(jax.random.split(jax.random.PRNGKey(2))[0], x.shape)
    gap = f(x)[jnp.arange(3), y] - f(base)[jnp.arange(3), y]
    np.testing.assert_allclose(maps["DeepLIFT"].sum((1, 2)), gap, atol=1e-5)
    np.testing.assert_allclose(maps["IG"].sum((1, 2)), gap, atol=2e-3)


def test_reproduce_caches_and_resumes(tmp_path, monkeypatch, capsys):
    argv = ["reproduce", "timeseries", "--datasets", "Middle_Box", "--models", "lstm", "--methods", "Grad", "IG",
            "--seeds", "0", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]
    assert cli.main(argv) == 0
    cached = list((tmp_path / "cache").rglob("*.json"))
    assert [p.name for p in cached] == ["Middle_Box__lstm__seed0.json"]
    record = json.loads(cached[0].read_text())
    assert set(record["regimes"]) == {"Trad", "Sal"}
    assert set(record["regimes"]["Sal"]["scores"]) == {"Grad", "IG", "Random"}
    assert {"table2.csv", "table2.md", "table2.png"} <= {p.name for p in tmp_path.iterdir()}

    def no_training(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(ts, "run_group", no_training)
    assert cli.main(argv) == 0
    assert "1 runs" in capsys.readouterr().out
    more_seeds = [*argv[:argv.index("--seeds") + 1], "0", "1", *argv[argv.index("--seeds") + 2:]]
    assert cli.main([*more_seeds, "--report-only"]) == 0  # seed 1 is not cached: reported without it
    assert "1 runs" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="trained again"):  # a method the cached record lacks: rerun it
        cli.main([*argv[:argv.index("IG") + 1], "SmoothGrad", *argv[argv.index("IG") + 1:]])


def test_bad_names_are_rejected(tmp_path, capsys):
    assert cli.main(["reproduce", "timeseries", "--datasets", "Middle_Sine", "--out", str(tmp_path)]) == 2
    assert "datasets: unknown dataset 'Middle_Sine'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="methods: unknown method 'LIME'"):
        ts.run(["Middle_Box"], ["tcn"], [0], settings=ts.Settings(), methods=["LIME"], out=tmp_path)


def test_attribution_in_chunks():
    """Deterministic maps do not depend on the chunking; chunk None is one call with the given key."""
    w = jax.random.normal(jax.random.PRNGKey(0), (12, 2))
    model_apply = lambda params, x: jnp.tanh(x.reshape(x.shape[0], -1) @ params)  # noqa: E731

    def attribute(params, batch_stats, x, y, key):
        f = lambda x: jax.nn.softmax(model_apply(params, x), -1)  # noqa: E731
        methods = ts.attribution_methods(f, x, key, ("Grad", "DeepLIFT"))
        return {n: m(x, y) for n, m in methods.items()}

    x = jax.random.uniform(jax.random.PRNGKey(1), (7, 4, 3))
    y = jnp.array([0, 1, 1, 0, 1, 0, 0])
    key = jax.random.PRNGKey(5)
    whole = ts.attribute_in_chunks(attribute, w, {}, x, y, key, None)
    chunked = ts.attribute_in_chunks(attribute, w, {}, x, y, key, 3)
    np.testing.assert_allclose(whole["Grad"], chunked["Grad"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(whole["Grad"], np.asarray(attribute(w, {}, x, y, key)["Grad"]))
    assert chunked["DeepLIFT"].shape == x.shape
    assert not np.allclose(chunked["DeepLIFT"][3:], whole["DeepLIFT"][3:])  # later chunks: fresh baselines


def test_repeated_records_reuse_compiled_programs_and_leave_no_buffers(tmp_path):
    """Memory stays flat over a long run: after the first record, further records compile nothing
    new (the attribution program and the vmapped epochs are cached) and leave no live device arrays."""
    settings = ts.Settings(epochs=1, patience=1)
    counts, sizes = [], []
    for seed in range(3):
        ts.run_group("tcn", [("Middle_Box", 200 + seed)], settings, ["Grad"], tmp_path, progress=False)
        attribute = ts.make_attribute(ts.build_model("tcn", "Middle_Box"), ("Grad",))
        counts.append(len(jax.live_arrays()))
        sizes.append((attribute._cache_size(), ts.make_attribute.cache_info().currsize,
                      many.make_epoch.cache_info().currsize))
    assert counts[1] == counts[2]
    assert sizes[0] == sizes[1] == sizes[2] and sizes[0][0] == 1


def test_mesh_note_only_when_the_mesh_cannot_split_the_batch():
    assert ts.mesh_note(50, 1) is None and ts.mesh_note(48, 8) is None
    note = ts.mesh_note(50, 8)
    assert "batch 50 is kept" in note and "8 devices" in note
