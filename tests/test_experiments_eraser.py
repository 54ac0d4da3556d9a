"""`sgt reproduce eraser` end to end on a tiny Movies-format archive, aggregation by hand, and the
embedding attributions it ranks tokens by."""

import gzip
import io
import json
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgt import cli, saliency, text
from sgt.experiments import eraser
from sgt.models import TextClassifier

WORDS = ["good", "great", "fine", "bad", "awful", "dull", "the", "film", "plot", "actor", "."]


def write_tiny_movies(root, n_train=32, n_val=8, n_test=8, seed=0):
    """Reviews of 6-12 neutral words with one sentiment word; its span is the rationale."""
    rng = np.random.default_rng(seed)
    (root / "eraser-movies").mkdir(parents=True)
    docs, splits = {}, {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        records = []
        for i in range(n):
            label = i % 2
            docid = f"{'pos' if label else 'neg'}R_{split}{i:03d}.txt"
            tokens = list(rng.choice(WORDS[6:], rng.integers(6, 12)))
            where = int(rng.integers(0, len(tokens)))
            word = str(rng.choice(WORDS[:3] if label else WORDS[3:6]))
            tokens.insert(where, word)
            docs[docid] = " ".join(tokens)
            records.append({"annotation_id": docid, "classification": "POS" if label else "NEG",
                            "evidences": [[{"docid": docid, "start_token": where, "end_token": where + 1,
                                            "start_sentence": 0, "end_sentence": 0, "text": word}]]})
        splits[split] = records
    with tarfile.open(root / "eraser-movies" / "movies.tar.gz", "w:gz") as tar:
        def add(name, content):
            raw = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        for split, records in splits.items():
            add(f"movies/{split}.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        for docid, doc in docs.items():
            add(f"movies/docs/{docid}", doc)
    vectors = np.random.default_rng(1).normal(size=(len(WORDS), 6))
    lines = [w + " " + " ".join(f"{v:.5g}" for v in row) for w, row in zip(WORDS, vectors)]
    (root / "glove").mkdir()
    (root / "glove" / "glove.tiny.txt.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_reproduce_eraser_end_to_end_caches_and_resumes(tmp_path, capsys):
    write_tiny_movies(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["reproduce", "eraser", "--dataset", "movies", "--seeds", "0", "--epochs", "2", "--max-length", "16",
            "--hidden", "4", "--batch-size", "8", "--out", str(out), "--data-dir", str(tmp_path / "data"),
            "--no-progress"]
    assert cli.main(argv) == 0
    table = (out / "table1_movies.md").read_text()
    for method in (*eraser.METHODS, eraser.RANDOM):
        assert f"| {method} |" in table
    assert "0.200 → 0.240" in table  # the paper's Movies Grad comprehensiveness beside ours
    assert (out / "highlights_movies.png").stat().st_size > 0
    records = sorted((out / "cache").rglob("*__*.json"))
    assert len(records) == 2 * (len(eraser.METHODS) + 1)
    grad = json.loads(next(p for p in records if p.name == "sgt_seed0__Grad.json").read_text())
    assert grad["aopc_comprehensiveness"] == pytest.approx(np.mean(grad["comprehensiveness"]))
    assert len(grad["comprehensiveness"]) == 5 and 0.0 <= grad["auprc"] <= 1.0
    # a second call reads every record from the cache and writes the same table
    before = {p: p.stat().st_mtime_ns for p in records}
    capsys.readouterr()
    assert cli.main(argv[:-1] + ["--report-only", "--no-progress"]) == 0
    assert (out / "table1_movies.md").read_text() == table
    assert {p: p.stat().st_mtime_ns for p in records} == before
    # the committed caches hold no weights: the records alone rebuild the table
    for blob in (out / "cache").rglob("*.msgpack"):
        blob.unlink()
    assert cli.main(argv[:-1] + ["--report-only", "--no-progress"]) == 0
    assert (out / "table1_movies.md").read_text() == table


def test_table_rows_aggregate_by_hand():
    records = []
    for seed, (o, s) in enumerate([(0.10, 0.16), (0.20, 0.22)]):
        for regime, value in (("ordinary", o), ("sgt", s)):
            records.append({"method": "Grad", "regime": regime, "seed": seed, "aopc_comprehensiveness": value,
                            "aopc_sufficiency": 1 - value})
    report = {"settings": {"task": "movies"}, "records": records, "models": []}
    row = eraser.table_rows(report, ["Grad"])[0]
    assert row["aopc_comprehensiveness_ordinary"] == pytest.approx(0.15)
    assert row["aopc_comprehensiveness_sgt"] == pytest.approx(0.19)
    assert row["aopc_comprehensiveness_diff"] == pytest.approx(0.04)  # paired: (0.06 + 0.02) / 2
    assert row["aopc_comprehensiveness_diff_se"] == pytest.approx(0.02)  # std(0.06, 0.02) / √2
    assert row["aopc_sufficiency_diff"] == pytest.approx(-0.04)
    assert row["paper_comprehensiveness"] == [0.2, 0.24]


def test_token_scores_are_the_summed_attribution_of_the_predicted_class():
    model = TextClassifier(vocab_size=20, embed_dim=5, hidden=3, pool="max")
    ids = jnp.array([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12]], jnp.int32)
    params = model.init(jax.random.PRNGKey(0), ids)["params"]
    scores, predicted = eraser.make_token_scores(model, "Grad")(params, ids, jax.random.PRNGKey(0))
    logits = model.apply({"params": params}, ids)
    np.testing.assert_array_equal(predicted, jnp.argmax(logits, -1))
    e, f = text.embedding_classifier(model, params, {}, ids)
    grad = saliency.gradient(lambda v: jax.nn.log_softmax(f(v), -1))(e, predicted)
    np.testing.assert_allclose(scores, jnp.abs(grad.sum(-1)), rtol=1e-5, atol=1e-8)
    # IG from the all-zero embedding is complete: its token sums add up to f(e) − f(0)
    ig_scores, _ = eraser.make_token_scores(model, "IG")(params, ids, jax.random.PRNGKey(0))
    ig = saliency.integrated_gradients(lambda v: jax.nn.log_softmax(f(v), -1), baseline=jnp.zeros_like(e),
                                       steps=eraser.METHOD_OPTIONS["IG"]["steps"])(e, predicted)
    np.testing.assert_allclose(ig_scores, jnp.abs(ig.sum(-1)), rtol=1e-4, atol=1e-7)
    gap = jax.nn.log_softmax(f(e), -1) - jax.nn.log_softmax(f(jnp.zeros_like(e)), -1)
    np.testing.assert_allclose(ig.sum((1, 2)), gap[jnp.arange(2), predicted], rtol=2e-2, atol=2e-3)


def test_truncation_defaults_per_task_and_enters_the_cache_tag():
    movies, fever = eraser.Settings(), eraser.Settings(task="fever")
    assert movies.truncation == "tail" and fever.truncation == "head"
    assert "_tail_" in movies.tag() and "_tail_" not in fever.tag()
    assert "_tail_" not in eraser.Settings(keep="head").tag()  # the head runs' caches keep their names
    with pytest.raises(ValueError, match="keep"):
        eraser.Settings(keep="middle")
