"""Fallback: value and handler, predicates, what passes through, validation."""

from __future__ import annotations

import functools
from typing import Any

import anyio
import pytest

import resilient as rs
from resilient import Fallback
from resilient._clock import now, sleep

pytestmark = pytest.mark.anyio


class Calls:
    """Raises or returns *outcome*, counting calls."""

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class Handler:
    """An async fallback handler that records what it was given."""

    def __init__(self, answer: object = "from handler") -> None:
        self.answer = answer
        self.seen: list[tuple[rs.Outcome[Any], rs.Context]] = []

    async def __call__(self, outcome: rs.Outcome[Any], ctx: rs.Context) -> object:
        self.seen.append((outcome, ctx))
        return self.answer


class Remember:
    """A policy that records the call's context."""

    def __init__(self) -> None:
        self.ctx: rs.Context | None = None

    async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
        self.ctx = ctx
        return await next_step(ctx)

    def describe(self) -> str:
        return "Remember"


async def test_a_matching_exception_is_replaced_by_the_value() -> None:
    call = Calls(ConnectionError("down"))
    assert await rs.Pipeline(Fallback(value="cached")).run(call) == "cached"
    assert call.calls == 1


async def test_a_success_passes_through_and_the_handler_is_not_called() -> None:
    handler = Handler()
    assert await rs.Pipeline(Fallback(handler=handler)).run(Calls("fresh")) == "fresh"
    assert handler.seen == []


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(),
        TimeoutError(),
        rs.DeadlineExceededError(1.0),
        rs.CircuitOpenError(5.0, "db"),
        rs.BulkheadFullError(8, 0),
        rs.RateLimitedError(1.0),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_the_default_replaces_unavailability(error: Exception) -> None:
    """Unreachable, too slow, or shed by a policy: a substitute is a fair answer."""
    assert await rs.Pipeline(Fallback(value="stale")).run(Calls(error)) == "stale"


@pytest.mark.parametrize(
    "error", [ValueError("bug"), KeyError("bug"), TypeError("bug")], ids=lambda e: type(e).__name__
)
async def test_the_default_lets_bugs_propagate_unchanged(error: Exception) -> None:
    """A programming error is not turned into a plausible value; it is raised as it was."""
    with pytest.raises(type(error)) as info:
        await rs.Pipeline(Fallback(value="stale")).run(Calls(error))
    assert info.value is error


async def test_an_exception_on_does_not_match_propagates_unchanged() -> None:
    error = ConnectionError("down")
    handler = Handler()
    with pytest.raises(ConnectionError) as info:
        await rs.Pipeline(Fallback(handler=handler, on=KeyError)).run(Calls(error))
    assert info.value is error
    assert handler.seen == []


async def test_the_handler_gets_the_failed_outcome_and_the_calls_context() -> None:
    error = ConnectionError("down")
    handler = Handler()
    remember = Remember()
    pipeline = rs.Pipeline(remember, Fallback(handler=handler), name="get_user")
    assert await pipeline.run(Calls(error)) == "from handler"
    ((outcome, ctx),) = handler.seen
    assert outcome.exception is error
    assert outcome.failed
    assert ctx is remember.ctx
    assert ctx.name == "get_user"


async def test_a_result_the_predicate_rejects_is_replaced_and_reaches_the_handler() -> None:
    handler = Handler(answer=200)
    pipeline = rs.Pipeline(Fallback(handler=handler, on_result=lambda status: status >= 500))
    assert await pipeline.run(Calls(503)) == 200
    ((outcome, _),) = handler.seen
    assert (outcome.result, outcome.exception) == (503, None)
    assert await pipeline.run(Calls(204)) == 204  # an accepted result passes through
    assert len(handler.seen) == 1


async def test_value_none_is_a_real_value() -> None:
    assert await rs.Pipeline(Fallback(value=None)).run(Calls(ConnectionError())) is None


async def test_cancellation_is_never_handled_even_with_on_base_exception() -> None:
    handler = Handler()

    async def hang() -> None:
        await sleep(100)

    with anyio.move_on_after(1) as scope:
        await rs.Pipeline(Fallback(handler=handler, on=BaseException)).run(hang)
    assert scope.cancelled_caught
    assert handler.seen == []


async def test_an_exception_from_the_handler_propagates_with_the_failure_as_context() -> None:
    error = ConnectionError("down")

    async def broken(outcome: rs.Outcome[Any], ctx: rs.Context) -> object:
        raise LookupError("no cached copy")

    with pytest.raises(LookupError, match="no cached copy") as info:
        await rs.Pipeline(Fallback(handler=broken)).run(Calls(error))
    assert info.value.__context__ is error


async def test_outside_a_timeout_it_replaces_the_expiry() -> None:
    """First in the pipeline, it sees the inner Timeout's DeadlineExceededError."""

    async def hang() -> str:
        await sleep(100)
        return "late"

    start = now()
    pipeline = rs.Pipeline(Fallback(value="default"), rs.Timeout(1.0))
    assert await pipeline.run(hang) == "default"
    assert now() - start == pytest.approx(1.0)


async def test_an_outer_timeout_is_not_replaced() -> None:
    """Outside the Fallback, a Timeout cancels it too: cancellation is never handled."""
    handler = Handler()

    async def hang() -> None:
        await sleep(100)

    pipeline = rs.Pipeline(rs.Timeout(1.0), Fallback(handler=handler))
    with pytest.raises(rs.DeadlineExceededError):
        await pipeline.run(hang)
    assert handler.seen == []


async def test_the_handler_may_be_a_partial_of_an_async_function() -> None:
    async def answer(word: str, outcome: rs.Outcome[Any], ctx: rs.Context) -> str:
        return word

    fallback = Fallback(handler=functools.partial(answer, "partial"))
    assert await rs.Pipeline(fallback).run(Calls(TimeoutError())) == "partial"


def test_the_default_on_is_what_retry_retries_plus_rejections() -> None:
    from resilient.policies._retry import DEFAULT_ON

    assert Fallback(value=0).on == (*DEFAULT_ON, rs.RejectedError)


def test_describe_shows_the_value_or_the_handler() -> None:
    async def cached_user(outcome: rs.Outcome[Any], ctx: rs.Context) -> None:
        return None

    assert Fallback(value=None).describe() == "Fallback(value=None)"
    long = Fallback(value="x" * 1000).describe()  # shortened for logs
    assert long.startswith("Fallback(value='xxx")
    assert "..." in long
    assert len(long) < 50
    assert Fallback(handler=cached_user).describe() == (
        "Fallback(handler=test_describe_shows_the_value_or_the_handler.<locals>.cached_user)"
    )


async def _async_handler(outcome: rs.Outcome[Any], ctx: rs.Context) -> None:
    return None


def _sync_handler(outcome: rs.Outcome[Any], ctx: rs.Context) -> None:
    return None


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({}, TypeError, r"^Fallback: give exactly one of value and handler, got neither$"),
        (
            {"value": None, "handler": _async_handler},
            TypeError,
            r"^Fallback: give exactly one of value and handler, got both$",
        ),
        ({"handler": 5}, TypeError, r"^Fallback: handler must be an async function .*got 5 \("),
        (
            {"handler": _sync_handler},
            TypeError,
            r"^Fallback: handler must be an async function .*_sync_handler.*\(function\)",
        ),
        (
            # A plain function that returns an awaitable is refused too.
            {"handler": lambda *args: _async_handler(*args)},  # noqa: PLW0108 -- the case
            TypeError,
            r"^Fallback: handler must be an async function",
        ),
        ({"value": 1, "on": ()}, ValueError, r"^Fallback: on must name at least one exception"),
        ({"value": 1, "on": (KeyError, 3)}, TypeError, r"^Fallback: on\[1\] must be an exception"),
        ({"value": 1, "on": "x"}, TypeError, r"^Fallback: on must be an exception class"),
        ({"value": 1, "on_result": 5}, TypeError, r"^Fallback: on_result must be callable or None"),
    ],
)
def test_invalid_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Fallback(**options)


def test_options_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        Fallback("x")  # type: ignore[misc]
    fallback = Fallback(value="x")
    with pytest.raises(AttributeError):
        fallback.value = "y"  # type: ignore[misc]
