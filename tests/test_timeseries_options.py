"""The time-series runner's numerics options (--dtype, --classification-loss) and the ablation driver."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sgt import cli, losses, many, masking, train
from sgt.experiments import report
from sgt.experiments import timeseries as ts
from sgt.saliency import gradient
from tests.models import MLP

ROOT = Path(__file__).resolve().parents[1]
X = np.random.default_rng(0).normal(size=(16, 6, 5)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, size=16).astype(np.int32)

# Prepended to a child process's code: every time-series set shrinks to 120 train and 10 test samples,
# so that a record of the real runner takes seconds.
SHRINK = textwrap.dedent("""
    import dataclasses
    from sgt.experiments import timeseries as ts
    _load = ts.load_dataset
    def _small(name, seed, dtype="float32"):
        d = _load(name, seed, dtype)
        return dataclasses.replace(d, x_train=d.x_train[:120], y_train=d.y_train[:120], x_test=d.x_test[:10],
                                   y_test=d.y_test[:10], truth_test=d.truth_test[:10])
    ts.load_dataset = _small
""")


def _child(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run `code` (after SHRINK) in a fresh Python: JAX's 64-bit mode is process-wide."""
    result = subprocess.run([sys.executable, "-c", SHRINK + textwrap.dedent(code), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


# --------------------------------------------------------------------------------------------
# The loss on softmax outputs


def test_softmax_output_cross_entropy_by_hand():
    # softmax([0, ln 3]) = (1/4, 3/4), so with label 1: log(e^{1/4} + e^{3/4}) − 3/4; with label 0: ... − 1/4
    logits = jnp.array([[0.0, np.log(3.0)], [0.0, np.log(3.0)]])
    labels = jnp.array([1, 0])
    per_sample = [np.log(np.exp(0.25) + np.exp(0.75)) - 0.75, np.log(np.exp(0.25) + np.exp(0.75)) - 0.25]
    np.testing.assert_allclose(losses.softmax_output_cross_entropy(logits, labels), np.mean(per_sample), rtol=1e-6)
    logit_ce = np.mean([-np.log(0.75), -np.log(0.25)])
    np.testing.assert_allclose(losses.cross_entropy(logits, labels), logit_ce, rtol=1e-6)
    assert abs(float(losses.softmax_output_cross_entropy(logits, labels)) - logit_ce) > 0.1
    # saturated two-class outputs: the loss is bounded by log(1 + e^-1) and log(1 + e)
    sure = jnp.array([[0.0, 60.0]])
    np.testing.assert_allclose(losses.softmax_output_cross_entropy(sure, jnp.array([1])), np.log1p(np.exp(-1)),
                               rtol=1e-6)
    np.testing.assert_allclose(losses.softmax_output_cross_entropy(sure, jnp.array([0])), np.log1p(np.e), rtol=1e-6)


def test_softmax_output_cross_entropy_gradients_are_finite():
    logits = jnp.array([[0.3, -1.2, 2.0], [80.0, -80.0, 0.0], [0.0, 0.0, 0.0]], jnp.float32)
    labels = jnp.array([2, 1, 0])
    grad = jax.grad(losses.softmax_output_cross_entropy)(logits, labels)
    assert np.isfinite(np.asarray(grad)).all()
    assert float(jnp.abs(grad[0]).sum()) > 1e-3  # an unsaturated sample gets a gradient
    np.testing.assert_allclose(grad.sum(-1), 0.0, atol=1e-6)  # shifting all logits changes nothing


def test_classification_loss_names():
    assert losses.classification_loss("logits") is losses.cross_entropy
    assert losses.classification_loss("softmax-output") is losses.softmax_output_cross_entropy
    with pytest.raises(ValueError, match="classification_loss: expected one of"):
        losses.classification_loss("probabilities")
    with pytest.raises(ValueError, match="classification_loss"):
        train.train_step(MLP(), optax.sgd(0.1), method="standard", classification_loss="probabilities")


@pytest.mark.parametrize("method", ["standard", "sgt"])
def test_the_step_uses_the_chosen_classification_term(method):
    """The step's loss is CE_softmax-output(f(x), y) (+ λ KL as before); the KL term and masking unchanged."""
    model, tx = MLP(), optax.sgd(0.1)
    config = train.SGTConfig(k=0.4, lam=0.7, fill="mean")
    state = train.create_train_state(model, tx, X, 0)
    f = train.classifier(model, state.params)
    logits = f(X)  # before the steps, which donate the state
    ce = losses.softmax_output_cross_entropy(logits, jnp.asarray(Y))
    expected = ce
    if method == "sgt":
        x_masked = masking.mask_lowest(jnp.asarray(X), gradient(f)(jnp.asarray(X), jnp.asarray(Y)), 0.4, fill="mean")
        expected = ce + 0.7 * losses.kl_divergence(logits, f(x_masked))
    step = train.make_train_step(model, tx, method=method, config=config, classification_loss="softmax-output")
    _, metrics = step(state, X, Y)
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["ce"], ce, rtol=1e-5)
    logits_step = train.make_train_step(model, tx, method=method, config=config)  # the default: CE on logits
    _, plain = logits_step(train.create_train_state(model, tx, X, 0), X, Y)
    np.testing.assert_allclose(plain["ce"], losses.cross_entropy(logits, jnp.asarray(Y)), rtol=1e-5)
    assert abs(float(plain["ce"]) - float(ce)) > 1e-3


def test_fit_many_threads_the_classification_loss():
    x, y = X[None], Y[None]
    def fit(loss):
        return many.fit_many(MLP(), optax.adam(1e-2), method="sgt", config=train.SGTConfig(k=0.25), x_train=x,
                             y_train=y, x_val=x, y_val=y, seeds=[3], epochs=2, batch_size=8, patience=5,
                             stop_accuracy=2.0, classification_loss=loss, progress=False)

    a, b = fit("logits"), fit("softmax-output")
    assert any(not np.allclose(u, v) for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)))


# --------------------------------------------------------------------------------------------
# The runner's options


def test_cache_tag_changes_with_each_option_and_not_by_default():
    base = ts.Settings().tag()
    assert base == "k0.8_lam1.0_eauto_pauto"
    assert (ROOT / "results" / "timeseries" / "cache" / base).is_dir()  # the recorded Table 2 keeps its folder
    assert ts.Settings(dtype="float32", classification_loss="logits", lam=1).tag() == base
    tags = {ts.Settings(dtype="float64").tag(), ts.Settings(classification_loss="softmax-output").tag(),
            ts.Settings(rank_by="signed").tag(), ts.Settings(fill="mean").tag()}
    assert tags == {base + "_float64", base + "_ce-softmax-output", base + "_rank-signed", base + "_fill-mean"}
    both = ts.Settings(dtype="float64", classification_loss="softmax-output", selection="accuracy_then_loss").tag()
    assert both == base + "_sel-accuracy_then_loss_float64_ce-softmax-output"
    parser = cli.build_parser()
    default = ts.settings_from(parser.parse_args(["reproduce", "timeseries"]))
    assert default == ts.Settings() and default.tag() == base
    flagged = ts.settings_from(parser.parse_args(["reproduce", "timeseries", "--classification-loss",
                                                  "softmax-output", "--fill", "mean"]))
    assert flagged.tag() == base + "_fill-mean_ce-softmax-output"


@pytest.mark.parametrize("argv, message", [
    (["--dtype", "float16"], "--dtype: invalid choice: 'float16'"),
    (["--classification-loss", "probs"], "--classification-loss: invalid choice: 'probs'"),
    (["--rank-by", "abs"], "--rank-by: invalid choice: 'abs'"),
])
def test_bad_option_values_are_rejected(argv, message, capsys):
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "timeseries", *argv])
    assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match="dtype: expected one of"):
        ts.Settings(dtype="float16")


def test_float64_without_64_bit_mode_is_refused(tmp_path):
    if jax.config.jax_enable_x64:
        pytest.skip("this process already runs in 64-bit mode")
    with pytest.raises(ValueError, match="dtype: float64 needs JAX's 64-bit mode"):
        ts.run_group("lstm", [("Middle_Box", 0)], ts.Settings(dtype="float64", epochs=1), ["Grad"], tmp_path)


def test_float64_data_are_the_float32_data_before_rounding():
    d32, d64 = ts.load_dataset("RareTime_Box", 3), ts.load_dataset("RareTime_Box", 3, "float64")
    assert d32.x_train.dtype == np.float32 and d64.x_train.dtype == np.float64
    np.testing.assert_array_equal(d64.x_test.astype(np.float32), d32.x_test)
    np.testing.assert_array_equal(d64.y_train, d32.y_train)
    assert not np.array_equal(d64.x_train, d32.x_train.astype(np.float64))


def test_report_only_rebuilds_the_table_of_a_variant_from_its_cache(tmp_path, capsys):
    settings = ts.Settings(classification_loss="softmax-output")
    scores = {"Grad": {"aup": 0.5, "aur": 0.4}, "Random": {"aup": 0.2, "aur": 0.3}}
    record = {"dataset": "Middle_Box", "arch": "tcn", "seed": 0, "settings": {},
              "regimes": {g: {"test_accuracy": 1.0, "scores": scores} for g in ("Trad", "Sal")}}
    path = ts.cache_path(tmp_path, settings, "Middle_Box", "tcn", 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    argv = ["reproduce", "timeseries", "--datasets", "Middle_Box", "--models", "tcn", "--seeds", "0", "--methods",
            "Grad", "--out", str(tmp_path), "--report-only", "--no-progress"]
    assert cli.main([*argv, "--classification-loss", "softmax-output"]) == 0
    assert "1 runs" in capsys.readouterr().out
    assert "| TCN | Grad | +0.300 ± nan | +0.300 ± nan |" in (tmp_path / "table2.md").read_text()


def test_a_float64_run_is_float64_end_to_end(tmp_path):
    """Parameters, optimizer state, data, logits, saliency and the scored maps, through `sgt reproduce
    timeseries --dtype float64` on a shrunken set (one epoch, Grad only)."""
    code = """
        import json, sys
        import jax
        import numpy as np
        from sgt import cli, many, train
        from sgt.metrics import timeseries as tsmetrics
        seen = {}
        def floats(tree):
            return sorted({str(a.dtype) for a in jax.tree.leaves(tree) if np.issubdtype(a.dtype, np.floating)})
        _init, _fit, _attr, _score = train.init_state, many.fit_many, ts.attribute_in_chunks, tsmetrics.aup_aur
        def init(*a, **k):
            state = _init(*a, **k)
            seen["params"], seen["opt_state"] = floats(state.params), floats(state.opt_state)
            return state
        def fit(model, tx, **k):
            result = _fit(model, tx, **k)
            params, stats = result.member(0)
            seen["data"] = str(k["x_train"].dtype)
            seen["selected"] = floats(params)
            seen["logits"] = str(train.forward(model, params, stats, k["x_val"][0], train=False)[0].dtype)
            return result
        def attr(*a, **k):
            maps = _attr(*a, **k)
            seen["saliency"] = sorted({str(m.dtype) for m in maps.values()})
            return maps
        def score(sal, truth):
            aup, aur = _score(sal, truth)
            seen["scored"], seen["aup"] = str(sal.dtype), str(np.asarray(aup).dtype)
            return aup, aur
        train.init_state, many.fit_many, ts.attribute_in_chunks, tsmetrics.aup_aur = init, fit, attr, score
        argv = ["reproduce", "timeseries", "--datasets", "Middle_Box", "--models", "lstm", "--methods", "Grad",
                "--seeds", "0", "--epochs", "1", "--dtype", "float64", "--out", sys.argv[1], "--no-progress"]
        assert cli.main(argv) == 0
        print("SEEN" + json.dumps(seen))
    """
    out = _child(code, str(tmp_path)).stdout
    seen = json.loads(out[out.index("SEEN") + 4:].splitlines()[0])
    assert seen == {"params": ["float64"], "opt_state": ["float64"], "data": "float64", "selected": ["float64"],
                    "logits": "float64", "saliency": ["float64"], "scored": "float64", "aup": "float64"}
    (path,) = (tmp_path / "cache").rglob("*.json")
    assert path.parent.name == ts.Settings(epochs=1).tag() + "_float64"
    assert json.loads(path.read_text())["settings"]["dtype"] == "float64"


# --------------------------------------------------------------------------------------------
# The ablation driver


def _record(arch, grad_trad, grad_sal, acc=1.0):
    """A cached record with Grad's (aup, aur) per regime; the random baseline scores (0.2, 0.3)."""
    regimes = {g: {"test_accuracy": acc, "scores": {"Grad": {"aup": s[0], "aur": s[1]},
                                                    "Random": {"aup": 0.2, "aur": 0.3}}}
               for g, s in (("Trad", grad_trad), ("Sal", grad_sal))}
    return {"dataset": "Middle_Box", "arch": arch, "seed": 100, "regimes": regimes}


def test_sign_agreement_with_the_paper_by_hand(tmp_path):
    # The paper's TCN Grad: Sal − Trad = +0.062 (AUP), +0.046 (AUR); its LSTM Grad: −0.006, +0.036.
    up = report.diff_table([_record("tcn", (0.5, 0.4), (0.6, 0.5))], ["Grad"], 0.9)
    down = report.diff_table([_record("tcn", (0.5, 0.4), (0.4, 0.45))], ["Grad"], 0.9)
    lstm = report.diff_table([_record("lstm", (0.5, 0.4), (0.4, 0.45))], ["Grad"], 0.9)
    assert report.sal_minus_trad(up, "Grad", "aup") == pytest.approx(0.1)
    assert report.sal_minus_trad(up, "Grad", "aup", "paper") == pytest.approx(0.062)
    assert report.sign_agreement(up, ["Grad"]) == (2, 2)
    assert report.sign_agreement(down, ["Grad"]) == (1, 2)  # AUP fell, AUR rose
    assert report.sign_agreement(lstm, ["Grad"]) == (2, 2)  # the paper's LSTM AUP also falls
    gated = report.diff_table([_record("tcn", (0.5, 0.4), (0.6, 0.5), acc=0.5)], ["Grad"], 0.9)
    assert report.sign_agreement(gated, ["Grad"]) == (0, 0)
    csv_path, md_path = report.write_ablation([("up", "k up", "tcn", [_record("tcn", (0.5, 0.4), (0.6, 0.5))]),
                                               ("none", "nothing ran", "tcn", [])], ["Grad"], 0.9, tmp_path)
    text = md_path.read_text()
    assert "| up | k up | TCN | 1 / 1 | +0.300 / +0.400 | +0.100 / +0.200 | 2 / 2 |" in text
    assert "| none | nothing ran | TCN | 0 / 0 | n/a / n/a | n/a / n/a | 0 / 0 |" in text
    assert "| paper, TCN | +0.106 / +0.168 (+0.062) |" in text and "| up | +0.300 / +0.400 (+0.100) |" in text
    assert csv_path.read_text().splitlines()[0].startswith("variant,arch,method,regime")


@pytest.mark.filterwarnings("ignore:No artists with labels")  # Axes.plot is replaced: the legend finds no lines
def test_the_ablation_profile_figure(tmp_path, monkeypatch):
    def record(dataset, trad, sal, acc=1.0):
        rec = _record("lstm", (0.5, 0.4), (0.6, 0.5), acc)
        rec["dataset"] = dataset
        for regime, profile in (("Trad", trad), ("Sal", sal)):
            rec["regimes"][regime]["grad_time_profile"] = profile
        return rec

    drawn = []
    monkeypatch.setattr(report.plt.Axes, "plot", lambda ax, y, *a, **kw: drawn.append((ax, list(y), kw)))
    variants = [("a", {"k": 0.5, "λ": 1.0}, [record("A", [1, 2], [3, 4]), record("B", [5, 6], [7, 8], acc=0.5)]),
                ("b", {"k": 0.8, "λ": 10.0}, [record("A", [1, 2], [9, 9])])]
    path = report.plot_ablation_profiles(variants, 0.9, tmp_path / "profiles.png")
    assert path.stat().st_size > 0
    by_panel = {}
    for ax, y, kw in drawn:  # titles are set after the lines are drawn
        by_panel.setdefault(ax.get_title(), []).append((kw["label"], y, kw.get("linestyle")))
    assert by_panel["A, λ = 1"] == [("ordinary", [1, 2], None), ("k 0.5", [3, 4], "-")]
    assert by_panel["A, λ = 10"] == [("ordinary", [1, 2], None), ("k 0.8", [9, 9], "-")]
    assert by_panel["B, λ = 1"] == [("ordinary", [5, 6], None), ("k 0.5", [7, 8], ":")]  # below the gate: dotted
    assert by_panel["B, λ = 10"] == [("ordinary", [5, 6], None)]


def test_the_ablation_variants():
    names = set(ts.ABLATION)
    assert {"tcn-base", "tcn-all70", "tcn-budget500", "tcn-float64", "tcn-softmax-ce", "tcn-k0.5", "tcn-fill-mean",
            "tcn-k0.5-fill-mean"} <= names
    assert len(ts.ABLATION["tcn-all70"].datasets) == 70 and len(ts.ABLATION["tcn-base"].datasets) == 10
    budget = ts.ABLATION["tcn-budget500"].settings
    assert ts.Settings().budget("tcn") == (60, 12) and budget.budget("tcn") == (500, 200)
    lstm = [v for v in ts.ABLATION.values() if v.arch == "lstm"]
    assert len(lstm) == 2 * 2 * 2 * 3 and len({v.settings.tag() for v in lstm}) == 24
    assert all(v.seed == 100 for v in ts.ABLATION.values())
    for v in ts.ABLATION.values():  # each TCN variant changes one thing against the base
        if v.arch == "tcn" and v.name not in ("tcn-base", "tcn-all70", "tcn-k0.5-fill-mean"):
            changed = {f for f in ts._DEFAULTS if getattr(v.settings, f) != ts._DEFAULTS[f]}
            assert len(changed) == 1 or changed == {"epochs", "patience"}, (v.name, changed)


def test_a_variant_over_several_base_signals_gets_one_row_per_signal():
    all70 = ts.ABLATION["tcn-all70"]
    records = [{"dataset": d, "arch": "tcn"} for d in all70.datasets[:20]]  # any subset of the records
    rows = ts.by_base_signal(all70, records)
    assert [name for name, *_ in rows] == [f"tcn-all70: {g}" for g in ts.tsdata.GENERATORS]
    for (_, changes, arch, recs), g in zip(rows, ts.tsdata.GENERATORS):
        assert arch == "tcn" and changes == f"its {g} sets only"
        assert recs == [r for r in records if r["dataset"].split("_")[-1] == g]
    assert sum(len(recs) for *_, recs in rows) == 20
    assert ts.by_base_signal(ts.ABLATION["tcn-base"], records) == []  # the Gaussian (Box) sets only


def test_the_ablation_runs_each_record_once_in_its_own_process_and_resumes(tmp_path):
    base = ts.Settings(epochs=1, patience=1)
    variants = [ts.Variant("tiny", "lstm", ("Middle_Box",), base, "none"),
                ts.Variant("tiny-again", "lstm", ("Middle_Box",), base, "the same record")]
    commands, lines = [], []

    def launch(command, log):  # the real worker in a real process, on the shrunken set
        commands.append(command)
        assert command[1] == "-c"
        return ts.launch_logged([command[0], "-c", SHRINK + command[2], *command[3:]], log)

    records, failed = ts.run_ablation(variants, out=tmp_path, methods=["Grad"], launch=launch, echo=lines.append)
    assert failed == [] and len(commands) == 1 and len(lines) == 1
    assert lines[0].startswith("[1/1] tiny: lstm Middle_Box seed 100 [k0.8_lam1.0_e1_p1] done in ")
    assert (tmp_path / "logs" / "k0.8_lam1.0_e1_p1" / "Middle_Box__lstm__seed100.log").exists()
    assert records["tiny"] == records["tiny-again"] and len(records["tiny"]) == 1
    assert set(records["tiny"][0]["regimes"]["Sal"]["scores"]) == {"Grad", "Random"}

    def no_launch(command, log):
        raise AssertionError("a cached record was made again")

    again, _ = ts.run_ablation(variants, out=tmp_path, methods=["Grad"], launch=no_launch, echo=lines.append)
    assert again == records and len(lines) == 1

    # another option: another record (its own cache folder); a failed record is reported, not cached
    other = [*variants, ts.Variant("tiny-softmax-ce", "lstm", ("Middle_Box",),
                                   ts.Settings(epochs=1, patience=1, classification_loss="softmax-output"), "CE")]
    failing = []
    records, failed = ts.run_ablation(other, out=tmp_path, methods=["Grad"], echo=lines.append,
                                      launch=lambda command, log: failing.append(command) or 3)
    assert len(failing) == 1 and json.loads(failing[0][3])["settings"]["classification_loss"] == "softmax-output"
    assert failed == ["lstm Middle_Box seed 100 [k0.8_lam1.0_e1_p1_ce-softmax-output]"]
    assert "FAILED (exit 3" in lines[-1] and records["tiny-softmax-ce"] == [] and len(records["tiny"]) == 1


def test_the_ablation_command(tmp_path, capsys):
    assert cli.main(["reproduce", "timeseries-ablation", "--list", "--variants", "tcn-base", "tcn-float64",
                     "--out", str(tmp_path)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == ["tcn-base", "tcn-float64"]
    assert "0/10 cached" in listed[1] and "[k0.8_lam1.0_eauto_pauto_float64]" in listed[1]
    assert cli.main(["reproduce", "timeseries-ablation", "--list", "--variants", "lstm", "tcn-base", "tcn",
                     "--out", str(tmp_path)]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert len(listed) == 24 + 8 and listed[24:26] == ["tcn-base", "tcn-all70"] and len(set(listed)) == 32
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "timeseries-ablation", "--variants", "tcn-everything"])
    assert "--variants: invalid choice: 'tcn-everything'" in capsys.readouterr().err
