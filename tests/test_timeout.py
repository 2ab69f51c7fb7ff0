"""Timeout: total and per attempt, nested, cooperative, on asyncio and trio, in virtual time."""

from __future__ import annotations

import itertools
import math
import sys
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import resilient as rs
from resilient._clock import now, sleep
from resilient.policies._timeout import _RUNNING, _STATE

pytestmark = pytest.mark.anyio


async def test_expiry_raises_our_error_at_the_deadline() -> None:
    """A call that outlives its timeout is cancelled and raises DeadlineExceededError."""
    start = now()

    async def hang() -> None:
        await sleep(3600)

    with pytest.raises(rs.DeadlineExceededError) as info:
        await rs.Pipeline(rs.Timeout(2.0)).run(hang)
    assert now() - start == pytest.approx(2.0)
    assert info.value.timeout == 2.0


async def test_the_error_is_a_builtin_timeout_error() -> None:
    """`except TimeoutError` catches it."""

    async def hang() -> None:
        await sleep(10)

    with pytest.raises(TimeoutError):
        await rs.Pipeline(rs.Timeout(1.0)).run(hang)


async def test_a_quick_call_is_untouched_and_leaves_no_cancellation_behind() -> None:
    """After a call that beat its deadline, nothing fires later in the same task."""

    async def quick() -> str:
        await sleep(0.5)
        return "ok"

    assert await rs.Pipeline(rs.Timeout(1.0)).run(quick) == "ok"
    start = now()
    await sleep(5)  # past the old deadline: must not be cancelled
    assert now() - start == pytest.approx(5.0)


async def test_cleanup_runs_when_the_call_is_cancelled() -> None:
    """Cancellation is cooperative: the callee's finally blocks run."""
    cleaned: list[bool] = []

    async def hang() -> None:
        try:
            await sleep(10)
        finally:
            cleaned.append(True)

    with pytest.raises(rs.DeadlineExceededError):
        await rs.Pipeline(rs.Timeout(1.0)).run(hang)
    assert cleaned == [True]


async def test_inside_retry_it_bounds_each_attempt() -> None:
    """Timeout inside Retry: every attempt gets the full timeout, and timeouts are retried."""
    starts: list[float] = []

    async def slow_then_fast() -> str:
        starts.append(now())
        if len(starts) < 3:
            await sleep(10)
        return "ok"

    pipeline = rs.Pipeline(
        rs.Retry(attempts=3, backoff=rs.Backoff.constant(0.5), budget=None), rs.Timeout(1.0)
    )
    assert await pipeline.run(slow_then_fast) == "ok"
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == [pytest.approx(1.5), pytest.approx(1.5)]  # 1 s timeout + 0.5 s wait


async def test_outside_retry_it_bounds_the_whole_call() -> None:
    """Timeout outside Retry: retries and waits all fit inside one deadline."""
    start = now()
    attempts = 0

    async def slow() -> None:
        nonlocal attempts
        attempts += 1
        await sleep(1.0)
        raise ConnectionError

    pipeline = rs.Pipeline(
        rs.Timeout(2.5), rs.Retry(attempts=10, backoff=rs.Backoff.constant(0.0), budget=None)
    )
    with pytest.raises(rs.DeadlineExceededError):
        await pipeline.run(slow)
    assert now() - start == pytest.approx(2.5)
    assert attempts == 3


@pytest.mark.parametrize(("outer", "inner", "fires_at"), [(1.0, 5.0, 1.0), (5.0, 1.0, 1.0)])
async def test_nested_deadlines_take_the_tighter(
    outer: float, inner: float, fires_at: float
) -> None:
    """Whichever timeout is tighter ends the call, and the context shows its deadline."""
    deadlines: list[float | None] = []

    class Peek:
        async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
            deadlines.append(ctx.deadline)
            return await next_step(ctx)

        def describe(self) -> str:
            return "Peek"

    async def hang() -> None:
        await sleep(100)

    start = now()
    with pytest.raises(rs.DeadlineExceededError) as info:
        await rs.Pipeline(rs.Timeout(outer), rs.Timeout(inner), Peek()).run(hang)
    assert now() - start == pytest.approx(fires_at)
    assert info.value.timeout == min(outer, inner)
    assert deadlines == [pytest.approx(start + fires_at)]


async def test_the_deadline_is_restored_after_the_timeout() -> None:
    """Outside a Timeout the context has no deadline again."""
    deadlines: list[float | None] = []

    class Peek:
        async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
            try:
                return await next_step(ctx)
            finally:
                deadlines.append(ctx.deadline)

        def describe(self) -> str:
            return "Peek"

    async def quick() -> None:
        pass

    await rs.Pipeline(Peek(), rs.Timeout(3)).run(quick)
    assert deadlines == [None]


async def test_an_outside_cancellation_is_not_turned_into_a_timeout() -> None:
    """When an enclosing cancel scope cancels the call, that cancellation propagates."""
    outcome: list[str] = []

    async def hang() -> None:
        await sleep(100)

    async def call() -> None:
        try:
            await rs.Pipeline(rs.Timeout(10)).run(hang)
        except rs.DeadlineExceededError:
            outcome.append("timeout")
        else:
            outcome.append("returned")

    with anyio.move_on_after(1.0) as scope:
        await call()
    assert scope.cancelled_caught
    assert outcome == []


async def test_an_outside_cancellation_at_the_same_moment_still_propagates() -> None:
    """If our timer and an outer scope fire together, the outer cancellation wins."""
    start = now()

    async def hang() -> None:
        await sleep(100)

    with anyio.move_on_after(1.0) as scope:
        await rs.Pipeline(rs.Timeout(1.0)).run(hang)
    # Either the outer scope caught its cancellation, or our timeout raised
    # inside it; never both and never a stray cancellation afterwards.
    assert scope.cancelled_caught
    assert now() - start == pytest.approx(1.0)
    await sleep(1)


async def test_a_swallowed_cancellation_does_not_leak() -> None:
    """A callee that swallows the cancellation returns, and the task is not cancelled later."""

    async def stubborn() -> str:
        try:
            await sleep(10)
        except anyio.get_cancelled_exc_class():
            return "swallowed"
        return "slept"

    result = await rs.Pipeline(rs.Timeout(1.0)).run(stubborn)
    assert result == "swallowed"
    start = now()
    await sleep(2)
    assert now() - start == pytest.approx(2.0)


async def test_the_timeout_hook_fires() -> None:
    """Hooks hear of every expiry, with the timeout and attempt."""
    from resilient.instrumentation import Hook, TimeoutDetails

    heard: list[TimeoutDetails] = []

    class Listen(Hook):
        def on_timeout(self, details: TimeoutDetails) -> None:
            heard.append(details)

    async def hang() -> None:
        await sleep(100)

    with pytest.raises(rs.DeadlineExceededError):
        await rs.Pipeline(rs.Timeout(0.5), name="op", hooks=[Listen()]).run(hang)
    assert heard == [TimeoutDetails(operation="op", timeout=0.5, attempt=1)]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("1", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_invalid_seconds_are_refused(value: object, error: type[Exception]) -> None:
    """The message names the field, the value and the allowed range."""
    with pytest.raises(error, match=r"Timeout: seconds must be a finite number > 0, got"):
        rs.Timeout(value)  # type: ignore[arg-type]


async def test_concurrent_calls_each_expire_at_their_own_deadline() -> None:
    """Calls started at different times through one Timeout time out in turn, on time."""
    timeout = rs.Timeout(10.0)
    pipeline = rs.Pipeline(timeout, hooks=[])
    ended: dict[int, tuple[str, float]] = {}
    start = now()

    async def work(i: int) -> None:
        await sleep(5.0 if i % 2 else 50.0)  # odd calls are quick enough

    async def call(i: int) -> None:
        await sleep(i)  # staggered starts: call i starts at t = i
        try:
            await pipeline.run(work, i)
        except rs.DeadlineExceededError:
            ended[i] = ("timeout", now() - start)
        else:
            ended[i] = ("ok", now() - start)

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(call, i)
    for i in range(20):
        expected = ("ok", i + 5.0) if i % 2 else ("timeout", i + 10.0)
        assert ended[i] == (expected[0], pytest.approx(expected[1])), i


async def test_finished_calls_behind_a_long_one_do_not_pile_up(anyio_backend_name: str) -> None:
    """A long call at the head of the queue does not make memory grow with traffic."""
    if anyio_backend_name != "asyncio" or sys.version_info < (3, 11):
        pytest.skip("the deadline lanes are asyncio's on 3.11+; else anyio's cancel scopes")
    timeout = rs.Timeout(60.0)
    pipeline = rs.Pipeline(timeout, hooks=[])

    async def quick() -> None:
        await anyio.lowlevel.checkpoint()

    async def slow() -> None:
        await sleep(30)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run, slow)
        await sleep(0.1)
        for _ in range(5000):
            await pipeline.run(quick)
        (lane,) = timeout._lanes.values()
        assert _running(lane) == 1
        assert len(lane.entries) <= 2 * _running(lane) + 64
    assert all(_running(lane) == 0 for lane in timeout._lanes.values())


def _running(lane: Any) -> int:
    """Calls of *lane* still under way."""
    return sum(entry[_STATE] == _RUNNING for entry in lane.entries)


def test_one_timeout_serves_successive_event_loops() -> None:
    timeout = rs.Timeout(1.0)

    async def hang() -> None:
        await sleep(5)

    async def main() -> str:
        try:
            await rs.Pipeline(timeout, hooks=[]).run(hang)
        except rs.DeadlineExceededError:
            return "timeout"
        return "returned"

    from resilient.testing import run

    assert [run(main), run(main), run(main, backend="trio")] == ["timeout"] * 3
