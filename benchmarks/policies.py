# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""Per-call overhead of resilient's breakers, bulkhead and full pipeline, next to peers.

Every contender wraps the same trivial coroutine (``async def work(): return 1``) and
is timed on the success path (the call succeeds at once, every breaker stays
closed, every bulkhead has free permits) on the same asyncio event loop, in the
same process, in one run. Three sections, each with its own bare call:

- breakers: resilient's ``CircuitBreaker`` with a count window (the target), its
  default time window and ``ConsecutiveFailures(5)``; hyx, pybreaker, purgatory,
  aiobreaker, aioresilience and pyresilience breakers;
- bulkheads: resilient's ``Bulkhead(limit=64)`` next to a bare
  ``asyncio.Semaphore(64)``, ``anyio.CapacityLimiter(64)`` and the peers' bulkheads;
- full stacks: ``Pipeline(Timeout(10), Retry(), CircuitBreaker(...), Bulkhead(64),
  Timeout(2))`` next to each peer's closest stack and a hand-built stack of
  anyio, tenacity and pybreaker.

Every section runs again around an httpx client: the wrapped coroutine is then
``await client.get(URL)`` on an ``httpx.MockTransport`` answering 200 at once (for the
fail-once stacks its handler raises ``ConnectionError`` once), with ``--calls`` / 50
calls per batch. Those sections have no targets: they show what each library adds to a
real client's call.

Method, the same as ``overhead.py`` (whose timing code this script reuses): in each
of ``--rounds`` rounds every contender of a section runs a batch of ``--calls``
sequential calls, in a freshly shuffled order; a contender's figure is the median
over rounds of its ns/call, with the min and max; a ratio between two contenders is
taken within each round and the median of the per-round ratios is reported.

Run it with ``.venv/bin/python benchmarks/policies.py`` (``--help`` for flags).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiobreaker
import aiolimiter
import aioresilience
import anyio
import circuitbreaker
import hyx.bulkhead
import hyx.circuitbreaker
import hyx.retry
import hyx.timeout
import purgatory
import pybreaker
import pyresilience
import tenacity

import resilient as rs

# overhead.py sits next to this script (first on sys.path when the script is run):
# its contender record, timing loop and machine report are reused as they are.
from overhead import (
    BARE,
    HTTPX_CALLS_DIVISOR,
    Contender,
    _fail_next,
    _loadavg,
    _print_table,
    _summary,
    _version,
    httpx_work,
    judge,
    machine_info,
    measure,
    parse_args,
)
from resilient.instrumentation import set_hooks

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

# --- contenders' names ----------------------------------------------------------

RS_BREAKER = "resilient CircuitBreaker(CountWindow(100))"
RS_BREAKER_TIME = "resilient CircuitBreaker() [default TimeWindow(30)]"
RS_BREAKER_CONSECUTIVE = "resilient CircuitBreaker(ConsecutiveFailures(5))"
HYX_BREAKER = "hyx @consecutive_breaker()"
PYBREAKER = "pybreaker `with breaker.calling()`"
PURGATORY = "purgatory @AsyncCircuitBreakerFactory()(name)"
AIOBREAKER = "aiobreaker @CircuitBreaker()"
AIORES_BREAKER = "aioresilience with_circuit_breaker"
PYRES_BREAKER = "pyresilience @resilient(circuit_breaker=...)"
CIRCUITBREAKER = "circuitbreaker @CircuitBreaker(failure_threshold=5)"

RS_LIMITER = "resilient RateLimiter(1e9, burst=1000)"
AIOLIMITER = "aiolimiter `async with AsyncLimiter(1e9, 1)`"

SEMAPHORE = "asyncio.Semaphore(64)"
RS_BULKHEAD = "resilient Bulkhead(limit=64)"
ANYIO_LIMITER = "anyio.CapacityLimiter(64)"
HYX_BULKHEAD = "hyx @bulkhead(64, 64)"
AIORES_BULKHEAD = "aioresilience with_bulkhead"
PYRES_BULKHEAD = "pyresilience @resilient(bulkhead=...)"

RS_STACK = "resilient Pipeline(Timeout>Retry>Breaker>Bulkhead>Timeout)"
HYX_STACK = "hyx decorators: timeout>retry>breaker>bulkhead>timeout"
HYX_STACK_CM = "hyx, timeouts as `async with`, the rest decorators"
PYRES_STACK = "pyresilience one @resilient (one timeout: per attempt)"
PYRES_STACK_NESTED = "pyresilience two @resilient (total + per-attempt timeout)"
AIORES_STACK = "aioresilience: timeout>retry>breaker>bulkhead>timeout"
HAND_STACK = "hand-built: fail_after>tenacity>pybreaker>limiter>fail_after"

PEER_STACKS = (HYX_STACK, HYX_STACK_CM, PYRES_STACK, PYRES_STACK_NESTED, AIORES_STACK)
FAIL_ONCE = "stacks_fail_once"
"""The full stacks again, on the fail-once path: attempt 1 raises, attempt 2 returns."""
"""The peers' own full stacks; the hand-built stack is not one of them."""

FASTEST_PEER_STACK = "fastest peer full stack"
"""A reference for targets: in each round, the fastest of `PEER_STACKS` in that round."""

# (section, what, reference, highest allowed median ratio); success path.
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("breakers", RS_BREAKER, HYX_BREAKER, 1.0),
    ("breakers", RS_BREAKER, PYBREAKER, 0.25),
    ("bulkheads", RS_BULKHEAD, SEMAPHORE, 1.5),
    ("stacks", RS_STACK, FASTEST_PEER_STACK, 0.5),
    ("stacks", RS_STACK, HAND_STACK, 0.15),
)

# (section, what, reference): more per-round ratios, printed as information.
OTHER_RATIOS: tuple[tuple[str, str, str], ...] = (
    ("breakers", RS_BREAKER_CONSECUTIVE, HYX_BREAKER),
    ("breakers", RS_BREAKER, PYRES_BREAKER),
    ("breakers", RS_BREAKER, CIRCUITBREAKER),
    ("breakers", RS_BREAKER, AIOBREAKER),
    ("breakers", RS_BREAKER, PURGATORY),
    ("limiters", RS_LIMITER, AIOLIMITER),
    ("breakers", RS_BREAKER_TIME, RS_BREAKER),
    ("bulkheads", RS_BULKHEAD, HYX_BULKHEAD),
    ("bulkheads", RS_BULKHEAD, ANYIO_LIMITER),
    *(("stacks", RS_STACK, name) for name in PEER_STACKS),
    (FAIL_ONCE, RS_STACK, FASTEST_PEER_STACK),
    (FAIL_ONCE, RS_STACK, HAND_STACK),
    *((FAIL_ONCE, RS_STACK, name) for name in PEER_STACKS),
)

PEERS = (
    "anyio",
    "hyx",
    "pybreaker",
    "purgatory",
    "aiobreaker",
    "circuitbreaker",
    "aiolimiter",
    "pyresilience",
    "aioresilience",
    "tenacity",
)

CONFIG_NOTES: dict[str, tuple[str, ...]] = {
    "breakers": (
        (
            "resilient: Pipeline(CircuitBreaker(window=CountWindow(100), failure_rate=0.5, "
            "min_calls=20)); CircuitBreaker() (TimeWindow(30, buckets=10), failure_rate=0.5, "
            "min_calls=20); CircuitBreaker(window=ConsecutiveFailures(5)); used as decorators"
        ),
        "hyx: @consecutive_breaker() (failure_threshold=5, defaults otherwise)",
        (
            "pybreaker: CircuitBreaker(fail_max=5); pybreaker has no asyncio API: its "
            "call_async and @breaker(__pybreaker_call_async=True) run Tornado coroutines "
            "and need tornado, and breaker.call(work) would return the coroutine unawaited "
            "(its outcome never recorded). So `with breaker.calling(): return await "
            "work()`, its documented context manager, which goes through the sync "
            "CircuitBreaker.call (generator path, RLock held only to enter) and records "
            "the awaited body's outcome"
        ),
        (
            "purgatory: AsyncCircuitBreakerFactory(default_threshold=5), its decorator "
            "(looks the circuit up in its in-memory unit of work on every call)"
        ),
        "aiobreaker: CircuitBreaker(fail_max=5) as a decorator (its call_async)",
        (
            "aioresilience: with_circuit_breaker(CircuitBreaker(config=CircuitConfig("
            "failure_threshold=5))), consecutive failures"
        ),
        (
            "pyresilience: resilient(circuit_breaker=CircuitBreakerConfig("
            "sliding_window_size=100, failure_rate_threshold=0.5, minimum_calls=20)), "
            "its sliding-window mode, the closest to resilient's CountWindow"
        ),
        (
            "circuitbreaker: @CircuitBreaker(failure_threshold=5) (its decorator wraps "
            "coroutine functions since 2.0)"
        ),
    ),
    "limiters": (
        (
            "resilient: Pipeline(RateLimiter(1e9, burst=1000)), a rate no batch reaches, so "
            "every call is admitted at once (GCRA: a comparison and an addition)"
        ),
        "aiolimiter: `async with AsyncLimiter(max_rate=1e9, time_period=1): ...`",
    ),
    "bulkheads": (
        "asyncio.Semaphore(64): `async with sem: return await work()`, the reference",
        "anyio.CapacityLimiter(64): `async with limiter: return await work()`",
        "resilient: Pipeline(Bulkhead(limit=64)) (queue=0: reject when all 64 are busy)",
        "hyx: @bulkhead(max_concurrency=64, max_capacity=64) (no queue either)",
        "aioresilience: with_bulkhead(Bulkhead(config=BulkheadConfig(max_concurrent=64)))",
        "pyresilience: resilient(bulkhead=BulkheadConfig(max_concurrent=64))",
    ),
    "stacks": (
        (
            "resilient: Pipeline(Timeout(10), Retry(), CircuitBreaker(window=CountWindow(100)),"
            " Bulkhead(limit=64), Timeout(2)), Retry() with all its defaults (4 attempts, "
            "its RetryBudget)"
        ),
        (
            "hyx: @timeout(10) @retry(on=ConnectionError, attempts=2, backoff=0) "
            "@consecutive_breaker() @bulkhead(64, 64) @timeout(2); hyx's @timeout runs "
            "the call in a new task (create_task + asyncio.wait_for), twice per call"
        ),
        (
            "hyx, timeouts as `async with`: the same, but both timeouts are hyx's "
            "`async with timeout(s):` (a loop timer, no task), a new one per call"
        ),
        (
            "pyresilience, one decorator: resilient(timeout=TimeoutConfig(2), "
            "retry=RetryConfig(max_attempts=3, delay=0, jitter=False, "
            "retry_on=(ConnectionError,)), circuit_breaker=<as above>, "
            "bulkhead=BulkheadConfig(64)); it takes one timeout, here per attempt, and "
            "runs it with asyncio.wait_for (a task per call)"
        ),
        (
            "pyresilience, two decorators: resilient(timeout=TimeoutConfig(10, "
            "per_attempt=False)) around the one-decorator stack, for the total timeout"
        ),
        (
            "aioresilience: with_timeout_manager(10) > with_retry(RetryPolicy(max_attempts=3,"
            " initial_delay=0, jitter=0, ConnectionError)) > with_circuit_breaker("
            "failure_threshold=5) > with_bulkhead(64) > with_timeout_manager(2); its "
            "timeouts are asyncio.wait_for (a task per call)"
        ),
        (
            "hand-built: `with anyio.fail_after(10): async for attempt in tenacity."
            "AsyncRetrying(stop=stop_after_attempt(3)): with attempt, pybreaker.calling(): "
            "async with anyio.CapacityLimiter(64): with anyio.fail_after(2): ...`"
        ),
        (
            "fastest peer full stack: in each round, the fastest of the peers' stacks above "
            "(not the hand-built one) in that round"
        ),
    ),
    "stacks, fail-once path": (
        (
            "attempt 1 raises ConnectionError, attempt 2 returns; the 'bare call' is a "
            "hand-written try/except that calls again; every retrier waits 0 s"
        ),
        (
            "resilient: Timeout(10) > Retry(backoff=Backoff.constant(0), budget=None) > "
            "CircuitBreaker(window=CountWindow(100), failure_rate=0.75) > Bulkhead(64) > "
            "Timeout(2): half of all attempts fail here, which the default budget and a "
            "50 % breaker exist to stop (see http_transport.py's probe)"
        ),
        (
            "peers: the same stacks as on the success path, pyresilience's sliding window "
            "at failure_rate_threshold=0.75; the consecutive-failure breakers (5 in a row) "
            "never trip on this path"
        ),
    ),
    "all": (
        (
            "every consecutive-failure breaker trips after 5 failures in a row; every peer "
            "retrier makes at most 3 attempts with 0 s between them (no retry happens here)"
        ),
        (
            "instrumentation off: resilient set_hooks([]); the peers log nothing on the "
            "success path by default and are given no listeners"
        ),
        (
            "every contender is built inside the event loop that times it (hyx's @timeout "
            "binds the running loop when it decorates)"
        ),
    ),
}


# --- the work ---------------------------------------------------------------


async def work() -> int:
    return 1


# --- the contenders ---------------------------------------------------------


def build_breakers(fn: Callable[[], Awaitable[int]] = work) -> list[Contender]:
    contenders = [Contender(BARE, fn)]

    def add(name: str, call: Callable[[], Awaitable[int]]) -> None:
        contenders.append(Contender(name, call))

    count_breaker = rs.CircuitBreaker(window=rs.CountWindow(100), failure_rate=0.5, min_calls=20)
    add(RS_BREAKER, rs.Pipeline(count_breaker)(fn))
    add(RS_BREAKER_TIME, rs.Pipeline(rs.CircuitBreaker())(fn))
    add(
        RS_BREAKER_CONSECUTIVE,
        rs.Pipeline(rs.CircuitBreaker(window=rs.ConsecutiveFailures(5)))(fn),
    )
    add(HYX_BREAKER, hyx.circuitbreaker.consecutive_breaker(failure_threshold=5)(fn))

    breaker = pybreaker.CircuitBreaker(fail_max=5)

    async def pybreaker_call() -> int:
        with breaker.calling():
            return await fn()

    add(PYBREAKER, pybreaker_call)
    add(PURGATORY, purgatory.AsyncCircuitBreakerFactory(default_threshold=5)("bench")(fn))
    add(AIOBREAKER, aiobreaker.CircuitBreaker(fail_max=5)(fn))
    add(
        AIORES_BREAKER,
        aioresilience.with_circuit_breaker(
            aioresilience.CircuitBreaker(
                name="bench-breaker", config=aioresilience.CircuitConfig(failure_threshold=5)
            )
        )(fn),
    )
    add(PYRES_BREAKER, pyresilience.resilient(circuit_breaker=_pyres_breaker_config())(fn))
    add(
        CIRCUITBREAKER,
        circuitbreaker.CircuitBreaker(failure_threshold=5, name="bench-circuitbreaker")(fn),
    )
    return contenders


def _pyres_breaker_config(failure_rate: float = 0.5) -> pyresilience.CircuitBreakerConfig:
    return pyresilience.CircuitBreakerConfig(
        sliding_window_size=100, failure_rate_threshold=failure_rate, minimum_calls=20
    )


def build_limiters(fn: Callable[[], Awaitable[int]] = work) -> list[Contender]:
    limiter = aiolimiter.AsyncLimiter(max_rate=1e9, time_period=1)

    async def aiolimiter_call() -> int:
        async with limiter:
            return await fn()

    return [
        Contender(BARE, fn),
        Contender(RS_LIMITER, rs.Pipeline(rs.RateLimiter(1e9, burst=1000))(fn)),
        Contender(AIOLIMITER, aiolimiter_call),
    ]


def build_bulkheads(fn: Callable[[], Awaitable[int]] = work) -> list[Contender]:
    contenders = [Contender(BARE, fn)]

    def add(name: str, call: Callable[[], Awaitable[int]]) -> None:
        contenders.append(Contender(name, call))

    semaphore = asyncio.Semaphore(64)

    async def semaphore_call() -> int:
        async with semaphore:
            return await fn()

    add(SEMAPHORE, semaphore_call)
    limiter = anyio.CapacityLimiter(64)

    async def limiter_call() -> int:
        async with limiter:
            return await fn()

    add(ANYIO_LIMITER, limiter_call)
    add(RS_BULKHEAD, rs.Pipeline(rs.Bulkhead(limit=64))(fn))
    add(HYX_BULKHEAD, hyx.bulkhead.bulkhead(max_concurrency=64, max_capacity=64)(fn))
    add(
        AIORES_BULKHEAD,
        aioresilience.with_bulkhead(
            aioresilience.Bulkhead(
                name="bench-bulkhead", config=aioresilience.BulkheadConfig(max_concurrent=64)
            )
        )(fn),
    )
    add(
        PYRES_BULKHEAD,
        pyresilience.resilient(bulkhead=pyresilience.BulkheadConfig(max_concurrent=64))(fn),
    )
    return contenders


async def flaky() -> int:
    """Fails when ``overhead._fail_next`` is set (the fail-once batch sets it per call)."""
    if _fail_next[0]:
        _fail_next[0] = False
        raise ConnectionError("first attempt fails")
    return 1


def build_stacks(
    *, fail_once: bool = False, fn: Callable[[], Awaitable[int]] | None = None
) -> list[Contender]:
    if fn is None:
        fn = flaky if fail_once else work

    async def hand_written() -> int:
        try:
            return await fn()
        except ConnectionError:
            return await fn()

    contenders = [Contender(BARE, hand_written if fail_once else fn)]

    def add(name: str, call: Callable[[], Awaitable[int]]) -> None:
        contenders.append(Contender(name, call))

    if fail_once:
        retry = rs.Retry(backoff=rs.Backoff.constant(0), budget=None)
        breaker = rs.CircuitBreaker(window=rs.CountWindow(100), failure_rate=0.75)
    else:
        retry = rs.Retry()
        breaker = rs.CircuitBreaker(window=rs.CountWindow(100))
    add(
        RS_STACK,
        rs.Pipeline(rs.Timeout(10), retry, breaker, rs.Bulkhead(limit=64), rs.Timeout(2))(fn),
    )

    # hyx counts retries, not attempts: attempts=2 is 3 attempts in all.
    def hyx_retry() -> Callable[[Any], Any]:
        return hyx.retry.retry(on=ConnectionError, attempts=2, backoff=0)

    add(
        HYX_STACK,
        hyx.timeout.timeout(10)(
            hyx_retry()(
                hyx.circuitbreaker.consecutive_breaker(failure_threshold=5)(
                    hyx.bulkhead.bulkhead(max_concurrency=64, max_capacity=64)(
                        hyx.timeout.timeout(2)(fn)
                    )
                )
            )
        ),
    )

    async def hyx_attempt() -> int:
        async with hyx.timeout.timeout(2):
            return await fn()

    hyx_inner = hyx_retry()(
        hyx.circuitbreaker.consecutive_breaker(failure_threshold=5)(
            hyx.bulkhead.bulkhead(max_concurrency=64, max_capacity=64)(hyx_attempt)
        )
    )

    async def hyx_cm_stack() -> int:
        async with hyx.timeout.timeout(10):
            return await hyx_inner()  # type: ignore[no-any-return]

    add(HYX_STACK_CM, hyx_cm_stack)

    def pyres_stack() -> Callable[[Any], Any]:
        return pyresilience.resilient(
            timeout=pyresilience.TimeoutConfig(seconds=2, per_attempt=True),
            retry=pyresilience.RetryConfig(
                max_attempts=3, delay=0, jitter=False, retry_on=(ConnectionError,)
            ),
            circuit_breaker=_pyres_breaker_config(0.75 if fail_once else 0.5),
            bulkhead=pyresilience.BulkheadConfig(max_concurrent=64),
        )

    add(PYRES_STACK, pyres_stack()(fn))
    total = pyresilience.TimeoutConfig(seconds=10, per_attempt=False)
    add(PYRES_STACK_NESTED, pyresilience.resilient(timeout=total)(pyres_stack()(fn)))

    aio = aioresilience
    aio_retry = aio.RetryPolicy(
        config=aio.RetryConfig(
            max_attempts=3, initial_delay=0, jitter=0, retry_on_exceptions=(ConnectionError,)
        )
    )
    aio_breaker = aio.CircuitBreaker(
        name="bench-stack-breaker", config=aio.CircuitConfig(failure_threshold=5)
    )
    aio_bulkhead = aio.Bulkhead(
        name="bench-stack-bulkhead", config=aio.BulkheadConfig(max_concurrent=64)
    )
    add(
        AIORES_STACK,
        aio.with_timeout_manager(aio.TimeoutManager(config=aio.TimeoutConfig(timeout=10)))(
            aio.with_retry(aio_retry)(
                aio.with_circuit_breaker(aio_breaker)(
                    aio.with_bulkhead(aio_bulkhead)(
                        aio.with_timeout_manager(
                            aio.TimeoutManager(config=aio.TimeoutConfig(timeout=2))
                        )(fn)
                    )
                )
            )
        ),
    )

    stop = tenacity.stop_after_attempt(3)
    breaker = pybreaker.CircuitBreaker(fail_max=5)
    limiter = anyio.CapacityLimiter(64)

    async def hand_built() -> int:
        result = 0
        with anyio.fail_after(10):
            # A new AsyncRetrying per call, as in tenacity's docs (it keeps per-call state).
            async for attempt in tenacity.AsyncRetrying(stop=stop):
                with attempt, breaker.calling():
                    async with limiter:
                        with anyio.fail_after(2):
                            result = await fn()
        return result

    add(HAND_STACK, hand_built)
    return contenders


SECTIONS: tuple[tuple[str, str, str, Callable[[], list[Contender]]], ...] = (
    ("breakers", "Circuit breakers, closed, success path", "success", build_breakers),
    ("bulkheads", "Bulkheads, permits free, success path", "success", build_bulkheads),
    ("limiters", "Rate limiters, never limiting, success path", "success", build_limiters),
    ("stacks", "Full stacks, success path", "success", build_stacks),
    (
        FAIL_ONCE,
        "Full stacks, fail-once path (attempt 1 raises, attempt 2 returns)",
        "fail_once",
        lambda: build_stacks(fail_once=True),
    ),
    # The same around an httpx client (MockTransport, 200 at once): information, no
    # targets; overhead.py's --calls / 50 calls per batch.
    (
        "breakers_httpx",
        "Circuit breakers around an httpx client",
        "success",
        lambda: build_breakers(httpx_work()),
    ),
    (
        "bulkheads_httpx",
        "Bulkheads around an httpx client",
        "success",
        lambda: build_bulkheads(httpx_work()),
    ),
    (
        "limiters_httpx",
        "Rate limiters around an httpx client",
        "success",
        lambda: build_limiters(httpx_work()),
    ),
    (
        "stacks_httpx",
        "Full stacks around an httpx client",
        "success",
        lambda: build_stacks(fn=httpx_work()),
    ),
    (
        f"{FAIL_ONCE}_httpx",
        "Full stacks around an httpx client, fail-once path (the mock raises once)",
        "fail_once",
        lambda: build_stacks(fail_once=True, fn=httpx_work(fail=_fail_next)),
    ),
)


# --- reporting --------------------------------------------------------------


def _reference_samples(by_name: dict[str, Contender], ref: str) -> list[float]:
    if ref == FASTEST_PEER_STACK:
        peers = [by_name[name].samples for name in PEER_STACKS]
        return [min(column) for column in zip(*peers, strict=True)]
    return by_name[ref].samples


def _ratio_list(what: list[float], ref: list[float]) -> list[float]:
    return [x / y for x, y in zip(what, ref, strict=True)]


def _targets(section: str, by_name: dict[str, Contender]) -> list[dict[str, Any]]:
    results = []
    for where, what, ref, limit in TARGETS:
        if where != section:
            continue
        ratios = _ratio_list(by_name[what].samples, _reference_samples(by_name, ref))
        result: dict[str, Any] = {
            "section": section,
            "what": what,
            "reference": ref,
            **judge(ratios, limit),
        }
        if ref == FASTEST_PEER_STACK:
            fastest = [
                min(PEER_STACKS, key=lambda name, i=i: by_name[name].samples[i])
                for i in range(len(ratios))
            ]
            result["fastest_peer_by_round"] = fastest
        results.append(result)
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
        if "fastest_peer_by_round" in r:
            counts: dict[str, int] = {}
            for name in r["fastest_peer_by_round"]:
                counts[name] = counts.get(name, 0) + 1
            which = ", ".join(f"{name} ({n})" for name, n in counts.items())
            print(f"        fastest peer stack, rounds won: {which}")


def _other_ratios(section: str, by_name: dict[str, Contender]) -> list[dict[str, Any]]:
    results = []
    for where, what, ref in OTHER_RATIOS:
        if where == section:
            ratios = _ratio_list(by_name[what].samples, _reference_samples(by_name, ref))
            results.append(
                {
                    "section": section,
                    "what": what,
                    "reference": ref,
                    "ratio_median": statistics.median(ratios),
                    "ratio_min": min(ratios),
                    "ratio_max": max(ratios),
                }
            )
    return results


def _print_other_ratios(results: list[dict[str, Any]]) -> None:
    print("\nOther comparisons (information, not targets; per-round ratio, median [min-max]):")
    for r in results:
        print(
            f"  {r['what']} / {r['reference']}: {r['ratio_median']:.3f}x "
            f"[{r['ratio_min']:.3f}-{r['ratio_max']:.3f}]"
        )


# --- main -------------------------------------------------------------------


async def _run_section(
    build: Callable[[], list[Contender]], path: str, rounds: int, calls: int, rng: random.Random
) -> list[Contender]:
    contenders = build()  # inside the loop that times them
    await measure(contenders, path, rounds, calls, rng)
    return contenders


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv, rounds=21, calls=5000)

    set_hooks([])  # instrumentation off, so logging does not dominate the figures

    info = machine_info()
    info["versions"] = {"resilient": rs.__version__} | {
        name: info["versions"].get(name) or _version(name) for name in PEERS
    }
    print("resilient policies benchmark: breakers, bulkheads, full stacks")
    print(f"python      {info['python']}")
    print(f"platform    {info['platform']} ({info['implementation']})")
    print(f"cpus        {info['cpu_count']} (usable: {info['cpus_usable']})")
    print(f"loadavg     {info['loadavg']}")
    print(f"event loop  {info['event_loop']}")
    print("versions    " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print(f"method      {args.rounds} rounds x {args.calls:,} calls per contender, shuffled")
    print("            order each round; ratios taken per round, then the median")
    print("config")
    for section, notes in CONFIG_NOTES.items():
        print(f"  {section}:")
        for note in notes:
            print(f"  - {note}")

    rng = random.Random(args.seed)
    started = time.perf_counter()
    sections: dict[str, dict[str, Any]] = {}
    target_results: list[dict[str, Any]] = []
    other_results: list[dict[str, Any]] = []
    for section, title, path, build in SECTIONS:
        calls = args.calls // HTTPX_CALLS_DIVISOR if section.endswith("_httpx") else args.calls
        contenders = asyncio.run(_run_section(build, path, args.rounds, max(1, calls), rng))
        summary = _summary(contenders)
        sections[section] = summary
        _print_table(
            f"{title} (ns per call; x bare = per-round ratio to the bare call)",
            contenders,
            summary,
            calls,
        )
        by_name = {c.name: c for c in contenders}
        target_results += _targets(section, by_name)
        other_results += _other_ratios(section, by_name)
    _print_targets(target_results)
    _print_other_ratios(other_results)

    info["loadavg_end"] = _loadavg()
    elapsed = time.perf_counter() - started
    print(f"\nloadavg at end {info['loadavg_end']}; measured in {elapsed:.0f} s")
    print("Figures are from one run on one machine; compare ratios, not absolute ns.")

    if args.json:
        doc = {
            "benchmark": "policies",
            "machine": info,
            "rounds": args.rounds,
            "calls": args.calls,
            "seed": args.seed,
            "config": {k: list(v) for k, v in CONFIG_NOTES.items()},
            "sections": sections,
            "targets": target_results,
            "other_ratios": other_results,
            "elapsed_seconds": elapsed,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
