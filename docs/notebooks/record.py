"""Run a notebook at full size and record its output as Markdown with PNG figures.

    python docs/notebooks/record.py notebooks/01_quickstart.ipynb [--small] [--reuse SRC=DEST ...]

executes the notebook with nbclient on the "python3" kernel, in a temporary working directory,
with `SMALL = True` switched to `SMALL = False` (unless --small), and writes
`docs/notebooks/<name>.md` (markdown cells as they are, code cells as Python blocks, their text
output as text blocks) and its figures as `docs/notebooks/<name>_files/<cell>_<n>.png`. Output on
stderr (warnings, progress bars) is left out. The run's wall time goes into the Markdown's header.

`--reuse SRC=DEST` copies the folder SRC (e.g. a committed `results/` folder with its cache) to DEST
in the working directory before the run, so that an experiment runner the notebook calls with
`out=DEST` finds the records an earlier run of the same settings made and trains nothing. The
header names every folder reused this way.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent


def execute(path: Path, small: bool, reuse: list[tuple[Path, Path]] = ()) -> tuple[nbformat.NotebookNode, float]:
    nb = nbformat.read(path, as_version=4)
    if not small:
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = re.sub(r"^SMALL = True\b", "SMALL = False", cell.source, flags=re.M)
    with tempfile.TemporaryDirectory(prefix="notebook_") as workdir:
        for source, dest in reuse:
            shutil.copytree(source, Path(workdir) / dest)
        tic = time.perf_counter()
        nbclient.NotebookClient(nb, timeout=None, kernel_name="python3",
                                resources={"metadata": {"path": workdir}}).execute()
        return nb, time.perf_counter() - tic


def to_markdown(nb: nbformat.NotebookNode, stem: str, out: Path) -> str:
    files = out / f"{stem}_files"
    shutil.rmtree(files, ignore_errors=True)
    parts = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        if cell.cell_type != "code":
            continue
        parts.append(f"```python\n{cell.source}\n```")
        text, images = [], 0
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                text.append(output.text)
            elif output.output_type == "error":
                text.append(f"{output.ename}: {output.evalue}\n")
            elif "data" in output:
                data = output["data"]
                if "image/png" in data:
                    files.mkdir(parents=True, exist_ok=True)
                    name = f"cell{i:02d}_{images}.png"
                    (files / name).write_bytes(base64.b64decode(data["image/png"]))
                    images += 1
                    if text:
                        parts.append("```text\n" + "".join(text).rstrip("\n") + "\n```")
                        text = []
                    parts.append(f"![output of cell {i}]({files.name}/{name})")
                elif "text/markdown" in data:
                    parts.append(data["text/markdown"])
                elif "text/plain" in data:
                    text.append(data["text/plain"] + "\n")
        if text:
            parts.append("```text\n" + "".join(text).rstrip("\n") + "\n```")
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--small", action="store_true", help="keep SMALL = True")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--reuse", nargs="+", default=[], metavar="SRC=DEST",
                        help="copy folder SRC to DEST in the working directory first (cached records to reuse)")
    args = parser.parse_args()
    reuse = []
    for pair in args.reuse:
        source, sep, dest = pair.partition("=")
        if not sep or not Path(source).is_dir() or Path(dest).is_absolute():
            parser.error(f"--reuse: expected SRC=DEST with SRC an existing folder and DEST relative, got {pair!r}")
        reuse.append((Path(source), Path(dest)))
    nb, seconds = execute(args.notebook, args.small, reuse)
    stem = args.notebook.stem
    reused = "".join(f"; reused the records of {source} (copied to {dest})" for source, dest in reuse)
    header = (f"<!-- Recorded by docs/notebooks/record.py from notebooks/{args.notebook.name} with "
              f"SMALL = {args.small}{reused}; {seconds / 60:.1f} min on {os.cpu_count()} CPU cores "
              f"({time.strftime('%Y-%m-%d')}). -->\n\n")
    path = args.out / f"{stem}.md"
    path.write_text(header + to_markdown(nb, stem, args.out))
    print(f"{path} ({seconds / 60:.1f} min)")


if __name__ == "__main__":
    main()
