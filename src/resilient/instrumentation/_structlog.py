"""`StructlogHook`: the structured log events every pipeline emits by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from ._dispatch import GiveUpDetails, Hook, RetryDetails, TimeoutDetails

if TYPE_CHECKING:
    from .._outcome import Outcome
    from ..policies._circuit import CircuitTransition

__all__ = ["StructlogHook"]


def _describe(outcome: Outcome[Any]) -> dict[str, str]:
    # Only the type and the exception's message: a result may hold anything,
    # including a caller's secrets, so its value is never logged.
    exc = outcome.exception
    if exc is not None:
        return {"error": type(exc).__qualname__, "error_message": str(exc)}
    return {"result": type(outcome.result).__qualname__}


class StructlogHook(Hook):
    """Log retries, give-ups and timeouts as structlog events.

    Events (logger ``resilient``):

    - ``resilient.retry_scheduled`` (warning): operation, attempt, delay, total_delay, and
      error/error_message or result (the type only);
    - ``resilient.gave_up`` (warning): operation, attempts, reason, and the same outcome keys;
    - ``resilient.timed_out`` (warning): operation, timeout, attempt;
    - ``resilient.circuit_transition``: breaker, key, old, new, open_for (at
      warning when a circuit opens, info otherwise; changes made by hand reach
      the breaker's listeners, not pipeline hooks).

    Args:
        logger: The logger to use; by default ``structlog.get_logger("resilient")``.

    """

    def __init__(self, logger: Any = None) -> None:
        self._log = logger if logger is not None else structlog.get_logger("resilient")

    def on_retry(self, details: RetryDetails) -> None:
        """Log ``resilient.retry_scheduled``."""
        self._log.warning(
            "resilient.retry_scheduled",
            operation=details.operation,
            attempt=details.attempt,
            delay=round(details.delay, 6),
            total_delay=round(details.total_delay, 6),
            **_describe(details.outcome),
        )

    def on_give_up(self, details: GiveUpDetails) -> None:
        """Log ``resilient.gave_up``."""
        self._log.warning(
            "resilient.gave_up",
            operation=details.operation,
            attempts=details.attempts,
            reason=details.reason,
            **_describe(details.outcome),
        )

    def on_timeout(self, details: TimeoutDetails) -> None:
        """Log ``resilient.timed_out``."""
        self._log.warning(
            "resilient.timed_out",
            operation=details.operation,
            timeout=details.timeout,
            attempt=details.attempt,
        )

    def on_circuit_transition(self, transition: CircuitTransition) -> None:
        """Log ``resilient.circuit_transition``."""
        log = self._log.warning if transition.new.value == "open" else self._log.info
        log(
            "resilient.circuit_transition",
            breaker=transition.name,
            key=None if transition.key is None else repr(transition.key),
            old=transition.old.value,
            new=transition.new.value,
            open_for=transition.open_for,
        )
