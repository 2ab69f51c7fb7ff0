"""A classifier on the context speaks for policies left at their defaults."""

from __future__ import annotations

import math
from typing import Any

import pytest

import resilient as rs
from resilient._clock import now

pytestmark = pytest.mark.anyio


class StatusClassifier:
    """Judges int 'statuses' as an HTTP layer would: 503 retryable, 5xx failures."""

    def __init__(self, hint: float | None = None) -> None:
        self.hint = hint

    def accepts(self, result: Any) -> bool:
        return result < 400

    def should_retry(self, outcome: rs.Outcome[Any]) -> bool:
        if outcome.exception is not None:
            return isinstance(outcome.exception, KeyError)  # an odd choice, on purpose
        return outcome.result == 503

    def is_failure(self, outcome: rs.Outcome[Any]) -> bool:
        if outcome.exception is not None:
            return isinstance(outcome.exception, KeyError)
        return outcome.result >= 500

    def delay_hint(self, outcome: rs.Outcome[Any]) -> float | None:
        del outcome  # the same hint whatever happened
        return self.hint


class Classify:
    """What the HTTP transport does: put a classifier and a partition on the context."""

    def __init__(self, classifier: StatusClassifier, partition: object = None) -> None:
        self.classifier = classifier
        self.partition = partition

    async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
        ctx.classifier = self.classifier
        ctx.partition = self.partition if self.partition is not None else ctx.args[0]
        return await next_step(ctx)

    def describe(self) -> str:
        return "Classify"


def script(*items: object) -> Any:
    queue = list(items)

    async def call(_: object = None) -> object:
        item = queue.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    return call


async def test_retry_with_defaults_asks_the_classifier() -> None:
    retry = rs.Retry(backoff=rs.Backoff.constant(0), budget=None)
    pipeline = rs.Pipeline(Classify(StatusClassifier(), partition="p"), retry, hooks=[])
    assert await pipeline.run(script(503, 503, 200)) == 200
    assert await pipeline.run(script(KeyError("odd"), 200)) == 200
    with pytest.raises(ConnectionError):  # the classifier does not retry it
        await pipeline.run(script(ConnectionError(), 200))


async def test_explicit_predicates_win_over_the_classifier() -> None:
    retry = rs.Retry(
        on=ConnectionError,
        on_result=lambda r: r == 500,
        backoff=rs.Backoff.constant(0),
        budget=None,
    )
    pipeline = rs.Pipeline(Classify(StatusClassifier(), partition="p"), retry, hooks=[])
    assert await pipeline.run(script(ConnectionError(), 500, 503)) == 503
    with pytest.raises(KeyError):
        await pipeline.run(script(KeyError("odd"), 200))


async def test_the_classifier_sets_the_wait_and_can_refuse_it() -> None:
    retry = rs.Retry(backoff=rs.Backoff.constant(100), budget=None)
    start = now()
    pipeline = rs.Pipeline(Classify(StatusClassifier(hint=2.0), partition="p"), retry, hooks=[])
    assert await pipeline.run(script(503, 200)) == 200
    assert now() - start == pytest.approx(2.0)
    refusing = rs.Pipeline(
        Classify(StatusClassifier(hint=math.inf), partition="p"), retry, hooks=[]
    )
    assert await refusing.run(script(503, 200)) == 503  # gave up at once with the last result


async def test_breaker_partitions_and_classifier() -> None:
    breaker = rs.CircuitBreaker(window=rs.CountWindow(3), min_calls=3, open_for=10)
    pipeline = rs.Pipeline(Classify(StatusClassifier()), breaker, hooks=[])

    async def origin(name: str, status: int) -> int:
        return status

    for _ in range(3):
        assert await pipeline.run(origin, "a", 502) == 502  # failures by the classifier
    assert breaker.state("a") is rs.CircuitState.OPEN
    assert await pipeline.run(origin, "b", 200) == 200  # another origin, another circuit
    assert breaker.state("b") is rs.CircuitState.CLOSED
    with pytest.raises(rs.CircuitOpenError):
        await pipeline.run(origin, "a", 200)


async def test_hedging_and_fallback_ask_the_classifier() -> None:
    fallback = rs.Fallback(value="cached")
    pipeline = rs.Pipeline(Classify(StatusClassifier(), partition="p"), fallback, hooks=[])
    assert await pipeline.run(script(502)) == "cached"
    assert await pipeline.run(script(404)) == 404
    hedging = rs.Hedging(delay=0)
    pipeline = rs.Pipeline(Classify(StatusClassifier(), partition="p"), hedging, hooks=[])
    assert await pipeline.run(script(503, 200)) == 200
