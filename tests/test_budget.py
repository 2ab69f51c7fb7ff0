"""RetryBudget: the token bucket's rules, statistics and validation."""

from __future__ import annotations

import math

import pytest

import resilient as rs


def test_starts_full_and_spends_one_token_per_retry() -> None:
    budget = rs.RetryBudget(ratio=0.5, max_tokens=3)
    assert [budget.try_retry() for _ in range(4)] == [True, True, True, False]
    stats = budget.statistics()
    assert (stats.tokens, stats.retries_allowed, stats.retries_denied) == (0.0, 3, 1)


def test_successes_earn_ratio_tokens_up_to_the_maximum() -> None:
    budget = rs.RetryBudget(ratio=0.25, max_tokens=2)
    budget.try_retry()
    budget.try_retry()
    for _ in range(3):
        budget.record_success()
    assert budget.statistics().tokens == 0.75
    assert not budget.try_retry()  # less than one whole token
    for _ in range(100):
        budget.record_success()
    stats = budget.statistics()
    assert stats.tokens == 2.0
    assert stats.successes == 103


def test_defaults() -> None:
    stats = rs.RetryBudget().statistics()
    assert (stats.ratio, stats.max_tokens, stats.tokens) == (0.2, 10.0, 10.0)
    assert repr(rs.RetryBudget()) == "RetryBudget(ratio=0.2, max_tokens=10)"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"ratio": 0}, ValueError, r"RetryBudget: ratio must be in \(0, 1\], got 0"),
        ({"ratio": 1.5}, ValueError, r"RetryBudget: ratio must be in \(0, 1\], got 1.5"),
        ({"ratio": -0.1}, ValueError, r"ratio must be in \(0, 1\]"),
        ({"ratio": math.nan}, ValueError, r"ratio must be in \(0, 1\], got nan"),
        ({"ratio": "0.1"}, TypeError, r"RetryBudget: ratio must be a number, got '0.1'"),
        ({"ratio": True}, TypeError, r"RetryBudget: ratio must be a number, got True"),
        (
            {"max_tokens": 0.5},
            ValueError,
            r"RetryBudget: max_tokens must be a finite number >= 1, got 0.5",
        ),
        ({"max_tokens": math.inf}, ValueError, r"max_tokens must be a finite number >= 1"),
    ],
)
def test_invalid_budgets_are_refused(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        rs.RetryBudget(**options)  # type: ignore[arg-type]
