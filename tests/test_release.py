"""`Classifier.release`: results a policy drops are handed back at once, never the answer."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest

import resilient as rs
from resilient._clock import sleep

if TYPE_CHECKING:
    from resilient._outcome import Outcome

pytestmark = pytest.mark.anyio


class Judge:
    """A classifier: "bad" results are retried; it records what it is given back."""

    def __init__(self) -> None:
        self.released: list[Any] = []

    def accepts(self, result: Any) -> bool:
        return result != "bad"

    def should_retry(self, outcome: Outcome[Any]) -> bool:
        return outcome.result == "bad" or outcome.exception is not None

    def is_failure(self, outcome: Outcome[Any]) -> bool:
        return self.should_retry(outcome)

    def delay_hint(self, outcome: Outcome[Any]) -> float | None:
        del outcome
        return None

    async def release(self, result: Any) -> None:
        self.released.append(result)


async def run(policy: rs.Pipeline, answers: list[tuple[float, str]]) -> tuple[Any, Judge]:
    """Call through *policy*; the n-th attempt waits answers[n][0] and returns answers[n][1]."""
    judge = Judge()
    script = iter(answers)

    async def call() -> str:
        wait, result = next(script)
        await sleep(wait)
        return f"{result}#{len(judge.released)}" if result != "bad" else result

    ctx = policy.new_context(call, (), {})
    ctx.classifier = judge
    return await policy.run_context(ctx), judge


async def test_retry_gives_back_each_result_it_retries_before_the_next_attempt() -> None:
    policy = rs.Pipeline(rs.Retry(backoff=rs.Backoff.constant(1), budget=None), hooks=[])
    result, judge = await run(policy, [(0, "bad"), (0, "bad"), (0, "ok")])
    assert result == "ok#2"  # both released before the attempt that answered
    assert judge.released == ["bad", "bad"]


async def test_retry_keeps_the_result_it_gives_up_with() -> None:
    retry = rs.Retry(attempts=2, backoff=rs.Backoff.constant(1), budget=None)
    policy = rs.Pipeline(retry, hooks=[])
    result, judge = await run(policy, [(0, "bad"), (0, "bad")])
    assert result == "bad"
    assert judge.released == ["bad"]  # the first; the second is the answer


async def test_hedging_gives_back_the_losers_and_superseded_failures() -> None:
    policy = rs.Pipeline(rs.Hedging(delay=0, max_attempts=3, budget=None), hooks=[])
    # All three start at once: the one answering at 1 s wins, the one at 2 s loses.
    result, judge = await run(policy, [(0.5, "bad"), (1, "win"), (2, "lose")])
    assert result.startswith("win")
    assert judge.released == ["bad"]  # the loser was cancelled before it answered


async def test_failover_hedging_gives_back_a_failure_before_the_next_attempt() -> None:
    policy = rs.Pipeline(rs.Hedging(delay=math.inf, max_attempts=3, budget=None), hooks=[])
    result, judge = await run(policy, [(0, "bad"), (0, "bad"), (0, "bad")])
    assert result == "bad"  # the last failure is the answer, and is kept
    assert judge.released == ["bad", "bad"]
