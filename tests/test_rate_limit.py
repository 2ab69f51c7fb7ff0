"""RateLimiter: GCRA admissions in virtual time, waits, keys, cancellation, the rate bound."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from hypothesis import given, settings, strategies as st

import resilient as rs
from resilient import RateLimiter, RateLimiterStatistics
from resilient._clock import now, sleep
from resilient.policies import _rate_limit
from resilient.testing import run

pytestmark = pytest.mark.anyio

# Virtual seconds after which a test that lost a permit fails instead of hanging for good.
HANG = 3600


class Recorder:
    """The wrapped call: records when it ran, counting from the recorder's creation.

    Times are relative because trio's clock runs on from test to test.
    """

    def __init__(self) -> None:
        self.origin = now()
        self.times: list[float] = []

    async def __call__(self, *_: object) -> str:
        self.times.append(now() - self.origin)
        return "ok"

    def elapsed(self) -> float:
        return now() - self.origin


async def test_a_burst_runs_at_once_then_one_call_per_interval() -> None:
    """rate 10/s, burst 5: twelve calls at once run at 0 (x5), 0.1, 0.2, ..., 0.7 s."""
    pipeline = rs.Pipeline(RateLimiter(10, burst=5, max_wait=10))
    calls = Recorder()
    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(pipeline.run, calls)
    expected = [0.0] * 5 + [0.1 * i for i in range(1, 8)]
    assert calls.times == [pytest.approx(t, abs=1e-9) for t in expected]


async def test_without_waiting_calls_beyond_the_burst_are_rejected_until_their_slot() -> None:
    pipeline = rs.Pipeline(RateLimiter(10, burst=5))
    calls = Recorder()
    for _ in range(5):
        await pipeline.run(calls)
    with pytest.raises(rs.RateLimitedError) as info:
        await pipeline.run(calls)
    assert info.value.retry_after == pytest.approx(0.1)
    await sleep(0.1)
    await pipeline.run(calls)  # one slot has come free
    with pytest.raises(rs.RateLimitedError):
        await pipeline.run(calls)
    await sleep(1.0)  # a quiet second refills the whole burst, no more
    for _ in range(5):
        await pipeline.run(calls)
    with pytest.raises(rs.RateLimitedError):
        await pipeline.run(calls)
    assert len(calls.times) == 11


async def test_a_rejection_carries_the_seconds_until_a_slot() -> None:
    """retry_after is exact: the call it refused succeeds when retried that much later."""
    pipeline = rs.Pipeline(RateLimiter(2))  # one call per 0.5 s
    calls = Recorder()
    await pipeline.run(calls)
    await sleep(0.2)
    with pytest.raises(rs.RateLimitedError) as info:
        await pipeline.run(calls)
    assert info.value.retry_after == pytest.approx(0.3)
    assert isinstance(info.value, rs.RejectedError)
    await sleep(0.3)
    assert await pipeline.run(calls) == "ok"
    assert calls.times == [0.0, pytest.approx(0.5)]


async def test_retry_after_counts_the_calls_waiting_ahead() -> None:
    limiter = RateLimiter(1, max_wait=3)
    pipeline = rs.Pipeline(limiter)
    calls = Recorder()
    async with anyio.create_task_group() as tg:
        for _ in range(4):  # admitted at 0; waiting for 1, 2 and 3 s
            tg.start_soon(pipeline.run, calls)
        await anyio.wait_all_tasks_blocked()
        assert limiter.statistics().waiting == 3
        with pytest.raises(rs.RateLimitedError) as info:
            await pipeline.run(calls)
        assert info.value.retry_after == pytest.approx(4.0)
        assert calls.elapsed() == 0.0  # refused at once
    assert calls.times == [0.0, pytest.approx(1.0), pytest.approx(2.0), pytest.approx(3.0)]


async def test_max_wait_waits_for_a_near_slot_then_admits() -> None:
    """rate 1/s, max_wait 2 s: sequential calls wait 1 s each; a 3 s wait is refused."""
    limiter = RateLimiter(1, max_wait=2)
    pipeline = rs.Pipeline(limiter)
    calls = Recorder()
    for _ in range(3):
        await pipeline.run(calls)
    assert calls.times == [0.0, pytest.approx(1.0), pytest.approx(2.0)]
    stats = limiter.statistics()
    assert (stats.admitted, stats.waited, stats.rejected) == (3, 2, 0)


async def test_a_free_slot_is_taken_without_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    """No sleep, not even a checkpoint: the call runs inside an already cancelled scope."""
    slept: list[float] = []

    async def spy(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(_rate_limit, "sleep", spy)
    limiter = RateLimiter(1, burst=3, max_wait=5)
    calls = Recorder()
    with anyio.CancelScope() as scope:
        scope.cancel()
        for _ in range(3):
            await rs.Pipeline(limiter).run(calls)
    assert slept == []
    assert calls.times == [0.0, 0.0, 0.0]


async def test_keys_have_independent_limits() -> None:
    limiter = RateLimiter(1, key=lambda ctx: ctx.args[0])
    pipeline = rs.Pipeline(limiter)
    calls = Recorder()
    assert await pipeline.run(calls, "alice") == "ok"
    assert await pipeline.run(calls, "bob") == "ok"  # alice's call took nothing from bob
    for user in ("alice", "bob"):
        with pytest.raises(rs.RateLimitedError):
            await pipeline.run(calls, user)
    assert limiter.statistics().keys == 2


async def test_the_least_recently_used_key_is_forgotten_and_starts_fresh() -> None:
    limiter = RateLimiter(1, key=lambda ctx: ctx.args[0], max_keys=2)
    pipeline = rs.Pipeline(limiter)
    calls = Recorder()
    await pipeline.run(calls, "a")
    await pipeline.run(calls, "b")
    with pytest.raises(rs.RateLimitedError):
        await pipeline.run(calls, "a")  # refused, but it makes "a" the most recently used
    await pipeline.run(calls, "c")  # a third key: "b" is forgotten
    assert limiter.statistics().keys == 2
    assert await pipeline.run(calls, "b") == "ok"  # fresh again: its burst is back
    with pytest.raises(rs.RateLimitedError):
        await pipeline.run(calls, "c")  # "c" was kept, with its schedule


async def test_a_cancelled_first_waiter_does_not_consume_a_slot() -> None:
    """The waiter next in line is cancelled; the call behind it gets its slot, not the one after."""
    limiter = RateLimiter(1, max_wait=10)
    pipeline = rs.Pipeline(limiter)
    calls = Recorder()

    async def impatient() -> None:
        with anyio.move_on_after(0.5):
            await pipeline.run(calls, "impatient")

    await pipeline.run(calls, "first")
    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as tg:
            tg.start_soon(impatient)
            await sleep(0.25)
            tg.start_soon(pipeline.run, calls, "patient")
    assert calls.times == [0.0, pytest.approx(1.0)]
    stats = limiter.statistics()
    assert (stats.admitted, stats.waiting, stats.waited) == (2, 0, 1)


async def test_a_cancelled_waiter_in_the_middle_of_the_queue_does_not_consume_a_slot() -> None:
    limiter = RateLimiter(1, max_wait=10)
    pipeline = rs.Pipeline(limiter)
    calls = Recorder()

    async def impatient() -> None:
        with anyio.move_on_after(0.5):
            await pipeline.run(calls, "impatient")

    await pipeline.run(calls)
    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as tg:
            tg.start_soon(pipeline.run, calls)  # slot 1 s
            await sleep(0.1)
            tg.start_soon(impatient)  # would have had slot 2 s
            await sleep(0.1)
            tg.start_soon(pipeline.run, calls)  # gets slot 2 s, not 3 s
            await sleep(0.5)
            assert limiter.statistics().waiting == 2
            with pytest.raises(rs.RateLimitedError) as info:  # a probe that will not wait
                await rs.Pipeline(rs.Timeout(1.0), limiter).run(calls)
            assert info.value.retry_after == pytest.approx(3.0 - 0.7)  # slot 3 s: two ahead
    assert calls.times == [0.0, pytest.approx(1.0), pytest.approx(2.0)]


async def test_a_wait_that_would_outlast_the_deadline_is_refused_at_once() -> None:
    """Inside a 1 s Timeout, waiting 2 s for a slot could only end in a timeout."""
    limiter = RateLimiter(0.5, max_wait=10)
    calls = Recorder()
    await rs.Pipeline(limiter).run(calls)
    with pytest.raises(rs.RateLimitedError) as info:
        await rs.Pipeline(rs.Timeout(1.0), limiter).run(calls)
    assert info.value.retry_after == pytest.approx(2.0)
    with pytest.raises(rs.RateLimitedError):  # a slot right at the deadline is too late too
        await rs.Pipeline(rs.Timeout(2.0), limiter).run(calls)
    assert calls.elapsed() == 0.0
    assert await rs.Pipeline(rs.Timeout(3.0), limiter).run(calls) == "ok"
    assert calls.times == [0.0, pytest.approx(2.0)]


async def test_retry_waits_as_long_as_the_rejection_says() -> None:
    pipeline = rs.Pipeline(
        rs.Retry(on=rs.RateLimitedError, backoff=rs.Backoff.constant(0.01), budget=None),
        RateLimiter(4),
    )
    calls = Recorder()
    await pipeline.run(calls)
    await pipeline.run(calls)
    assert calls.times == [0.0, pytest.approx(0.25)]


async def test_statistics_count_what_happened() -> None:
    limiter = RateLimiter(1, burst=2, max_wait=1)
    pipeline = rs.Pipeline(limiter)
    assert limiter.statistics() == RateLimiterStatistics(
        admitted=0, waited=0, rejected=0, waiting=0, keys=1
    )
    calls = Recorder()
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(pipeline.run, calls)
        await sleep(0.5)
        with pytest.raises(rs.RateLimitedError):
            await pipeline.run(calls)
        assert limiter.statistics() == RateLimiterStatistics(
            admitted=2, waited=0, rejected=1, waiting=1, keys=1
        )
    assert limiter.statistics() == RateLimiterStatistics(
        admitted=3, waited=1, rejected=1, waiting=0, keys=1
    )


def test_describe() -> None:
    assert RateLimiter(10, burst=5).describe() == "RateLimiter(rate=10, burst=5)"
    assert RateLimiter(0.5, max_wait=2).describe() == "RateLimiter(rate=0.5, burst=1, max_wait=2)"
    assert RateLimiter(1, key=lambda ctx: ctx.args[0], max_keys=50).describe() == (
        "RateLimiter(rate=1, burst=1, keyed, max_keys=50)"
    )


def test_rate_is_positional_the_rest_keyword_only_and_frozen() -> None:
    limiter = RateLimiter(10)
    assert (limiter.rate, limiter.burst, limiter.max_wait, limiter.key, limiter.max_keys) == (
        10,
        1,
        0.0,
        None,
        10_000,
    )
    with pytest.raises(TypeError):
        RateLimiter(10, 5)  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        limiter.rate = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"rate": 0}, ValueError, r"RateLimiter: rate must be a finite number > 0, got 0$"),
        ({"rate": -1.5}, ValueError, r"RateLimiter: rate must be a finite number > 0, got -1.5$"),
        ({"rate": math.nan}, ValueError, r"RateLimiter: rate must be a finite number > 0, got nan"),
        ({"rate": math.inf}, ValueError, r"RateLimiter: rate must be a finite number > 0, got inf"),
        ({"rate": "10"}, TypeError, r"RateLimiter: rate must be a finite number > 0, got '10'"),
        ({"rate": True}, TypeError, r"RateLimiter: rate must be a finite number > 0, got True"),
        ({"rate": 1, "burst": 0}, ValueError, r"RateLimiter: burst must be an int >= 1, got 0$"),
        (
            {"rate": 1, "burst": 2.5},
            TypeError,
            r"RateLimiter: burst must be an int >= 1, got 2.5 \(float\)",
        ),
        (
            {"rate": 1, "max_wait": -1},
            ValueError,
            r"RateLimiter: max_wait must be a finite number >= 0, got -1$",
        ),
        (
            {"rate": 1, "max_wait": None},
            TypeError,
            r"RateLimiter: max_wait must be a finite number >= 0, got None",
        ),
        (
            {"rate": 1, "key": "user"},
            TypeError,
            r"RateLimiter: key must be a callable taking the Context, or None; got 'user'",
        ),
        (
            {"rate": 1, "max_keys": 0},
            ValueError,
            r"RateLimiter: max_keys must be an int >= 1, got 0$",
        ),
    ],
)
def test_invalid_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """The message names the option, the value and the allowed range."""
    with pytest.raises(error, match=message):
        RateLimiter(**options)


@settings(max_examples=100, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=50),
    burst=st.integers(min_value=1, max_value=8),
    max_wait=st.sampled_from([0.0, 0.05, 0.5, 3.0]),
    calls=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=5),  # arrival, in seconds
            st.none() | st.floats(min_value=0, max_value=1),  # cancelled this much later
        ),
        min_size=1,
        max_size=40,
    ),
    backend=st.sampled_from(["asyncio", "trio"]),
)
def test_admissions_in_any_window_never_exceed_burst_plus_rate_times_its_length(
    rate: float,
    burst: int,
    max_wait: float,
    calls: list[tuple[float, float | None]],
    backend: str,
) -> None:
    """GCRA's bound: for admitted calls at times s <= e, those in [s, e] are <= burst + rate(e - s).

    Calls arrive at any times, some wait, some are cancelled while they wait; the bound
    holds for the times at which calls actually ran (1 us of slack for float rounding).
    """
    limiter = RateLimiter(rate, burst=burst, max_wait=max_wait)
    pipeline = rs.Pipeline(limiter)
    admitted: list[float] = []
    rejections: list[float | None] = []

    async def call() -> None:
        admitted.append(now())

    async def arrive(at: float, patience: float | None) -> None:
        await sleep(at)
        scope = anyio.CancelScope() if patience is None else anyio.move_on_after(patience)
        with scope:
            try:
                await pipeline.run(call)
            except rs.RateLimitedError as exc:
                rejections.append(exc.retry_after)

    async def main() -> RateLimiterStatistics:
        with anyio.fail_after(HANG):
            async with anyio.create_task_group() as tg:
                for at, patience in calls:
                    tg.start_soon(arrive, at, patience)
        return limiter.statistics()

    stats = run(main, backend=backend)  # type: ignore[arg-type]
    admitted.sort()
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= burst + rate * (admitted[j] - start + 1e-6)
    assert all(after is not None and after > 0 for after in rejections)
    assert (stats.admitted, stats.rejected, stats.waiting) == (
        len(admitted),
        len(rejections),
        0,
    )
