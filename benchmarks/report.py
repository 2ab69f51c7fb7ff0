# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""The performance report: one command runs every benchmark, draws it and writes the page.

``.venv/bin/python benchmarks/report.py [--quick] [--out DIR] [--only PART,...]``

Runs each part of this directory in this process (its ``main`` with ``--json``; its
printed report goes to ``DIR/<part>.log``), then writes:

- ``DIR/results.json``: the machine (Python, platform, CPUs), every library's
  version, the load average at the start and at the end, the wall time of every
  part and of the whole run, every part's own JSON, and one flat list of targets;
- ``DIR/*.png``: amplification against p, the fleet's goodput and load through the
  outage, the jitter experiment's work and time against clients, and per-call
  overhead as ratios to the bare call;
- ``docs/performance.md``, from ``benchmarks/performance_template.md``: the tables
  (ratios, median [min-max] over interleaved rounds), PASS/FAIL per target, and the
  command that reran them. A ``--quick`` run (< 2 minutes; fewer rounds and calls)
  leaves the page alone unless ``--docs`` is given; a full run writes it unless
  ``--no-docs`` is given.

Every part also runs alone (``.venv/bin/python benchmarks/<part>.py --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import string
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import benchmark_module  # noqa: E402 -- after the path is set
from overhead import _loadavg, _version, machine_info  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = HERE.parent
DOCS_PAGE = ROOT / "docs" / "performance.md"
DOCS_PLOTS = ROOT / "docs" / "assets" / "performance"
"""Where the page's plots are copied, so that the docs site shows them."""
TEMPLATE = HERE / "performance_template.md"

# (part, arguments of a full run, arguments of a quick run). A full run gives some parts
# fewer rounds than they take alone, so that the whole stays under 15 minutes on a slow
# day of a 2-core machine (18 minutes with every part's own defaults).
PARTS: tuple[tuple[str, list[str], list[str]], ...] = (
    ("overhead", ["--rounds", "11"], ["--rounds", "5", "--calls", "1000"]),
    ("policies", ["--rounds", "11", "--calls", "3000"], ["--rounds", "5", "--calls", "1000"]),
    ("http_transport", ["--rounds", "21"], ["--rounds", "5", "--calls", "200"]),
    ("instructions", [], ["--quick"]),
    ("outbox", ["--rounds", "5"], ["--quick", "--rounds", "2"]),
    ("amplification", [], ["--quick"]),
    ("fleet", [], ["--quick"]),
    ("jitter", [], ["--quick"]),
    ("memory", [], ["--quick"]),
    ("backends", [], ["--quick"]),
)

ALL_PEERS = (
    "tenacity",
    "stamina",
    "backoff",
    "hyx",
    "pyresilience",
    "aioresilience",
    "pybreaker",
    "purgatory",
    "aiobreaker",
    "circuitbreaker",
    "aiolimiter",
    "anyio",
    "httpx",
    "httpx-retries",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "redis",
    "psycopg",
    "matplotlib",
)


# --- running ----------------------------------------------------------------------------


def run_part(name: str, argv: list[str], out: Path) -> dict[str, Any]:
    """Run one part's ``main`` in this process; its output goes to ``out/<name>.log``."""
    module = benchmark_module(name)
    path = out / f"{name}.json"
    log = out / f"{name}.log"
    started = time.perf_counter()
    error = None
    with log.open("w", encoding="utf-8") as stream, contextlib.redirect_stdout(stream):
        try:
            module.main([*argv, "--json", str(path)])
        except Exception:
            error = traceback.format_exc()
            print(error)
    seconds = time.perf_counter() - started
    doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() and not error else {}
    return {"seconds": seconds, "error": error, "log": str(log), "argv": argv, "result": doc}


# --- targets, flattened -------------------------------------------------------------------


def _ratio_text(r: dict[str, Any]) -> str:
    return f"{r['ratio_median']:.3f}x [{r['ratio_min']:.3f}-{r['ratio_max']:.3f}]"


def targets(parts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every part's targets as rows: part, target, figure, limit, pass."""
    rows: list[dict[str, Any]] = []

    def add(part: str, what: str, figure: str, limit: str, passed: bool, **extra: Any) -> None:
        rows.append(
            {"part": part, "target": what, "figure": figure, "limit": limit, "pass": passed} | extra
        )

    for part in ("overhead", "policies", "http_transport"):
        for r in parts.get(part, {}).get("result", {}).get("targets", []):
            where = r.get("path") or r.get("section") or ""
            add(
                part,
                f"[{where}] {r['what']} / {r['reference']}",
                _ratio_text(r),
                f"<= {r['limit']:g}x",
                r["pass"],
                ratio=r["ratio_median"],
            )
    for r in parts.get("outbox", {}).get("result", {}).get("targets", []):
        add(
            "outbox",
            f"[{r['section']}] {r['what']} / {r['reference']} (throughput share)",
            f"{r['share_median']:.1%} [{r['share_min']:.1%}-{r['share_max']:.1%}]",
            ">= 70%",
            r["pass"],
            ratio=r["ratio_median"],
        )
    for part in ("amplification", "jitter", "memory"):
        for r in parts.get(part, {}).get("result", {}).get("targets", []):
            limit = ""
            if "limit" in r:
                at_most = r.get("at_most", ">=" not in r.get("detail", ""))
                limit = f"{'<=' if at_most else '>='} {r['limit']:g}"
                if "ratio_median" in r:
                    limit += "x"
            add(part, r["what"], r["detail"], limit or "shape", r["pass"])
    return rows


# --- plots --------------------------------------------------------------------------------


def _plt() -> Any:
    import matplotlib as mpl  # noqa: PLC0415 -- only when drawing

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_amplification(doc: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    libraries: list[str] = []
    for r in doc["rows"]:
        if r["library"] not in libraries:
            libraries.append(r["library"])
    for lib in libraries:
        rows = [r for r in doc["rows"] if r["library"] == lib]
        style = {"linewidth": 3} if lib == "resilient" else {"linestyle": "--"}
        ax1.plot([r["p"] for r in rows], [r["amplification"] for r in rows], label=lib, **style)
        ax2.plot([r["p"] for r in rows], [r["success_ratio"] for r in rows], label=lib, **style)
    ax1.set(xlabel="p (each attempt fails)", ylabel="attempts / call", title="Load amplification")
    ax2.set(xlabel="p (each attempt fails)", ylabel="calls that succeeded", title="Success ratio")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_fleet(doc: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    model = doc["model"]
    for r in doc["rows"]:
        share = [
            g / s if s else 0.0
            for g, s in zip(r["good_per_second"], r["started_per_second"], strict=True)
        ]
        ax1.plot(range(len(share)), share, label=r["config"])
        ax2.plot(range(len(share)), r["server_load_per_second"], label=r["config"])
    for ax in (ax1, ax2):
        ax.axvspan(
            model["outage_at"],
            model["outage_at"] + model["outage_seconds"],
            color="grey",
            alpha=0.2,
        )
    ax1.set(ylabel="goodput (ok / started)", title="Fleet through an outage (grey)")
    ax2.set(xlabel="virtual seconds", ylabel="attempts reaching the server / s")
    ax1.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_jitter(doc: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for jitter in ("none", "full", "equal", "decorrelated"):
        rows = [r for r in doc["rows"] if r["jitter"] == jitter]
        n = [r["clients"] for r in rows]
        ax1.plot(n, [r["calls"] for r in rows], marker="o", label=jitter)
        ax2.plot(n, [r["completion_seconds"] for r in rows], marker="o", label=jitter)
    ax1.set(xlabel="clients", ylabel="calls (all clients)", title="Work")
    ax2.set(xlabel="clients", ylabel="virtual seconds", title="Completion time")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _overhead_panels(parts: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    panels = []
    over = parts.get("overhead", {}).get("result", {})
    for path, summary in over.get("paths", {}).items():
        panels.append((f"overhead: {path}", summary))
    pol = parts.get("policies", {}).get("result", {})
    for section, summary in pol.get("sections", {}).items():
        panels.append((f"policies: {section}", summary))
    http = parts.get("http_transport", {}).get("result", {})
    for path, summary in http.get("paths", {}).items():
        panels.append((f"http: {path}", summary))
    return panels


def plot_overhead(parts: dict[str, dict[str, Any]], path: Path) -> None:
    panels = _overhead_panels(parts)
    if not panels:
        return
    plt = _plt()
    cols = 2
    rows = (len(panels) + 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(16, 3.2 * rows), squeeze=False)
    for ax, (title, summary) in zip(axes.flat, panels, strict=False):
        items = sorted(summary.items(), key=lambda kv: kv[1]["ratio_vs_bare_median"])
        names = [k[:48] for k, _ in items]
        med = [v["ratio_vs_bare_median"] for _, v in items]
        lo = [v["ratio_vs_bare_median"] - v["ratio_vs_bare_min"] for _, v in items]
        hi = [v["ratio_vs_bare_max"] - v["ratio_vs_bare_median"] for _, v in items]
        colors = ["tab:blue" if n.startswith("resilient") else "tab:grey" for n in names]
        ax.barh(names, med, xerr=[lo, hi], color=colors)
        ax.set_xscale("log")
        ax.set_title(f"{title} (x bare call, log)", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def draw(parts: dict[str, dict[str, Any]], out: Path) -> list[str]:
    drawn = []
    jobs: list[tuple[str, str, Callable[..., None]]] = [
        ("amplification", "amplification.png", plot_amplification),
        ("fleet", "fleet.png", plot_fleet),
        ("jitter", "jitter.png", plot_jitter),
    ]
    for part, name, fn in jobs:
        doc = parts.get(part, {}).get("result")
        if doc:
            fn(doc, out / name)
            drawn.append(name)
    if _overhead_panels(parts):
        plot_overhead(parts, out / "overhead.png")
        drawn.append("overhead.png")
    return drawn


# --- the page -------------------------------------------------------------------------------


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _spread_x(v: dict[str, Any], key: str = "ratio_vs_bare") -> str:
    return f"{v[f'{key}_median']:.2f}x [{v[f'{key}_min']:.2f}-{v[f'{key}_max']:.2f}]"


def _vs_bare_tables(summaries: dict[str, dict[str, Any]], titles: dict[str, str]) -> str:
    out = []
    for key, summary in summaries.items():
        items = sorted(summary.items(), key=lambda kv: kv[1]["ratio_vs_bare_median"])
        rows = []
        for name, v in items:
            note = f" (raised in {v['calls_raised']:,} calls)" if v.get("calls_raised") else ""
            rows.append((f"{name}{note}", _spread_x(v)))
        title = titles.get(key, key.removesuffix("_httpx").replace("_", " "))
        if key.endswith("_httpx"):
            title += ", around an httpx client"
        out.append(f"**{title}**\n\n" + _table(("contender", "x bare call"), rows))
    return "\n\n".join(out)


def _other_ratio_rows(doc: dict[str, Any]) -> str:
    rows = []
    for r in doc.get("other_ratios", []):
        where = r.get("path") or r.get("section") or ""
        if "share_median" in r and "ratio_median" not in r:
            fig = f"{r['share_median']:.1%} [{r['share_min']:.1%}-{r['share_max']:.1%}]"
        else:
            fig = _ratio_text(r)
        rows.append((where, f"{r['what']} / {r['reference']}", fig))
    return _table(("section", "ratio", "median [min-max]"), rows) if rows else "(none)"


def _targets_table(rows: list[dict[str, Any]]) -> str:
    return _table(
        ("part", "target", "figure: median [min-max]", "limit", "verdict"),
        [
            (r["part"], r["target"], r["figure"], r["limit"], "PASS" if r["pass"] else "**FAIL**")
            for r in rows
        ],
    )


def _amplification_md(doc: dict[str, Any]) -> str:
    ps = doc["p_values"]
    by = {(r["library"], r["p"]): r for r in doc["rows"]}
    libs: list[str] = []
    for r in doc["rows"]:
        if r["library"] not in libs:
            libs.append(r["library"])
    head = ("library", *(f"p={p:g}" for p in ps))
    rows = [
        (
            lib,
            *(f"{by[lib, p]['amplification']:.2f} / {by[lib, p]['success_ratio']:.3f}" for p in ps),
        )
        for lib in libs
    ]
    return _table(head, rows)


def _fleet_md(doc: dict[str, Any]) -> str:
    rows = []
    for r in doc["rows"]:
        rec = "never" if r["recovery_seconds"] is None else f"{r['recovery_seconds']:.0f} s"
        rows.append(
            (
                r["config"],
                f"{r['goodput_before']:.1%}",
                f"{r['goodput_during']:.1%}",
                f"{r['goodput_after']:.1%}",
                rec,
                f"{r['attempts_per_call']:.2f}",
                f"{r['wasted']:,}",
            )
        )
    return _table(
        ("configuration", "before", "during", "after", "recovery", "attempts / call", "wasted"),
        rows,
    )


def _jitter_md(doc: dict[str, Any]) -> str:
    by = {(r["clients"], r["jitter"]): r for r in doc["rows"]}
    jitters = ("none", "full", "equal", "decorrelated")
    rows = []
    for n in doc["model"]["clients"]:
        full = by[n, "full"]
        rows.append(
            (
                n,
                *(
                    f"{by[n, j]['calls'] / full['calls']:.2f}x / "
                    f"{by[n, j]['completion_seconds'] / full['completion_seconds']:.2f}x"
                    for j in jitters
                ),
                f"{full['calls']:,.0f} / {full['completion_seconds']:.2f} s",
            )
        )
    return _table(("clients", *jitters, "full jitter: calls / time"), rows)


def _memory_md(doc: dict[str, Any]) -> str:
    b, m, k = doc["breaker_bytes"], doc["message_bytes"], doc["keyed_cost"]
    backlog = doc["backlog"]
    rows = [
        (
            "idle keyed breaker, CountWindow(100)",
            f"{b['bytes_per_key']:,.0f} B per key ({b['keys']:,} keys)",
        ),
        (
            "pending message, MemoryStore",
            f"{m['bytes_per_message']:,.0f} B per message ({m['messages']:,})",
        ),
    ]
    one = next(v for n, v in k.items() if n.endswith(" 1 keys"))
    for name, v in k.items():
        if name.startswith("keyed"):
            ratios = v["ns_per_call_median"] / one["ns_per_call_median"]
            rows.append(
                (f"{name}, per call", f"{_spread_x(v)} bare; {ratios:.2f}x 1 key (medians)")
            )
    small, big = backlog["small"], backlog["big"]
    rows.append(
        (
            f"relay, {big:,} vs {small:,} pending SQLite messages",
            f"{min(backlog['ratios']):.2f}x-{max(backlog['ratios']):.2f}x per round",
        )
    )
    return _table(("measurement", "figure"), rows)


def _instructions_md(doc: dict[str, Any]) -> str:
    if "skipped" in doc:
        return f"Skipped: {doc['skipped']}."
    rows = [
        (
            r["name"],
            f"{r['instructions_per_call']:,.0f}",
            f"{r['ratio_vs_bare']:.3f}x",
            f"{r['added']:+,.0f}",
            r["what"],
        )
        for r in doc["rows"]
    ]
    table = _table(("layer", "instructions / call", "x bare", "+ instructions", "what"), rows)
    return f"{table}\n\n({doc['calls']:,} calls per layer, counted by callgrind.)"


def _backends_md(doc: dict[str, Any]) -> str:
    parts = []
    red = doc["redis"]
    if "skipped" in red:
        parts.append(f"Redis: skipped ({red['skipped']}).")
    else:
        r = red["shared_vs_memory"]
        parts.append(
            _table(
                ("comparison", "median [min-max]"),
                [
                    (
                        "CircuitBreaker(TimeWindow(30), shared=RedisState) / the same in memory",
                        _ratio_text(r),
                    ),
                    *(
                        (f"{name} / bare call", _spread_x(v))
                        for name, v in red["summary"].items()
                        if name != "bare call"
                    ),
                ],
            )
        )
    pg = doc["postgres"]
    if "skipped" in pg:
        parts.append(f"PostgreSQL: skipped ({pg['skipped']}).")
    else:
        r = pg["relay_vs_loop"]
        parts.append(
            _table(
                ("comparison", "throughput share, median [min-max]"),
                [
                    (
                        (
                            "relay with PostgresStore / hand-written psycopg loop (4 tasks, "
                            "SKIP LOCKED)"
                        ),
                        f"{r['share_median']:.1%} [{r['share_min']:.1%}-{r['share_max']:.1%}]",
                    )
                ],
            )
        )
    return "\n\n".join(parts)


def _section(
    parts: dict[str, dict[str, Any]], name: str, render: Callable[[dict[str, Any]], str]
) -> str:
    part = parts.get(name)
    if part is None:
        return "(not run)"
    if part["error"] or not part["result"]:
        return f"(this part failed: see `{Path(part['log']).name}` in the results directory)"
    return render(part["result"])


def _publish_plots(report: dict[str, Any], out: Path) -> None:
    """Copy the run's plots next to the page, where the docs site picks them up."""
    DOCS_PLOTS.mkdir(parents=True, exist_ok=True)
    for name in report["plots"]:
        shutil.copyfile(out / Path(name).name, DOCS_PLOTS / Path(name).name)


def render_page(report: dict[str, Any], parts: dict[str, dict[str, Any]]) -> str:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    loads = f"{report['loadavg_start']} at the start, {report['loadavg_end']} at the end"
    rows = report["targets"]
    failed = [r for r in rows if not r["pass"]]
    paths = {
        "success": "success path",
        "fail_once": "fail-once path",
        "success_httpx": "success path",
        "fail_once_httpx": "fail-once path",
    }

    def over(doc: dict[str, Any]) -> str:
        return _vs_bare_tables(doc["paths"], paths)

    def pol(doc: dict[str, Any]) -> str:
        return _vs_bare_tables(doc["sections"], {}) + "\n\n" + _other_ratio_rows(doc)

    def http(doc: dict[str, Any]) -> str:
        return _vs_bare_tables(doc["paths"], paths) + "\n\n" + _other_ratio_rows(doc)

    fields = {
        "command": report["command"],
        "date": report["finished_at"][:10],
        "mode": "quick" if report["quick"] else "full",
        "elapsed": f"{report['elapsed_seconds'] / 60:.1f} min",
        "machine": f"{m['platform']}, {m['cpu_count']} CPUs, Python {m['python'].split()[0]}",
        "loadavg": loads,
        "versions": versions,
        "passed": str(len(rows) - len(failed)),
        "total": str(len(rows)),
        "failed": ", ".join(f"{r['part']}: {r['target']}" for r in failed) or "none",
        "targets": _targets_table(rows),
        "overhead": _section(parts, "overhead", over),
        "policies": _section(parts, "policies", pol),
        "http": _section(parts, "http_transport", http),
        "instructions": _section(parts, "instructions", _instructions_md),
        "outbox": _section(parts, "outbox", _other_ratio_rows),
        "amplification": _section(parts, "amplification", _amplification_md),
        "fleet": _section(parts, "fleet", _fleet_md),
        "jitter": _section(parts, "jitter", _jitter_md),
        "memory": _section(parts, "memory", _memory_md),
        "backends": _section(parts, "backends", _backends_md),
        "plots": ", ".join(f"`{name}`" for name in report["plots"]) or "none",
        "figures": "\n\n".join(
            f"![{Path(name).stem}](assets/performance/{Path(name).name})"
            for name in report["plots"]
        )
        or "(no plots in this run)",
        "out": report["out"],
    }
    return string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(fields)


# --- main -----------------------------------------------------------------------------------


def rerender(out: Path, *, write_docs: bool) -> int:
    """Redraw the plots and rewrite the page from an earlier run's ``results.json``."""
    report = json.loads((out / "results.json").read_text(encoding="utf-8"))
    parts = report["parts"]
    report["targets"] = targets(parts)
    report["plots"] = draw(parts, out)
    (out / "results.json").write_text(
        json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
    )
    if write_docs:
        _publish_plots(report, out)
        DOCS_PAGE.write_text(render_page(report, parts), encoding="utf-8")
        print(f"wrote {DOCS_PAGE.relative_to(ROOT)} from {out / 'results.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls (< 2 min)")
    parser.add_argument("--out", default=str(HERE / "results"), help="results directory")
    parser.add_argument("--only", help="comma-separated parts (default: all)")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--docs", action="store_true", help="write docs/performance.md (quick too)")
    docs.add_argument("--no-docs", action="store_true", help="leave docs/performance.md alone")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="run nothing: redraw the plots and rewrite the page from DIR/results.json",
    )
    args = parser.parse_args(argv)
    if args.rerender:
        return rerender(Path(args.out), write_docs=not args.no_docs)
    names = [p[0] for p in PARTS]
    only = args.only.split(",") if args.only else names
    unknown = set(only) - set(names)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}; parts: {', '.join(names)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    command = ".venv/bin/python benchmarks/report.py" + (" --quick" if args.quick else "")
    info = machine_info()
    info["versions"] = {"resilient": info["versions"]["resilient"]} | {
        n: _version(n) for n in ALL_PEERS
    }
    load_start = _loadavg()
    started = time.perf_counter()
    print(f"resilient performance report ({'quick' if args.quick else 'full'} run) -> {out}")
    print(f"machine: {info['platform']}, {info['cpu_count']} CPUs; loadavg {load_start}")
    parts: dict[str, dict[str, Any]] = {}
    for name, full, quick in PARTS:
        if name not in only:
            continue
        print(f"  {name:<15} ...", end="", flush=True)
        parts[name] = run_part(name, quick if args.quick else full, out)
        state = "FAILED (see log)" if parts[name]["error"] else "done"
        print(f" {state} in {parts[name]['seconds']:.0f} s")
    elapsed = time.perf_counter() - started
    rows = targets(parts)
    plots = draw(parts, out)
    report = {
        "benchmark": "report",
        "command": command,
        "quick": args.quick,
        "out": os.path.relpath(out, ROOT) if out.resolve().is_relative_to(ROOT) else str(out),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "machine": info,
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
        "elapsed_seconds": elapsed,
        "part_seconds": {n: p["seconds"] for n, p in parts.items()},
        "targets": rows,
        "plots": plots,
        "parts": parts,
    }
    (out / "results.json").write_text(
        json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
    )
    print(f"\nTargets ({sum(r['pass'] for r in rows)}/{len(rows)} met):")
    for r in rows:
        print(
            f"  {'PASS' if r['pass'] else 'FAIL'}  [{r['part']}] {r['target']}: "
            f"{r['figure']} ({r['limit']})"
        )
    write_docs = (args.docs or not args.quick) and not args.no_docs and only == names
    if write_docs:
        _publish_plots(report, out)
        DOCS_PAGE.write_text(render_page(report, parts), encoding="utf-8")
        print(f"wrote {DOCS_PAGE.relative_to(ROOT)}")
    print(f"wrote {out / 'results.json'} and {', '.join(plots) or 'no plots'}")
    print(f"loadavg {load_start} -> {report['loadavg_end']}; total {elapsed / 60:.1f} min")
    return 1 if any(p["error"] for p in parts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
