"""Retry: predicates, backoff, deadline, budget, hooks, tenacity objects, testing mode."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from typing import Any

import anyio
import httpx
import pytest
import tenacity

import resilient as rs
from resilient._clock import now, sleep
from resilient.instrumentation import GiveUpDetails, Hook, RetryDetails
from resilient.testing import set_testing

pytestmark = pytest.mark.anyio

NO_WAIT = rs.Backoff.constant(0)


class Flaky:
    """Fails with the given exceptions (or returns the given results) in order, then returns."""

    def __init__(self, *script: BaseException | object, then: object = "ok") -> None:
        self.script = list(script)
        self.then = then
        self.calls = 0
        self.times: list[float] = []

    async def __call__(self) -> object:
        self.calls += 1
        self.times.append(now())
        if self.script:
            item = self.script.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item
        return self.then


class Listen(Hook):
    def __init__(self) -> None:
        self.retries: list[RetryDetails] = []
        self.give_ups: list[GiveUpDetails] = []

    def on_retry(self, details: RetryDetails) -> None:
        self.retries.append(details)

    def on_give_up(self, details: GiveUpDetails) -> None:
        self.give_ups.append(details)


async def test_retries_a_matching_exception_until_success() -> None:
    call = Flaky(ConnectionError(), ConnectionError())
    assert await rs.Pipeline(rs.Retry(backoff=NO_WAIT)).run(call) == "ok"
    assert call.calls == 3


async def test_an_unmatched_exception_propagates_at_once() -> None:
    call = Flaky(KeyError("nope"))
    with pytest.raises(KeyError):
        await rs.Pipeline(rs.Retry(backoff=NO_WAIT)).run(call)
    assert call.calls == 1


async def test_the_default_retries_connection_errors_and_timeouts_only() -> None:
    """The safe default: transient errors yes, programming errors no."""
    for error, expected_calls in [
        (ConnectionResetError(), 2),
        (TimeoutError(), 2),
        (asyncio.TimeoutError(), 2),
        (rs.DeadlineExceededError(1), 2),
        (httpx.ConnectError("refused"), 2),
        (httpx.ReadTimeout("slow"), 2),
        (httpx.RemoteProtocolError("cut"), 2),
        (httpx.UnsupportedProtocol("ftp"), 1),
        (rs.CircuitOpenError(1.0), 1),
        (ValueError(), 1),
        (RuntimeError(), 1),
    ]:
        call = Flaky(error)
        with contextlib.suppress(Exception):
            await rs.Pipeline(rs.Retry(backoff=NO_WAIT)).run(call)
        assert call.calls == expected_calls, error


async def test_on_accepts_a_predicate() -> None:
    call = Flaky(ValueError("transient"), ValueError("fatal"))
    retry = rs.Retry(on=lambda exc: "transient" in str(exc), backoff=NO_WAIT)
    with pytest.raises(ValueError, match="fatal"):
        await rs.Pipeline(retry).run(call)
    assert call.calls == 2


async def test_results_can_be_failures() -> None:
    """on_result judges returned values: a 503 is a failure without an exception."""
    call = Flaky(503, 503, then=200)
    retry = rs.Retry(on_result=lambda status: status >= 500, backoff=NO_WAIT)
    assert await rs.Pipeline(retry).run(call) == 200
    assert call.calls == 3


async def test_exhausted_attempts_raise_the_last_exception_unchanged() -> None:
    """The caller gets the very exception object the last attempt raised."""
    last = ConnectionError("third")
    call = Flaky(ConnectionError("first"), ConnectionError("second"), last)
    with pytest.raises(ConnectionError) as info:
        await rs.Pipeline(rs.Retry(attempts=3, backoff=NO_WAIT)).run(call)
    assert info.value is last
    assert call.calls == 3


async def test_exhausted_attempts_return_the_last_result() -> None:
    call = Flaky(500, 502, 503)
    retry = rs.Retry(attempts=3, on_result=lambda s: s >= 500, backoff=NO_WAIT)
    assert await rs.Pipeline(retry).run(call) == 503


async def test_cancellation_is_never_retried() -> None:
    """BaseExceptions such as cancellation pass straight through."""
    attempts = 0

    async def hang() -> None:
        nonlocal attempts
        attempts += 1
        await sleep(100)

    with anyio.move_on_after(1):
        await rs.Pipeline(rs.Retry(on=BaseException, backoff=NO_WAIT)).run(hang)
    assert attempts == 1


async def test_waits_follow_the_backoff() -> None:
    call = Flaky(ConnectionError(), ConnectionError(), ConnectionError())
    retry = rs.Retry(backoff=rs.Backoff.exponential(1.0, cap=3.0, jitter="none"), budget=None)
    await rs.Pipeline(retry).run(call)
    gaps = [b - a for a, b in itertools.pairwise(call.times)]
    assert gaps == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(3.0)]


async def test_gives_up_early_rather_than_wait_past_the_deadline() -> None:
    """With 3 s left and a 5 s wait ahead, the caller gets the real error now."""
    call = Flaky(ConnectionError("down"), ConnectionError("down"))
    listen = Listen()
    pipeline = rs.Pipeline(
        rs.Timeout(3.0),
        rs.Retry(backoff=rs.Backoff.constant(5.0), budget=None),
        hooks=[listen],
    )
    start = now()
    with pytest.raises(ConnectionError, match="down"):
        await pipeline.run(call)
    assert now() - start == pytest.approx(0.0)
    assert call.calls == 1
    assert [g.reason for g in listen.give_ups] == ["deadline"]


async def test_max_total_delay_bounds_the_waits() -> None:
    call = Flaky(*[ConnectionError()] * 10)
    listen = Listen()
    retry = rs.Retry(
        attempts=10, backoff=rs.Backoff.constant(1.0), max_total_delay=2.5, budget=None
    )
    start = now()
    with pytest.raises(ConnectionError):
        await rs.Pipeline(retry, hooks=[listen]).run(call)
    assert now() - start == pytest.approx(2.0)
    assert call.calls == 3
    assert listen.give_ups[0].reason == "max_total_delay"


async def test_a_delay_hint_replaces_the_backoff() -> None:
    """A hint from the outcome (later: Retry-After) sets the next wait."""
    call = Flaky(429, then=200)
    retry = rs.Retry(
        on_result=lambda s: s == 429,
        backoff=rs.Backoff.constant(100),
        delay_hint=lambda outcome: 7.0 if outcome.result == 429 else None,
    )
    await rs.Pipeline(retry).run(call)
    assert call.times[1] - call.times[0] == pytest.approx(7.0)


async def test_a_delay_hint_beyond_the_deadline_gives_up_at_once() -> None:
    call = Flaky(429, then=200)
    retry = rs.Retry(on_result=lambda s: s == 429, delay_hint=lambda _: 60.0)
    assert await rs.Pipeline(rs.Timeout(10), retry).run(call) == 429
    assert call.calls == 1


async def test_hooks_hear_each_retry_and_the_give_up() -> None:
    call = Flaky(*[ConnectionError("x")] * 3)
    listen = Listen()
    retry = rs.Retry(attempts=3, backoff=rs.Backoff.constant(0.5), budget=None)
    with pytest.raises(ConnectionError):
        await rs.Pipeline(retry, name="op", hooks=[listen]).run(call)
    assert [(r.attempt, r.delay, r.total_delay) for r in listen.retries] == [
        (1, 0.5, 0.0),
        (2, 0.5, 0.5),
    ]
    assert all(r.operation == "op" for r in listen.retries)
    (give_up,) = listen.give_ups
    assert (give_up.attempts, give_up.reason) == (3, "attempts")
    assert isinstance(give_up.outcome.exception, ConnectionError)
    assert give_up.outcome.failed


async def test_a_refused_budget_returns_the_last_outcome() -> None:
    """When the budget refuses a retry, the caller gets the call's own error."""
    budget = rs.RetryBudget(ratio=0.5, max_tokens=2)
    retry = rs.Retry(attempts=5, backoff=NO_WAIT, budget=budget)
    listen = Listen()
    pipeline = rs.Pipeline(retry, hooks=[listen])
    call = Flaky(*[ConnectionError("down")] * 10)
    with pytest.raises(ConnectionError, match="down"):
        await pipeline.run(call)
    assert call.calls == 3  # the first attempt, then the 2 retries the bucket held
    assert listen.give_ups[-1].reason == "budget"
    stats = budget.statistics()
    assert (stats.retries_allowed, stats.retries_denied, stats.tokens) == (2, 1, 0.0)
    # Successes earn tokens back: two successes at 0.5 buy one retry.
    ok = Flaky()
    await pipeline.run(ok)
    await pipeline.run(ok)
    assert budget.statistics().tokens == 1.0
    call = Flaky(ConnectionError(), ConnectionError())
    with pytest.raises(ConnectionError):
        await pipeline.run(call)
    assert call.calls == 2


async def test_one_budget_is_shared_by_all_calls_of_a_retry() -> None:
    retry = rs.Retry(attempts=3, backoff=NO_WAIT)
    assert retry.budget is not None
    assert retry.budget is not rs.Retry().budget
    pipeline = rs.Pipeline(retry)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await pipeline.run(Flaky(*[ConnectionError()] * 3))
    assert retry.budget.statistics().retries_allowed == 6


async def test_budget_none_turns_budgeting_off() -> None:
    retry = rs.Retry(attempts=3, backoff=NO_WAIT, budget=None)
    for _ in range(20):
        call = Flaky(*[ConnectionError()] * 3)
        with pytest.raises(ConnectionError):
            await rs.Pipeline(retry).run(call)
        assert call.calls == 3


async def test_accepts_tenacity_wait_and_stop_objects() -> None:
    """tenacity's wait_* and stop_* work, on our (virtual) clock."""
    call = Flaky(*[ConnectionError()] * 20)
    listen = Listen()
    retry = rs.Retry(
        attempts=100,
        backoff=tenacity.wait_fixed(2),
        stop=tenacity.stop_after_delay(5),
        budget=None,
    )
    start = now()
    with pytest.raises(ConnectionError):
        await rs.Pipeline(retry, hooks=[listen]).run(call)
    # Attempts at t = 0, 2, 4, 6: after the one at 6 s, 6 s have passed > 5 s.
    assert call.times == [pytest.approx(start + t) for t in (0, 2, 4, 6)]
    assert listen.give_ups[0].reason == "stop"


async def test_tenacity_waits_see_the_attempt_number() -> None:
    call = Flaky(*[ConnectionError()] * 3)
    retry = rs.Retry(backoff=tenacity.wait_exponential(multiplier=1, max=100), budget=None)
    assert await rs.Pipeline(retry, hooks=[]).run(call) == "ok"
    gaps = [b - a for a, b in itertools.pairwise(call.times)]
    assert gaps == [pytest.approx(1), pytest.approx(2), pytest.approx(4)]


async def test_testing_mode_caps_attempts_and_skips_waits() -> None:
    retry = rs.Retry(attempts=10, backoff=rs.Backoff.constant(30), budget=None)
    call = Flaky(*[ConnectionError()] * 10)
    start = now()
    with set_testing(attempts=2), pytest.raises(ConnectionError):
        await rs.Pipeline(retry).run(call)
    assert call.calls == 2
    assert now() == pytest.approx(start)
    # Outside the block the policy's own options apply again.
    call = Flaky(ConnectionError(), then="ok")
    assert await rs.Pipeline(retry).run(call) == "ok"
    assert now() - start == pytest.approx(30)


async def test_testing_mode_can_keep_waits_and_attempts() -> None:
    retry = rs.Retry(attempts=3, backoff=rs.Backoff.constant(1), budget=None)
    call = Flaky(ConnectionError(), ConnectionError())
    start = now()
    with set_testing(attempts=None, waits=True):
        assert await rs.Pipeline(retry).run(call) == "ok"
    assert now() - start == pytest.approx(2)


async def test_set_testing_false_switches_the_mode_off_inside_a_testing_block() -> None:
    retry = rs.Retry(attempts=3, backoff=NO_WAIT, budget=None)
    with set_testing(attempts=1):
        with set_testing(False):
            call = Flaky(ConnectionError())
            assert await rs.Pipeline(retry).run(call) == "ok"
        call = Flaky(ConnectionError())
        with pytest.raises(ConnectionError):
            await rs.Pipeline(retry).run(call)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"attempts": 0}, ValueError, r"Retry: attempts must be an int >= 1, got 0"),
        ({"attempts": True}, TypeError, r"Retry: attempts must be an int >= 1, got True"),
        ({"attempts": 2.0}, TypeError, r"Retry: attempts must be an int >= 1, got 2.0"),
        ({"on": ()}, ValueError, r"Retry: on must name at least one exception class"),
        ({"on": (ValueError, 3)}, TypeError, r"Retry: on\[1\] must be an exception class"),
        ({"on": "ValueError"}, TypeError, r"Retry: on must be an exception class"),
        ({"on_result": 5}, TypeError, r"Retry: on_result must be callable or None"),
        ({"stop": 5}, TypeError, r"Retry: stop must be callable or None"),
        ({"delay_hint": 5}, TypeError, r"Retry: delay_hint must be callable or None"),
        ({"backoff": 2}, TypeError, r"Retry: backoff must be a resilient.Backoff"),
        (
            {"max_total_delay": -1},
            ValueError,
            r"Retry: max_total_delay must be a finite number >= 0 or None, got -1",
        ),
        ({"max_total_delay": math.nan}, ValueError, r"Retry: max_total_delay must be"),
        ({"budget": 0.1}, TypeError, r"Retry: budget must be a RetryBudget or None"),
    ],
)
def test_invalid_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        rs.Retry(**options)


def test_options_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        rs.Retry(3)  # type: ignore[misc]
    retry = rs.Retry()
    with pytest.raises(AttributeError):
        retry.attempts = 5  # type: ignore[misc]


async def test_a_nested_retry_does_not_disturb_the_outer_count() -> None:
    """An inner Retry renumbers ctx.attempt; the outer one still counts its own attempts."""
    call = Flaky(ConnectionError(), ConnectionError(), ValueError("outer"), then="ok")
    listen = Listen()
    pipeline = rs.Pipeline(
        rs.Retry(attempts=2, on=ValueError, backoff=NO_WAIT, budget=None),
        rs.Retry(attempts=3, on=ConnectionError, backoff=NO_WAIT, budget=None),
        hooks=[listen],
    )
    assert await pipeline.run(call) == "ok"
    assert call.calls == 4
    # inner: attempts 1 and 2 failed; outer: its attempt 1 failed (with ValueError)
    assert [(r.attempt, type(r.outcome.exception)) for r in listen.retries] == [
        (1, ConnectionError),
        (2, ConnectionError),
        (1, ValueError),
    ]


async def test_a_rejection_that_says_when_sets_the_wait() -> None:
    """Retrying an open circuit waits exactly the time it says it stays open."""
    call = Flaky(rs.CircuitOpenError(4.0, "db"), then="ok")
    retry = rs.Retry(on=rs.CircuitOpenError, backoff=rs.Backoff.constant(0.1), budget=None)
    assert await rs.Pipeline(retry).run(call) == "ok"
    assert call.times[1] - call.times[0] == pytest.approx(4.0)


async def test_an_infinite_hint_gives_up_at_once() -> None:
    call = Flaky(ConnectionError("down"), then="ok")
    listen = Listen()
    retry = rs.Retry(delay_hint=lambda _: math.inf, budget=None)
    with pytest.raises(ConnectionError, match="down"):
        await rs.Pipeline(retry, hooks=[listen]).run(call)
    assert call.calls == 1
    assert listen.give_ups[0].reason == "delay_hint"


async def test_a_nonsense_hint_falls_back_to_the_backoff() -> None:
    for hint in (-1.0, math.nan):
        call = Flaky(ConnectionError(), then="ok")
        retry = rs.Retry(
            backoff=rs.Backoff.constant(0.5), delay_hint=lambda _, h=hint: h, budget=None
        )
        await rs.Pipeline(retry).run(call)
        assert call.times[1] - call.times[0] == pytest.approx(0.5), hint
