"""The testing mode's state: a context variable that `Retry` and `Hedging` consult."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["TestingMode", "testing_mode"]


@dataclass(frozen=True, slots=True)
class TestingMode:
    """Active testing mode (see `resilient.testing.set_testing`).

    Attributes:
        attempts: The most attempts any `Retry` or `Hedging` makes, or ``None``.
        waits: Whether `Retry` still waits between attempts.

    """

    attempts: int | None
    waits: bool


testing_mode: ContextVar[TestingMode | None] = ContextVar("resilient_testing_mode", default=None)
