# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""Per-call overhead of resilient's policies, next to the bare call and peer libraries.

Every contender wraps the same trivial coroutine (``async def work(): return 1``) and
is timed on the same asyncio event loop, in the same process, in one run:

- the success path: the call succeeds at once;
- the fail-once path: the first attempt raises ``ConnectionError`` and the second
  returns. Every library is configured to wait zero seconds between attempts;
- both paths again around an httpx client: the wrapped coroutine is
  ``await client.get(URL)`` on an ``httpx.MockTransport`` that answers 200 at once
  (on the fail-once path its handler raises ``ConnectionError`` first). These rows run
  ``--calls`` / 50 calls per batch (an httpx call costs hundreds of times more) and
  have no targets: they show what each library adds to a real client's call.

Methodology: ``--rounds`` rounds; in each round every contender runs a batch of
``--calls`` sequential calls, the contenders in a freshly shuffled order (so drift in
the machine's speed spreads over all of them). A contender's figure is the median
over rounds of its ns/call, with the min and max; a ratio between two contenders
is computed within each round (same round, same conditions) and the median of
those per-round ratios is reported.

Run it with ``.venv/bin/python benchmarks/overhead.py`` (``--help`` for flags).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioresilience
import backoff
import httpx
import hyx.retry
import pyresilience
import stamina
import tenacity

import resilient as rs
from resilient.instrumentation import set_hooks

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

BARE = "bare call"
RETRY = "resilient Retry alone"
TIMEOUT = "resilient Timeout alone"
PIPELINE = "resilient Timeout(10) > Retry > Timeout(2)"
RETRY_NO_BUDGET = "resilient Retry alone, budget=None"
PIPELINE_NO_BUDGET = "resilient Timeout(10) > Retry > Timeout(2), budget=None"
ASYNCIO_TIMEOUT = "asyncio.timeout(10)"
TENACITY = "tenacity AsyncRetrying"
STAMINA = "stamina retry_context"
BACKOFF = "backoff.on_exception"
HYX = "hyx @retry"
PYRESILIENCE = "pyresilience @resilient(retry=...)"
AIORESILIENCE = "aioresilience RetryPolicy"

# (what, reference, highest allowed median ratio); checked on the success path.
TARGETS: tuple[tuple[str, str, float], ...] = (
    (RETRY, TENACITY, 0.05),
    (RETRY, HYX, 1.0),
    (TIMEOUT, ASYNCIO_TIMEOUT, 1.0),
    (PIPELINE, STAMINA, 0.5),
)

PEERS = ("tenacity", "stamina", "backoff", "hyx", "pyresilience", "aioresilience", "structlog")


# --- the work ---------------------------------------------------------------

_fail_next = [False]
"""Set before each fail-once call: the next attempt raises, and clears it."""


async def work() -> int:
    return 1


async def flaky() -> int:
    if _fail_next[0]:
        _fail_next[0] = False
        raise ConnectionError("first attempt fails")
    return 1


HTTPX_URL = "https://api.example/items/1"
HTTPX_CALLS_DIVISOR = 50
"""The httpx paths run ``--calls`` / 50 calls per batch: each call costs far more."""


def httpx_work(*, fail: list[bool] | None = None) -> Callable[[], Awaitable[int]]:
    """``await client.get(URL)`` on an ``httpx.MockTransport`` answering 200; 1 on a 200.

    With *fail* (``_fail_next``, which the fail-once batch sets before each call), the
    handler raises ``ConnectionError`` once when it is set, as ``flaky`` does.
    """
    item = {"id": 1, "name": "item"}

    def handler(request: httpx.Request) -> httpx.Response:
        del request
        if fail is not None and fail[0]:
            fail[0] = False
            raise ConnectionError("first attempt fails")
        return httpx.Response(200, json=item)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))

    async def call() -> int:
        response = await client.get(HTTPX_URL)
        return 1 if response.status_code == 200 else 0

    return call


# --- the contenders ---------------------------------------------------------


@dataclass
class Contender:
    name: str
    call: Callable[[], Awaitable[int]]
    budget: rs.RetryBudget | None = None
    samples: list[float] = field(default_factory=list)
    errors: int = 0
    error_types: set[str] = field(default_factory=set)


def _resilient_retry(*, budget: bool = True) -> rs.Retry:
    zero = rs.Backoff.constant(0)
    if budget:  # the default RetryBudget(), one per Retry
        return rs.Retry(attempts=3, on=ConnectionError, backoff=zero)
    return rs.Retry(attempts=3, on=ConnectionError, backoff=zero, budget=None)


def build(fn: Callable[[], Awaitable[int]], path: str) -> list[Contender]:
    """The contenders for one path, each wrapping *fn* (``work`` or ``flaky``)."""
    contenders: list[Contender] = []

    def add(
        name: str, call: Callable[[], Awaitable[int]], budget: rs.RetryBudget | None = None
    ) -> None:
        contenders.append(Contender(name, call, budget))

    if path == "success":
        add(BARE, fn)
    else:

        async def hand_written() -> int:
            try:
                return await fn()
            except ConnectionError:
                return await fn()

        add(BARE, hand_written)

    retry = _resilient_retry()
    add(RETRY, rs.Pipeline(retry)(fn), retry.budget)
    if path == "fail_once":
        add(RETRY_NO_BUDGET, rs.Pipeline(_resilient_retry(budget=False))(fn))
    if path == "success":
        add(TIMEOUT, rs.Pipeline(rs.Timeout(10))(fn))

        async def asyncio_timeout() -> int:
            async with asyncio.timeout(10):
                return await fn()

        add(ASYNCIO_TIMEOUT, asyncio_timeout)
    retry = _resilient_retry()
    add(PIPELINE, rs.Pipeline(rs.Timeout(10), retry, rs.Timeout(2))(fn), retry.budget)
    if path == "fail_once":
        add(
            PIPELINE_NO_BUDGET,
            rs.Pipeline(rs.Timeout(10), _resilient_retry(budget=False), rs.Timeout(2))(fn),
        )

    # tenacity: a new AsyncRetrying per call, as in its docs (it keeps per-call state);
    # the stop and retry strategies, which are immutable, are made once.
    t_stop = tenacity.stop_after_attempt(3)
    t_retry = tenacity.retry_if_exception_type(ConnectionError)

    async def tenacity_call() -> int:
        result = 0
        async for attempt in tenacity.AsyncRetrying(stop=t_stop, retry=t_retry, reraise=True):
            with attempt:
                result = await fn()
        return result

    add(TENACITY, tenacity_call)

    async def stamina_call() -> int:
        result = 0
        async for attempt in stamina.retry_context(
            on=ConnectionError, attempts=3, wait_initial=0, wait_max=0, wait_jitter=0
        ):
            with attempt:
                result = await fn()
        return result

    add(STAMINA, stamina_call)

    add(
        BACKOFF,
        backoff.on_exception(
            backoff.expo, ConnectionError, max_tries=3, factor=0, jitter=None, logger=None
        )(fn),
    )
    # hyx counts retries, not attempts: attempts=2 is 3 attempts in all.
    add(HYX, hyx.retry.retry(on=ConnectionError, attempts=2, backoff=0)(fn))
    add(
        PYRESILIENCE,
        pyresilience.resilient(
            retry=pyresilience.RetryConfig(
                max_attempts=3, delay=0, jitter=False, retry_on=(ConnectionError,)
            )
        )(fn),
    )
    policy = aioresilience.RetryPolicy(
        config=aioresilience.RetryConfig(
            max_attempts=3, initial_delay=0, jitter=0, retry_on_exceptions=(ConnectionError,)
        )
    )
    add(AIORESILIENCE, aioresilience.with_retry(policy)(fn))
    return contenders


CONFIG_NOTES = (
    "all retriers: 3 attempts in all, retry on ConnectionError, zero wait",
    (
        "resilient: Retry(attempts=3, on=ConnectionError, backoff=Backoff.constant(0)) "
        "with its default RetryBudget(); Timeout(10); pipelines used as decorators"
    ),
    (
        "tenacity: new AsyncRetrying(stop=stop_after_attempt(3), retry=ConnectionError, "
        "reraise=True) per call, `async for attempt ...: with attempt:`"
    ),
    (
        "stamina: retry_context(on=ConnectionError, attempts=3, wait_initial=0, "
        "wait_max=0, wait_jitter=0), default timeout=45"
    ),
    (
        "backoff: on_exception(expo, ConnectionError, max_tries=3, factor=0, jitter=None,"
        " logger=None)"
    ),
    ("hyx: retry(on=ConnectionError, attempts=2, backoff=0)  (hyx counts retries: 3 attempts)"),
    (
        "pyresilience: resilient(retry=RetryConfig(max_attempts=3, delay=0, jitter=False,"
        " retry_on=(ConnectionError,)))"
    ),
    (
        "aioresilience: with_retry(RetryPolicy(RetryConfig(max_attempts=3, "
        "initial_delay=0, jitter=0, retry_on_exceptions=(ConnectionError,))))"
    ),
    (
        "instrumentation off: resilient set_hooks([]), stamina set_on_retry_hooks([]), "
        "backoff logger=None (tenacity, hyx, pyresilience, aioresilience log nothing by "
        "default)"
    ),
    "fail-once 'bare call' is a hand-written try/except that calls again at once",
    (
        "with zero wait, every peer still awaits asyncio.sleep(0) between attempts (one "
        "event loop iteration); resilient skips the sleep when the wait is 0"
    ),
)


# --- timing -----------------------------------------------------------------


async def _batch_success(contender: Contender, calls: int) -> tuple[int, int]:
    call = contender.call
    errors = 0
    start = time.perf_counter_ns()
    for _ in range(calls):
        try:
            await call()
        except Exception as exc:  # noqa: PERF203 -- a call may raise; we count it
            errors += 1
            contender.error_types.add(type(exc).__name__)
    return time.perf_counter_ns() - start, errors


async def _batch_fail_once(contender: Contender, calls: int) -> tuple[int, int]:
    call = contender.call
    fail_next = _fail_next
    errors = 0
    start = time.perf_counter_ns()
    for _ in range(calls):
        fail_next[0] = True
        try:
            await call()
        except Exception as exc:
            errors += 1
            contender.error_types.add(type(exc).__name__)
    return time.perf_counter_ns() - start, errors


async def _check(contenders: list[Contender], path: str) -> None:
    """One call each, outside the timing, to make sure every contender returns 1."""
    for c in contenders:
        _fail_next[0] = path == "fail_once"
        result = await c.call()
        if result != 1:
            msg = f"{c.name} returned {result!r} on the {path} path"
            raise RuntimeError(msg)


async def _settle() -> None:
    """Between batches, outside the timing: let the loop run and collect garbage.

    ``work`` never suspends, so the loop does not run during a batch, and the
    timer handles that cancelled timeouts leave on its heap pile up; one pass of
    the loop drops them, so no batch pays for the previous batch's timers.
    """
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    gc.collect()


async def measure(
    contenders: list[Contender], path: str, rounds: int, calls: int, rng: random.Random
) -> None:
    batch = _batch_success if path == "success" else _batch_fail_once
    await _check(contenders, path)
    for c in contenders:  # warm-up, not recorded
        await batch(c, max(1, calls // 10))
        c.error_types.clear()
    c_errors = dict.fromkeys((c.name for c in contenders), 0)
    for _ in range(rounds):
        order = contenders[:]
        rng.shuffle(order)
        for c in order:
            await _settle()
            elapsed, errors = await batch(c, calls)
            c.samples.append(elapsed / calls)
            c_errors[c.name] += errors
    for c in contenders:
        c.errors = c_errors[c.name]


# --- reporting --------------------------------------------------------------


def _ratios(a: Contender, b: Contender) -> list[float]:
    return [x / y for x, y in zip(a.samples, b.samples, strict=True)]


def judge(ratios: list[float], limit: float) -> dict[str, Any]:
    """The verdict on a target: median of per-round ratios against *limit*, and spread.

    Shared by every benchmark script, so they all judge the same way.
    """
    median = statistics.median(ratios)
    return {
        "limit": limit,
        "ratio_median": median,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "rounds_within": sum(r <= limit for r in ratios),
        "rounds": len(ratios),
        "pass": median <= limit,
    }


def parse_args(
    description: str,
    argv: list[str] | None,
    *,
    rounds: int,
    calls: int,
    switches: dict[str, str] | None = None,
) -> argparse.Namespace:
    """The flags every benchmark script takes: --rounds, --calls, --seed, --json.

    *switches* adds a script's own on/off flags (name: help), so ``--help`` lists them.
    """
    parser = argparse.ArgumentParser(description=description)
    for flag, text in (switches or {}).items():
        parser.add_argument(flag, action="store_true", help=text)
    parser.add_argument("--rounds", type=int, default=rounds, help=f"rounds (default {rounds})")
    parser.add_argument(
        "--calls", type=int, default=calls, help=f"calls per contender per round (default {calls})"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffles (default 0)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        parser.error("--rounds and --calls must be >= 1")
    return args


def _summary(contenders: list[Contender]) -> dict[str, dict[str, Any]]:
    bare = next(c for c in contenders if c.name == BARE)
    out: dict[str, dict[str, Any]] = {}
    for c in contenders:
        ratios = _ratios(c, bare)
        out[c.name] = {
            "ns_per_call_median": statistics.median(c.samples),
            "ns_per_call_min": min(c.samples),
            "ns_per_call_max": max(c.samples),
            "ratio_vs_bare_median": statistics.median(ratios),
            "ratio_vs_bare_min": min(ratios),
            "ratio_vs_bare_max": max(ratios),
            "added_ns_median": statistics.median(
                x - y for x, y in zip(c.samples, bare.samples, strict=True)
            ),
            "calls_raised": c.errors,
            "error_types": sorted(c.error_types),
            "ns_per_call_by_round": c.samples,
        }
    return out


def _print_table(
    title: str, contenders: list[Contender], summary: dict[str, Any], calls: int
) -> None:
    print(f"\n{title}")
    head = (
        f"{'contender':<60} {'ns/call median [min-max]':>28} "
        f"{'x bare median [min-max]':>26} {'+ns':>8}"
    )
    print(head)
    print("-" * len(head))
    for c in sorted(contenders, key=lambda c: summary[c.name]["ns_per_call_median"]):
        s = summary[c.name]
        spread = (
            f"{s['ns_per_call_median']:,.0f} "
            f"[{s['ns_per_call_min']:,.0f}-{s['ns_per_call_max']:,.0f}]"
        )
        ratio = (
            f"{s['ratio_vs_bare_median']:.2f}x "
            f"[{s['ratio_vs_bare_min']:.2f}-{s['ratio_vs_bare_max']:.2f}]"
        )
        print(f"{c.name:<60} {spread:>28} {ratio:>26} {s['added_ns_median']:>8,.0f}")
    for c in contenders:
        if c.errors:
            print(
                f"  note: {c.name}: {c.errors:,} of {len(c.samples) * calls:,} timed calls "
                f"raised {', '.join(sorted(c.error_types))}"
            )
        if c.budget is not None and c.budget.statistics().retries_denied:
            st = c.budget.statistics()
            print(
                f"        its RetryBudget: {st.retries_allowed:,} retries allowed, "
                f"{st.retries_denied:,} denied, {st.tokens:.1f} tokens left "
                f"(ratio {st.ratio:g}, max {st.max_tokens:g})"
            )


def _targets(by_name: dict[str, Contender], path: str) -> list[dict[str, Any]]:
    results = []
    for what, ref, limit in TARGETS:
        if what not in by_name or ref not in by_name:
            continue
        ratios = _ratios(by_name[what], by_name[ref])
        results.append({"path": path, "what": what, "reference": ref, **judge(ratios, limit)})
    return results


def _print_targets(results: list[dict[str, Any]]) -> None:
    print("\nTargets (success path; median over rounds of the per-round ratio):")
    for r in results:
        verdict = "PASS" if r["pass"] else "FAIL"
        print(
            f"  {verdict}  {r['what']} / {r['reference']}: {r['ratio_median']:.3f}x "
            f"[{r['ratio_min']:.3f}-{r['ratio_max']:.3f}] <= {r['limit']:g}x "
            f"(within in {r['rounds_within']}/{r['rounds']} rounds)"
        )


def _print_fail_once_ratios(by_name: dict[str, Contender]) -> None:
    print("\nSame comparisons on the fail-once path (information, not targets):")
    pairs = (
        (RETRY_NO_BUDGET, TENACITY),
        (RETRY_NO_BUDGET, HYX),
        (PIPELINE_NO_BUDGET, STAMINA),
        (RETRY, TENACITY),
        (PIPELINE, STAMINA),
    )
    for what, ref in pairs:
        ratios = _ratios(by_name[what], by_name[ref])
        print(
            f"  {what} / {ref}: {statistics.median(ratios):.3f}x "
            f"[{min(ratios):.3f}-{max(ratios):.3f}]"
        )


def machine_info() -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        affinity = None
    versions = {"resilient": rs.__version__} | {name: _version(name) for name in PEERS}
    return {
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "loadavg": _loadavg(),
        "event_loop": "asyncio (default selector loop)",
        "versions": versions,
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _loadavg() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv, rounds=15, calls=5000)

    # Instrumentation off everywhere, so logging does not dominate the figures.
    set_hooks([])
    stamina.instrumentation.set_on_retry_hooks([])

    info = machine_info()
    print("resilient overhead benchmark")
    print(f"python      {info['python']}")
    print(f"platform    {info['platform']} ({info['implementation']})")
    print(f"cpus        {info['cpu_count']} (usable: {info['cpus_usable']})")
    print(f"loadavg     {info['loadavg']}")
    print(f"event loop  {info['event_loop']}")
    print("versions    " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print(f"method      {args.rounds} rounds x {args.calls:,} calls per contender, shuffled")
    print("            order each round; ratios taken per round, then the median")
    print("config")
    for note in CONFIG_NOTES:
        print(f"  - {note}")

    rng = random.Random(args.seed)
    started = time.perf_counter()
    paths: dict[str, dict[str, Any]] = {}
    target_results: list[dict[str, Any]] = []
    httpx_calls = max(1, args.calls // HTTPX_CALLS_DIVISOR)
    for path, fn, calls, title in (
        (
            "success",
            work,
            args.calls,
            "Success path (ns per call; x bare = per-round ratio to the bare call)",
        ),
        (
            "fail_once",
            flaky,
            args.calls,
            "Fail-once path (attempt 1 raises ConnectionError, attempt 2 returns)",
        ),
        ("success_httpx", httpx_work(), httpx_calls, "Success path, around an httpx client"),
        (
            "fail_once_httpx",
            httpx_work(fail=_fail_next),
            httpx_calls,
            "Fail-once path, around an httpx client (the mock raises ConnectionError once)",
        ),
    ):
        kind = path.removesuffix("_httpx")
        contenders = build(fn, kind)
        asyncio.run(measure(contenders, kind, args.rounds, calls, rng))
        summary = _summary(contenders)
        paths[path] = summary
        _print_table(title, contenders, summary, calls)
        by_name = {c.name: c for c in contenders}
        if path == "success":
            target_results = _targets(by_name, path)
            _print_targets(target_results)
        elif path == "fail_once":
            _print_fail_once_ratios(by_name)

    info["loadavg_end"] = _loadavg()
    elapsed = time.perf_counter() - started
    print(f"\nloadavg at end {info['loadavg_end']}; measured in {elapsed:.0f} s")
    print("Figures are from one run on one machine; compare ratios, not absolute ns.")

    if args.json:
        doc = {
            "benchmark": "overhead",
            "machine": info,
            "rounds": args.rounds,
            "calls": args.calls,
            "seed": args.seed,
            "config": list(CONFIG_NOTES),
            "paths": paths,
            "targets": target_results,
            "elapsed_seconds": elapsed,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
