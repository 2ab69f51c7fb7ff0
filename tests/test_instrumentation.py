"""Hooks: structlog events, OpenTelemetry spans and metrics, and their cost when absent."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import resilient as rs
from resilient._clock import sleep
from resilient.instrumentation import (
    Hook,
    OpenTelemetryHook,
    RetryDetails,
    StructlogHook,
    get_hooks,
    set_hooks,
)
from resilient.instrumentation._dispatch import Dispatch

pytestmark = pytest.mark.anyio

NO_WAIT = rs.Backoff.constant(0.25)


def failing(times: int, error: type[Exception] = ConnectionError) -> Any:
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        if calls <= times:
            raise error("refused")
        return "ok"

    return call


async def test_structlog_events_for_retry_give_up_and_timeout(logs: list[dict[str, Any]]) -> None:
    """The default hook logs retry_scheduled, gave_up and timed_out with their fields."""
    pipeline = rs.Pipeline(
        rs.Retry(attempts=2, backoff=NO_WAIT, budget=None), rs.Timeout(1.0), name="op"
    )

    async def hang() -> None:
        await sleep(5)

    with pytest.raises(rs.DeadlineExceededError):
        await pipeline.run(hang)
    events = [(e["event"], e["log_level"]) for e in logs]
    assert events == [
        ("resilient.timed_out", "warning"),
        ("resilient.retry_scheduled", "warning"),
        ("resilient.timed_out", "warning"),
        ("resilient.gave_up", "warning"),
    ]
    timed_out, retry, _, gave_up = logs
    assert timed_out["operation"] == "op"
    assert timed_out["timeout"] == 1.0
    assert retry["attempt"] == 1
    assert retry["delay"] == 0.25
    assert retry["error"] == "DeadlineExceededError"
    assert gave_up["reason"] == "attempts"
    assert gave_up["attempts"] == 2


async def test_structlog_logs_a_result_by_type_only(logs: list[dict[str, Any]]) -> None:
    """Results may hold secrets: only their type is logged."""

    async def call() -> str:
        return "secret-token-123"

    retry = rs.Retry(attempts=2, on_result=lambda _: True, backoff=NO_WAIT, budget=None)
    await rs.Pipeline(retry).run(call)
    assert logs[0]["result"] == "str"
    assert "secret-token-123" not in repr(logs)


def test_structlog_is_the_default_hook() -> None:
    assert [type(h) for h in get_hooks()] == [StructlogHook]


async def test_set_hooks_reaches_every_pipeline_without_its_own() -> None:
    heard: list[int] = []

    class Count(Hook):
        def on_retry(self, details: RetryDetails) -> None:
            heard.append(details.attempt)

    pipeline = rs.Pipeline(rs.Retry(backoff=NO_WAIT, budget=None))
    set_hooks([Count()])
    await pipeline.run(failing(2))
    own = rs.Pipeline(rs.Retry(backoff=NO_WAIT, budget=None), hooks=[])
    await own.run(failing(2))
    assert heard == [1, 2]


def test_set_hooks_refuses_a_non_hook() -> None:
    with pytest.raises(TypeError, match=r"hooks\[0\] must be a resilient.instrumentation.Hook"):
        set_hooks([print])  # type: ignore[list-item]


def test_only_overridden_methods_are_dispatched() -> None:
    """A hook that overrides one method costs nothing for the other events."""

    class OnlyRetries(Hook):
        def on_retry(self, details: RetryDetails) -> None:
            pass

    dispatch = Dispatch([OnlyRetries()])
    assert len(dispatch.on_retry) == 1
    assert dispatch.on_give_up == dispatch.on_timeout == ()
    assert dispatch.trace_call == dispatch.trace_attempt == ()
    empty = Dispatch([])
    assert empty.on_retry == empty.trace_call == empty.trace_attempt == ()


@pytest.fixture
def otel() -> tuple[InMemorySpanExporter, InMemoryMetricReader, OpenTelemetryHook]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    hook = OpenTelemetryHook(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return exporter, reader, hook


def counters(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], int]]]:
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[dict[str, Any], int]]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [
                    (dict(point.attributes or {}), point.value)  # type: ignore[union-attr]
                    for point in metric.data.data_points
                ]
    return found


async def test_otel_spans_one_per_call_and_one_per_attempt(otel: Any) -> None:
    exporter, reader, hook = otel
    pipeline = rs.Pipeline(rs.Retry(backoff=NO_WAIT, budget=None), name="fetch", hooks=[hook])
    assert await pipeline.run(failing(2)) == "ok"
    spans = exporter.get_finished_spans()
    call = [s for s in spans if s.name == "fetch"]
    attempts = [s for s in spans if s.name == "fetch attempt"]
    assert len(call) == 1
    assert [s.attributes["resilient.attempt"] for s in attempts] == [1, 2, 3]
    for span in attempts:
        assert span.parent is not None
        assert span.parent.span_id == call[0].context.span_id
    assert [s.status.status_code for s in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert call[0].attributes["resilient.pipeline"] == pipeline.describe()
    assert [e.name for e in call[0].events] == ["resilient.retry_scheduled"] * 2
    assert counters(reader)["resilient.retries"] == [({"resilient.operation": "fetch"}, 2)]


async def test_otel_records_give_ups_and_timeouts(otel: Any) -> None:
    exporter, reader, hook = otel
    pipeline = rs.Pipeline(
        rs.Retry(attempts=2, backoff=NO_WAIT, budget=None), rs.Timeout(1), name="op", hooks=[hook]
    )

    async def hang() -> None:
        await sleep(9)

    with pytest.raises(rs.DeadlineExceededError):
        await pipeline.run(hang)
    found = counters(reader)
    assert found["resilient.timeouts"] == [({"resilient.operation": "op"}, 2)]
    assert found["resilient.give_ups"] == [
        ({"resilient.operation": "op", "resilient.reason": "attempts"}, 1)
    ]
    (call,) = [s for s in exporter.get_finished_spans() if s.name == "op"]
    assert call.status.status_code == StatusCode.ERROR
    assert "resilient.gave_up" in [e.name for e in call.events]
