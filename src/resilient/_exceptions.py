"""The errors `resilient` raises.

::

    ResilienceError                   anything this library raises on its own account
    └── RejectedError                 a policy refused or abandoned the call
        ├── DeadlineExceededError     a Timeout expired (also a builtin TimeoutError)
        ├── CircuitOpenError          a circuit breaker is open
        ├── BulkheadFullError         no concurrency permit and no room to queue
        ├── RateLimitedError          a rate limiter refused the call
        └── BudgetExhaustedError      a budget refused work outright

A failure of the wrapped call itself is never wrapped: when `Retry` runs out of
attempts, of budget or of time, the call's own last exception propagates unchanged,
so ``except httpx.ConnectError`` keeps working with or without `resilient`.
"""

from __future__ import annotations

__all__ = [
    "BudgetExhaustedError",
    "BulkheadFullError",
    "CircuitOpenError",
    "DeadlineExceededError",
    "RateLimitedError",
    "RejectedError",
    "ResilienceError",
]


class ResilienceError(Exception):
    """Base of every error that `resilient` raises on its own account."""


class RejectedError(ResilienceError):
    """A policy refused to run the call, or abandoned it.

    Catch this to handle load shedding of every kind in one place.
    """


class DeadlineExceededError(RejectedError, TimeoutError):
    """A `Timeout` expired before the call finished.

    It is also a builtin `TimeoutError`, so code written for ``asyncio.timeout``
    or ``anyio.fail_after`` catches it unchanged.

    Attributes:
        timeout: The duration, in seconds, of the `Timeout` that expired.

    """

    def __init__(self, timeout: float) -> None:
        super().__init__(f"the call did not finish within its {timeout:g} s timeout")
        self.timeout = timeout

    def __reduce__(self) -> tuple[type[DeadlineExceededError], tuple[float]]:
        return (type(self), (self.timeout,))


class CircuitOpenError(RejectedError):
    """A circuit breaker is open and refused the call."""


class BulkheadFullError(RejectedError):
    """A bulkhead had neither a free permit nor room in its queue."""


class RateLimitedError(RejectedError):
    """A rate limiter refused the call."""


class BudgetExhaustedError(RejectedError):
    """A budget refused work outright.

    `Retry` never raises it: a retry its budget refuses ends the call with the
    call's own last outcome, as gRPC retry throttling and Envoy retry budgets do,
    so callers see the same error type whatever the budget's state.
    """
