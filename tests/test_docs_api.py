"""docs/api.md is what docs/make_api.py writes from the package's docstrings, and what it lists exists."""

import difflib
import importlib
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "api.md"


def _make_api():
    spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_api = _make_api()


def test_api_page_is_up_to_date():
    expected = make_api.render()
    committed = PAGE.read_text() if PAGE.exists() else ""
    diff = "".join(list(difflib.unified_diff(committed.splitlines(True), expected.splitlines(True),
                                             "docs/api.md (committed)", "docs/make_api.py (now)"))[:60])
    assert committed == expected, f"docs/api.md is out of date; run `python docs/make_api.py`:\n{diff}"


def test_every_name_in_all_exists():
    stale = []
    for name in make_api.public_modules():
        module = importlib.import_module(name)
        stale += [f"{name}.{entry}" for entry in getattr(module, "__all__", []) if not hasattr(module, entry)]
    assert not stale, f"__all__ lists names the module does not define: {stale}"


def test_every_public_module_has_a_summary():
    missing = [name for name in make_api.public_modules() if not make_api.summary(importlib.import_module(name))]
    assert not missing, f"modules without a docstring: {missing}"


def test_signatures_and_summaries():
    def f(a, b=1, *args, key=None, scale=[1.0], **options):
        """Scale `a`. More text that is not the summary.

        A second paragraph."""

    assert make_api.signature(f) == "(a, b=1, *args, key=None, scale=…, **options)"
    assert make_api.summary(f) == "Scale `a`. More text that is not the summary."
    assert make_api.describe("f", f) == "| `f(a, b=1, *args, key=None, scale=…, **options)` | function | " \
                                        "Scale `a`. More text that is not the summary. |"

    def g(x, /, y, *, z):
        """Return |x| for the reference
        A long first sentence that wraps. Then a second one."""

    assert make_api.signature(g) == "(x, /, y, *, z)"
    assert make_api.summary(g) == "Return |x| for the reference A long first sentence that wraps."
    assert "\\|x\\|" in make_api.describe("g", g)
