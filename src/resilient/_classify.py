"""`Classifier`: how a layer that knows the protocol tells policies what an outcome means.

Policies judge outcomes with their own `on` / `on_result` options. When those are
left at their defaults and the call's `Context` carries a classifier, the policies
ask it instead: that is how `resilient.http.Transport` makes a generic `Retry` or
`CircuitBreaker` understand status codes, method safety and ``Retry-After``
without being rebuilt (Polly v8's predicates, supplied by the HTTP layer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._outcome import Outcome

__all__ = ["Classifier", "release"]


class Classifier(Protocol):
    """What an outcome means, for the policies of one call.

    Three more members are optional, and looked up when needed:

    - ``replayable``: when false, the call cannot be made twice (an HTTP request
      whose body is a one-shot stream), and `Hedging` makes a single attempt
      (`Retry` asks `should_retry`, which should then say no, and stops after
      an attempt that failed anyway);
    - ``idempotent``: when false, two attempts at once may do the work twice (an
      HTTP POST without an idempotency key), and `Hedging` starts the next
      attempt only after a failure that `should_retry` accepts, never on its delay;
    - ``async release(result)``: called with a result a policy drops (`Retry`
      before its next attempt, `Hedging` for a hedge that lost or was
      superseded), so that a result holding a resource (a streamed HTTP
      response and its connection) gives it back at once.
    """

    def accepts(self, result: Any) -> bool:
        """Whether *result* is an ordinary success that no policy needs to judge.

        The cheap first question, asked of every result on the hot path; the
        others are asked only when it says no.
        """
        ...

    def should_retry(self, outcome: Outcome[Any]) -> bool:
        """Whether `Retry` (and `Hedging`) should try again after *outcome*."""
        ...

    def is_failure(self, outcome: Outcome[Any]) -> bool:
        """Whether *outcome* counts as a failure for `CircuitBreaker` (and `Fallback`)."""
        ...

    def delay_hint(self, outcome: Outcome[Any]) -> float | None:
        """The wait the downstream asked for; ``math.inf`` to give up now; None: no hint."""
        ...


async def release(classifier: object, outcome: Outcome[Any] | None) -> None:
    """Give a dropped *outcome*'s result to *classifier*'s ``release``, if it has one."""
    if outcome is None or outcome.exception is not None:
        return
    give_back = getattr(classifier, "release", None)
    if give_back is not None:
        await give_back(outcome.result)
