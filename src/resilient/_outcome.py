"""`Outcome`: what one attempt produced, a result or an exception."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Outcome"]

T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T_co]):
    """The result or the exception of one attempt.

    Policies judge outcomes rather than exceptions alone, because a failure is not
    always raised: an HTTP 503 is a response, yet it is a failure worth retrying.

    Attributes:
        result: The value the attempt returned (``None`` when it raised).
        exception: The exception the attempt raised, or ``None``.

    """

    result: T_co | None = None
    exception: BaseException | None = None

    @property
    def failed(self) -> bool:
        """Whether the attempt raised."""
        return self.exception is not None
