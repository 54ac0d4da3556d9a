"""Helpers shared by the benchmark scripts: machine and version records, the command line, per-model options.

Nothing here times anything; it only describes the run so that a results file says where, when,
with what and how its numbers were measured.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import jax


def cpu_model() -> str:
    """The CPU's model name from `lscpu`, else whatever `platform` knows."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def core_count() -> int:
    """Cores this process may run on (its CPU affinity, which a container or taskset may narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_tag() -> str:
    """`cpu-<n>core` on the CPU backend, else `<backend>-<device kind>` (e.g. `gpu-nvidia-h100-80gb-hbm3`)."""
    backend = jax.default_backend()
    if backend == "cpu":
        return f"cpu-{core_count()}core"
    kind = jax.devices()[0].device_kind.lower().replace(" ", "-")
    return f"{backend}-{kind}"


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except Exception:  # noqa: BLE001 - absent or broken: recorded as None
        return None


def versions(extra: Iterable[str] = ()) -> dict[str, str | None]:
    """Python and package versions; a package that does not import is recorded as None."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for module in ("jax", "jaxlib", "flax", "optax", "numpy", "torch", *extra):
        out[module] = _version(module)
    return out


def machine_info(torch_module=None) -> dict[str, Any]:
    """CPU model, cores, platform, JAX backend and device; torch's thread count when torch is given."""
    dev = jax.devices()[0]
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_model": cpu_model(),
        "cores": core_count(),
        "jax_backend": jax.default_backend(),
        "jax_device_kind": dev.device_kind,
        "jax_device_count": jax.device_count(),
    }
    if torch_module is not None:
        info["torch_num_threads"] = torch_module.get_num_threads()
    return info


def machine_line(m: dict[str, Any]) -> str:
    """One Markdown line describing `machine_info()`."""
    return (f"- Machine: {m['cpu_model']}, {m['cores']} cores; JAX backend `{m['jax_backend']}` "
            f"({m['jax_device_kind']}, {m['jax_device_count']} device(s))"
            + (f"; torch threads {m['torch_num_threads']}" if "torch_num_threads" in m else ""))


def versions_line(v: dict[str, str | None]) -> str:
    return "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)


def other_sgt_jobs() -> list[str]:
    """Command lines of other running `sgt train` processes (they compete for the cores)."""
    try:  # "[s]gt": does not match a shell whose own command line quotes the pattern
        out = subprocess.run(["pgrep", "-af", "[s]gt train"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.splitlines() if line.split(maxsplit=1)[0] != str(os.getpid())]


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def command_line(argv: list[str] | None) -> str:
    """The command as typed: `python <script> <args>` (argv None means this process's own arguments)."""
    return "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])


def header(args, argv: list[str] | None, torch_module=None, extra: Iterable[str] = ()) -> dict[str, Any]:
    """The keys every benchmark report starts with: tag (`--tag`, else the machine's, "-quick" added
    under `--quick`), UTC date, command, interpreter, machine and versions (plus the `extra` modules)."""
    return {"tag": args.tag or default_tag() + ("-quick" if args.quick else ""), "date_utc": utc_now(),
            "command": command_line(argv), "python_executable": sys.executable,
            "machine": machine_info(torch_module), "versions": versions(extra=extra)}


def intro_lines(title: str, report: dict[str, Any]) -> list[str]:
    """A report's Markdown opening: the title with its tag, then date, command, machine, versions."""
    return [f"# {title}: `{report['tag']}`", "", f"- Date (UTC): {report['date_utc']}",
            f"- Command: `{report['command']}`", machine_line(report["machine"]), versions_line(report["versions"])]


def write_report(report: dict[str, Any], stem: Path, markdown_text: str) -> Path:
    """Write `<stem>.json` (the whole report) and `<stem>.md`, creating the folder; print both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    Path(f"{stem}.md").write_text(markdown_text + "\n")
    print(f"wrote {stem}.json and {stem}.md")
    return stem


def contention_line(other_jobs: list[str]) -> list[str]:
    if not other_jobs:
        return []
    return ["- **Contention:** other training jobs were running during the measurement, so absolute "
            "times are inflated and noisier; the ratios were measured in the same conditions: "
            + "; ".join(f"`{j}`" for j in other_jobs)]


def per_model_ints(values: list[str] | None, option: str, known: Iterable[str],
                   minimum: int = 1) -> tuple[int | None, dict[str, int]]:
    """Parse `--option N` or `--option NAME=N ...` (or a mix): (value for every model, per-model values).

    Raises ValueError with a message naming the option on a malformed entry, an unknown model name
    or a value below `minimum`.
    """
    known = set(known)
    every: int | None = None
    per_model: dict[str, int] = {}
    for entry in values or []:
        name, sep, number = entry.rpartition("=")
        try:
            value = int(number)
        except ValueError:
            raise ValueError(f"{option}: expected N or NAME=N, got {entry!r}") from None
        if value < minimum:
            raise ValueError(f"{option}: expected a value >= {minimum}, got {entry!r}")
        if not sep:
            every = value
        elif name not in known:
            raise ValueError(f"{option}: unknown model {name!r} in {entry!r}; expected one of {sorted(known)}")
        else:
            per_model[name] = value
    return every, per_model
