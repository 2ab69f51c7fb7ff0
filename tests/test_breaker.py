"""CircuitBreaker: windows, thresholds, half-open, open durations, keys, manual control."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from hypothesis import given, settings, strategies as st

import resilient as rs
from resilient._clock import now, sleep
from resilient.instrumentation import Hook
from resilient.testing import run

pytestmark = pytest.mark.anyio

CLOSED, OPEN, HALF_OPEN = rs.CircuitState.CLOSED, rs.CircuitState.OPEN, rs.CircuitState.HALF_OPEN


async def ok() -> str:
    return "ok"


async def fail() -> str:
    raise ConnectionError("down")


async def call(pipeline: rs.Pipeline, fn: Any = ok) -> str:
    """Run fn; return 'ok', 'failed' or 'rejected'."""
    try:
        return await pipeline.run(fn)
    except rs.CircuitOpenError:
        return "rejected"
    except ConnectionError:
        return "failed"


def breaker(**options: Any) -> rs.CircuitBreaker:
    options.setdefault("window", rs.CountWindow(5))
    options.setdefault("min_calls", 5)
    options.setdefault("open_for", 10.0)
    return rs.CircuitBreaker(**options)


@pytest.mark.parametrize(
    ("failures", "successes", "state"), [(3, 2, OPEN), (2, 3, CLOSED), (5, 0, OPEN)]
)
async def test_count_window_of_five_at_fifty_percent(
    failures: int, successes: int, state: rs.CircuitState
) -> None:
    """resilience4j's case: window 5, threshold 50 %: 3 failures + 2 successes open it."""
    cb = breaker(failure_rate=0.5)
    pipeline = rs.Pipeline(cb, hooks=[])
    for fn in [ok] * successes + [fail] * failures:
        await call(pipeline, fn)
    assert cb.state() is state


async def test_nothing_is_judged_before_min_calls() -> None:
    cb = breaker(window=rs.CountWindow(10), min_calls=6)
    pipeline = rs.Pipeline(cb, hooks=[])
    for _ in range(5):
        assert await call(pipeline, fail) == "failed"
    assert cb.state() is CLOSED
    assert await call(pipeline, fail) == "failed"
    assert cb.state() is OPEN


async def test_only_the_last_size_calls_count() -> None:
    """Old failures slide out of a count window."""
    cb = breaker(window=rs.CountWindow(4), min_calls=4, failure_rate=0.75)
    pipeline = rs.Pipeline(cb, hooks=[])
    for fn in [fail, fail, ok, ok, ok, fail, fail]:
        await call(pipeline, fn)
    # The last four are ok, ok, fail, fail: 50 %, under the 75 % threshold.
    assert cb.statistics().calls == 4
    assert cb.statistics().failures == 2
    assert cb.state() is CLOSED


async def test_an_open_circuit_rejects_and_says_for_how_long() -> None:
    cb = breaker(open_for=10.0, name="db")
    pipeline = rs.Pipeline(cb, hooks=[])
    for _ in range(5):
        await call(pipeline, fail)
    opened = now()
    await sleep(4)
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(rs.CircuitOpenError) as info:
        await pipeline.run(counted)
    assert calls == 0
    assert info.value.retry_after == pytest.approx(opened + 10 - now())
    assert info.value.name == "db"
    assert cb.statistics().rejected == 1
    assert cb.statistics().retry_after == pytest.approx(6.0)


async def test_half_open_admits_the_permitted_probes_and_rejects_the_rest() -> None:
    """resilience4j's case: half-open with 4 permitted calls rejects the 5th."""
    cb = breaker(half_open_calls=4, open_for=1.0)
    pipeline = rs.Pipeline(cb, hooks=[])
    for _ in range(5):
        await call(pipeline, fail)
    await sleep(1.0)
    release = anyio.Event()
    results: list[str] = []

    async def probe() -> str:
        await release.wait()
        return "ok"

    async def run_probe() -> None:
        results.append(await call(pipeline, probe))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(run_probe)
        await sleep(0.1)
        assert cb.state() is HALF_OPEN
        with pytest.raises(rs.CircuitOpenError, match="half-open and all its probe") as info:
            await pipeline.run(ok)
        assert info.value.retry_after is None  # unknown: an outer Retry uses its backoff
        assert info.value.state == "half_open"
        release.set()
    assert results == ["ok"] * 4
    assert cb.state() is CLOSED


@pytest.mark.parametrize(
    ("probes", "state"),
    [([ok, ok, ok, fail], CLOSED), ([ok, ok, fail, fail], OPEN), ([fail], OPEN), ([ok], CLOSED)],
)
async def test_probes_close_or_reopen_by_the_failure_rate(
    probes: list[Any], state: rs.CircuitState
) -> None:
    cb = breaker(half_open_calls=len(probes), failure_rate=0.5, open_for=1.0)
    pipeline = rs.Pipeline(cb, hooks=[])
    for _ in range(5):
        await call(pipeline, fail)
    await sleep(1.0)
    for fn in probes:
        await call(pipeline, fn)
    assert cb.state() is state


async def test_open_duration_grows_with_a_backoff_and_resets_on_close() -> None:
    durations: list[float | None] = []
    cb = breaker(
        open_for=rs.Backoff.exponential(1.0, cap=3.0, jitter="none"),
        listeners=[lambda t: durations.append(t.open_for) if t.new is OPEN else None],
    )
    pipeline = rs.Pipeline(cb, hooks=[])
    for _ in range(5):
        await call(pipeline, fail)
    for _ in range(3):  # failed probes reopen it for longer each time, up to the cap
        await sleep(cb.statistics().retry_after)
        await call(pipeline, fail)
    assert durations == [1.0, 2.0, 3.0, 3.0]
    await sleep(3.0)
    await call(pipeline, ok)
    assert cb.state() is CLOSED
    for _ in range(5):
        await call(pipeline, fail)
    assert durations[-1] == 1.0


async def test_half_open_max_wait_reopens_a_circuit_whose_probes_never_report() -> None:
    cb = breaker(open_for=1.0, half_open_max_wait=5.0)
    pipeline = rs.Pipeline(cb, hooks=[])
    for _ in range(5):
        await call(pipeline, fail)
    await sleep(1.0)

    async def hang() -> str:
        await sleep(100)
        return "late"

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, pipeline, hang)
        await sleep(1)
        assert await call(pipeline) == "rejected"  # the probe slot is taken
        await sleep(5)
        assert await call(pipeline) == "rejected"  # max wait passed: open again
        assert cb.state() is OPEN
        tg.cancel_scope.cancel()


async def test_time_window_forgets_old_failures() -> None:
    cb = rs.CircuitBreaker(window=rs.TimeWindow(10.0, buckets=10), min_calls=4, failure_rate=0.5)
    pipeline = rs.Pipeline(cb, hooks=[])
    for _ in range(3):
        await call(pipeline, fail)
    await sleep(11)  # those failures have left the window
    assert cb.statistics().calls == 0
    await call(pipeline, fail)
    for _ in range(3):
        await call(pipeline, ok)
    assert cb.state() is CLOSED  # 1 failure of 4
    for _ in range(2):
        await call(pipeline, fail)
    assert cb.state() is OPEN  # 3 of 6


async def test_consecutive_failures_mode() -> None:
    cb = rs.CircuitBreaker(window=rs.ConsecutiveFailures(3), open_for=1.0)
    pipeline = rs.Pipeline(cb, hooks=[])
    for fn in [fail, fail, ok, fail, fail]:
        await call(pipeline, fn)
    assert cb.state() is CLOSED
    await call(pipeline, fail)
    assert cb.state() is OPEN


async def test_slow_calls_open_the_circuit() -> None:
    cb = breaker(slow_call_duration=1.0, slow_call_rate=0.6)
    pipeline = rs.Pipeline(cb, hooks=[])

    async def slow() -> str:
        await sleep(1.5)
        return "ok"

    for fn in [ok, ok, slow, slow]:
        await call(pipeline, fn)
    assert cb.state() is CLOSED
    await call(pipeline, slow)
    assert cb.state() is OPEN
    assert (cb.statistics().slow_calls, cb.statistics().failures) == (3, 0)


async def test_what_counts_as_failure_is_its_own_predicate() -> None:
    """on_result judges results; exceptions it does not match count as successes."""
    cb = breaker(on=ConnectionError, on_result=lambda status: status >= 500)
    pipeline = rs.Pipeline(cb, hooks=[])

    async def status(code: int) -> int:
        return code

    async def bad_input() -> None:
        raise ValueError("bad input")

    for _ in range(5):
        with pytest.raises(ValueError, match="bad input"):
            await pipeline.run(bad_input)
    assert cb.statistics().failures == 0
    for _ in range(3):
        await pipeline.run(status, 503)
    assert cb.state() is OPEN


async def test_a_cancelled_probe_frees_its_slot() -> None:
    cb = breaker(open_for=1.0)
    pipeline = rs.Pipeline(cb, hooks=[])
    for _ in range(5):
        await call(pipeline, fail)
    await sleep(1)

    async def hang() -> str:
        await sleep(100)
        return "x"

    with anyio.move_on_after(1):
        await pipeline.run(hang)
    assert cb.state() is HALF_OPEN
    assert await call(pipeline) == "ok"
    assert cb.state() is CLOSED


async def test_a_call_from_before_the_trip_does_not_count_as_a_probe() -> None:
    cb = breaker(open_for=1.0)
    pipeline = rs.Pipeline(cb, hooks=[])

    async def slow_ok() -> str:
        await sleep(5)
        return "ok"

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, pipeline, slow_ok)  # admitted while closed
        await sleep(0.1)
        for _ in range(5):
            await call(pipeline, fail)
        await sleep(1)
        assert await call(pipeline, fail) == "failed"  # the probe fails: open again
        assert cb.state() is OPEN
    # slow_ok finished at t=5 while open: it neither closed the circuit nor counted
    assert cb.state() is OPEN


async def test_keyed_breakers_are_independent_and_bounded() -> None:
    cb = breaker(key=lambda ctx: ctx.args[0], max_keys=2)
    pipeline = rs.Pipeline(cb, hooks=[])

    async def host(name: str) -> str:
        if name == "bad":
            raise ConnectionError
        return name

    for _ in range(5):
        with pytest.raises(ConnectionError):
            await pipeline.run(host, "bad")
    assert await pipeline.run(host, "good") == "good"
    assert cb.state("bad") is OPEN
    assert cb.state("good") is CLOSED
    with pytest.raises(rs.CircuitOpenError, match=r"circuit \"'bad'\" is open"):
        await pipeline.run(host, "bad")
    assert await pipeline.run(host, "good") == "good"  # now "bad" is the least recent
    assert await pipeline.run(host, "third") == "third"  # so it is the one evicted
    assert cb.statistics("good").keys == 2
    assert cb.state("bad") is CLOSED  # forgotten, starts closed


async def test_isolate_reset_and_disable() -> None:
    transitions: list[tuple[rs.CircuitState, rs.CircuitState]] = []
    cb = breaker(listeners=[lambda t: transitions.append((t.old, t.new))])
    pipeline = rs.Pipeline(cb, hooks=[])
    await call(pipeline)
    cb.isolate()
    with pytest.raises(rs.CircuitOpenError, match="is isolated") as info:
        await pipeline.run(ok)
    assert info.value.retry_after is None
    assert cb.statistics().retry_after == math.inf
    cb.reset()
    cb.reset()  # already closed: no transition to report
    assert await call(pipeline) == "ok"
    cb.disable()
    for _ in range(10):
        assert await call(pipeline, fail) == "failed"
    assert cb.state() is rs.CircuitState.DISABLED
    assert cb.statistics().failures == 0
    cb.reset()
    assert transitions == [
        (CLOSED, rs.CircuitState.ISOLATED),
        (rs.CircuitState.ISOLATED, CLOSED),
        (CLOSED, rs.CircuitState.DISABLED),
        (rs.CircuitState.DISABLED, CLOSED),
    ]


async def test_pipeline_hooks_and_listeners_hear_transitions(logs: list[dict[str, Any]]) -> None:
    heard: list[rs.CircuitTransition] = []

    class Listen(Hook):
        def on_circuit_transition(self, transition: rs.CircuitTransition) -> None:
            heard.append(transition)

    cb = breaker(name="db", open_for=2.0)
    pipeline = rs.Pipeline(cb, hooks=[Listen(), rs.instrumentation.StructlogHook()])
    start = now()
    for _ in range(5):
        await call(pipeline, fail)
    await sleep(2)
    await call(pipeline)
    assert [(t.old, t.new) for t in heard] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
    assert heard[0] == rs.CircuitTransition("db", None, CLOSED, OPEN, start, 2.0)
    events = [e for e in logs if e["event"] == "resilient.circuit_transition"]
    assert [(e["new"], e["log_level"]) for e in events] == [
        ("open", "warning"),
        ("half_open", "info"),
        ("closed", "info"),
    ]


async def test_an_outer_retry_waits_out_the_open_circuit() -> None:
    cb = breaker(open_for=3.0)
    attempts: list[float] = []

    async def recovering() -> str:
        attempts.append(now())
        if len(attempts) <= 5:
            raise ConnectionError
        return "ok"

    pipeline = rs.Pipeline(
        rs.Retry(
            attempts=8,
            on=(ConnectionError, rs.CircuitOpenError),
            backoff=rs.Backoff.constant(0),
            budget=None,
        ),
        cb,
        hooks=[],
    )
    start = now()
    assert await pipeline.run(recovering) == "ok"
    assert attempts[-1] - start == pytest.approx(3.0)  # waited exactly while it was open


def test_describe() -> None:
    assert rs.CircuitBreaker().describe() == (
        "CircuitBreaker(TimeWindow(30, buckets=10), failure_rate=0.5, min_calls=20, open_for=15)"
    )
    assert rs.CircuitBreaker(
        window=rs.ConsecutiveFailures(3), name="db", key=lambda _: 1, slow_call_duration=2
    ).describe() == (
        "CircuitBreaker('db', ConsecutiveFailures(3), open_for=15, keyed, max_keys=1024)"
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"failure_rate": 0},
            ValueError,
            r"CircuitBreaker: failure_rate must be in \(0, 1\], got 0",
        ),
        ({"failure_rate": 1.5}, ValueError, r"failure_rate must be in \(0, 1\], got 1.5"),
        ({"failure_rate": math.nan}, ValueError, r"failure_rate must be in \(0, 1\], got nan"),
        ({"slow_call_rate": "x"}, TypeError, r"slow_call_rate must be a number in \(0, 1\]"),
        ({"min_calls": 0}, ValueError, r"CircuitBreaker: min_calls must be an int >= 1, got 0"),
        ({"half_open_calls": True}, TypeError, r"half_open_calls must be an int >= 1, got True"),
        ({"max_keys": 0}, ValueError, r"max_keys must be an int >= 1"),
        ({"open_for": 0}, ValueError, r"CircuitBreaker: open_for must be a finite number > 0"),
        ({"open_for": math.inf}, ValueError, r"open_for must be a finite number > 0"),
        (
            {"slow_call_duration": -1},
            ValueError,
            r"slow_call_duration must be a finite number > 0 or None",
        ),
        ({"half_open_max_wait": 0}, ValueError, r"half_open_max_wait must be a finite number > 0"),
        (
            {"window": 30},
            TypeError,
            r"window must be a CountWindow, TimeWindow or ConsecutiveFailures",
        ),
        ({"key": "host"}, TypeError, r"CircuitBreaker: key must be callable or None"),
        ({"name": 5}, TypeError, r"CircuitBreaker: name must be a str or None"),
        ({"listeners": [1]}, TypeError, r"listeners\[0\] must be callable"),
        ({"listeners": print}, TypeError, r"listeners must be a sequence of callables"),
        (
            {"window": rs.CountWindow(10), "min_calls": 11},
            ValueError,
            r"min_calls must be <= the CountWindow size \(10\), got 11: the circuit could never",
        ),
        (
            {"open_for": rs.Backoff.constant(0)},
            ValueError,
            r"open_for as a Backoff needs base > 0",
        ),
        ({"on": ()}, ValueError, r"on must name at least one exception class"),
    ],
)
def test_invalid_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        rs.CircuitBreaker(**options)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: rs.CountWindow(0), r"CountWindow: size must be an int >= 1, got 0"),
        (lambda: rs.TimeWindow(0), r"TimeWindow: seconds must be a finite number > 0, got 0"),
        (lambda: rs.TimeWindow(10, buckets=0), r"TimeWindow: buckets must be an int >= 1"),
        (lambda: rs.ConsecutiveFailures(0), r"ConsecutiveFailures: threshold must be an int >= 1"),
    ],
)
def test_invalid_windows_are_refused(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_listeners_given_as_a_generator_are_kept() -> None:
    heard: list[rs.CircuitTransition] = []
    cb = rs.CircuitBreaker(listeners=(f for f in [heard.append]))
    cb.isolate()
    assert [t.new for t in heard] == [rs.CircuitState.ISOLATED]


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 8), outcomes=st.lists(st.booleans(), max_size=60))
def test_a_count_window_holds_exactly_the_last_calls(size: int, outcomes: list[bool]) -> None:
    """Through the policy (whose hot path may skip a window full of successes), the
    window always holds the last *size* outcomes."""
    cb = rs.CircuitBreaker(window=rs.CountWindow(size), min_calls=size, failure_rate=1.0)
    pipeline = rs.Pipeline(cb, hooks=[])

    async def main() -> None:
        seen: list[bool] = []
        for failed in outcomes:
            if cb.state() is not CLOSED:
                return
            await call(pipeline, fail if failed else ok)
            seen.append(failed)
            if cb.state() is CLOSED:
                last = seen[-size:]
                stats = cb.statistics()
                assert (stats.calls, stats.failures) == (len(last), sum(last))

    run(main)
