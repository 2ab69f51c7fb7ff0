"""`Transport`: resilience for any httpx (or httpx2) client, without touching the client."""

from __future__ import annotations

import secrets
import sys
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from opentelemetry import trace

from .._pipeline import Pipeline, Policy
from .._version import __version__
from ..policies._breaker import CircuitBreaker
from ..policies._retry import Retry
from ..policies._timeout import Timeout
from ._classification import HttpClassification, RequestClassifier
from ._errors import IdempotencyKeyMismatchError, RetryAfterTooLongError
from ._redact import Redaction

if TYPE_CHECKING:
    from .._context import Context
    from .._pipeline import Step

__all__ = ["Transport", "default_pipeline"]

_STREAMED_TYPES = ("text/event-stream",)


def default_pipeline() -> Pipeline:
    """The pipeline `Transport` uses when given none.

    ``Timeout(30) > Retry() > CircuitBreaker() > Timeout(10)``: 30 s for the whole
    exchange, retries on the HTTP classification with the default backoff and
    budget, a breaker per origin (a 30 s window, open at 50 % failures of at least
    20 calls), and 10 s for each attempt.
    """
    return Pipeline(Timeout(30.0), Retry(), CircuitBreaker(), Timeout(10.0))


class _Prepare:
    """Outermost step: what the policies need to know about this request."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def execute(self, next_step: Step, ctx: Context) -> Any:
        request = ctx.args[0]
        url = request.url
        ctx.partition = (url.scheme, url.host, url.port)
        if ctx.operation is None:
            # Few distinct values, no secrets: it names log events and the call's span.
            ctx.operation = f"{request.method} {url.host}"
        ctx.classifier = self._transport.classification.for_request(request, ctx)
        ctx.idempotency_key = request.headers.get(self._transport.classification.idempotency_header)
        ctx.args[1].append(ctx.classifier)  # handed back to Transport._finish
        return await next_step(ctx)

    def describe(self) -> str:
        return "http"


class _Exchange:
    """Innermost step: one attempt of the HTTP exchange, body included."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def execute(self, next_step: Step, ctx: Context) -> Any:
        del next_step  # the exchange is the call
        return await self._transport._attempt(ctx.args[0], ctx)  # noqa: SLF001 -- its helper

    def describe(self) -> str:
        return "send"


class Transport(httpx.AsyncBaseTransport):
    """An httpx transport that sends every request through a resilience pipeline.

    ::

        client = httpx.AsyncClient(transport=resilient.http.Transport())
        client = httpx.AsyncClient(transport=resilient.http.Transport(policy, next_transport))

    It wraps another transport (by default the client library's own
    ``AsyncHTTPTransport``, for httpx and for its fork httpx2 alike), forwards
    ``aclose()``, and never touches the client's private API, so it works under
    any SDK that accepts an httpx client. Policies of the pipeline that are left at
    their defaults learn HTTP from it (see `HttpClassification`): statuses,
    method safety, ``Retry-After``; circuit breakers without a key get one circuit
    per origin (scheme, host, port).

    Each response records what happened in ``response.extensions["resilient"]``:
    ``attempts`` (1 for the first), ``delays`` (seconds waited before each retry)
    and ``idempotency_key``.

    **Bodies.** A response is read inside the pipeline, so the total and
    per-attempt timeouts bound the whole exchange, body included, and an error
    while reading the body is judged (and retried) like any transport error.
    Streamed responses (``text/event-stream``, e.g. LLM token streams) are
    handed over as soon as their headers arrive: retries and timeouts cover the
    exchange up to the headers, and reading the stream is bounded by the client's
    own read timeouts. A response of a failed attempt is read and closed before
    the next attempt, so its connection goes back to the pool.

    **Idempotency keys.** POST and PATCH are retried only with an idempotency
    key. With *idempotency_keys*, the transport mints a high-entropy key for each
    logical request that has none (never replacing the caller's), and every
    retry and hedge of that request carries the same key. A 409 with a key is
    retried; a 422 raises `IdempotencyKeyMismatchError`.

    Args:
        policy: The pipeline (or a single policy); default `default_pipeline()`.
        next_transport: The transport to send through; default: the request's
            library's ``AsyncHTTPTransport()``, made on first use.
        classification: How outcomes are judged.
        idempotency_keys: Mint keys for POST/PATCH requests that carry none.
        attempt_header: If set, a header carrying the attempt number (1, 2, ...).
        redaction: What to hide from logs, spans and error messages.
        tracer_provider: For a client span per attempt; default: the global one.

    """

    def __init__(
        self,
        policy: Pipeline | Policy | None = None,
        next_transport: Any = None,
        *,
        classification: HttpClassification | None = None,
        idempotency_keys: bool = False,
        attempt_header: str | None = None,
        redaction: Redaction | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        if policy is None:
            policy = default_pipeline()
        elif not isinstance(policy, (Pipeline, Policy)):
            msg = f"Transport: policy must be a Pipeline or a policy, got {policy!r}"
            raise TypeError(msg)
        if next_transport is not None and not callable(
            getattr(next_transport, "handle_async_request", None)
        ):
            msg = (
                "Transport: next_transport must be an async transport "
                f"(with handle_async_request), got {next_transport!r}"
            )
            raise TypeError(msg)
        header: Any = attempt_header
        if header is not None and (not isinstance(header, str) or not header):
            msg = f"Transport: attempt_header must be a header name or None, got {header!r}"
            raise TypeError(msg)
        self.classification = classification if classification is not None else HttpClassification()
        self.redaction = redaction if redaction is not None else Redaction()
        self.idempotency_keys = bool(idempotency_keys)
        self.attempt_header = attempt_header
        inner = policy if isinstance(policy, Pipeline) else Pipeline(policy)
        self.pipeline = Pipeline(
            _Prepare(self), inner, _Exchange(self), name=inner.name, hooks=inner.hooks
        )
        self._next = next_transport
        self._defaults: dict[str, Any] = {}
        self._tracer = trace.get_tracer("resilient.http", __version__, tracer_provider)

    def __repr__(self) -> str:
        return f"resilient.http.Transport({self.pipeline.describe()})"

    async def handle_async_request(self, request: Any) -> Any:
        """Send *request* through the pipeline; return the response of the last attempt."""
        header = self.classification.idempotency_header
        if (
            self.idempotency_keys
            and header not in request.headers
            and not self.classification.is_idempotent(request.method)
        ):
            request.headers[header] = secrets.token_urlsafe(24)
        box: list[RequestClassifier] = []
        try:
            response = await self.pipeline.run(self._never_called, request, box)
        except Exception as exc:
            if box and not box[0].replayable and sys.version_info >= (3, 11):
                exc.add_note(
                    "resilient: not retried: the request body is a stream that cannot be sent again"
                )
            raise
        return self._finish(request, response, box[0])

    @staticmethod
    async def _never_called(request: Any, box: list[RequestClassifier]) -> Any:  # pragma: no cover
        del request, box  # _Exchange, the innermost step, sends instead

    def _finish(self, request: Any, response: Any, classifier: RequestClassifier) -> Any:
        if classifier.refused is not None:
            requested, refused = classifier.refused
            if refused is response:
                reason = f"more than the cap or the call's deadline allows ({self._line(request)})"
                raise RetryAfterTooLongError(requested, response, reason)
        key = request.headers.get(self.classification.idempotency_header)
        if key is not None and response.status_code == 422:  # noqa: PLR2004 -- IETF draft
            raise IdempotencyKeyMismatchError(key, response)
        return response

    def _line(self, request: Any) -> str:
        """The request, fit for a message: secrets in the URL redacted."""
        return f"{request.method} {self.redaction.redact_url(request.url)}"

    def _next_for(self, request: Any) -> Any:
        if self._next is not None:
            return self._next
        library = type(request).__module__.split(".")[0]
        transport = self._defaults.get(library)
        if transport is None:
            module = sys.modules[library]
            transport = self._defaults[library] = module.AsyncHTTPTransport()
        return transport

    async def _attempt(self, request: Any, ctx: Context) -> Any:
        if self.attempt_header is not None:
            request.headers[self.attempt_header] = str(ctx.attempt)
        with self._tracer.start_as_current_span(
            request.method,
            kind=trace.SpanKind.CLIENT,
            attributes=self._span_attributes(request, ctx),
        ) as span:
            try:
                response = await self._next_for(request).handle_async_request(request)
            except BaseException as exc:
                if span.is_recording():
                    span.set_attribute("error.type", type(exc).__qualname__)
                raise
            try:
                if response.status_code >= 400 or not self._streamed(response):  # noqa: PLR2004
                    await response.aread()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
                raise
            if span.is_recording():
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code >= 400:  # noqa: PLR2004 -- OTel semconv
                    span.set_attribute("error.type", str(response.status_code))
        response.extensions["resilient"] = {
            "attempts": ctx.attempt,
            "delays": list(ctx.attributes.get("resilient.delays", ())),
            "idempotency_key": ctx.idempotency_key,
        }
        return response

    def _span_attributes(self, request: Any, ctx: Context) -> dict[str, Any]:
        url = request.url
        attributes: dict[str, Any] = {
            "http.request.method": request.method,
            "url.full": self.redaction.redact_url(url),
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }
        if ctx.attempt > 1:
            attributes["http.request.resend_count"] = ctx.attempt - 1
        return attributes

    @staticmethod
    def _streamed(response: Any) -> bool:
        content_type = response.headers.get("content-type", "")
        return content_type.split(";")[0].strip().lower() in _STREAMED_TYPES

    async def aclose(self) -> None:
        """Close the wrapped transport (and the default ones this transport made)."""
        if self._next is not None:
            await self._next.aclose()
        for transport in self._defaults.values():
            await transport.aclose()
        self._defaults.clear()
