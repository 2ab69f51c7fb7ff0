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

__all__ = ["Classifier"]


class Classifier(Protocol):
    """What an outcome means, for the policies of one call.

    A classifier may also have a ``replayable`` attribute: when it is false, the
    call cannot be made twice (an HTTP request whose body is a one-shot stream),
    and `Hedging` makes a single attempt (`Retry` asks `should_retry`, which
    should then say no).
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
