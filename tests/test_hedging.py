"""Hedging: delays and modes, winners and losers, failures, cancellation, budget, validation."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

import resilient as rs
from resilient import Hedging
from resilient._clock import now
from resilient.instrumentation import AttemptInfo, Hook
from resilient.testing import set_testing

pytestmark = pytest.mark.anyio

SLOW = 100.0


class Operation:
    """The wrapped call: its n-th call waits ``plan[n - 1][0]`` s, then returns or raises ``[1]``.

    It records when each call started, which calls were cancelled, and how many
    are running; a cancelled call's cleanup takes *cleanup* seconds (shielded).
    """

    def __init__(self, *plan: tuple[float, object], cleanup: float = 0.0) -> None:
        self.plan = plan
        self.cleanup = cleanup
        self.starts: list[float] = []
        self.cancelled: list[int] = []
        self.cleaned: list[int] = []
        self.running = 0

    @property
    def calls(self) -> int:
        return len(self.starts)

    async def __call__(self) -> object:
        n = len(self.starts) + 1
        self.starts.append(now())
        wait, outcome = self.plan[n - 1]
        self.running += 1
        try:
            await anyio.sleep(wait)
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(n)
            with anyio.CancelScope(shield=True):
                await anyio.sleep(self.cleanup)
            raise
        finally:
            self.cleaned.append(n)
            self.running -= 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Probe:
    """A policy that records the context each attempt runs with."""

    def __init__(self) -> None:
        self.seen: list[rs.Context] = []

    async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
        self.seen.append(ctx)
        return await next_step(ctx)

    def describe(self) -> str:
        return "Probe"


class SetKey:
    """A policy that gives the call an idempotency key, as the http layer will."""

    async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
        ctx.idempotency_key = "key-1"
        return await next_step(ctx)

    def describe(self) -> str:
        return "SetKey"


def hedged(**options: Any) -> rs.Pipeline:
    options.setdefault("budget", None)
    return rs.Pipeline(Hedging(**options))


def relative(times: list[float], start: float) -> list[float]:
    return [pytest.approx(t - start) for t in times]


async def test_a_slow_first_attempt_is_beaten_by_a_hedge_started_after_the_delay() -> None:
    """Attempt 1 takes 10 s; the hedge starts at 2 s, answers at 3 s and wins; 1 is cancelled."""
    op = Operation((10.0, "slow"), (1.0, "fast"))
    start = now()
    assert await hedged(delay=2.0).run(op) == "fast"
    assert now() - start == pytest.approx(3.0)
    assert relative(op.starts, start) == [0.0, 2.0]
    assert op.cancelled == [1]
    assert sorted(op.cleaned) == [1, 2]
    assert op.running == 0


async def test_the_call_returns_only_after_the_losers_cleanup_has_finished() -> None:
    """The loser's cleanup (0.5 s here) is awaited before the winner's result is returned."""
    op = Operation((SLOW, "slow"), (1.0, "fast"), cleanup=0.5)
    start = now()
    assert await hedged(delay=2.0).run(op) == "fast"
    assert now() - start == pytest.approx(3.5)
    assert op.cancelled == [1]
    assert op.running == 0


async def test_a_quick_first_attempt_starts_no_hedge() -> None:
    op = Operation((1.0, "ok"))
    assert await hedged(delay=2.0).run(op) == "ok"
    await anyio.sleep(SLOW)
    assert op.calls == 1


async def test_delay_zero_starts_every_attempt_at_once() -> None:
    """Parallel mode: all attempts start at t=0 and the fastest (attempt 2) wins at 3 s."""
    op = Operation((5.0, "a"), (3.0, "b"), (4.0, "c"))
    start = now()
    assert await hedged(delay=0, max_attempts=3).run(op) == "b"
    assert now() - start == pytest.approx(3.0)
    assert relative(op.starts, start) == [0.0, 0.0, 0.0]
    assert sorted(op.cancelled) == [1, 3]


async def test_delay_inf_hedges_only_after_a_failure() -> None:
    """Failover mode: a slow attempt is never hedged, a failed one is, at once."""
    slow = Operation((10.0, "slow but fine"))
    start = now()
    assert await hedged(delay=math.inf).run(slow) == "slow but fine"
    assert now() - start == pytest.approx(10.0)
    assert slow.calls == 1

    failing = Operation((1.0, ConnectionError("down")), (SLOW, "ok"))
    start = now()
    assert await hedged(delay=math.inf).run(failing) == "ok"
    assert relative(failing.starts, start) == [0.0, 1.0]


async def test_a_failure_starts_the_next_hedge_at_once() -> None:
    """Attempt 1 fails at 1 s: attempt 2 starts then, not at 5 s; attempt 3 at 1 + 5 s."""
    op = Operation((1.0, ConnectionError()), (SLOW, "b"), (1.0, "c"))
    start = now()
    assert await hedged(delay=5.0, max_attempts=3).run(op) == "c"
    assert relative(op.starts, start) == [0.0, 1.0, 6.0]
    assert now() - start == pytest.approx(7.0)


async def test_two_failures_at_the_same_moment_start_two_hedges_at_once() -> None:
    """Attempts 1 and 2 both fail at 6 s: attempts 3 and 4 both start then."""
    op = Operation((6.0, ConnectionError()), (1.0, ConnectionError()), (SLOW, "c"), (1.0, "d"))
    start = now()
    assert await hedged(delay=5.0, max_attempts=4).run(op) == "d"
    assert relative(op.starts, start) == [0.0, 5.0, 6.0, 6.0]


async def test_when_every_attempt_fails_the_last_failure_propagates_unchanged() -> None:
    """The error that came last (attempt 1's, at 3 s) is raised as the very same object."""
    first, second = ConnectionError("first"), ConnectionError("second")
    op = Operation((3.0, first), (0.5, second))
    start = now()
    with pytest.raises(ConnectionError) as info:
        await hedged(delay=1.0).run(op)
    assert info.value is first
    assert now() - start == pytest.approx(3.0)
    assert op.calls == 2


async def test_when_every_result_fails_the_last_result_is_returned() -> None:
    op = Operation((0.5, 502), (1.0, 503))
    assert await hedged(delay=1.0, on_result=lambda status: status >= 500).run(op) == 503


async def test_a_result_judged_failed_does_not_win() -> None:
    """A quick 503 is a failure: it starts the hedge at once, and the hedge's 200 wins."""
    op = Operation((0.5, 503), (1.0, 200))
    start = now()
    result = await hedged(delay=5.0, on_result=lambda status: status >= 500).run(op)
    assert result == 200
    assert relative(op.starts, start) == [0.0, 0.5]


async def test_a_fatal_exception_cancels_the_others_and_propagates_unwrapped() -> None:
    """An exception `on` does not match ends the call as raised, not inside an ExceptionGroup."""
    bug = ValueError("bug")
    op = Operation((1.0, bug), (SLOW, "b"), (SLOW, "c"))
    start = now()
    with pytest.raises(ValueError, match="bug") as info:
        await hedged(delay=0, max_attempts=3).run(op)
    assert info.value is bug  # the very object, so no ExceptionGroup around it
    assert now() - start == pytest.approx(1.0)
    assert sorted(op.cancelled) == [2, 3]
    assert op.running == 0


async def test_a_predicate_that_raises_propagates_unwrapped() -> None:
    """A bug in on_result reaches the caller as itself, and the other attempts are cancelled."""
    op = Operation((1.0, "x"), (SLOW, "y"))

    def broken(result: object) -> bool:
        raise KeyError(result)

    with pytest.raises(KeyError) as info:
        await hedged(delay=0, on_result=broken).run(op)
    assert info.value.args == ("x",)
    assert op.cancelled == [2]


async def test_a_base_exception_from_an_attempt_propagates_unwrapped() -> None:
    class Abort(BaseException):
        pass

    abort = Abort()
    op = Operation((1.0, abort), (SLOW, "y"))
    with pytest.raises(Abort) as info:
        await hedged(delay=0).run(op)
    assert info.value is abort
    assert op.cancelled == [2]


async def test_caller_cancellation_leaves_no_attempt_running() -> None:
    """Cancelling the call cancels every attempt, waits for their cleanup, and starts no more."""
    op = Operation((SLOW, "a"), (SLOW, "b"), (SLOW, "c"), cleanup=0.5)
    start = now()
    with anyio.move_on_after(2.5) as scope:
        await hedged(delay=1.0, max_attempts=3).run(op)
    assert scope.cancelled_caught
    assert now() - start == pytest.approx(3.0)  # 2.5 s, then the 0.5 s cleanup
    assert sorted(op.cancelled) == [1, 2, 3]
    assert op.running == 0
    await anyio.sleep(SLOW * 2)
    assert op.calls == 3


async def test_attempts_see_distinct_numbers_and_the_same_idempotency_key() -> None:
    probe = Probe()
    op = Operation((SLOW, "a"), (SLOW, "b"), (1.0, "c"))
    pipeline = rs.Pipeline(SetKey(), Hedging(delay=1.0, max_attempts=3, budget=None), probe)
    assert await pipeline.run(op) == "c"
    assert [ctx.attempt for ctx in probe.seen] == [1, 2, 3]
    assert [ctx.idempotency_key for ctx in probe.seen] == ["key-1"] * 3
    assert len({id(ctx) for ctx in probe.seen}) == 3


async def test_each_attempt_is_traced_with_its_own_number() -> None:
    """Hook.trace_attempt sees every attempt Hedging starts, numbered in start order."""
    traced: list[tuple[int, float]] = []

    class Trace(Hook):
        def trace_attempt(self, info: AttemptInfo) -> None:
            traced.append((info.attempt, now()))

    op = Operation((SLOW, "a"), (1.0, "b"))
    start = now()
    pipeline = rs.Pipeline(Hedging(delay=2.0, budget=None), hooks=[Trace()])
    assert await pipeline.run(op) == "b"
    assert [(n, t - start) for n, t in traced] == [(1, 0.0), (2, pytest.approx(2.0))]


async def test_no_more_than_max_attempts_ever_start() -> None:
    """Failures and delays together never start more than max_attempts attempts."""
    failing = Operation(*[(0.1, ConnectionError())] * 10)
    with pytest.raises(ConnectionError):
        await hedged(delay=1.0, max_attempts=3).run(failing)
    assert failing.calls == 3

    slow = Operation(*[(SLOW, "late")] * 10)
    start = now()
    assert await hedged(delay=1.0, max_attempts=3).run(slow) == "late"
    assert relative(slow.starts, start) == [0.0, 1.0, 2.0]


async def test_an_outer_timeout_cancels_every_hedge_and_raises_deadline_exceeded() -> None:
    op = Operation((SLOW, "a"), (SLOW, "b"), (SLOW, "c"))
    pipeline = rs.Pipeline(rs.Timeout(2.5), Hedging(delay=1.0, max_attempts=3, budget=None))
    start = now()
    with pytest.raises(rs.DeadlineExceededError) as info:
        await pipeline.run(op)
    assert info.value.timeout == 2.5
    assert now() - start == pytest.approx(2.5)
    assert sorted(op.cancelled) == [1, 2, 3]
    assert op.running == 0


async def test_an_inner_timeout_expiring_counts_as_a_failure_and_starts_the_next_hedge() -> None:
    """Timeout inside Hedging bounds each attempt; its DeadlineExceededError is a TimeoutError."""
    op = Operation((SLOW, "a"), (1.0, "b"))
    pipeline = rs.Pipeline(Hedging(delay=math.inf, budget=None), rs.Timeout(2.0))
    start = now()
    assert await pipeline.run(op) == "b"
    assert relative(op.starts, start) == [0.0, 2.0]
    assert op.cancelled == [1]


async def test_concurrent_calls_do_not_share_state() -> None:
    """One Hedging serves two calls at once; each gets its own winner."""
    policy = rs.Pipeline(Hedging(delay=1.0, budget=None))
    results: dict[str, object] = {}

    async def call(name: str, op: Operation) -> None:
        results[name] = await policy.run(op)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "x", Operation((SLOW, "x1"), (1.0, "x2")))
        tg.start_soon(call, "y", Operation((0.5, "y1")))
    assert results == {"x": "x2", "y": "y1"}


async def test_a_refused_budget_stops_hedging_but_not_the_call() -> None:
    """Each hedge takes a token; with none left the call runs on its first attempt alone."""
    budget = rs.RetryBudget(ratio=0.5, max_tokens=1)
    pipeline = rs.Pipeline(Hedging(delay=1.0, budget=budget))
    first = Operation((SLOW, "a"), (1.0, "b"))
    assert await pipeline.run(first) == "b"
    assert first.calls == 2
    second = Operation((5.0, "alone"), (1.0, "never"))
    assert await pipeline.run(second) == "alone"
    assert second.calls == 1
    stats = budget.statistics()
    assert (stats.retries_allowed, stats.retries_denied, stats.successes) == (1, 1, 2)


def test_each_hedging_makes_its_own_budget_by_default() -> None:
    one, two = Hedging(delay=1.0), Hedging(delay=1.0)
    assert one.budget is not None
    assert one.budget is not two.budget


def test_the_defaults_are_two_attempts_on_what_retry_retries() -> None:
    """Two attempts; the failures are Retry's: connection errors and timeouts."""
    from resilient.policies._retry import DEFAULT_ON

    hedging = Hedging(delay=0.5)
    assert (hedging.max_attempts, hedging.on, hedging.on_result) == (2, DEFAULT_ON, None)
    assert rs.Retry().on == DEFAULT_ON
    assert {ConnectionError, TimeoutError} <= set(DEFAULT_ON)


def test_describe_names_the_options() -> None:
    assert Hedging(delay=0.1, budget=None).describe() == (
        "Hedging(max_attempts=2, delay=0.1, budget=None)"
    )
    assert Hedging(delay=math.inf, max_attempts=3).describe() == (
        "Hedging(max_attempts=3, delay=inf, budget=RetryBudget(ratio=0.2, max_tokens=10))"
    )
    assert rs.Pipeline(Hedging(delay=0, budget=None)).describe() == (
        "Pipeline(Hedging(max_attempts=2, delay=0, budget=None))"
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({}, TypeError, r"missing 1 required keyword-only argument: 'delay'"),
        ({"delay": -1}, ValueError, r"Hedging: delay must be a number >= 0 .*got -1$"),
        ({"delay": math.nan}, ValueError, r"Hedging: delay must be a number >= 0 .*got nan$"),
        ({"delay": "1"}, TypeError, r"Hedging: delay must be a number >= 0 .*got '1' \(str\)"),
        ({"delay": True}, TypeError, r"Hedging: delay must be a number >= 0 .*got True"),
        ({"delay": 1, "max_attempts": 1}, ValueError, r"Hedging: max_attempts .* >= 2, got 1"),
        ({"delay": 1, "max_attempts": 11}, ValueError, r"Hedging: max_attempts .* <= 10, got 11"),
        ({"delay": 1, "max_attempts": 2.0}, TypeError, r"Hedging: max_attempts .* >= 2, got 2.0"),
        ({"delay": 1, "on": ()}, ValueError, r"^Hedging: on must name at least one exception"),
        ({"delay": 1, "on": (KeyError, 3)}, TypeError, r"^Hedging: on\[1\] must be an exception"),
        ({"delay": 1, "on": "x"}, TypeError, r"^Hedging: on must be an exception class"),
        ({"delay": 1, "on_result": 5}, TypeError, r"Hedging: on_result must be callable or None"),
        ({"delay": 1, "budget": 0.1}, TypeError, r"Hedging: budget must be a RetryBudget or None"),
    ],
)
def test_invalid_options_are_refused_naming_field_value_and_range(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Hedging(**options)


def test_options_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        Hedging(1.0)  # type: ignore[misc]
    hedging = Hedging(delay=1.0)
    with pytest.raises(AttributeError):
        hedging.delay = 2.0  # type: ignore[misc]


async def test_testing_mode_caps_the_attempts() -> None:
    """Under set_testing() a failing call fails after one attempt, as with Retry."""
    error = ConnectionError("down")
    op = Operation((1.0, error), (1.0, "never"))
    with set_testing(), pytest.raises(ConnectionError) as info:
        await hedged(delay=0.5, max_attempts=3).run(op)
    assert info.value is error
    assert op.calls == 1
    slow = Operation((SLOW, "a"), (SLOW, "b"), (1.0, "c"))
    with set_testing(attempts=None):
        assert await hedged(delay=0.5, max_attempts=3).run(slow) == "c"
