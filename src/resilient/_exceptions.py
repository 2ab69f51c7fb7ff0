"""The errors `resilient` raises.

::

    ResilienceError                   anything this library raises on its own account
    └── RejectedError                 a policy refused or abandoned the call
        ├── DeadlineExceededError     a Timeout expired (also a builtin TimeoutError)
        ├── CircuitOpenError          a circuit breaker is open
        ├── BulkheadFullError         no concurrency permit and no room to queue
        ├── RateLimitedError          a rate limiter refused the call
        └── BudgetExhaustedError      a budget refused work outright

``PipelineWarning`` (a ``UserWarning``) flags a composition that works but is
probably not what was meant.

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
    "PipelineWarning",
    "RateLimitedError",
    "RejectedError",
    "ResilienceError",
]


class ResilienceError(Exception):
    """Base of every error that `resilient` raises on its own account."""


class RejectedError(ResilienceError):
    """A policy refused to run the call, or abandoned it.

    Catch this to handle load shedding of every kind in one place.

    Attributes:
        retry_after: Seconds after which the policy expects to accept calls again,
            or ``None`` if it cannot tell. `Retry` uses it as its next wait when it
            retries a rejection.

    """

    retry_after: float | None = None


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
    """A circuit breaker refused the call.

    Attributes:
        retry_after: Seconds until the breaker lets a probe call through, or
            ``None`` when it cannot tell: half-open with every probe slot taken,
            or isolated by hand.
        name: The breaker's name, or key for a keyed breaker.
        state: ``"open"``, ``"half_open"`` or ``"isolated"``.

    """

    def __init__(
        self, retry_after: float | None, name: str | None = None, state: str = "open"
    ) -> None:
        label = f"circuit {name!r}" if name else "the circuit"
        if state == "half_open":
            text = f"{label} is half-open and all its probe calls are taken"
        elif state == "isolated":
            text = f"{label} is isolated: it is open until reset"
        else:
            text = f"{label} is open; it lets a call through in {retry_after:.3g} s"
        super().__init__(text)
        self.retry_after = retry_after
        self.name = name
        self.state = state

    def __reduce__(self) -> tuple[type[CircuitOpenError], tuple[object, ...]]:
        return (type(self), (self.retry_after, self.name, self.state))


class BulkheadFullError(RejectedError):
    """A bulkhead had neither a free permit nor room in its queue, or the wait was too long.

    Attributes:
        limit: The bulkhead's concurrency limit.
        queue: The bulkhead's queue size.

    """

    def __init__(self, limit: int, queue: int) -> None:
        super().__init__(f"bulkhead full: {limit} calls running and {queue} waiting")
        self.limit = limit
        self.queue = queue

    def __reduce__(self) -> tuple[type[BulkheadFullError], tuple[int, int]]:
        return (type(self), (self.limit, self.queue))


class RateLimitedError(RejectedError):
    """A rate limiter refused the call.

    Attributes:
        retry_after: Seconds until the limiter would accept the call.

    """

    def __init__(self, retry_after: float | None) -> None:
        after = "" if retry_after is None else f"; try again in {retry_after:.3g} s"
        super().__init__(f"rate limit exceeded{after}")
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[RateLimitedError], tuple[float | None]]:
        return (type(self), (self.retry_after,))


class BudgetExhaustedError(RejectedError):
    """A budget refused work outright.

    `Retry` never raises it: a retry its budget refuses ends the call with the
    call's own last outcome, as gRPC retry throttling and Envoy retry budgets do,
    so callers see the same error type whatever the budget's state.
    """


class PipelineWarning(UserWarning):
    """A pipeline was composed in a way that works but is probably a mistake.

    For example a circuit breaker whose time window is shorter than twice the
    timeout of the calls it judges: a slow downstream then times out fewer calls
    per window than the breaker needs to see. Turn it into an error with
    ``warnings.simplefilter("error", resilient.PipelineWarning)``.
    """
