"""Every shell command in the ```bash blocks of README.md, docs/*.md and docs/notebooks/README.md runs.

Extraction: each fenced block opened with ```bash; a line ending in `\\` continues on the next;
`#` starts a comment; `export VAR=value` sets VAR for the block's later commands, and `VAR=value`
before a command sets it for that command; `a && b` are two commands. "/path/to/data" stands for
the data directory and becomes $SGT_DATA_DIR.

A block that is not meant to run is preceded (blank lines apart) by

    <!-- not-run: the reason -->

Use it sparingly and give the reason (e.g. a cluster job script). Blocks in other languages
(```text, ```python, plain ```) are not extracted; README's Python examples run in test_readme.py.

How each command runs (`sgt` commands in this process through `sgt.cli.main`, in a fresh working
directory; scripts in a subprocess):

- `sgt reproduce NAME …`: with `--report-only` (nothing is trained) and `--no-progress`, against a
  copy of a committed results folder. When the command names `--out results/<folder>`, that folder
  is the one it wrote: its `.md` and `.csv` reports are deleted from the copy, rebuilt from the
  committed cache, and must equal the committed files byte for byte. Any other `sgt reproduce`
  command reads the folder of `DEFAULT_RESULTS` (or an empty one) and must succeed.
- `sgt train …`: one epoch (`--epochs 1`, `--out` in the working directory) on the embedded sets;
  on real data (MNIST, CIFAR-10) it is parsed only, as one epoch of two models takes minutes.
- `sgt models`: as written.
- `python <script>.py …`: the benchmarks take minutes, so `--help` is appended; the script must
  start and accept the flags written before it.
- Excluded, with the reason in `EXCLUDED`: `pip install …` and `python -m pytest` (README's first
  two commands: CI installs the package and runs the test suite itself).

Anything else fails the test: add a rule here or mark the block.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "docs" / "notebooks" / "README.md"]
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->\s*$")
DATA_PLACEHOLDER = "/path/to/data"
EXCLUDED = {
    ("pip", "install"): "installs the package; CI runs README's install commands itself",
    ("python", "-m", "pytest"): "the test suite itself; CI runs it",
}
# The committed folder that an `sgt reproduce NAME` command without `--out results/...` reads.
DEFAULT_RESULTS = {
    "timeseries": "results/timeseries",
    "vanishing": "results/vanishing",
    "mnist": "results/mnist/seeds012_5epochs",
    "mnist-timeseries": "results/mnist_timeseries",
    "eraser": "results/eraser/movies",
    "shapes": "results/shapes",
    "cifar10": "results/cifar10",
}
# Experiments whose --report-only reads the raw data (to rebuild the vocabulary) even without training.
NEEDS_DATA = {"eraser"}
# Real datasets of `sgt train`: parsed only.
REAL_DATASETS = {"mnist", "cifar10"}
@dataclass
class Command:
    source: str  # file:line
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        prefix = " ".join(f"{k}={v}" for k, v in self.env.items())
        return f"{self.source}: {(prefix + ' ') if prefix else ''}{shlex.join(self.argv)}"


def bash_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """(first line number of the block's body, body, the not-run reason or None) per ```bash block."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            marker = NOT_RUN.match(lines[j].strip()) if j >= 0 else None
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            blocks.append((i + 2, "\n".join(lines[i + 1:end]), marker.group(1) if marker else None))
            i = end
        i += 1
    return blocks


def commands(body: str, path: str, first_line: int) -> list[Command]:
    """The commands of one block, with the environment they run in."""
    found, exported = [], {}
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        number, line = first_line + i, lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        i += 1
        tokens = shlex.split(line, comments=True)
        if not tokens:
            continue
        if tokens[0] == "export":
            exported.update(t.split("=", 1) for t in tokens[1:])
            continue
        parts, current = [], []
        for token in tokens:
            if token == "&&":
                parts.append(current)
                current = []
            else:
                current.append(token)
        parts.append(current)
        for argv in parts:
            env = dict(exported)
            while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
                key, value = argv.pop(0).split("=", 1)
                env[key] = value
            found.append(Command(f"{path}:{number}", argv, env))
    return found


def all_commands() -> tuple[list[Command], list[tuple[str, str]]]:
    """(commands to check, [(file:line, reason)] of the blocks marked not-run)."""
    found, skipped = [], []
    for path in DOCS:
        rel = str(path.relative_to(ROOT))
        for first_line, body, reason in bash_blocks(path.read_text()):
            if reason is not None:
                skipped.append((f"{rel}:{first_line - 1}", reason))
            else:
                found += commands(body, rel, first_line)
    return found, skipped


def unique(found: list[Command]) -> list[Command]:
    """The first of the commands that are written the same way (argv and environment) in several places."""
    seen, out = set(), []
    for cmd in found:
        key = (tuple(cmd.argv), tuple(sorted(cmd.env.items())))
        if key not in seen:
            seen.add(key)
            out.append(cmd)
    return out


ALL_COMMANDS, NOT_RUN_BLOCKS = all_commands()
COMMANDS = unique(ALL_COMMANDS)


def excluded(argv: list[str]) -> str | None:
    for prefix, reason in EXCLUDED.items():
        if tuple(argv[:len(prefix)]) == prefix:
            return reason
    return None


def _data_dir() -> str:
    data_dir = os.environ.get("SGT_DATA_DIR")
    if not data_dir:
        pytest.skip("needs SGT_DATA_DIR (real data)")
    return data_dir


def _resolve(cmd: Command) -> tuple[list[str], dict[str, str]]:
    """argv and environment with the data placeholder replaced."""
    uses_data = DATA_PLACEHOLDER in cmd.argv or DATA_PLACEHOLDER in cmd.env.values()
    data_dir = _data_dir() if uses_data else None
    sub = lambda s: s.replace(DATA_PLACEHOLDER, data_dir) if data_dir else s  # noqa: E731
    return [sub(a) for a in cmd.argv], {k: sub(v) for k, v in cmd.env.items()}


def _set_option(argv: list[str], flag: str, value: str | None) -> list[str]:
    """argv with `flag` (and its one value) removed, then appended (with `value` unless None)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == flag:
            i += 2 if value is not None else 1
            continue
        if argv[i].startswith(flag + "="):
            i += 1
            continue
        out.append(argv[i])
        i += 1
    return out + ([flag, value] if value is not None else [flag])


def _option(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _sgt(argv: list[str], capsys) -> tuple[int, str]:
    from sgt import cli

    try:
        rc = cli.main(argv)
    except SystemExit as exit:  # argparse: a bad flag or value
        rc = exit.code
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


REPORTS = (".md", ".csv")


def _report_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in REPORTS and p.name != "README.md")


def run_reproduce(argv: list[str], tmp_path: Path, capsys) -> None:
    experiment = argv[1]
    out = _option(argv, "--out")
    strict = out is not None and Path(out).parts[:1] == ("results",)
    folder = out if strict else DEFAULT_RESULTS.get(experiment)
    if experiment in NEEDS_DATA:
        _data_dir()
    copy = tmp_path / "out"
    if folder is not None:
        assert (ROOT / folder).is_dir(), f"{folder} does not exist"
        shutil.copytree(ROOT / folder, copy)
    else:
        copy.mkdir()
    committed = _report_files(copy) if strict else []
    for path in committed:
        path.unlink()
    argv = _set_option(argv, "--out", str(copy))
    argv = _set_option(_set_option(argv, "--report-only", None), "--no-progress", None)
    rc, output = _sgt(argv, capsys)
    assert rc == 0, output[-3000:]
    assert output.strip(), "the command printed nothing"
    if strict:
        assert committed, f"{folder} holds no .md/.csv report to compare with"
        for path in committed:
            assert path.exists(), f"{path.name} of {folder} was not rewritten"
            assert path.read_bytes() == (ROOT / folder / path.name).read_bytes(), \
                f"{folder}/{path.name} differs from what --report-only rebuilds from its cache"


def run_train(argv: list[str], tmp_path: Path, capsys) -> None:
    from sgt import cli

    args = cli.build_parser().parse_args(argv[1:])  # the flags exist and their values are valid
    if args.dataset in REAL_DATASETS or args.resume:
        return  # parsed only: one epoch of two models on real data takes minutes
    out = tmp_path / "train"
    argv = _set_option(_set_option(argv, "--epochs", "1"), "--out", str(out))
    rc, output = _sgt(_set_option(argv[1:], "--no-progress", None), capsys)
    assert rc == 0, output[-3000:]
    assert (out / "results.json").exists(), output[-3000:]


@pytest.mark.parametrize("cmd", COMMANDS, ids=[f"{c.source} {shlex.join(c.argv[:3])}" for c in COMMANDS])
def test_documented_command_runs(cmd, tmp_path, monkeypatch, capsys):
    reason = excluded(cmd.argv)
    if reason:
        pytest.skip(f"not run here: {reason}")
    argv, env = _resolve(cmd)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    if argv[0] == "sgt":
        assert len(argv) > 1, "bare `sgt`"
        if argv[1] == "reproduce":
            run_reproduce(argv[1:], tmp_path, capsys)
        elif argv[1] == "train":
            run_train(argv, tmp_path, capsys)
        elif argv[1] == "models":
            rc, output = _sgt(argv[1:], capsys)
            assert rc == 0 and "small_cnn" in output, output[-3000:]
        else:
            pytest.fail(f"no rule for `sgt {argv[1]}`: add one to tests/test_docs_commands.py")
    elif argv[0] == "python" and len(argv) > 1 and argv[1].endswith(".py"):
        script = ROOT / argv[1]
        assert script.is_file(), f"{argv[1]} does not exist"
        run = subprocess.run([sys.executable, str(script), *argv[2:], "--help"], cwd=ROOT, capture_output=True,
                             text=True, timeout=600, env={**os.environ, **env})
        assert run.returncode == 0, run.stderr[-3000:]
        assert "usage" in run.stdout.lower(), run.stdout[-3000:]
    else:
        pytest.fail(f"no rule to run `{shlex.join(argv)}`: add one to tests/test_docs_commands.py, or mark its "
                    "block with <!-- not-run: reason -->")


def test_commands_were_found():
    assert any(c.argv[:2] == ["sgt", "reproduce"] for c in COMMANDS)
    assert any(c.argv[:2] == ["sgt", "train"] for c in COMMANDS)


def test_not_run_blocks_give_a_reason():
    for where, reason in NOT_RUN_BLOCKS:
        assert len(reason) >= 10, f"{where}: a not-run marker needs a reason"


def test_extraction():
    text = "\n".join([
        "```bash", "pip install . && sgt train   # comment", "export A=1", "B=2 sgt reproduce x \\", "  --out results/y",
        "```", "", "<!-- not-run: a cluster job script -->", "", "```bash", "srun python job.py", "```",
        "```python", "print(1)", "```"])
    blocks = bash_blocks(text)
    assert [(line, reason) for line, _, reason in blocks] == [(2, None), (11, "a cluster job script")]
    found = commands(blocks[0][1], "doc.md", blocks[0][0])
    assert [c.argv for c in found] == [["pip", "install", "."], ["sgt", "train"],
                                       ["sgt", "reproduce", "x", "--out", "results/y"]]
    assert found[2].env == {"A": "1", "B": "2"} and found[2].source == "doc.md:4"
    assert excluded(found[0].argv) and not excluded(found[1].argv)
    assert _set_option(["train", "--epochs", "30", "--k", "0.5"], "--epochs", "1") == ["train", "--k", "0.5", "--epochs", "1"]
    assert _option(["x", "--out=results/a"], "--out") == "results/a"
