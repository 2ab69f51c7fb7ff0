# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""The jitter experiment of AWS's "Exponential Backoff And Jitter", with resilient's backoff.

N clients (1 to 100) each want to write one value to one shared row, all starting
at time 0, with optimistic concurrency control (OCC), as in the post's simulator: an
attempt reads the row's version, then writes with it, and the write succeeds only if
no other write landed in between (the version is unchanged); otherwise the attempt
fails with a conflict. Every network hop (read request, its answer, write request,
its answer) takes |N(10 ms, 2 ms)|. Every client retries through ``resilient.Retry`` with
``Backoff.exponential(BASE, cap=CAP, jitter=j)`` for j in none, full and equal, and
``Backoff.exponential(DECORRELATED_BASE, cap=CAP, jitter="decorrelated")`` (the
post's parameters: base 5 ms, whose ``expo(1)`` is 10 ms, cap 2 s), with no attempt
limit and no budget, until its write succeeds.

Per N and jitter: the total calls (attempts, all clients) and the completion time
(when the last client's write succeeded), both the median over ``--seeds`` seeds.
Everything runs on ``resilient.testing.run``'s virtual clock, so the backoff takes
no real time. The post's result, checked as targets: no jitter does the most work
and takes the longest; full jitter does the least work.

``experiment(clients, jitter, seed=0)`` runs one cell; ``sweep(...)`` runs a grid;
importing this module runs nothing. ``.venv/bin/python benchmarks/jitter.py``
prints the table (``--quick`` for fewer seeds and client counts).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from typing import Any

import resilient as rs
from resilient.testing import run

JITTERS = ("none", "full", "equal", "decorrelated")
CLIENTS = (1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
CLIENTS_QUICK = (1, 5, 20, 50, 100)
HOP_MEAN = 0.010
HOP_SD = 0.002
"""Every network hop takes |N(10 ms, 2 ms)|, as in the post's simulator."""
BASE = 0.010
CAP = 2.0
"""``Backoff.exponential(BASE, cap=CAP)``: the post's first retry waits 10 ms, capped at 2 s."""
DECORRELATED_BASE = 0.005
"""The post's decorrelated jitter grows from its base (5 ms), not from the first wait."""
SHAPE_FROM = 10
"""The shape is checked on the sum over client counts >= this (fewer barely contend)."""


class Conflict(Exception):  # noqa: N818 -- the OCC outcome, not a bug
    """The resource's version changed between the attempt's read and its write."""


class _Resource:
    """One row with one version, across a network whose every hop takes |N(10, 2)| ms."""

    def __init__(self, rng: random.Random) -> None:
        self.version = 0
        self.calls = 0
        self.rng = rng

    def hop(self) -> float:
        return abs(self.rng.normalvariate(HOP_MEAN, HOP_SD))

    async def write(self) -> None:
        """One attempt: read the version, then write with it (4 hops in all)."""
        await asyncio.sleep(self.hop())  # the read request
        seen = self.version
        await asyncio.sleep(self.hop() + self.hop())  # its answer, then the write request
        self.calls += 1  # the post counts the writes
        conflict = self.version != seen
        if not conflict:
            self.version += 1
        await asyncio.sleep(self.hop())  # the write's answer
        if conflict:
            raise Conflict


async def _contend(clients: int, jitter: str, rng: random.Random) -> dict[str, float]:
    resource = _Resource(rng)
    base = DECORRELATED_BASE if jitter == "decorrelated" else BASE
    backoff = rs.Backoff.exponential(base, cap=CAP, jitter=jitter)  # type: ignore[arg-type]
    pipeline = rs.Pipeline(
        rs.Retry(attempts=1_000_000, on=Conflict, backoff=backoff, budget=None), hooks=[]
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    done: list[float] = []

    async def client() -> None:
        await pipeline.run(resource.write)
        done.append(loop.time() - start)

    await asyncio.gather(*(client() for _ in range(clients)))
    return {"calls": resource.calls, "completion_seconds": max(done)}


def experiment(clients: int, jitter: str, *, seed: int = 0) -> dict[str, Any]:
    """One cell: *clients* clients, backoff jitter *jitter*, in virtual time."""
    if jitter not in JITTERS:
        msg = f"jitter must be one of {', '.join(JITTERS)}; got {jitter!r}"
        raise ValueError(msg)
    state = random.getstate()  # resilient's jitter draws from the random module
    random.seed(f"jitter:{seed}:{clients}:{jitter}")
    try:
        out = run(_contend, clients, jitter, random.Random(f"latency:{seed}:{clients}"))
    finally:
        random.setstate(state)
    return {"clients": clients, "jitter": jitter, "seed": seed, **out}


def sweep(clients: tuple[int, ...] = CLIENTS, seeds: int = 5) -> list[dict[str, Any]]:
    """Per client count and jitter: medians over *seeds* seeds of calls and completion."""
    rows = []
    for n in clients:
        for jitter in JITTERS:
            cells = [experiment(n, jitter, seed=s) for s in range(seeds)]
            rows.append(
                {
                    "clients": n,
                    "jitter": jitter,
                    "seeds": seeds,
                    "calls": statistics.median(c["calls"] for c in cells),
                    "calls_min": min(c["calls"] for c in cells),
                    "calls_max": max(c["calls"] for c in cells),
                    "completion_seconds": statistics.median(c["completion_seconds"] for c in cells),
                    "completion_min": min(c["completion_seconds"] for c in cells),
                    "completion_max": max(c["completion_seconds"] for c in cells),
                }
            )
    return rows


def shape(rows: list[dict[str, Any]], from_clients: int = SHAPE_FROM) -> list[dict[str, Any]]:
    """The post's shape, on totals over client counts >= *from_clients*: targets."""
    totals = {
        j: {
            "calls": sum(
                r["calls"] for r in rows if r["jitter"] == j and r["clients"] >= from_clients
            ),
            "time": sum(
                r["completion_seconds"]
                for r in rows
                if r["jitter"] == j and r["clients"] >= from_clients
            ),
        }
        for j in JITTERS
    }
    calls = {j: t["calls"] for j, t in totals.items()}
    times = {j: t["time"] for j, t in totals.items()}
    most_work = max(calls, key=calls.__getitem__)
    longest = max(times, key=times.__getitem__)
    least_work = min(calls, key=calls.__getitem__)
    where = f"sum over N >= {from_clients}"

    def ratios(figures: dict[str, float], ref: str) -> str:
        return ", ".join(f"{j} {figures[j] / figures[ref]:.2f}x" for j in JITTERS)

    return [
        {
            "what": "no jitter does the most work",
            "pass": most_work == "none",
            "detail": f"calls vs full jitter ({where}): {ratios(calls, 'full')}",
            "totals": calls,
        },
        {
            "what": "no jitter takes the longest",
            "pass": longest == "none",
            "detail": f"completion time vs full jitter ({where}): {ratios(times, 'full')}",
            "totals": times,
        },
        {
            "what": "full jitter does the least work",
            "pass": least_work == "full",
            "detail": f"least calls: {least_work}",
            "totals": calls,
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and client counts")
    parser.add_argument("--seeds", type=int, help="seeds per cell (default 10, --quick 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    seeds = args.seeds or (3 if args.quick else 10)
    clients = CLIENTS_QUICK if args.quick else CLIENTS

    # Imported here so that importing this module imports no other benchmark script.
    from _common import print_checks, write_json  # noqa: PLC0415
    from overhead import machine_info  # noqa: PLC0415

    print("AWS 'Exponential Backoff And Jitter' OCC experiment, with resilient's Backoff")
    print(
        f"model: N clients write one row once each from t=0; an attempt reads its version "
        f"and writes with it (4 hops of |N({HOP_MEAN * 1000:g}, {HOP_SD * 1000:g})| ms), "
        "failing on a changed version; "
        f"Retry(backoff=Backoff.exponential({BASE:g}, cap={CAP:g}, jitter=j), decorrelated "
        f"from {DECORRELATED_BASE:g}, no attempt limit, budget=None); virtual time; medians "
        f"over {seeds} seeds"
    )
    started = time.perf_counter()
    rows = sweep(clients, seeds)
    head = f"{'clients':>7}  " + "  ".join(f"{j:>22}" for j in JITTERS)
    print("\ncalls (all clients; median over seeds) and completion time (virtual s)")
    print(head)
    print("-" * len(head))
    by = {(r["clients"], r["jitter"]): r for r in rows}
    for n in clients:
        cells = [by[n, j] for j in JITTERS]
        print(
            f"{n:>7}  "
            + "  ".join(f"{c['calls']:>9,.0f} {c['completion_seconds']:>10.2f} s" for c in cells)
        )
    checks = shape(rows)
    print_checks(checks)
    elapsed = time.perf_counter() - started
    print(f"\nran in {elapsed:.1f} s of real time")
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "jitter",
                "machine": machine_info(),
                "model": {
                    "hop_seconds": {"mean": HOP_MEAN, "sd": HOP_SD},
                    "base": BASE,
                    "decorrelated_base": DECORRELATED_BASE,
                    "cap": CAP,
                    "seeds": seeds,
                    "clients": list(clients),
                },
                "rows": rows,
                "targets": checks,
                "elapsed_seconds": elapsed,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
