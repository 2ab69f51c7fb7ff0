# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""Small helpers shared by the benchmark parts that ``overhead.py`` does not already hold.

``overhead.py`` keeps the per-call timing loop (``measure``), the verdict on a ratio
(``judge``), the machine report (``machine_info``, ``_loadavg``, ``_version``); this
module adds what the newer parts (amplification, fleet, jitter, memory, backends,
report) need on top: a spread summary, a verdict on a plain figure, the header every
script prints, a JSON writer and a loader for the scripts of this directory.
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import ModuleType

HERE = Path(__file__).resolve().parent


def benchmark_module(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (this directory goes first on ``sys.path``)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(name)


def spread(values: Iterable[float]) -> dict[str, float]:
    """Median, min and max of *values*."""
    data = list(values)
    return {"median": statistics.median(data), "min": min(data), "max": max(data)}


def check(what: str, passed: bool, detail: str) -> dict[str, Any]:
    """A target that is a shape (an ordering, a property), not a number against a limit."""
    return {"what": what, "pass": bool(passed), "detail": detail}


def print_header(title: str, info: dict[str, Any], *method: str) -> None:
    """The machine, the versions and the method, as every script prints them first."""
    print(title)
    print(f"python      {info['python']}")
    print(f"platform    {info['platform']} ({info['implementation']})")
    print(f"cpus        {info['cpu_count']} (usable: {info['cpus_usable']})")
    print(f"loadavg     {info['loadavg']}")
    print("versions    " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    for i, line in enumerate(method):
        print(f"{'method' if i == 0 else '':<11} {line}")


def print_checks(results: list[dict[str, Any]]) -> None:
    print("\nTargets:")
    for r in results:
        print(f"  {'PASS' if r['pass'] else 'FAIL'}  {r['what']}: {r['detail']}")


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {path}")
