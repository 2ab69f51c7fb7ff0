"""Bulkhead: the limit, the FIFO queue, max_wait, permits that are never lost, statistics."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import anyio
import pytest

import resilient as rs
from resilient import Bulkhead, BulkheadStatistics
from resilient._clock import now, sleep

pytestmark = pytest.mark.anyio

# Virtual seconds after which a test that lost a permit fails instead of hanging for good.
HANG = 3600


class Tracker:
    """A call that holds its permit for *seconds*; records its start and how many run at once.

    Start times count from the tracker's creation: trio's clock runs on from test to test.
    """

    def __init__(self) -> None:
        self.origin = now()
        self.running = 0
        self.peak = 0
        self.starts: list[tuple[object, object]] = []

    async def __call__(self, seconds: float, label: object = None) -> object:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.starts.append((label, now() - self.origin))
        try:
            await sleep(seconds)
        finally:
            self.running -= 1
        return label


async def quick() -> str:
    return "ok"


async def test_at_most_limit_calls_run_at_once() -> None:
    """50 concurrent calls through limit 5: never more than 5 run, and all 50 finish."""
    bulkhead = Bulkhead(5, queue=45)
    pipeline = rs.Pipeline(bulkhead)
    track = Tracker()
    results: list[object] = []

    async def one(i: int) -> None:
        results.append(await pipeline.run(track, 1.0, i))

    start = now()
    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(one, i)
    assert track.peak == 5
    assert sorted(results) == list(range(50))  # type: ignore[type-var]
    assert now() - start == pytest.approx(10.0)  # 10 waves of 5, one second each


async def test_queued_calls_run_in_arrival_order() -> None:
    """Waiters get permits first come, first served; none overtakes another."""
    pipeline = rs.Pipeline(Bulkhead(1, queue=10))
    track = Tracker()

    async def arrive(i: int) -> None:
        await sleep(i * 0.01)  # arrival order, independent of task scheduling
        await pipeline.run(track, 1.0, i)

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(arrive, i)
    assert [label for label, _ in track.starts] == list(range(8))
    assert [at for _, at in track.starts] == [pytest.approx(float(i)) for i in range(8)]


async def test_a_newcomer_does_not_take_a_permit_a_waiter_is_owed() -> None:
    """A permit freed while calls wait goes to the first waiter, not to a call arriving then."""
    pipeline = rs.Pipeline(Bulkhead(1, queue=5))
    track = Tracker()

    async def arrive(at: float, label: str) -> None:
        await sleep(at)
        await pipeline.run(track, 1.0, label)

    async with anyio.create_task_group() as tg:
        tg.start_soon(arrive, 0.0, "first")
        tg.start_soon(arrive, 0.5, "waiter")
        tg.start_soon(arrive, 1.0, "newcomer")  # arrives as "first" releases its permit
    assert [label for label, _ in track.starts] == ["first", "waiter", "newcomer"]


async def test_a_call_that_finds_the_queue_full_is_rejected_at_once() -> None:
    bulkhead = Bulkhead(1, queue=1)
    pipeline = rs.Pipeline(bulkhead)
    track = Tracker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run, track, 5.0)  # runs
        tg.start_soon(pipeline.run, track, 5.0)  # waits
        await sleep(1.0)
        start = now()
        with pytest.raises(rs.BulkheadFullError) as info:
            await pipeline.run(track, 5.0)
        assert now() == start
        assert (info.value.limit, info.value.queue) == (1, 1)
        assert info.value.retry_after is None
        assert bulkhead.statistics().rejected == 1


async def test_without_a_queue_a_busy_bulkhead_rejects_at_once() -> None:
    pipeline = rs.Pipeline(Bulkhead(2))
    track = Tracker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run, track, 1.0)
        tg.start_soon(pipeline.run, track, 1.0)
        await sleep(0.5)
        start = now()
        with pytest.raises(rs.BulkheadFullError):
            await pipeline.run(quick)
        assert now() == start
    assert await pipeline.run(quick) == "ok"  # free again once they finish


async def test_a_wait_longer_than_max_wait_is_rejected_when_it_runs_out() -> None:
    """A waiter that arrived at 0.5 s with max_wait 2.5 s is rejected at 3.0 s, not before."""
    bulkhead = Bulkhead(1, queue=5, max_wait=2.5)
    pipeline = rs.Pipeline(bulkhead)
    track = Tracker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run, track, 10.0)
        await sleep(0.5)
        with pytest.raises(rs.BulkheadFullError):
            await pipeline.run(quick)
        assert now() - track.origin == pytest.approx(3.0)
        stats = bulkhead.statistics()
        assert (stats.waiting, stats.rejected, stats.running) == (0, 1, 1)
        tg.cancel_scope.cancel()


async def test_a_permit_that_comes_within_max_wait_admits_the_call() -> None:
    pipeline = rs.Pipeline(Bulkhead(1, queue=1, max_wait=2.0))
    track = Tracker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run, track, 1.5)
        await sleep(0.1)
        assert await pipeline.run(track, 0.0, "waited") == "waited"
    assert track.starts[-1] == ("waited", pytest.approx(1.5))


async def test_max_wait_zero_never_queues() -> None:
    bulkhead = Bulkhead(1, queue=10, max_wait=0)
    pipeline = rs.Pipeline(bulkhead)
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run, Tracker(), 1.0)
        await sleep(0.1)
        start = now()
        with pytest.raises(rs.BulkheadFullError):
            await pipeline.run(quick)
        assert now() == start
        assert bulkhead.statistics().waiting == 0


async def test_without_max_wait_the_enclosing_deadline_ends_the_wait() -> None:
    """max_wait=None waits as long as the call's deadline allows, then the Timeout fires."""
    bulkhead = Bulkhead(1, queue=1)
    track = Tracker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(rs.Pipeline(bulkhead).run, track, 10.0)
        await sleep(0.5)
        with pytest.raises(rs.DeadlineExceededError):
            await rs.Pipeline(rs.Timeout(3.0), bulkhead).run(quick)
        assert now() - track.origin == pytest.approx(3.5)
        assert bulkhead.statistics().waiting == 0
        tg.cancel_scope.cancel()


async def test_an_exception_releases_the_permit() -> None:
    """A failing call gives its permit back: to a waiter, or to the pool."""
    bulkhead = Bulkhead(1, queue=1)
    pipeline = rs.Pipeline(bulkhead)

    async def fail_later() -> None:
        await sleep(1.0)
        raise ValueError("boom")

    errors: list[BaseException] = []

    async def fail() -> None:
        try:
            await pipeline.run(fail_later)
        except ValueError as exc:
            errors.append(exc)

    track = Tracker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(fail)
        await sleep(0.1)
        tg.start_soon(pipeline.run, track, 0.0, "next")
    assert [str(exc) for exc in errors] == ["boom"]
    assert track.starts == [("next", pytest.approx(1.0))]  # the waiter got the permit
    with pytest.raises(ValueError, match="boom"):
        await pipeline.run(fail_later)
    stats = bulkhead.statistics()
    assert (stats.running, stats.waiting, stats.admitted) == (0, 0, 3)


async def test_a_call_cancelled_while_running_releases_its_permit() -> None:
    bulkhead = Bulkhead(1)
    pipeline = rs.Pipeline(bulkhead)
    with anyio.move_on_after(1.0) as scope:
        await pipeline.run(Tracker(), 10.0)
    assert scope.cancelled_caught
    assert bulkhead.statistics().running == 0
    start = now()
    assert await pipeline.run(quick) == "ok"
    assert now() == start


async def test_a_call_cancelled_while_waiting_leaves_the_queue() -> None:
    """The cancelled waiter never runs, and the one behind it takes its place."""
    bulkhead = Bulkhead(1, queue=2)
    pipeline = rs.Pipeline(bulkhead)
    track = Tracker()

    async def impatient() -> None:
        with anyio.move_on_after(0.5):
            await pipeline.run(track, 0.0, "impatient")

    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as tg:
            tg.start_soon(pipeline.run, track, 1.0, "holder")
            await sleep(0.1)
            tg.start_soon(impatient)
            await sleep(0.1)
            tg.start_soon(pipeline.run, track, 0.0, "patient")
            await sleep(0.5)
            assert bulkhead.statistics().waiting == 1  # the impatient one has left
    assert track.starts == [("holder", 0.0), ("patient", pytest.approx(1.0))]
    stats = bulkhead.statistics()
    assert (stats.running, stats.waiting, stats.rejected) == (0, 0, 0)


class CancelAfter:
    """A policy that cancels *scope* right after the steps inside it return."""

    def __init__(self, scope: anyio.CancelScope) -> None:
        self.scope = scope

    async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
        result = await next_step(ctx)
        self.scope.cancel()  # same step as the bulkhead's release: no await between
        return result

    def describe(self) -> str:
        return "CancelAfter"


@pytest.mark.parametrize("order", ["cancel, then release", "release, then cancel"])
async def test_a_permit_handed_to_a_waiter_cancelled_at_that_moment_goes_to_the_next(
    order: str,
) -> None:
    """The permit reaches a waiter in the very step it is cancelled: it is not lost."""
    bulkhead = Bulkhead(1, queue=2)
    track = Tracker()
    scope = anyio.CancelScope()

    async def holder() -> None:
        await sleep(1.0)
        if order == "cancel, then release":
            scope.cancel()  # the release follows in the same step, as the call returns

    async def doomed() -> None:
        with scope:
            await rs.Pipeline(bulkhead).run(track, 0.0, "doomed")

    outer = [CancelAfter(scope)] if order == "release, then cancel" else []
    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as tg:
            tg.start_soon(rs.Pipeline(*outer, bulkhead).run, holder)
            await sleep(0.1)
            tg.start_soon(doomed)
            await sleep(0.1)
            tg.start_soon(rs.Pipeline(bulkhead).run, track, 0.0, "next")
    # The doomed waiter may have started before it saw the cancellation (asyncio
    # delivers it at the next await); either way the next waiter runs at 1.0 s.
    assert ("next", pytest.approx(1.0)) in track.starts
    stats = bulkhead.statistics()
    assert (stats.running, stats.waiting) == (0, 0)
    start = now()
    assert await rs.Pipeline(bulkhead).run(quick) == "ok"
    assert now() == start


async def test_a_waiter_whose_timeout_fires_as_the_permit_arrives_loses_no_permit() -> None:
    """The holder finishes at 1 s, the moment the waiter's Timeout expires: the next one runs."""
    bulkhead = Bulkhead(1, queue=2)
    track = Tracker()
    outcome: list[str] = []

    async def waiter() -> None:
        try:
            await rs.Pipeline(rs.Timeout(1.0), bulkhead).run(track, 0.0, "timed")
        except rs.DeadlineExceededError:
            outcome.append("timed out")
        else:
            outcome.append("ran")

    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as tg:
            tg.start_soon(rs.Pipeline(bulkhead).run, track, 1.0, "holder")
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(waiter)  # same instant: its deadline is the holder's end
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(rs.Pipeline(bulkhead).run, track, 0.0, "next")
    assert track.origin == pytest.approx(now() - 1.0)
    assert ("next", pytest.approx(1.0)) in track.starts
    assert len(outcome) == 1
    stats = bulkhead.statistics()
    assert (stats.running, stats.waiting) == (0, 0)


async def test_1000_random_cancellations_leave_no_permit_behind() -> None:
    """Calls cancelled at random while waiting and while running: no permit leaks.

    Half are cancelled by an anyio cancel scope around the call, half by a `Timeout`
    inside the pipeline (on asyncio it cancels the task directly, not through anyio).
    """
    rng = random.Random(20240611)
    bulkhead = Bulkhead(5, queue=10)
    outcomes: Counter[str] = Counter()
    running = peak = 0

    async def work(seconds: float, started: list[bool]) -> None:
        nonlocal running, peak
        started.append(True)
        running += 1
        peak = max(peak, running)
        try:
            await sleep(seconds)
        finally:
            running -= 1

    async def one(arrival: float, patience: float | None, seconds: float, scoped: bool) -> None:
        await sleep(arrival)
        started: list[bool] = []
        if patience is None or scoped:
            pipeline = rs.Pipeline(bulkhead)
        else:
            pipeline = rs.Pipeline(rs.Timeout(patience), bulkhead)
        deadline = math.inf if patience is None or not scoped else now() + patience
        timed_out = False
        with anyio.CancelScope(deadline=deadline) as scope:
            try:
                await pipeline.run(work, seconds, started)
            except rs.BulkheadFullError:
                outcomes["rejected"] += 1
                return
            except rs.DeadlineExceededError:
                timed_out = True
        if not (timed_out or scope.cancelled_caught):
            outcomes["completed"] += 1
        elif started:
            outcomes["cancelled while running"] += 1
        else:
            outcomes["cancelled while waiting"] += 1

    # Quarter seconds are exact in binary, so arrivals, releases and cancellations
    # often fall on the very same instant.
    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as tg:
            for _ in range(1_000):
                arrival = rng.randrange(400) * 0.25
                patience = None if rng.random() < 0.2 else rng.randrange(1, 12) * 0.25
                seconds = rng.randrange(1, 8) * 0.25
                tg.start_soon(one, arrival, patience, seconds, rng.random() < 0.5)

    assert outcomes["cancelled while waiting"] > 100
    assert outcomes["cancelled while running"] > 100
    assert outcomes["completed"] > 100
    assert outcomes["rejected"] > 0
    assert outcomes.total() == 1_000
    assert peak == 5
    stats = bulkhead.statistics()
    assert (stats.running, stats.waiting) == (0, 0)
    assert stats.rejected == outcomes["rejected"]
    assert stats.admitted == 1_000 - outcomes["rejected"] - outcomes["cancelled while waiting"]
    start = now()
    assert await rs.Pipeline(bulkhead).run(quick) == "ok"
    assert now() == start


async def test_a_free_permit_is_taken_without_waiting_on_anything() -> None:
    """The uncontended path has no checkpoint: it even runs inside a cancelled scope."""
    bulkhead = Bulkhead(1)
    with anyio.CancelScope() as scope:
        scope.cancel()
        result = await rs.Pipeline(bulkhead).run(quick)
    assert result == "ok"
    assert bulkhead.statistics().admitted == 1


async def test_statistics_count_what_happened() -> None:
    bulkhead = Bulkhead(2, queue=1)
    pipeline = rs.Pipeline(bulkhead)
    assert bulkhead.statistics() == BulkheadStatistics(
        limit=2, queue=1, running=0, waiting=0, admitted=0, waited=0, rejected=0
    )
    track = Tracker()
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(pipeline.run, track, 1.0)
        await sleep(0.1)
        with pytest.raises(rs.BulkheadFullError):
            await pipeline.run(quick)
        assert bulkhead.statistics() == BulkheadStatistics(
            limit=2, queue=1, running=2, waiting=1, admitted=2, waited=0, rejected=1
        )
    assert bulkhead.statistics() == BulkheadStatistics(
        limit=2, queue=1, running=0, waiting=0, admitted=3, waited=1, rejected=1
    )


async def test_one_bulkhead_caps_every_pipeline_that_holds_it() -> None:
    bulkhead = Bulkhead(2, queue=10)
    track = Tracker()
    async with anyio.create_task_group() as tg:
        for i in range(6):
            pipeline = rs.Pipeline(bulkhead) if i % 2 else rs.Pipeline(rs.Timeout(60), bulkhead)
            tg.start_soon(pipeline.run, track, 1.0)
    assert track.peak == 2


def test_describe() -> None:
    assert Bulkhead(64, queue=128).describe() == "Bulkhead(limit=64, queue=128)"
    assert Bulkhead(limit=4).describe() == "Bulkhead(limit=4, queue=0)"
    assert Bulkhead(4, queue=8, max_wait=0.5).describe() == (
        "Bulkhead(limit=4, queue=8, max_wait=0.5)"
    )
    assert rs.Pipeline(Bulkhead(3)).describe() == "Pipeline(Bulkhead(limit=3, queue=0))"


def test_limit_is_positional_the_rest_keyword_only_and_frozen() -> None:
    assert Bulkhead(3).limit == 3
    with pytest.raises(TypeError):
        Bulkhead(3, 5)  # type: ignore[call-arg]
    bulkhead = Bulkhead(3)
    with pytest.raises(AttributeError):
        bulkhead.limit = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"limit": 0}, ValueError, r"Bulkhead: limit must be an int >= 1, got 0$"),
        ({"limit": -3}, ValueError, r"Bulkhead: limit must be an int >= 1, got -3$"),
        ({"limit": True}, TypeError, r"Bulkhead: limit must be an int >= 1, got True \(bool\)"),
        ({"limit": 2.0}, TypeError, r"Bulkhead: limit must be an int >= 1, got 2.0 \(float\)"),
        ({"limit": "4"}, TypeError, r"Bulkhead: limit must be an int >= 1, got '4' \(str\)"),
        ({"limit": 1, "queue": -1}, ValueError, r"Bulkhead: queue must be an int >= 0, got -1$"),
        ({"limit": 1, "queue": None}, TypeError, r"Bulkhead: queue must be an int >= 0, got None"),
        (
            {"limit": 1, "max_wait": -1},
            ValueError,
            r"Bulkhead: max_wait must be a finite number >= 0 or None, got -1$",
        ),
        (
            {"limit": 1, "max_wait": math.nan},
            ValueError,
            r"Bulkhead: max_wait must be a finite number >= 0 or None, got nan$",
        ),
        (
            {"limit": 1, "max_wait": math.inf},
            ValueError,
            r"Bulkhead: max_wait must be a finite number >= 0 or None, got inf$",
        ),
        (
            {"limit": 1, "max_wait": "1"},
            TypeError,
            r"Bulkhead: max_wait must be a finite number >= 0 or None, got '1' \(str\)",
        ),
    ],
)
def test_invalid_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """The message names the option, the value and the allowed range."""
    with pytest.raises(error, match=message):
        Bulkhead(**options)
