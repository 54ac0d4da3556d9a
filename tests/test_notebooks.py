"""Every notebook in notebooks/ runs top to bottom and follows the conventions of the Colab notebooks.

The notebooks are found by globbing `notebooks/*.ipynb`, so a new notebook is tested as soon as it is
added. A notebook must:

- start with a markdown cell holding a title and an "Open in Colab" badge whose link is
  `https://colab.research.google.com/github/<owner>/<repo>/blob/main/notebooks/<file name>`, with
  `<owner>/<repo>` taken from `[project.urls] Repository` in pyproject.toml (the one place the
  repository URL lives); every other GitHub link in the notebook points into that repository too;
- have as its first code cell the Colab-only install: under `if "google.colab" in sys.modules:` it
  runs `sys.executable -m pip install "<distribution name> @ git+<repository URL>"` (plain Python,
  through `subprocess`), the distribution name being `[project] name`;
- set `SMALL = True` in a code cell (the test runs it so; `SMALL = False` is the full-size run);
- be committed with its outputs stripped (every code cell has `outputs: []` and
  `execution_count: null`);
- show at least one figure: the executed notebook must contain an `image/png` output.

Data requirements: a notebook that reads real data from `$SGT_DATA_DIR` (or needs any other
environment variable) lists the variables in its metadata,

    "metadata": {"sgt": {"requires_env": ["SGT_DATA_DIR"]}, ...}

and its execution test is skipped when one of them is unset. Notebooks without that key must run
with nothing but the package (generated or embedded data).

Each notebook is executed with nbclient on the "python3" kernel in a fresh temporary working
directory (whatever it writes lands there), as committed.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REPOSITORY = PROJECT["urls"]["Repository"].rstrip("/")
DISTRIBUTION = PROJECT["name"]
CELL_TIMEOUT = 1800  # seconds per cell: generous, the machine may be busy
ENV_KEY = "requires_env"

nbformat = pytest.importorskip("nbformat")
ids = [p.name for p in NOTEBOOKS]


def read(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_repository_url_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY), REPOSITORY


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_outputs_are_stripped(path):
    for i, cell in enumerate(read(path).cells):
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], f"{path.name}: code cell {i} has outputs"
            assert cell.get("execution_count") is None, f"{path.name}: code cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_colab_badge_points_to_the_repository(path):
    nb = read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), \
        f"{path.name}: the first cell is a markdown title"
    owner_repo = REPOSITORY.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{path.name}"
    assert f"({badge})" in first.source and "colab-badge.svg" in first.source, \
        f"{path.name}: the title cell has an Open in Colab badge linking to {badge}"
    text = "\n".join(c.source for c in nb.cells)
    for url in re.findall(r"https://colab\.research\.google\.com/github/[^\s)\"']+", text):
        assert url.startswith(f"https://colab.research.google.com/github/{owner_repo}/"), url
    for url in re.findall(r"https://github\.com/[^\s)\"'>]+", text):
        assert url == REPOSITORY or url.startswith(REPOSITORY + "/"), f"{path.name}: {url} is not in {REPOSITORY}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_install_cell_installs_the_repository_in_colab_only(path):
    first = code_cells(read(path))[0]
    assert re.search(r"""if\s+["']google\.colab["']\s+in\s+sys\.modules\s*:""", first), \
        f"{path.name}: the first code cell installs only under `if \"google.colab\" in sys.modules:`"
    assert "sys.executable" in first and "pip" in first and "subprocess" in first, path.name
    assert f"{DISTRIBUTION} @ git+{REPOSITORY}" in first, \
        f"{path.name}: the install cell installs {DISTRIBUTION} @ git+{REPOSITORY}"
    assert not re.search(r"^\s*[%!]", first, re.M), f"{path.name}: the install cell is plain Python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_small_switch_is_on_as_committed(path):
    sources = code_cells(read(path))
    assert any(re.search(r"^SMALL = True\b", s, re.M) for s in sources), f"{path.name}: has `SMALL = True`"
    assert not any(re.search(r"^SMALL = False\b", s, re.M) for s in sources), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_and_shows_a_figure(path, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nb = read(path)
    missing = [v for v in nb.metadata.get("sgt", {}).get(ENV_KEY, []) if not os.environ.get(v)]
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)}")
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:  # the failing cell's traceback, shortened
        pytest.fail(f"{path.name} failed:\n{str(error)[-4000:]}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no figure (image/png) among the outputs"
