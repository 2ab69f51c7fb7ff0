"""The benchmark parts that run in virtual time or on small inputs, at their smallest.

These are real runs of `benchmarks/jitter.py`, `amplification.py`, `fleet.py` and
`memory.py` (small, seeded, on a virtual clock where there is waiting), asserting what
the performance report claims from them; nothing here is timed. `instructions.py` needs
valgrind and minutes, so only its calls and its parsing of callgrind's output run here.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """The benchmark modules, imported as their scripts import each other."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield {
            name: importlib.import_module(name)
            for name in ("jitter", "amplification", "fleet", "memory", "instructions", "report")
        }
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_jitter_has_the_posts_shape(bench: dict[str, ModuleType]) -> None:
    jitter = bench["jitter"]
    rows = jitter.sweep((1, 20, 60), seeds=2)
    by = {(r["clients"], r["jitter"]): r for r in rows}
    # One client never contends: one call, whatever the jitter.
    assert all(by[1, j]["calls"] == 1 for j in jitter.JITTERS)
    checks = {c["what"]: c for c in jitter.shape(rows)}
    assert checks["no jitter does the most work"]["pass"], checks
    assert checks["no jitter takes the longest"]["pass"], checks
    assert checks["full jitter does the least work"]["pass"], checks
    # And cell by cell where contention is heavy: no jitter does far more work.
    assert by[60, "none"]["calls"] > 1.5 * by[60, "full"]["calls"]
    assert by[60, "none"]["completion_seconds"] > 3 * by[60, "full"]["completion_seconds"]


def test_jitter_is_deterministic(bench: dict[str, ModuleType]) -> None:
    jitter = bench["jitter"]
    assert jitter.experiment(10, "full", seed=3) == jitter.experiment(10, "full", seed=3)


def test_amplification_of_resilient_defaults_stays_near_one(bench: dict[str, ModuleType]) -> None:
    amplification = bench["amplification"]
    rows = amplification.sweep((0.0, 0.1, 1.0), ("resilient", "resilient, budget=None"))
    by = {(r["library"], r["p"]): r for r in rows}
    assert by["resilient", 1.0]["amplification"] == pytest.approx(1.0, abs=0.05)
    assert by["resilient", 0.0]["amplification"] == 1.0
    # Without its budget the same retrier makes all 4 attempts of every failing call.
    assert by["resilient, budget=None", 1.0]["amplification"] == 4.0
    assert all(t["pass"] for t in amplification.targets(rows))


def test_fleet_budget_recovers_where_plain_retries_do_not(bench: dict[str, ModuleType]) -> None:
    fleet = bench["fleet"]
    plain = fleet.simulate("retry, no jitter, no budget", duration=30.0)
    budget = fleet.simulate("retry + budget", duration=30.0)
    assert plain["goodput_before"] > 0.99
    assert budget["goodput_before"] > 0.99
    assert budget["recovery_seconds"] is not None
    assert budget["goodput_after"] > plain["goodput_after"]
    assert budget["attempts_per_call"] < plain["attempts_per_call"]
    assert len(plain["started_per_second"]) == 30


def test_memory_measures_a_keyed_breaker_and_a_backlog(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    memory = bench["memory"]
    per_key = asyncio.run(memory.breaker_bytes(500))
    assert per_key["circuits_held"] == 500
    assert 0 < per_key["bytes_per_key"] < 64 * 1024
    per_message = asyncio.run(memory.message_bytes(200))
    assert per_message["pending"] == 200
    assert per_message["bytes_per_message"] > 0
    path = tmp_path / "backlog.db"
    memory.fill_backlog(path, 300)
    import anyio

    assert anyio.run(memory.drain_first, path, 100) > 0


def test_report_flattens_targets(bench: dict[str, ModuleType]) -> None:
    report = bench["report"]
    jitter = bench["jitter"]
    parts = {
        "jitter": {"result": {"targets": jitter.shape(jitter.sweep((1, 10), seeds=1))}},
        "outbox": {"result": {"targets": []}},
    }
    rows = report.targets(parts)
    assert [r["part"] for r in rows] == ["jitter"] * 3
    assert all(set(r) >= {"target", "figure", "limit", "pass"} for r in rows)


def test_instructions_layers_all_answer_200(bench: dict[str, ModuleType]) -> None:
    """Every layer the callgrind part counts makes real calls that succeed."""
    instructions = bench["instructions"]
    assert len(instructions._clients()) == len(instructions.LAYERS)
    asyncio.run(instructions._child(3, settle=False))


def test_instructions_reads_callgrinds_totals(bench: dict[str, ModuleType], tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.2"
    dump.write_text("# callgrind format\nevents: Ir\nsummary: 1234\ntotals: 1234\n")
    assert bench["instructions"]._totals(dump) == 1234
    rows = [
        {
            "name": n,
            "what": w,
            "instructions_per_call": 100.0 * (i + 1),
            "ratio_vs_bare": i + 1.0,
            "added": 100.0 * i,
        }
        for i, (n, w) in enumerate(bench["instructions"].LAYERS)
    ]
    page = bench["report"]._instructions_md({"calls": 10, "rows": rows})
    assert "| Transport() [default pipeline] | 600 | 6.000x | +500 |" in page
    assert bench["report"]._instructions_md({"skipped": "no valgrind"}) == "Skipped: no valgrind."
