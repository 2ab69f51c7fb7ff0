"""`RetryBudget`: retries earned by successes, so clients cannot retry a dead service to death."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RetryBudget", "RetryBudgetStatistics"]


@dataclass(frozen=True, slots=True)
class RetryBudgetStatistics:
    """A snapshot of a `RetryBudget`.

    Attributes:
        tokens: Retries the budget would allow right now (may be fractional).
        max_tokens: The most it holds.
        ratio: Tokens each success earns.
        successes: Successful calls recorded.
        retries_allowed: Retries the budget granted.
        retries_denied: Retries the budget refused.

    """

    tokens: float
    max_tokens: float
    ratio: float
    successes: int
    retries_allowed: int
    retries_denied: int


class RetryBudget:
    """A success-weighted token bucket that every retry must draw from.

    This is gRPC's retry throttling, with two changes: the first attempt of a call
    never pays, only retries do (gRPC charges every failed attempt), and a retry
    needs one whole token (gRPC stops at half the bucket). The bucket starts full
    with *max_tokens*; each retry takes one token and is refused when less than
    one is left; each successful call puts *ratio* back, up to *max_tokens*.

    So retries stay below ``ratio`` per success plus a burst of *max_tokens*:

    - a healthy service (10 % of attempts fail, say) earns more than its retries
      cost, and every retry is granted;
    - a dead service earns nothing: after *max_tokens* retries the budget is empty
      and each call makes one attempt, so retries add at most *max_tokens* calls
      to an outage, however many clients share the budget and however long it lasts;
    - once the service answers again, its successes refill the budget.

    A `Retry` makes its own budget unless given one; share one budget between
    retries to throttle them together. State lives in this object, for the calls
    of one event loop: it takes no lock, so give each thread's loop its own.

    Args:
        ratio: Tokens earned per successful call, in (0, 1]. Default 0.2: at most
            one retry per five successes once the burst is spent.
        max_tokens: The bucket's size and the burst of retries allowed, >= 1.
            Default 10.

    Raises:
        TypeError: If an option is not a number.
        ValueError: If *ratio* is outside (0, 1] or *max_tokens* below 1.

    """

    __slots__ = ("_allowed", "_denied", "_successes", "_tokens", "max_tokens", "ratio")

    def __init__(self, *, ratio: float = 0.2, max_tokens: float = 10.0) -> None:
        for field, value in (("ratio", ratio), ("max_tokens", max_tokens)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                msg = (
                    f"RetryBudget: {field} must be a number, got {value!r} ({type(value).__name__})"
                )
                raise TypeError(msg)
        if not (0 < ratio <= 1):  # also refuses NaN
            msg = f"RetryBudget: ratio must be in (0, 1], got {ratio!r}"
            raise ValueError(msg)
        if not (1 <= max_tokens < math.inf):
            msg = f"RetryBudget: max_tokens must be a finite number >= 1, got {max_tokens!r}"
            raise ValueError(msg)
        self.ratio = float(ratio)
        self.max_tokens = float(max_tokens)
        self._tokens = self.max_tokens
        self._successes = 0
        self._allowed = 0
        self._denied = 0

    def record_success(self) -> None:
        """Earn *ratio* tokens for a successful call."""
        self._successes += 1
        tokens = self._tokens + self.ratio
        # Not min(): this runs on every successful call and min() costs 10x more.
        self._tokens = tokens if tokens < self.max_tokens else self.max_tokens  # noqa: FURB136

    def try_retry(self) -> bool:
        """Take a token for one retry; return False, taking nothing, if none is left."""
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self._allowed += 1
            return True
        self._denied += 1
        return False

    def statistics(self) -> RetryBudgetStatistics:
        """A snapshot of the budget's state and counters."""
        return RetryBudgetStatistics(
            tokens=self._tokens,
            max_tokens=self.max_tokens,
            ratio=self.ratio,
            successes=self._successes,
            retries_allowed=self._allowed,
            retries_denied=self._denied,
        )

    def describe(self) -> str:
        """E.g. ``RetryBudget(ratio=0.2, max_tokens=10)``."""
        return f"RetryBudget(ratio={self.ratio:g}, max_tokens={self.max_tokens:g})"

    def __repr__(self) -> str:
        return self.describe()
