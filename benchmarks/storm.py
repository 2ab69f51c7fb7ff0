# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""A retry storm, in virtual time: how many attempts do retriers send a failing service?

1,000 logical calls (``--calls``) go, one after the other, to a service whose every
attempt fails, independently, with probability p (p in 0, 0.1, 0.5, 0.9, 1.0). A
failed attempt raises ``ConnectionError``. The failures are drawn in advance from a
seeded generator, per p, as one row of booleans per call (attempt k of call i fails
iff ``rows[i][k]``), so every library meets exactly the same failures.

Each library runs with its own defaults, except where a default never stops:

- resilient: one ``Pipeline(Retry(on=ConnectionError))`` shared by every call, so
  with its default attempts (4), backoff and ``RetryBudget()``;
- tenacity: ``@retry(stop=stop_after_attempt(4))`` (its default stop never stops);
- stamina: ``retry_context(on=ConnectionError)`` (10 attempts, 45 s timeout);
- backoff: ``@on_exception(expo, ConnectionError, max_tries=4)`` (its default
  ``max_tries=None`` never stops);
- hyx: ``@retry()`` (3 retries after the first attempt);
- pyresilience: ``@resilient(retry=RetryConfig())`` (3 attempts);
- aioresilience: ``RetryPolicy()`` (3 attempts).

Every wait happens on a `resilient.testing` virtual clock (`resilient.testing.run`),
so backoff takes no real time. Logging is off (instrumentation only, no behaviour).

``simulate(library, p)`` runs one cell and returns its figures; importing this
module runs nothing. Run ``.venv/bin/python benchmarks/storm.py`` for the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import resilient as rs
from resilient.testing import run

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

LIBRARIES = ("resilient", "tenacity", "stamina", "backoff", "hyx", "pyresilience", "aioresilience")
P_VALUES = (0.0, 0.1, 0.5, 0.9, 1.0)
NO_BUDGET = "resilient, budget=None"
"""resilient's defaults without the retry budget, for comparison (``simulate`` takes it)."""
MAX_ATTEMPTS = 64
"""Failure draws per call: more than any library here attempts (stamina: 10)."""

SETTINGS = {
    "resilient": "Pipeline(Retry(on=ConnectionError)): 4 attempts, exponential(0.2, cap=5, "
    "full jitter), RetryBudget(ratio=0.2, max_tokens=10) shared by all calls",
    "tenacity": "retry(stop=stop_after_attempt(4)) -- its default stop never stops; "
    "default wait (none) and retry (any exception)",
    "stamina": "retry_context(on=ConnectionError): 10 attempts, 45 s timeout, "
    "backoff 0.1 s x2 + up to 1 s jitter, capped at 5 s",
    "backoff": "on_exception(expo, ConnectionError, max_tries=4) -- its default never stops; "
    "full jitter",
    "hyx": "retry(): 3 retries (4 attempts), 0.5 s constant backoff, any exception",
    "pyresilience": "resilient(retry=RetryConfig()): 3 attempts, 1 s x2 backoff with jitter",
    "aioresilience": "RetryPolicy(): 3 attempts, 1 s x2 backoff, 10 % jitter",
}


# --- the workload -----------------------------------------------------------


def draw_failures(p: float, calls: int, seed: int) -> list[list[bool]]:
    """Per call, per attempt: does that attempt fail? The same for every library."""
    rng = random.Random(f"storm:{seed}:{p!r}")
    return [[rng.random() < p for _ in range(MAX_ATTEMPTS)] for _ in range(calls)]


class _Service:
    """The downstream: counts attempts and fails them as the draws say."""

    def __init__(self, rows: list[list[bool]]) -> None:
        self.rows = rows
        self.next_attempt = [0] * len(rows)
        self.attempts = 0
        self.overflow = False

    async def attempt(self, i: int) -> int:
        k = self.next_attempt[i]
        if k >= MAX_ATTEMPTS:
            self.overflow = True
            msg = f"call {i} made more than {MAX_ATTEMPTS} attempts"
            raise RuntimeError(msg)
        self.next_attempt[i] = k + 1
        self.attempts += 1
        if self.rows[i][k]:
            msg = f"call {i}, attempt {k + 1}: connection refused"
            raise ConnectionError(msg)
        return i


# --- one retrier per library; each returns ``call(i)`` -------------------------
# Peers are imported where they are used, so that a test which only simulates
# resilient needs nothing else.


def _resilient(service: _Service) -> Callable[[int], Awaitable[int]]:
    pipeline = rs.Pipeline(rs.Retry(on=ConnectionError), hooks=[])

    async def call(i: int) -> int:
        return await pipeline.run(service.attempt, i)

    return call


def _resilient_no_budget(service: _Service) -> Callable[[int], Awaitable[int]]:
    """resilient's defaults with the budget turned off: what the budget saves (not a row here)."""
    pipeline = rs.Pipeline(rs.Retry(on=ConnectionError, budget=None), hooks=[])

    async def call(i: int) -> int:
        return await pipeline.run(service.attempt, i)

    return call


def _tenacity(service: _Service) -> Callable[[int], Awaitable[int]]:
    import tenacity  # noqa: PLC0415 -- peers are optional for importers

    return tenacity.retry(stop=tenacity.stop_after_attempt(4))(service.attempt)


def _stamina(service: _Service) -> Callable[[int], Awaitable[int]]:
    import stamina  # noqa: PLC0415 -- peers are optional for importers

    async def call(i: int) -> int:
        result = -1
        async for attempt in stamina.retry_context(on=ConnectionError):
            with attempt:
                result = await service.attempt(i)
        return result

    return call


def _backoff(service: _Service) -> Callable[[int], Awaitable[int]]:
    import backoff  # noqa: PLC0415 -- peers are optional for importers

    return backoff.on_exception(backoff.expo, ConnectionError, max_tries=4, logger=None)(
        service.attempt
    )


def _hyx(service: _Service) -> Callable[[int], Awaitable[int]]:
    from hyx.retry import retry  # noqa: PLC0415 -- peers are optional for importers

    return retry()(service.attempt)


def _pyresilience(service: _Service) -> Callable[[int], Awaitable[int]]:
    import pyresilience  # noqa: PLC0415 -- peers are optional for importers

    return pyresilience.resilient(retry=pyresilience.RetryConfig())(service.attempt)


def _aioresilience(service: _Service) -> Callable[[int], Awaitable[int]]:
    import aioresilience  # noqa: PLC0415 -- peers are optional for importers

    return aioresilience.with_retry(aioresilience.RetryPolicy())(service.attempt)


_FACTORIES: dict[str, Callable[[_Service], Callable[[int], Awaitable[int]]]] = {
    "resilient": _resilient,
    "tenacity": _tenacity,
    "stamina": _stamina,
    "backoff": _backoff,
    "hyx": _hyx,
    "pyresilience": _pyresilience,
    "aioresilience": _aioresilience,
    # Not in LIBRARIES (this script's table); amplification.py shows it beside the rest.
    NO_BUDGET: _resilient_no_budget,
}


async def _storm(call: Callable[[int], Awaitable[int]], calls: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    successes = 0
    errors: dict[str, int] = {}
    longest = 0.0
    started = loop.time()
    for i in range(calls):  # sequential: one call at a time
        t0 = loop.time()
        try:
            await call(i)
        except Exception as exc:
            name = type(exc).__name__
            errors[name] = errors.get(name, 0) + 1
        else:
            successes += 1
        longest = max(longest, loop.time() - t0)
    return {
        "successes": successes,
        "errors": errors,
        "virtual_seconds": loop.time() - started,
        "longest_call_virtual_seconds": longest,
    }


def simulate(library: str, p: float, *, calls: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Run *calls* sequential calls through *library* against failure rate *p*.

    Returns a dict with ``attempts``, ``calls``, ``successes``, ``amplification``
    (attempts / calls) and ``success_ratio``, plus ``errors`` (what failed calls
    raised, by type), ``virtual_seconds``, ``longest_call_virtual_seconds`` and
    ``real_seconds``. Global state it touches (stamina's hooks) is restored.
    """
    if library not in _FACTORIES:
        msg = f"library must be one of {', '.join(_FACTORIES)}; got {library!r}"
        raise ValueError(msg)
    if not 0.0 <= p <= 1.0:
        msg = f"p must be in [0, 1], got {p!r}"
        raise ValueError(msg)
    if calls < 1:
        msg = f"calls must be >= 1, got {calls!r}"
        raise ValueError(msg)
    service = _Service(draw_failures(p, calls, seed))
    restore: Callable[[], None] | None = None
    if library == "stamina":
        import stamina.instrumentation  # noqa: PLC0415 -- peers are optional for importers

        previous = stamina.instrumentation.get_on_retry_hooks()
        stamina.instrumentation.set_on_retry_hooks([])

        def restore() -> None:
            stamina.instrumentation.set_on_retry_hooks(previous)

    real_start = time.perf_counter()
    try:
        outcome = run(_storm, _FACTORIES[library](service), calls)
    finally:
        if restore is not None:
            restore()
    if service.overflow:
        msg = f"{library} made more than {MAX_ATTEMPTS} attempts for one call"
        raise RuntimeError(msg)
    return {
        "library": library,
        "p": p,
        "calls": calls,
        "attempts": service.attempts,
        "successes": outcome["successes"],
        "amplification": service.attempts / calls,
        "success_ratio": outcome["successes"] / calls,
        "errors": outcome["errors"],
        "virtual_seconds": outcome["virtual_seconds"],
        "longest_call_virtual_seconds": outcome["longest_call_virtual_seconds"],
        "real_seconds": time.perf_counter() - real_start,
    }


# --- the report -------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the failure draws")
    parser.add_argument("--calls", type=int, default=1000, help="logical calls per cell")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be >= 1")

    print("resilient storm simulation (virtual time, sequential calls)")
    print(f"python {sys.version.split()[0]} on {platform.platform()}")
    print(
        f"{args.calls:,} calls per cell; each attempt fails with probability p "
        f"(ConnectionError); draws seeded with {args.seed}, identical for every library"
    )
    print("settings:")
    for library in LIBRARIES:
        print(f"  {library:<14} {SETTINGS[library]}")

    results: list[dict[str, Any]] = []
    head = (
        f"{'library':<14} {'p':>4} {'calls':>6} {'attempts':>9} {'amplif.':>8} "
        f"{'success':>8} {'virtual s':>10} {'longest s':>10}  failed calls raised"
    )
    print()
    print(head)
    print("-" * len(head))
    for library in LIBRARIES:
        for p in P_VALUES:
            r = simulate(library, p, calls=args.calls, seed=args.seed)
            results.append(r)
            errors = ", ".join(f"{k} x{v}" for k, v in sorted(r["errors"].items())) or "-"
            print(
                f"{library:<14} {p:>4g} {r['calls']:>6,} {r['attempts']:>9,} "
                f"{r['amplification']:>8.3f} {r['success_ratio']:>8.3f} "
                f"{r['virtual_seconds']:>10,.1f} {r['longest_call_virtual_seconds']:>10.2f}  "
                f"{errors}"
            )
        print()

    stamina_rows = [r for r in results if r["library"] == "stamina"]
    longest = max(r["longest_call_virtual_seconds"] for r in stamina_rows)
    print(
        f"stamina's 45 s timeout: its longest call took {longest:.1f} s of virtual time; "
        "the timeout is tenacity's stop_after_delay on time.monotonic(), the real clock, "
        "so under a virtual clock it cannot fire (with these zero-latency attempts its "
        "10 waits add up to at most ~27 s, so it would not fire in real time either)."
    )

    real = sum(r["real_seconds"] for r in results)
    virtual = sum(r["virtual_seconds"] for r in results)
    print(f"all cells: {virtual:,.0f} s of virtual time in {real:.1f} s of real time")

    by_cell = {(r["library"], r["p"]): r for r in results}
    amp = by_cell["resilient", 1.0]["amplification"]
    ok = by_cell["resilient", 0.1]["success_ratio"]
    checks = (
        (f"resilient amplification at p = 1.0: {amp:.3f} <= 1.05", amp <= 1.05),
        (f"resilient success ratio at p = 0.1: {ok:.3f} >= 0.999", ok >= 0.999),
    )
    print("\nTargets:")
    for text, passed in checks:
        print(f"  {'PASS' if passed else 'FAIL'}  {text}")

    if args.json:
        doc = {
            "benchmark": "storm",
            "python": sys.version,
            "platform": platform.platform(),
            "seed": args.seed,
            "calls": args.calls,
            "settings": SETTINGS,
            "results": results,
            "targets": [{"target": t, "pass": p} for t, p in checks],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
