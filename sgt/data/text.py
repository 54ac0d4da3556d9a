"""Text classification data as tokens, GloVe vectors, a vocabulary and padded id arrays (numpy only).

Loaders (each returns `{split: TextExamples}`; nothing is downloaded, the data directory is only read):

- `load_movies(data_dir)`: ERASER Movie Reviews from `<data_dir>/eraser-movies/movies.tar.gz`, read
  without extracting. Splits train/val/test: 1600/200/199 reviews, labels NEG/POS, with the human
  rationales as token masks (the union of every evidence span of the annotation).
- `load_fever(data_dir)`: `<data_dir>/fever/{validation,test}.jsonl.gz`, 6666 claims each, labels
  REFUTES/SUPPORTS. The claim is the query (kept whole), the gold evidence sentences the document.
- `load_esnli(data_dir)`: `<data_dir>/esnli/{s1,s2,labels}.{dev,test}.gz`, 9842/9824 pairs, labels
  entailment/neutral/contradiction. The premise is the document, the hypothesis the query.

The document is the part that saliency methods rank and that masking erases; the query of a pair task
is kept whole. All tokens are lowercased (GloVe 6B is uncased). FEVER and e-SNLI have no token-level
rationales in these files (`rationale=None`).

`load_glove` reads GloVe text vectors, `build_vocabulary` keeps the examples' words that have a vector
(any other word maps to UNK, id 1, never to PAD, id 0), and `encode` turns examples into right-padded
int32 ids `[N, max_length]` (pair tasks: `query + [SEP] + document`) with the rationale aligned to them.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import importlib.util
import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

PAD, UNK, SEP = "<pad>", "<unk>", "<sep>"
PAD_ID, UNK_ID, SEP_ID = 0, 1, 2
SPECIALS = (PAD, UNK, SEP)
LABELS = {"movies": ("NEG", "POS"), "fever": ("REFUTES", "SUPPORTS"),
          "esnli": ("entailment", "neutral", "contradiction")}

MOVIES_ARCHIVE = Path("eraser-movies") / "movies.tar.gz"
MOVIES_SPLITS = ("train", "val", "test")
MOVIES_SOURCES = ("files", "tfds")
TFDS_MOVIES = "movie_rationales"  # TFDS builder; its splits train / validation / test are ours train / val / test
TFDS_MOVIES_SPLITS = {"train": "train", "val": "validation", "test": "test"}
FEVER_DIR, FEVER_SPLITS = Path("fever"), ("validation", "test")
ESNLI_DIR, ESNLI_SPLITS = Path("esnli"), ("dev", "test")
GLOVE_DIR, GLOVE_DEFAULT = Path("glove"), "glove.6B.50d.subset.txt.gz"
PTB_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


@dataclasses.dataclass(frozen=True, eq=False)
class TextExamples:
    """One split of a text classification task, as tokens.

    `ids`: annotation ids (Movies) or 1-based line numbers (FEVER, e-SNLI) as strings. `document`: per
    example the tokens that are ranked and erased (lowercased). `labels`: int64 [N], an index into
    `LABELS[task]`. `query`: pair tasks only, the side kept whole (lowercased); None for single texts.
    `rationale`: per example bool [len(document[i])], True on human evidence tokens; None if unavailable.
    """

    ids: tuple[str, ...]
    document: tuple[tuple[str, ...], ...]
    labels: np.ndarray
    query: tuple[tuple[str, ...], ...] | None = None
    rationale: tuple[np.ndarray, ...] | None = None

    def __post_init__(self):
        n = len(self.ids)
        labels = np.asarray(self.labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels: expected integers of shape ({n},) (one per id), got {labels.dtype} {labels.shape}")
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))
        if len(self.document) != n:
            raise ValueError(f"document: expected {n} token sequences (one per id), got {len(self.document)}")
        if self.query is not None and len(self.query) != n:
            raise ValueError(f"query: expected {n} token sequences (one per id) or None, got {len(self.query)}")
        if self.rationale is not None:
            if len(self.rationale) != n:
                raise ValueError(f"rationale: expected {n} masks (one per id) or None, got {len(self.rationale)}")
            for i, (mask, doc) in enumerate(zip(self.rationale, self.document)):
                if mask.dtype != np.bool_ or mask.shape != (len(doc),):
                    raise ValueError(f"rationale[{i}]: expected bool [{len(doc)}] (one per document token), "
                                     f"got {mask.dtype} {mask.shape}")

    def __len__(self) -> int:
        return len(self.ids)


# --- tokenization ------------------------------------------------------------------------------------

_CLITIC_SPLIT = re.compile(r"(\w)(n't|'(?:s|re|ve|ll|d|m))\b")
_TITLES = "mr|mrs|ms|dr|jr|sr|st|vs|inc|bros|ltd|corp|sgt|gen|lt|col|capt|prof|mt|ft"
_TOKEN = re.compile(rf"""
      n't\b | '(?:s|re|ve|ll|d|m)\b            # clitics, already split from their word
    | (?:[^\W\d_]\.){{2,}}                      # abbreviations with inner periods: u.s., a.m., i.e.
    | \b(?:{_TITLES})\.                        # titles and a few common abbreviations: mr., jr., st.
    | \b[^\W\d_]\.(?=\s)                       # an initial inside the text: j. k. rowling
    | \d+(?:[.,:]\d+)+                         # numbers with separators: 1,000  3.5  10:30
    | \w+(?:[-']\w+)*                          # words, keeping inner hyphens and apostrophes: co-op, o'neill
    | \.\.\. | -- | [^\w\s]                    # an ellipsis, a dash pair, any other single mark
""", re.VERBOSE)


def tokenize(text: str) -> tuple[str, ...]:
    """Lowercased tokens of raw text, close to Penn Treebank tokenization: punctuation is split off,
    clitics become their own tokens ("don't" -> "do", "n't"; "can't" -> "ca", "n't"; "mary's" ->
    "mary", "'s"; also 're 've 'll 'd 'm), hyphenated words, numbers such as 1,000 or 3.5 and
    abbreviations such as u.s. or mr. stay whole. Curly apostrophes count as straight ones."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"\bcannot\b", "can not", text)
    return tuple(_TOKEN.findall(_CLITIC_SPLIT.sub(r"\1 \2", text)))


def _ptb_tokens(sentence: str) -> list[str]:
    """A sentence already in PTB tokens: split on spaces, brackets back from -LRB- etc., lowercased."""
    return [PTB_BRACKETS.get(t, t).lower() for t in sentence.split()]


# --- files ---------------------------------------------------------------------------------------------

def _open_text(path: Path) -> io.TextIOBase:
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _find(folder: Path, name: str, what: str, data_dir: Path) -> Path:
    """`folder/name` (gzipped) or the same without `.gz`; else an error saying where to put it."""
    gz = folder / name
    for candidate in (gz, gz.with_suffix("")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{what} file missing: {gz} (or uncompressed, {gz.with_suffix('').name}). Put it at "
        f"<data_dir>/{gz.relative_to(data_dir).as_posix()} and point --data-dir or SGT_DATA_DIR at the "
        f"data directory (now {data_dir}).")


def _label_index(task: str, label: str, where: str) -> int:
    try:
        return LABELS[task].index(label)
    except ValueError:
        raise ValueError(f"{where}: label {label!r} is not one of {LABELS[task]}") from None


# --- ERASER Movie Reviews --------------------------------------------------------------------------------

def load_movies(data_dir: str | os.PathLike, source: str = "files") -> dict[str, TextExamples]:
    """ERASER Movie Reviews: {"train", "val", "test"} with 1600 / 200 / 199 reviews, labels NEG / POS.

    source="files" (default) reads `<data_dir>/eraser-movies/movies.tar.gz` without extracting it:
    `movies/{split}.jsonl` holds the annotations, `movies/docs/<docid>` the review, one sentence per
    line and tokens separated by spaces. The document is all sentences' tokens in order. The rationale
    is the union of every evidence span `[start_token, end_token)` of the annotation; each span's
    `text` is checked against the tokens it covers. The docid is the evidences' `docid`, else the
    record's `docids`, else the annotation id (one training review, posR_161.txt, has no evidence).

    source="tfds" reads TensorFlow Datasets' `movie_rationales` already prepared under `data_dir` (a
    TFDS data directory; nothing is downloaded). TFDS keeps the evidence texts but not their offsets,
    so every occurrence of each evidence's tokens in the review is marked, and ids are the record
    positions in TFDS's order (annotation ids are not kept).
    """
    if source not in MOVIES_SOURCES:
        raise ValueError(f"source: expected one of {MOVIES_SOURCES}, got {source!r}")
    if source == "tfds":
        return _movies_tfds(Path(data_dir))
    path = Path(data_dir) / MOVIES_ARCHIVE
    if not path.is_file():
        raise FileNotFoundError(
            f"ERASER Movie Reviews archive missing: {path}. Put the ERASER movies.tar.gz (from "
            "eraserbenchmark.com) at <data_dir>/eraser-movies/movies.tar.gz, unextracted, and point "
            f"--data-dir or SGT_DATA_DIR at the data directory (now {data_dir}); or use source='tfds'.")
    annotations, docs = {}, {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if not member.isfile() or not name.startswith("movies/"):
                continue
            rest = name[len("movies/"):]
            if rest.startswith("docs/"):
                docs[rest[len("docs/"):]] = tar.extractfile(member).read().decode("utf-8")
            elif rest in {f"{s}.jsonl" for s in MOVIES_SPLITS}:
                annotations[rest[:-len(".jsonl")]] = tar.extractfile(member).read().decode("utf-8")
    missing = [f"movies/{s}.jsonl" for s in MOVIES_SPLITS if s not in annotations]
    if missing:
        raise ValueError(f"{path}: not the ERASER movies archive, it lacks {', '.join(missing)}")
    return {split: _movies_split(annotations[split], docs, f"{path}:movies/{split}.jsonl")
            for split in MOVIES_SPLITS}


def _movies_split(jsonl: str, docs: dict[str, str], where: str) -> TextExamples:
    ids, documents, labels, rationales = [], [], [], []
    for line_no, line in enumerate(jsonl.splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        spans = [span for group in record["evidences"] for span in group]
        docids = {span["docid"] for span in spans} or set(record.get("docids") or [record["annotation_id"]])
        if len(docids) != 1:
            raise ValueError(f"{where} line {line_no}: evidence from several documents {sorted(docids)}")
        docid = docids.pop()
        if docid not in docs:
            raise ValueError(f"{where} line {line_no}: document movies/docs/{docid} is not in the archive")
        raw = docs[docid].split()
        mask = np.zeros(len(raw), np.bool_)
        for span in spans:
            start, end = span["start_token"], span["end_token"]
            if not 0 <= start <= end <= len(raw) or " ".join(raw[start:end]) != " ".join(span["text"].split()):
                raise ValueError(f"{where} line {line_no}: evidence tokens [{start}, {end}) of {docid} read "
                                 f"{' '.join(raw[start:end])!r}, but its text is {span['text']!r}")
            mask[start:end] = True
        ids.append(record["annotation_id"])
        documents.append(tuple(t.lower() for t in raw))
        labels.append(_label_index("movies", record["classification"], f"{where} line {line_no}"))
        rationales.append(mask)
    return TextExamples(tuple(ids), tuple(documents), np.asarray(labels, np.int64), rationale=tuple(rationales))


def _movies_tfds(data_dir: Path) -> dict[str, TextExamples]:
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise ImportError("load_movies(source='tfds') needs TensorFlow Datasets: pip install "
                          "'tensorflow-datasets>=4.9'; or use the default source='files'") from err
    try:  # registers the builder: `import tensorflow_datasets` alone skips it when TensorFlow is absent
        import tensorflow_datasets.text.movie_rationales
    except ImportError as err:
        raise ImportError(f"load_movies(source='tfds'): this TensorFlow Datasets has no {TFDS_MOVIES!r} builder "
                          "(tensorflow_datasets.text.movie_rationales); use the default source='files'") from err
    builder = tfds.builder(TFDS_MOVIES, data_dir=os.fspath(data_dir))
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"TFDS data set {TFDS_MOVIES!r} is not prepared under {data_dir} (looked in {builder.data_dir}); "
            f"prepare it there on a machine with network access (`tfds build {TFDS_MOVIES} --data_dir "
            f"{data_dir}`, which downloads the ERASER archive), or put movies.tar.gz at "
            "<data_dir>/eraser-movies/movies.tar.gz and use the default source='files'")
    random_access = builder.info.available_file_formats() & tfds.core.file_adapters.FileFormat.with_random_access()
    if not random_access and importlib.util.find_spec("tensorflow") is None:
        raise RuntimeError(f"TFDS data set {TFDS_MOVIES!r} under {data_dir} is stored as tfrecord, which "
                           "needs TensorFlow to read; install tensorflow, prepare it with --file_format "
                           "array_record, or use source='files'")
    out = {}
    for split, tfds_split in TFDS_MOVIES_SPLITS.items():
        if random_access:
            source = tfds.data_source(TFDS_MOVIES, split=tfds_split, data_dir=os.fspath(data_dir), download=False)
            records = source.__getitems__(range(len(source)))
        else:
            records = tfds.as_numpy(tfds.load(TFDS_MOVIES, split=tfds_split, data_dir=os.fspath(data_dir),
                                              download=False))
        out[split] = movies_from_records(records)
    return out


def movies_from_records(records: Iterable[dict]) -> TextExamples:
    """TFDS `movie_rationales` records ({"review", "label", "evidences"}, text as bytes or str) as
    examples: the review split on whitespace and lowercased, every occurrence of each evidence text
    marked as rationale, ids the record positions."""
    ids, documents, labels, rationales = [], [], [], []
    for i, record in enumerate(records):
        raw = [t.lower() for t in _text(record["review"]).split()]
        mask = np.zeros(len(raw), np.bool_)
        for evidence in record["evidences"]:
            _mark_occurrences(mask, raw, _text(evidence).lower().split())
        ids.append(str(i))
        documents.append(tuple(raw))
        labels.append(int(record["label"]))
        rationales.append(mask)
    return TextExamples(tuple(ids), tuple(documents), np.asarray(labels, np.int64), rationale=tuple(rationales))


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _mark_occurrences(mask: np.ndarray, tokens: Sequence[str], needle: Sequence[str]):
    """Set mask over every place where `needle` occurs as a contiguous run of `tokens`."""
    if not needle:
        return
    width = len(needle)
    for start in range(len(tokens) - width + 1):
        if tokens[start] == needle[0] and list(tokens[start:start + width]) == list(needle):
            mask[start:start + width] = True


# --- FEVER and e-SNLI ------------------------------------------------------------------------------------

def load_fever(data_dir: str | os.PathLike) -> dict[str, TextExamples]:
    """FEVER claims with their gold evidence: {"validation", "test"}, 6666 each (3333 per class), labels
    REFUTES / SUPPORTS, from `<data_dir>/fever/{split}.jsonl.gz` (or uncompressed .jsonl).

    query = the claim, tokenized with `tokenize` (kept whole); document = every evidence sentence's
    tokens, in order (the sentences are PTB-tokenized: split on spaces, -LRB- -RRB- -LSB- -RSB- -LCB-
    -RCB- back to brackets, lowercased). Ids are 1-based line numbers. No rationale.
    """
    data_dir = Path(data_dir)
    out = {}
    for split in FEVER_SPLITS:
        path = _find(data_dir / FEVER_DIR, f"{split}.jsonl.gz", "FEVER", data_dir)
        ids, documents, queries, labels = [], [], [], []
        with _open_text(path) as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                ids.append(str(line_no))
                queries.append(tokenize(record["claim"]))
                documents.append(tuple(t for sentence in record["evidence"] for t in _ptb_tokens(sentence)))
                labels.append(_label_index("fever", record["label"], f"{path} line {line_no}"))
        out[split] = TextExamples(tuple(ids), tuple(documents), np.asarray(labels, np.int64), query=tuple(queries))
    return out


def load_esnli(data_dir: str | os.PathLike) -> dict[str, TextExamples]:
    """e-SNLI premise/hypothesis pairs: {"dev", "test"}, 9842 / 9824 pairs, labels entailment /
    neutral / contradiction, from `<data_dir>/esnli/{s1,s2,labels}.{split}.gz` (or uncompressed).

    document = the premise (s1; ranked and erased), query = the hypothesis (s2; kept whole, as FEVER's
    claim is), both split on spaces and lowercased. Ids are 1-based line numbers. No rationale: the
    word highlights of e-SNLI are not in these files.
    """
    data_dir = Path(data_dir)
    out = {}
    for split in ESNLI_SPLITS:
        columns = {}
        for column in ("s1", "s2", "labels"):
            path = _find(data_dir / ESNLI_DIR, f"{column}.{split}.gz", "e-SNLI", data_dir)
            with _open_text(path) as fh:
                columns[column] = fh.read().splitlines()
        sizes = {column: len(lines) for column, lines in columns.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"e-SNLI {split}: the files s1, s2 and labels must have one line per example, "
                             f"but have {sizes} lines in {data_dir / ESNLI_DIR}")
        labels = [_label_index("esnli", label.strip(), f"e-SNLI labels.{split} line {i}")
                  for i, label in enumerate(columns["labels"], 1)]
        out[split] = TextExamples(
            ids=tuple(str(i) for i in range(1, len(labels) + 1)),
            document=tuple(tuple(s.lower().split()) for s in columns["s1"]),
            labels=np.asarray(labels, np.int64),
            query=tuple(tuple(s.lower().split()) for s in columns["s2"]))
    return out


# --- GloVe -------------------------------------------------------------------------------------------------

def glove_path(path_or_dir: str | os.PathLike) -> Path:
    """The GloVe file to read: a file path as is; for a directory (the data directory or its `glove/`
    folder) `glove.6B.50d.subset.txt.gz` if present, else its single `glove*.txt[.gz]`."""
    path = Path(path_or_dir)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"path_or_dir: GloVe file or directory {path} does not exist")
    folders = [path / GLOVE_DIR, path] if (path / GLOVE_DIR).is_dir() else [path]
    for folder in folders:
        if (folder / GLOVE_DEFAULT).is_file():
            return folder / GLOVE_DEFAULT
        found = sorted(p for p in folder.glob("glove*.txt*") if p.name.endswith((".txt", ".txt.gz")) and p.is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"path_or_dir: several GloVe files in {folder} ({', '.join(p.name for p in found)}); "
                             "pass the path of the one to read")
    raise FileNotFoundError(
        f"GloVe vectors missing: no {GLOVE_DEFAULT} or other glove*.txt / glove*.txt.gz in "
        f"{' or '.join(map(str, folders))}. Put them at <data_dir>/glove/{GLOVE_DEFAULT} (any "
        "glove.*.txt or glove.*.txt.gz there will do), or pass the file's path.")


def load_glove(path_or_dir: str | os.PathLike, words: set[str] | None = None) -> tuple[list[str], np.ndarray]:
    """GloVe text vectors: (words, float32 [n, dim]) in file order. Each line is a word then its numbers,
    separated by single spaces; `.gz` files are decompressed on the fly. With `words`, only rows whose
    word is in `words` are kept (the numbers of other rows are not parsed). A word listed twice keeps
    its first row. `path_or_dir`: a `.txt`/`.txt.gz` file, or a directory (see `glove_path`)."""
    path = glove_path(path_or_dir)
    kept, rows, seen, dim = [], [], set(), None
    with _open_text(path) as fh:
        for line in fh:
            word, _, numbers = line.rstrip().partition(" ")
            if dim is None:
                dim = len(numbers.split())
            if not numbers or word in seen or (words is not None and word not in words):
                continue
            seen.add(word)
            kept.append(word)
            rows.append(numbers)
    if dim is None:
        raise ValueError(f"{path}: empty GloVe file")
    if not rows:
        return [], np.zeros((0, dim), np.float32)
    try:
        vectors = np.loadtxt(rows, dtype=np.float32, delimiter=" ", ndmin=2, comments=None)
    except ValueError as err:
        raise ValueError(f"{path}: not GloVe text (a word, then {dim} numbers separated by single spaces, "
                         f"on every line): {err}") from None
    if vectors.shape != (len(kept), dim):
        raise ValueError(f"{path}: expected {dim} numbers after every word, got an array of {vectors.shape}")
    return kept, vectors


# --- vocabulary and encoding -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class Vocabulary:
    """Words and their embedding rows: words[0] = PAD (zeros), [1] = UNK, [2] = SEP, then the words.

    `id(word)` gives UNK's id (1) for any word outside the vocabulary, and never PAD's id: the string
    "<pad>" itself maps to UNK, so text can never produce padding."""

    words: tuple[str, ...]
    embeddings: np.ndarray
    _index: dict = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        if tuple(self.words[:3]) != SPECIALS:
            raise ValueError(f"words: expected to start with {SPECIALS}, got {tuple(self.words[:3])}")
        emb = np.asarray(self.embeddings, np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(self.words):
            raise ValueError(f"embeddings: expected float32 [{len(self.words)}, dim] (a row per word), got {emb.shape}")
        index = {word: i for i, word in enumerate(self.words) if i != PAD_ID}
        if len(index) != len(self.words) - 1:
            raise ValueError("words: a word is listed twice")
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "embeddings", emb)
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]

    def id(self, word: str) -> int:
        return self._index.get(word, UNK_ID)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        index = self._index
        return [index.get(t, UNK_ID) for t in tokens]


def build_vocabulary(examples: Iterable[TextExamples], glove: tuple[list[str], np.ndarray], *,
                     min_count: int = 1) -> Vocabulary:
    """The words of `examples` (document and query tokens) seen at least `min_count` times that have a
    GloVe vector, ordered by descending count, then alphabetically, after PAD, UNK and SEP.

    Rows: PAD zeros; UNK the mean of the included words' GloVe vectors; SEP a fixed vector,
    `np.random.default_rng(0).normal(size=dim)` times the standard deviation of those vectors' values;
    each word its GloVe vector (the first, if `glove` lists it twice). Every other word (no vector, or
    seen fewer than `min_count` times) maps to UNK when encoded. Pass the training split(s) only to
    keep held-out words out of the vocabulary; their words then map to UNK too.
    """
    if isinstance(examples, TextExamples):
        examples = [examples]
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count: expected an integer >= 1, got {min_count!r}")
    glove_words, glove_vectors = glove
    glove_vectors = np.asarray(glove_vectors, np.float32)
    if glove_vectors.ndim != 2 or glove_vectors.shape[0] != len(glove_words):
        raise ValueError(f"glove: expected (words, float32 [len(words), dim]), got {len(glove_words)} words "
                         f"and an array of {glove_vectors.shape}")
    row = {}
    for i, word in enumerate(glove_words):
        row.setdefault(word, i)
    counts = collections.Counter()
    for split in examples:
        for tokens in split.document:
            counts.update(tokens)
        for tokens in split.query or ():
            counts.update(tokens)
    chosen = sorted((w for w, c in counts.items() if c >= min_count and w in row and w not in SPECIALS),
                    key=lambda w: (-counts[w], w))
    if not chosen:
        raise ValueError("examples: no token seen at least min_count times has a GloVe vector (are the "
                         "tokens lowercased like GloVe 6B? is min_count too high?)")
    vectors = glove_vectors[[row[w] for w in chosen]]
    dim = vectors.shape[1]
    sep = np.random.default_rng(0).normal(size=dim) * vectors.std()
    specials = np.stack([np.zeros(dim), vectors.mean(0), sep]).astype(np.float32)
    return Vocabulary(SPECIALS + tuple(chosen), np.concatenate([specials, vectors]))


TRUNCATIONS = ("head", "tail")


def encode(examples: TextExamples, vocab: Vocabulary, max_length: int,
           keep: str = "head") -> tuple[np.ndarray, np.ndarray]:
    """Token ids int32 [N, max_length], right-padded with 0 (PAD), and the rationale bool [N, max_length].

    A document longer than its room keeps its first tokens (`keep="head"`) or its last ones
    (`keep="tail"`; reviews tend to end with their verdict). Single texts: the document's tokens, cut after `max_length`. Pair tasks (`examples.query` set):
    `query + [SEP] + document`, cut after `max_length`, so the document loses its end first; a query
    longer than `max_length - 2` tokens is itself cut to `max_length - 2` so that SEP and at least one
    document token fit (pair tasks need max_length >= 2). Words outside `vocab` get UNK's id, 1. The
    rationale is True on the positions of rationale document tokens, False on query, SEP and padding
    positions and everywhere when `examples.rationale` is None.
    """
    pair = examples.query is not None
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < (2 if pair else 1):
        raise ValueError(f"max_length: expected an integer >= {2 if pair else 1}"
                         f"{' (pair tasks need room for SEP and a document token)' if pair else ''}, got {max_length!r}")
    if keep not in TRUNCATIONS:
        raise ValueError(f"keep: expected one of {TRUNCATIONS}, got {keep!r}")
    n = len(examples)
    ids = np.zeros((n, max_length), np.int32)
    rationale = np.zeros((n, max_length), np.bool_)
    for i, document in enumerate(examples.document):
        start = 0
        if pair:
            query = vocab.ids(examples.query[i][:max_length - 2])
            ids[i, :len(query)] = query
            ids[i, len(query)] = SEP_ID
            start = len(query) + 1
        room = max_length - start
        kept = slice(0, room) if keep == "head" else slice(max(0, len(document) - room), len(document))
        doc = vocab.ids(document[kept])
        ids[i, start:start + len(doc)] = doc
        if examples.rationale is not None:
            rationale[i, start:start + len(doc)] = examples.rationale[i][kept]
    return ids, rationale


def lengths(ids: np.ndarray) -> np.ndarray:
    """Number of non-pad ids per row: int32 [N]."""
    return (np.asarray(ids) != PAD_ID).sum(axis=-1).astype(np.int32)


__all__ = ["TRUNCATIONS", "LABELS", "PAD", "PAD_ID", "SEP", "SEP_ID", "UNK", "UNK_ID", "TextExamples", "Vocabulary",
           "build_vocabulary", "encode", "glove_path", "lengths", "load_esnli", "load_fever", "load_glove",
           "load_movies", "movies_from_records", "tokenize"]
