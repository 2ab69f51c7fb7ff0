# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""Load amplification under failure: attempts / calls and success ratio for p = 0 ... 1.0.

``storm.py``'s retry storm (``storm.simulate``: 1,000 sequential calls to a service
whose every attempt fails with probability p, the same seeded failures for every
library, each library with its own defaults, virtual time) swept over p = 0, 0.1,
..., 1.0 for every library of ``storm.LIBRARIES``, and for resilient's defaults with
the retry budget turned off (``Retry(on=ConnectionError, budget=None)``), to show what
the budget saves. ``report.py`` draws amplification and success ratio against p.

Targets (from ``storm.py``): resilient's amplification <= 1.05 at p = 1.0, and its
success ratio >= 0.999 at p = 0.1.

``sweep(...)`` runs the grid; importing this module runs nothing.
``.venv/bin/python benchmarks/amplification.py`` prints it (``--quick``: p in 0,
0.1, 0.5, 0.9 and 1, the same 1,000 calls).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import storm

P_SWEEP = tuple(i / 10 for i in range(11))
P_QUICK = (0.0, 0.1, 0.5, 0.9, 1.0)
CONTENDERS = (*storm.LIBRARIES, storm.NO_BUDGET)
AMPLIFICATION_AT_1 = 1.05
SUCCESS_AT_01 = 0.999


def sweep(
    p_values: tuple[float, ...] = P_SWEEP,
    libraries: tuple[str, ...] = CONTENDERS,
    *,
    calls: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One ``storm.simulate`` cell per library and p."""
    return [
        storm.simulate(library, p, calls=calls, seed=seed)
        for library in libraries
        for p in p_values
    ]


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(r["library"], r["p"]): r for r in rows}
    out = []
    if ("resilient", 1.0) in by:
        amp = by["resilient", 1.0]["amplification"]
        out.append(
            {
                "what": "resilient defaults: amplification at p = 1.0",
                "value": amp,
                "limit": AMPLIFICATION_AT_1,
                "pass": amp <= AMPLIFICATION_AT_1,
                "detail": f"{amp:.3f} <= {AMPLIFICATION_AT_1}",
            }
        )
    p01 = next((p for p in (0.1, 0.25) if ("resilient", p) in by), None)
    if p01 == 0.1:
        ok = by["resilient", 0.1]["success_ratio"]
        out.append(
            {
                "what": "resilient defaults: success ratio at p = 0.1",
                "value": ok,
                "limit": SUCCESS_AT_01,
                "at_most": False,
                "pass": ok >= SUCCESS_AT_01,
                "detail": f"{ok:.4f} >= {SUCCESS_AT_01}",
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="p in 0, 0.1, 0.5, 0.9, 1")
    parser.add_argument("--calls", type=int, default=1000, help="logical calls per cell")
    parser.add_argument("--seed", type=int, default=0, help="seed of the failure draws")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    p_values = P_QUICK if args.quick else P_SWEEP

    from _common import print_checks, write_json  # noqa: PLC0415
    from overhead import machine_info  # noqa: PLC0415

    print("Load amplification under failure (storm.simulate over p; virtual time)")
    print(f"{args.calls:,} sequential calls per cell; each library with its own defaults:")
    for library in storm.LIBRARIES:
        print(f"  {library:<14} {storm.SETTINGS[library]}")
    print(f"  {storm.NO_BUDGET}: Pipeline(Retry(on=ConnectionError, budget=None))")
    started = time.perf_counter()
    rows = sweep(p_values, calls=args.calls, seed=args.seed)
    by = {(r["library"], r["p"]): r for r in rows}
    print("\namplification (attempts / calls) / success ratio")
    head = f"{'library':<24}" + "".join(f"{f'p={p:g}':>13}" for p in p_values)
    print(head)
    print("-" * len(head))
    for library in CONTENDERS:
        print(
            f"{library:<24}"
            + "".join(
                f"{by[library, p]['amplification']:>6.2f}/{by[library, p]['success_ratio']:<6.3f}"
                for p in p_values
            )
        )
    checks = targets(rows)
    print_checks(checks)
    elapsed = time.perf_counter() - started
    print(f"\nran in {elapsed:.1f} s of real time")
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "amplification",
                "machine": machine_info(),
                "calls": args.calls,
                "seed": args.seed,
                "p_values": list(p_values),
                "settings": storm.SETTINGS
                | {storm.NO_BUDGET: "Pipeline(Retry(on=ConnectionError, budget=None))"},
                "rows": rows,
                "targets": checks,
                "elapsed_seconds": elapsed,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
