"""`OpenTelemetryHook`: spans per call and per attempt, and counters, via the OTel API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import metrics, trace

from .._version import __version__
from ._dispatch import AttemptInfo, CallInfo, GiveUpDetails, Hook, RetryDetails, TimeoutDetails

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ..policies._circuit import CircuitTransition

__all__ = ["OpenTelemetryHook"]


class OpenTelemetryHook(Hook):
    """Trace every logical call and attempt, and count retries, give-ups and timeouts.

    Spans:

    - one per logical call, named after the operation, with attributes
      ``resilient.operation`` and ``resilient.pipeline``;
    - one per attempt, a child of the call's span, named ``"<operation> attempt"``,
      with ``resilient.operation`` and ``resilient.attempt``. Spans of the attempt's
      own work (an HTTP client's, say) nest under it.

    An exception that escapes a span is recorded on it and sets its status to error.
    An attempt cut short by a `Timeout` ends in a cancellation, which OpenTelemetry
    does not count as an error: the expiry is an event on the enclosing span.
    Retries, give-ups and timeouts are added as events on the current span.

    Metrics (counters, attribute ``resilient.operation``): ``resilient.retries``,
    ``resilient.give_ups`` (plus ``resilient.reason``), ``resilient.timeouts``; and
    ``resilient.circuit_transitions`` (attributes ``resilient.breaker`` and
    ``resilient.state``, the new state).

    Only the OpenTelemetry *API* is used: without an SDK configured, spans and
    metrics are no-ops. The hook is opt-in (``set_hooks`` or ``Pipeline(hooks=)``)
    so that pipelines that do not trace pay nothing for it.

    Args:
        tracer_provider: Defaults to the global tracer provider.
        meter_provider: Defaults to the global meter provider.

    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer("resilient", __version__, tracer_provider)
        meter = metrics.get_meter("resilient", __version__, meter_provider)
        self._retries = meter.create_counter(
            "resilient.retries", unit="{retry}", description="Retries scheduled."
        )
        self._give_ups = meter.create_counter(
            "resilient.give_ups", unit="{call}", description="Calls Retry stopped retrying."
        )
        self._timeouts = meter.create_counter(
            "resilient.timeouts", unit="{timeout}", description="Timeouts that expired."
        )
        self._transitions = meter.create_counter(
            "resilient.circuit_transitions",
            unit="{transition}",
            description="Circuit breaker state changes.",
        )

    def trace_call(self, info: CallInfo) -> AbstractContextManager[object]:
        """Open the call's span."""
        return self._tracer.start_as_current_span(
            info.operation,
            attributes={"resilient.operation": info.operation, "resilient.pipeline": info.pipeline},
        )

    def trace_attempt(self, info: AttemptInfo) -> AbstractContextManager[object]:
        """Open the attempt's span."""
        return self._tracer.start_as_current_span(
            f"{info.operation} attempt",
            attributes={"resilient.operation": info.operation, "resilient.attempt": info.attempt},
        )

    def on_retry(self, details: RetryDetails) -> None:
        """Count the retry and note it on the current span."""
        self._retries.add(1, {"resilient.operation": details.operation})
        trace.get_current_span().add_event(
            "resilient.retry_scheduled",
            {"resilient.attempt": details.attempt, "resilient.delay": details.delay},
        )

    def on_give_up(self, details: GiveUpDetails) -> None:
        """Count the give-up and note it on the current span."""
        attributes = {"resilient.operation": details.operation, "resilient.reason": details.reason}
        self._give_ups.add(1, attributes)
        trace.get_current_span().add_event(
            "resilient.gave_up",
            {"resilient.attempts": details.attempts, "resilient.reason": details.reason},
        )

    def on_timeout(self, details: TimeoutDetails) -> None:
        """Count the timeout and note it on the current span."""
        self._timeouts.add(1, {"resilient.operation": details.operation})
        trace.get_current_span().add_event(
            "resilient.timed_out",
            {"resilient.timeout": details.timeout, "resilient.attempt": details.attempt},
        )

    def on_circuit_transition(self, transition: CircuitTransition) -> None:
        """Count the transition and note it on the current span."""
        attributes = {
            "resilient.breaker": transition.name or "",
            "resilient.state": transition.new.value,
        }
        self._transitions.add(1, attributes)
        trace.get_current_span().add_event("resilient.circuit_transition", attributes)
