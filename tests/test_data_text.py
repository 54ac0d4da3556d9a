"""Text data: tokenizer, GloVe reader, vocabulary and encoding on hand-made inputs; the loaders on tiny
files written here and, when $SGT_DATA_DIR holds them, on the real Movies, FEVER, e-SNLI and GloVe files."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from sgt.data import text
from sgt.data.text import PAD, SEP, UNK, TextExamples

# --- tokenizer --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim, tokens", [
    ("Fox 2000 Pictures released the film Soul Food.",
     "fox 2000 pictures released the film soul food ."),
    ("Richard Dawson's date of birth was November 20, 1932.",
     "richard dawson 's date of birth was november 20 , 1932 ."),
    ("There are not rumors that Augustus' wife, Livia, poisoned him.",
     "there are not rumors that augustus ' wife , livia , poisoned him ."),
    ("Westworld (TV series)'s first season isn't 3.5 hours long.",
     "westworld ( tv series ) 's first season is n't 3.5 hours long ."),
    ("I can't say they'd've won 1,000 U.S. dollars -- Mr. O'Neill won't.",
     "i ca n't say they 'd 've won 1,000 u.s. dollars -- mr. o'neill wo n't ."),
    ("A comedy-drama... \"quoted\"", 'a comedy-drama ... " quoted "'),
])
def test_tokenize(claim, tokens):
    assert text.tokenize(claim) == tuple(tokens.split())


# --- GloVe ---------------------------------------------------------------------------------------------------

GLOVE_LINES = ["the 0.1 0.2 -0.3", ", 1 2 3", "cat -6.3681e-05 0.5 0.25", "dog 1.5 -2 0"]
GLOVE = np.array([[0.1, 0.2, -0.3], [1, 2, 3], [-6.3681e-05, 0.5, 0.25], [1.5, -2, 0]], np.float32)


def write_glove(path: Path, lines=GLOVE_LINES) -> Path:
    raw = ("\n".join(lines) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


@pytest.mark.parametrize("name", ["glove.tiny.txt", "glove.tiny.txt.gz"])
def test_load_glove_file(tmp_path, name):
    path = write_glove(tmp_path / name)
    words, vectors = text.load_glove(path)
    assert words == ["the", ",", "cat", "dog"]
    assert vectors.dtype == np.float32 and np.array_equal(vectors, GLOVE)
    words, vectors = text.load_glove(path, words={"dog", "the", "zebra"})
    assert words == ["the", "dog"] and np.array_equal(vectors, GLOVE[[0, 3]])
    words, vectors = text.load_glove(path, words={"zebra"})
    assert words == [] and vectors.shape == (0, 3)


def test_load_glove_directory(tmp_path):
    write_glove(tmp_path / "glove" / "glove.other.txt")
    assert text.load_glove(tmp_path)[0] == ["the", ",", "cat", "dog"]      # the single glove file in <dir>/glove
    write_glove(tmp_path / "glove" / text.GLOVE_DEFAULT, GLOVE_LINES[:2])
    assert text.load_glove(tmp_path)[0] == ["the", ","]                    # the default name wins
    assert text.load_glove(tmp_path / "glove")[0] == ["the", ","]


def test_load_glove_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"<data_dir>/glove/glove\.6B\.50d\.subset\.txt\.gz"):
        text.load_glove(tmp_path)
    write_glove(tmp_path / "glove.a.txt")
    write_glove(tmp_path / "glove.b.txt")
    with pytest.raises(ValueError, match="several GloVe files"):
        text.load_glove(tmp_path)
    with pytest.raises(ValueError, match="numbers"):
        text.load_glove(write_glove(tmp_path / "bad.txt", ["a 1 2", "b 1"]))


# --- vocabulary and encoding --------------------------------------------------------------------------------


def examples(document, labels, query=None, rationale=None) -> TextExamples:
    return TextExamples(tuple(str(i) for i in range(len(document))), tuple(tuple(d.split()) for d in document),
                        np.asarray(labels, np.int64), None if query is None else tuple(tuple(q.split()) for q in query),
                        None if rationale is None else tuple(np.asarray(r, bool) for r in rationale))


GLOVE_PAIR = (["the", ",", "cat", "dog"], GLOVE)


def test_build_vocabulary_order_and_rows():
    ex = examples(["dog the cat zebra", "cat dog"], [0, 1], query=["the ,", "dog"])
    vocab = text.build_vocabulary([ex], GLOVE_PAIR)
    # counts: dog 3, the 2, cat 2, "," 1, zebra 1 (no vector): count descending, then alphabetical
    assert vocab.words == (PAD, UNK, SEP, "dog", "cat", "the", ",")
    emb = vocab.embeddings
    assert emb.dtype == np.float32 and emb.shape == (7, 3)
    assert np.array_equal(emb[0], np.zeros(3))
    np.testing.assert_allclose(emb[1], GLOVE.mean(0), rtol=1e-6)
    assert np.array_equal(emb[3:], GLOVE[[3, 2, 0, 1]])
    assert np.abs(emb[2]).sum() > 0
    assert np.array_equal(text.build_vocabulary(ex, GLOVE_PAIR).embeddings, emb)  # deterministic, one split ok
    assert [vocab.id(w) for w in ("dog", ",", "zebra", PAD, UNK, SEP)] == [3, 6, 1, 1, 1, 2]
    rare = text.build_vocabulary([ex], GLOVE_PAIR, min_count=2)
    assert rare.words == (PAD, UNK, SEP, "dog", "cat", "the") and rare.id(",") == 1
    np.testing.assert_allclose(rare.embeddings[1], GLOVE[[3, 2, 0]].mean(0), rtol=1e-6)
    with pytest.raises(ValueError, match="min_count"):
        text.build_vocabulary([ex], GLOVE_PAIR, min_count=0)
    with pytest.raises(ValueError, match="GloVe vector"):
        text.build_vocabulary([examples(["zebra"], [0])], GLOVE_PAIR)


def test_encode_single():
    ex = examples(["the cat zebra dog", "dog"], [0, 1], rationale=[[0, 1, 1, 0], [1]])
    vocab = text.build_vocabulary([ex], GLOVE_PAIR)  # dog 3, cat 4, the 5
    ids, rationale = text.encode(ex, vocab, 3)
    assert ids.dtype == np.int32 and rationale.dtype == np.bool_
    assert ids.tolist() == [[5, 4, 1], [3, 0, 0]]          # cut after 3; OOV "zebra" -> 1; pad 0
    assert rationale.tolist() == [[False, True, True], [True, False, False]]
    ids, rationale = text.encode(ex, vocab, 6)
    assert ids.tolist() == [[5, 4, 1, 3, 0, 0], [3, 0, 0, 0, 0, 0]]
    assert rationale.tolist() == [[False, True, True, False, False, False], [True] + [False] * 5]
    assert text.lengths(ids).tolist() == [4, 1] and text.lengths(ids).dtype == np.int32
    with pytest.raises(ValueError, match="max_length"):
        text.encode(ex, vocab, 0)


def test_encode_keeps_the_tail_when_asked():
    ex = examples(["the cat zebra dog", "dog"], [0, 1], rationale=[[0, 1, 1, 0], [1]])
    vocab = text.build_vocabulary([ex], GLOVE_PAIR)  # dog 3, cat 4, the 5
    ids, rationale = text.encode(ex, vocab, 3, keep="tail")
    assert ids.tolist() == [[4, 1, 3], [3, 0, 0]]          # the last 3 tokens: cat zebra dog
    assert rationale.tolist() == [[True, True, False], [True, False, False]]
    pair = examples(["cat dog the"], [0], query=["the"], rationale=[[1, 0, 1]])
    ids, rationale = text.encode(pair, text.build_vocabulary([pair], GLOVE_PAIR), 4, keep="tail")
    assert ids.tolist() == [[3, 2, 5, 3]] and rationale.tolist() == [[False, False, False, True]]  # the SEP dog the
    with pytest.raises(ValueError, match="keep"):
        text.encode(ex, vocab, 3, keep="middle")


def test_encode_pair():
    ex = examples(["cat dog the", "dog"], [0, 1], query=["the zebra", "cat cat cat cat cat"],
                  rationale=[[1, 0, 1], [1]])
    vocab = text.build_vocabulary([ex], GLOVE_PAIR)  # cat 7, dog 2, the 2 -> cat 3, dog 4, the 5
    assert vocab.words[3:] == ("cat", "dog", "the")
    ids, rationale = text.encode(ex, vocab, 7)
    assert ids.tolist() == [[5, 1, 2, 3, 4, 5, 0],           # query, SEP, document, pad
                            [3, 3, 3, 3, 3, 2, 4]]
    assert rationale.tolist() == [[False, False, False, True, False, True, False],
                                  [False] * 6 + [True]]
    ids, rationale = text.encode(ex, vocab, 4)               # the document loses its end; a long query is cut
    assert ids.tolist() == [[5, 1, 2, 3], [3, 3, 2, 4]]      # to max_length - 2 so SEP and one token fit
    assert rationale.tolist() == [[False, False, False, True], [False, False, False, True]]
    ids, _ = text.encode(ex, vocab, 2)
    assert ids.tolist() == [[2, 3], [2, 4]]
    with pytest.raises(ValueError, match="max_length"):
        text.encode(ex, vocab, 1)
    no_rationale = examples(["cat"], [0], query=["dog"])
    assert not text.encode(no_rationale, vocab, 5)[1].any()


def test_text_examples_checks():
    with pytest.raises(ValueError, match="rationale"):
        examples(["a b"], [0], rationale=[[1]])
    with pytest.raises(ValueError, match="labels"):
        examples(["a b"], [0, 1])
    with pytest.raises(ValueError, match="query"):
        examples(["a b", "c"], [0, 1], query=["q"])


# --- loaders on tiny files ---------------------------------------------------------------------------------


def add(tar: tarfile.TarFile, name: str, content: str):
    raw = content.encode()
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    tar.addfile(info, io.BytesIO(raw))


def span(docid, start, end, text_):
    return {"docid": docid, "start_token": start, "end_token": end, "start_sentence": -1, "end_sentence": -1,
            "text": text_}


def write_movies(data_dir: Path, bad_offset=False):
    path = data_dir / "eraser-movies" / "movies.tar.gz"
    path.parent.mkdir(parents=True)
    docs = {"negR_000.txt": "a dull film .\ni was bored .", "posR_001.txt": "A great film .",
            "posR_002.txt": "fine ."}
    records = {
        "train": [{"annotation_id": "negR_000.txt", "classification": "NEG",
                   "evidences": [[span("negR_000.txt", 1, 2, "dull")], [span("negR_000.txt", 6, 7, "bored")]]},
                  {"annotation_id": "posR_002.txt", "classification": "POS", "evidences": []}],
        "val": [{"annotation_id": "posR_001.txt", "classification": "POS",
                 "evidences": [[span("posR_001.txt", 0, 2 if not bad_offset else 3, "A great")]]}],
        "test": [],
    }
    with tarfile.open(path, "w:gz") as tar:
        for split, recs in records.items():
            add(tar, f"movies/{split}.jsonl", "".join(json.dumps(r) + "\n" for r in recs))
        for docid, doc in docs.items():
            add(tar, f"movies/docs/{docid}", doc)


def test_load_movies_tiny(tmp_path):
    write_movies(tmp_path)
    splits = text.load_movies(tmp_path)
    assert set(splits) == {"train", "val", "test"} and len(splits["test"]) == 0
    train, val = splits["train"], splits["val"]
    assert train.ids == ("negR_000.txt", "posR_002.txt") and train.labels.tolist() == [0, 1]
    assert train.document[0] == ("a", "dull", "film", ".", "i", "was", "bored", ".")
    assert train.rationale[0].tolist() == [False, True, False, False, False, False, True, False]
    assert train.document[1] == ("fine", ".") and not train.rationale[1].any()   # no evidence: the annotation's doc
    assert val.document[0] == ("a", "great", "film", ".") and val.rationale[0].tolist() == [True, True, False, False]
    assert train.query is None


def test_load_movies_checks_offsets(tmp_path):
    write_movies(tmp_path, bad_offset=True)
    with pytest.raises(ValueError, match="read 'A great film', but its text is 'A great'"):
        text.load_movies(tmp_path)


def test_movies_from_tfds_records():
    records = [{"review": b"A dull film .\nDull , dull .", "label": 0, "evidences": [b"dull film", b"dull ,"]},
               {"review": "good .", "label": 1, "evidences": []}]
    ex = text.movies_from_records(records)
    assert ex.ids == ("0", "1") and ex.labels.tolist() == [0, 1]
    assert ex.rationale[0].tolist() == [False, True, True, False, True, True, False, False]


def test_load_movies_tfds_source():
    pytest.importorskip("tensorflow_datasets")
    pytest.skip("source='tfds' needs movie_rationales prepared by TFDS, which downloads it: not tested here")


def test_missing_files_name_their_place(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"<data_dir>/eraser-movies/movies\.tar\.gz"):
        text.load_movies(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"<data_dir>/fever/validation\.jsonl\.gz"):
        text.load_fever(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"<data_dir>/esnli/s1\.dev\.gz"):
        text.load_esnli(tmp_path)
    with pytest.raises(ValueError, match="source"):
        text.load_movies(tmp_path, source="web")


def test_load_fever_and_esnli_tiny(tmp_path):
    (tmp_path / "fever").mkdir()
    claims = [{"claim": "Soul Food isn't a film.", "label": "REFUTES",
               "evidence": ["Soul Food -LRB- film -RRB- is a 1997 film .", "It stars `` Vanessa '' ."]},
              {"claim": "X.", "label": "SUPPORTS", "evidence": ["X -LSB- 1 -RSB- ."]}]
    for split in text.FEVER_SPLITS:
        with gzip.open(tmp_path / "fever" / f"{split}.jsonl.gz", "wt") as fh:
            fh.writelines(json.dumps(c) + "\n" for c in claims)
    fever = text.load_fever(tmp_path)["test"]
    assert fever.ids == ("1", "2") and fever.labels.tolist() == [0, 1] and fever.rationale is None
    assert fever.query[0] == ("soul", "food", "is", "n't", "a", "film", ".")
    evidence = "soul food ( film ) is a 1997 film . it stars `` vanessa '' ."
    assert " ".join(fever.document[0]) == evidence
    assert fever.document[1] == ("x", "[", "1", "]", ".")

    (tmp_path / "esnli").mkdir()
    for split in text.ESNLI_SPLITS:
        for column, lines in {"s1": ["Two Women talk . ", "A dog . "], "s2": ["People talk . ", "A cat . "],
                              "labels": ["entailment", "contradiction"]}.items():
            (tmp_path / "esnli" / f"{column}.{split}").write_text("\n".join(lines) + "\n")   # uncompressed works too
    esnli = text.load_esnli(tmp_path)["dev"]
    assert esnli.document == (("two", "women", "talk", "."), ("a", "dog", "."))
    assert esnli.query == (("people", "talk", "."), ("a", "cat", "."))
    assert esnli.labels.tolist() == [0, 2] and esnli.ids == ("1", "2") and esnli.rationale is None


# --- the real files ------------------------------------------------------------------------------------------


def real(relative: str) -> Path:
    """$SGT_DATA_DIR, skipping the test when it is unset or lacks `relative`."""
    root = os.environ.get("SGT_DATA_DIR")
    if not root:
        pytest.skip("SGT_DATA_DIR is not set")
    if not (Path(root) / relative).exists():
        pytest.skip(f"{Path(root) / relative} not found")
    return Path(root)


def test_real_movies():
    root = real("eraser-movies/movies.tar.gz")
    splits = text.load_movies(root)
    counts = {s: np.bincount(ex.labels, minlength=2).tolist() for s, ex in splits.items()}
    assert counts == {"train": [800, 800], "val": [100, 100], "test": [100, 99]}
    checked = 0
    with tarfile.open(root / "eraser-movies" / "movies.tar.gz") as tar:
        for split, ex in splits.items():
            position = {annotation: i for i, annotation in enumerate(ex.ids)}
            for line in tar.extractfile(f"movies/{split}.jsonl").read().decode().splitlines():
                record = json.loads(line)
                i = position[record["annotation_id"]]
                union = np.zeros(len(ex.document[i]), bool)
                for group in record["evidences"]:
                    for sp in group:
                        assert " ".join(ex.document[i][sp["start_token"]:sp["end_token"]]) == sp["text"].lower()
                        union[sp["start_token"]:sp["end_token"]] = True
                        checked += 1
                assert np.array_equal(ex.rationale[i], union)
    assert checked == 17462
    train = splits["train"]
    assert not train.rationale[train.ids.index("posR_161.txt")].any()   # the one review without evidence


def test_real_fever():
    splits = text.load_fever(real("fever/validation.jsonl.gz"))
    for ex in splits.values():
        assert len(ex) == 6666 and np.bincount(ex.labels).tolist() == [3333, 3333]
        assert all(ex.document) and all(ex.query) and ex.rationale is None
        assert not any(t.startswith("-") and t.endswith("-") and t.upper() in text.PTB_BRACKETS
                       for d in ex.document for t in d)


def test_real_esnli():
    splits = text.load_esnli(real("esnli/s1.dev.gz"))
    counts = {s: np.bincount(ex.labels).tolist() for s, ex in splits.items()}
    assert counts == {"dev": [3329, 3235, 3278], "test": [3368, 3219, 3237]}
    assert all(all(ex.document) and all(ex.query) and ex.rationale is None for ex in splits.values())
    assert splits["dev"].document[0][:2] == ("two", "women") and splits["dev"].query[0][:2] == ("the", "sisters")


def test_real_glove():
    root = real("glove/glove.6B.50d.subset.txt.gz")
    start = time.perf_counter()
    words, vectors = text.load_glove(root)      # all rows: about 4 s on a busy 2-core machine
    assert time.perf_counter() - start < 10
    assert len(words) == 107_561 and len(set(words)) == 107_561
    assert vectors.shape == (107_561, 50) and vectors.dtype == np.float32
    assert words[:3] == ["the", ",", "."] and vectors[0, :2].tolist() == pytest.approx([0.418, 0.24968])
    some = {"the", "movie", "n't", "(", "zzzz-not-a-word"}
    picked, rows = text.load_glove(root, words=some)
    assert set(picked) == some - {"zzzz-not-a-word"}
    assert np.array_equal(rows, vectors[[words.index(w) for w in picked]])
