"""Write docs/api.md, the API reference, from the docstrings of sgt's public modules.

    python docs/make_api.py            # rewrite docs/api.md
    python docs/make_api.py --check    # exit 1 if docs/api.md is not what this script writes

Public modules are every module of the `sgt` package whose dotted name has no part starting with
an underscore. A module's public names are its `__all__`; a module without `__all__` contributes
the functions and classes defined in it whose names do not start with an underscore (the page says
so). Each name gets its kind, its call signature (parameter names and simple defaults; annotations
are left out so that the page does not depend on how a Python version prints them) and the first
sentence of its docstring. `tests/test_docs_api.py` checks that docs/api.md is up to date.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import inspect
import pkgutil
import re
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "api.md"
SIMPLE_DEFAULTS = (type(None), bool, int, float, str)
MAX_SUMMARY = 240


def public_modules(package: str = "sgt") -> list[str]:
    """Dotted names of the package and its submodules, private ones (a part starting with _) left out."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def public_names(module: types.ModuleType) -> tuple[list[str], bool]:
    """(names, from __all__): `__all__`, else the module's own public functions and classes."""
    if hasattr(module, "__all__"):
        return list(module.__all__), True
    own = [name for name, value in vars(module).items()
           if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
           and getattr(value, "__module__", None) == module.__name__]
    return sorted(own), False


def summary(obj) -> str:
    """The first sentence of the first paragraph of `obj`'s own docstring ('' without one)."""
    doc = obj.__doc__ if isinstance(obj, types.ModuleType) else inspect.getdoc(obj)
    if not doc or (inspect.isclass(obj) and doc == inspect.getdoc(object)):
        return ""
    paragraph = " ".join(line.strip() for line in inspect.cleandoc(doc).split("\n\n")[0].splitlines())
    match = re.search(r"(?<=\.)\s+(?=[A-Z`(])", paragraph[15:])
    if match:
        paragraph = paragraph[:15 + match.start()]
    if len(paragraph) > MAX_SUMMARY:
        paragraph = paragraph[:MAX_SUMMARY].rsplit(" ", 1)[0] + " …"
    elif paragraph.endswith(":"):
        paragraph = paragraph[:-1] + " …"
    return paragraph


def _default(value) -> str:
    if isinstance(value, SIMPLE_DEFAULTS) and len(repr(value)) <= 30:
        return repr(value)
    if isinstance(value, tuple) and all(isinstance(v, SIMPLE_DEFAULTS) for v in value) and len(repr(value)) <= 30:
        return repr(value)
    return "…"


def signature(obj) -> str:
    """`(a, b=1, *, key=None)`: names and simple defaults only; '' where Python cannot tell."""
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return ""
    parts, star = [], False
    for i, p in enumerate(params):
        if p.kind is p.VAR_POSITIONAL:
            parts.append("*" + p.name)
            star = True
        elif p.kind is p.VAR_KEYWORD:
            parts.append("**" + p.name)
        else:
            if p.kind is p.KEYWORD_ONLY and not star:
                parts.append("*")
                star = True
            parts.append(p.name if p.default is p.empty else f"{p.name}={_default(p.default)}")
        if p.kind is p.POSITIONAL_ONLY and (i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY):
            parts.append("/")
    return "(" + ", ".join(parts) + ")"


def kind(obj) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "enum" if issubclass(obj, enum.Enum) else "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or isinstance(obj, (types.MethodType, staticmethod)):
        return "function"
    if callable(obj):
        return "callable"
    return "constant"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def describe(name: str, obj) -> str:
    k = kind(obj)
    if k == "module":
        title = f"[`{name}`](#{obj.__name__.replace('.', '')})"
        return f"| {title} | module | {_cell(summary(obj))} |"
    if k in ("function", "class", "callable"):
        shown = f"`{name}{signature(obj)}`" if k != "class" or not issubclass(obj, enum.Enum) else f"`{name}`"
        return f"| {_cell(shown)} | {k} | {_cell(summary(obj))} |"
    value = repr(obj)
    text = f"`{value}`" if len(value) <= 60 and " at 0x" not in value else f"a `{type(obj).__name__}`"
    return f"| `{name}` | constant | {_cell(text)} |"


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated by `python docs/make_api.py` from the docstrings of the package; do not edit by hand",
        "(`tests/test_docs_api.py` checks that this page is what the script writes). Each module lists",
        "its `__all__`; a module without one lists the functions and classes defined in it. Signatures",
        "show parameter names and simple defaults (`…`: any other default); the summary is the first",
        "sentence of the docstring, and `help(name)` gives the rest.",
        "",
    ]
    modules = public_modules()
    lines += ["| module | summary |", "|---|---|"]
    for module_name in modules:
        module = importlib.import_module(module_name)
        lines.append(f"| [`{module_name}`](#{module_name.replace('.', '')}) | {_cell(summary(module))} |")
    for module_name in modules:
        module = importlib.import_module(module_name)
        names, from_all = public_names(module)
        lines += ["", f"## `{module_name}`", ""]
        first = summary(module)
        if first:
            lines += [first, ""]
        if not from_all:
            lines += ["*No `__all__`: the functions and classes defined in the module.*", ""]
        if not names:
            lines.append("(no public functions or classes)")
            continue
        lines += ["| name | kind | summary |", "|---|---|---|"]
        for name in names:
            lines.append(describe(name, getattr(module, name)))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with docs/api.md instead of writing it")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE} is out of date: run python docs/make_api.py", file=sys.stderr)
            return 1
        print(f"{PAGE} is up to date")
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
