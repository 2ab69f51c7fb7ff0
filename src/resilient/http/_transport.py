"""`Transport`: resilience for any httpx (or httpx2) client, without touching the client."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import secrets
import sys
import time
from datetime import timedelta
from time import perf_counter
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from opentelemetry import trace

from .._pipeline import Pipeline, Policy
from .._version import __version__
from ..instrumentation import _dispatch
from ..instrumentation._dispatch import Dispatch
from ..policies._breaker import CircuitBreaker
from ..policies._retry import Retry
from ..policies._timeout import Timeout
from ._classification import HttpCall, HttpClassification, close_all
from ._errors import (
    IdempotencyKeyMismatchError,
    RequestNotReplayableError,
    RetryAfterTooLongError,
)
from ._options import check_header_name
from ._redact import Redaction, body_fields

if sys.version_info < (3, 11):  # pragma: no cover -- a builtin from 3.11
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._context import Context
    from .._pipeline import Step

__all__ = ["Transport", "default_pipeline"]

_STREAMED_TYPES = (b"text/event-stream", b"application/x-ndjson", b"application/jsonl")

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
"""Ports an origin has without saying: ``HTTP://h:80`` and ``http://h`` are one origin."""

_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
"""Methods OpenTelemetry names as they are; any other is recorded as ``_OTHER``."""

_MINTED = "resilient.minted_idempotency_key"
"""The request extension that holds a key the transport minted (httpx copies it on)."""

_SENDS = "resilient.sends"
"""The request extension that counts a traced request's sends, redirects and auth included."""

_TRACING_RECHECK = 0.1
"""Seconds between checks for a global tracer provider set after the transport was made."""

# Content-Type values seen, and whether each is streamed: parsing one costs more than
# the rest of the check, and a client sees few distinct values (bounded all the same).
_STREAMED: dict[bytes, bool] = {}
_STREAMED_MAX = 256


def default_pipeline() -> Pipeline:
    """The pipeline `Transport` uses when given none.

    ``Timeout(30) > Retry() > CircuitBreaker() > Timeout(10)``: 30 s for the whole
    exchange, retries on the HTTP classification with the default backoff and
    budget, a breaker per origin (a 30 s window, open at 50 % failures of at least
    20 calls), and 10 s for each attempt.
    """
    return Pipeline(Timeout(30.0), Retry(), CircuitBreaker(), Timeout(10.0))


_NEEDED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
"""Headers the request needs as they are: no attempt number may take their place."""


@functools.lru_cache(maxsize=256)
def _ipv6(host: str) -> str:
    """An IPv6 address in its one canonical spelling (RFC 5952), so that it is one origin."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def _check_option(name: str, value: Any, kind: type) -> None:
    """Check that *value* is None or an instance of *kind* (not the class itself)."""
    if value is not None and not isinstance(value, kind):
        msg = f"Transport: {name} must be a {kind.__name__} or None, got {value!r}"
        raise TypeError(msg)


def _body_fields(request: Any) -> Any:
    """The request's JSON or form body, for the scrubber to find secret fields in; or None."""
    try:
        content = request.content
    except Exception:  # noqa: BLE001 -- RequestNotRead (a stream): no fields to read
        return None
    return body_fields(content, request.headers.get("content-type", ""))


def _own_copy(response: Any) -> Any:
    """A copy of *response*, a substitute, for one caller; *response* itself if unread.

    ``Fallback(value=response)`` answers every call with one object, and the client
    writes its request, stream and timing into what it is given: each call gets a
    response of its own. One whose body was never read is handed over as it is: it
    can be read once anyway.
    """
    try:
        response.content  # noqa: B018 -- raises ResponseNotRead (httpx's or httpx2's)
    except Exception:  # noqa: BLE001
        return response
    if not hasattr(response, "__dict__"):
        return response
    # Everything as it is (a subclass, a HEAD's Content-Length, a chosen encoding),
    # not rebuilt: only what the client and the record write to is the copy's own.
    copy = object.__new__(type(response))
    copy.__dict__.update(response.__dict__)
    copy.headers = response.headers.copy()
    copy.extensions = dict(response.extensions)
    return copy


_MAX_ERRORS = 32
"""Errors scrubbed at most for one failure: its causes, contexts and group members."""

_OSERROR_TEXTS = ("errno", "strerror", "filename", "filename2")
"""An ``OSError``'s texts that ``str()`` reads from attributes of their own, not ``args``."""


def _scrub_one(error: BaseException, scrub: Callable[[str], str]) -> None:
    """Take secrets out of the texts of *error* itself, in place."""
    args = error.args
    # A class may refuse a new value (a read-only property): the error it raises
    # must not replace the one being reported, so that text is left as it is.
    with contextlib.suppress(AttributeError, TypeError):
        if any(isinstance(arg, str) for arg in args):
            cleaned = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in args)
            if cleaned != args:
                error.args = cleaned
    if isinstance(error, OSError):
        for name in _OSERROR_TEXTS:  # errno too: OSError("text", "text") keeps text there
            text = getattr(error, name, None)
            if isinstance(text, str):
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(error, name, scrub(text))
    notes = getattr(error, "__notes__", None)
    if isinstance(notes, list):
        notes[:] = [scrub(note) if isinstance(note, str) else note for note in notes]


class _Exchange:
    """Innermost step: one attempt of the HTTP exchange, in the attempt's own context.

    A hedge's context is a fork of the call's, so the step takes it from here,
    not from the call's arguments.
    """

    def __init__(self, transport: Transport) -> None:
        # The transport's own method, not one of ours calling it: a frame less per attempt.
        self.execute: Callable[[Step, Context], Awaitable[Any]] = transport._attempt  # noqa: SLF001

    def describe(self) -> str:
        return "send"


if TYPE_CHECKING:
    # A transport for httpx and httpx2 clients alike, while each types its client's
    # transport as its own base class: to a type checker, the base is open, so that
    # `httpx2.AsyncClient(transport=Transport())` checks as `httpx.AsyncClient(...)` does.
    _Base = Any
else:
    _Base = httpx.AsyncBaseTransport


class Transport(_Base):  # type: ignore[misc]  # an Any base, on purpose (see _Base)
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

    Its client span per attempt stands for the attempt: ``Hook.trace_attempt`` is
    not called for HTTP attempts. Each response records what happened in
    ``response.extensions["resilient"]``:
    ``attempts`` (requests the call had sent: 1 for the first, retries and hedges
    alike), ``delays`` (seconds waited before each retry) and ``idempotency_key``.

    **Bodies.** A response is read inside the pipeline, so the total and
    per-attempt timeouts bound the whole exchange, body included, and an error
    while reading the body is judged (and retried) like any transport error.
    Streamed responses (``text/event-stream``, e.g. LLM token streams, NDJSON and
    JSON Lines, or any request sent with ``extensions={"resilient.stream": True}``,
    for downloads) are handed over as soon as their headers arrive: retries and
    timeouts cover the exchange up to the headers, and reading the stream is
    bounded by the client's own read timeouts. A request whose body is a one-shot
    stream is never sent twice (`RequestNotReplayableError` if a custom predicate
    asks for it), nor hedged. A response of a failed attempt is read and closed
    before the next attempt, so its connection goes back to the pool; a streamed
    one that is not the answer (refused by a predicate, or a losing hedge's) is
    closed by the transport.

    **Idempotency keys.** POST and PATCH are retried only with an idempotency
    key. With *idempotency_keys*, the transport mints a high-entropy key for each
    logical request that has none (never replacing the caller's), and every
    retry and hedge of that request carries the same key. A 409 with a key is
    retried; a 422 to a key the caller set raises `IdempotencyKeyMismatchError`
    (a key minted here was never used before, so its 422 is the server's own).

    Args:
        policy: The pipeline (or a single policy); default `default_pipeline()`.
        next_transport: The transport to send through; default: the request's
            library's ``AsyncHTTPTransport()``, made on first use.
        classification: How outcomes are judged.
        idempotency_keys: Mint keys for POST/PATCH requests that carry none.
        attempt_header: If set, a header carrying the attempt number (1, 2, ...).
        redaction: What to hide from logs, spans and error messages.
        tracer_provider: For a client span per attempt; default: the global one
            (spans are made only once a real provider is set, globally or here).

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
        elif isinstance(policy, type) or not isinstance(policy, (Pipeline, Policy)):
            msg = f"Transport: policy must be a Pipeline or a policy (an instance), got {policy!r}"
            raise TypeError(msg)
        if next_transport is not None and (
            isinstance(next_transport, type)
            or not callable(getattr(next_transport, "handle_async_request", None))
            or not callable(getattr(next_transport, "aclose", None))
        ):
            msg = (
                "Transport: next_transport must be an async transport (an instance, with "
                f"handle_async_request and aclose) or None, got {next_transport!r}"
            )
            raise TypeError(msg)
        _check_option("classification", classification, HttpClassification)
        _check_option("redaction", redaction, Redaction)
        _check_option("tracer_provider", tracer_provider, trace.TracerProvider)
        if not isinstance(idempotency_keys, bool):
            msg = f"Transport: idempotency_keys must be a bool, got {idempotency_keys!r}"
            raise TypeError(msg)
        self.classification = classification if classification is not None else HttpClassification()
        self.redaction = redaction if redaction is not None else Redaction()
        check_header_name("Transport", "attempt_header", attempt_header, allow_none=True)
        if attempt_header is not None and attempt_header.lower() in {
            *_NEEDED_HEADERS,
            self.classification.idempotency_header.lower(),
            *self.redaction.headers,
        }:
            msg = (
                "Transport: attempt_header must be a header of its own, not the idempotency "
                f"key's, a secret one or one the request needs, got {attempt_header!r}"
            )
            raise ValueError(msg)
        self.idempotency_keys = idempotency_keys
        self.attempt_header = attempt_header
        inner = policy if isinstance(policy, Pipeline) else Pipeline(policy)
        self.policy = inner
        self.pipeline = inner.around(_Exchange(self))
        hooks = inner.hooks
        self._dispatch = None if hooks is None else Dispatch(hooks)
        self._name = inner.name
        self._next = next_transport
        self._defaults: dict[str, Any] = {}
        self._tracer = trace.get_tracer("resilient.http", __version__, tracer_provider)
        # Whether spans can record: always with a provider given here; else once
        # the global provider is set (OpenTelemetry allows that only once, so a
        # yes is final). Until then the check is repeated every _TRACING_RECHECK
        # seconds, not per attempt: it costs more than an attempt's bookkeeping.
        self._tracing = tracer_provider is not None
        self._tracing_next = 0.0
        self._key_header = self.classification.idempotency_header.lower().encode("latin-1")

    def __repr__(self) -> str:
        # The options that change what is sent or retried, when they are not the defaults.
        options = [self.policy.describe()]
        if self.idempotency_keys:
            options.append("idempotency_keys=True")
        if self.attempt_header is not None:
            options.append(f"attempt_header={self.attempt_header!r}")
        if self.classification != HttpClassification():
            options.append(f"classification={self.classification!r}")
        if self.redaction != Redaction():
            options.append(f"redaction={self.redaction!r}")
        return f"resilient.http.Transport({', '.join(options)})"

    async def handle_async_request(self, request: Any) -> Any:  # noqa: C901, PLR0912 -- the hot path, inlined on purpose
        """Send *request* through the pipeline; return the response of the last attempt."""
        options = self.classification
        # The caller's key, from the public raw pairs: httpx's Headers.get re-derives
        # the headers' encoding on every call, which costs more than this scan.
        key = None
        name = self._key_header
        size = len(name)
        for raw, value in request.headers.raw:
            # Lengths first: lower() makes a new bytes object, and few names match.
            if len(raw) == size and raw.lower() == name:
                # As httpx reads it; an empty value is no key (it names no request).
                key = value.decode(request.headers.encoding).strip() or None
                break
        # httpx sends a redirect or an auth challenge's answer as a new request with
        # the headers (and extensions) of the first: a key minted for that is ours.
        minted = key is not None and request.extensions.get(_MINTED) == key
        if key is None and self.idempotency_keys and not options.is_idempotent(request.method):
            key = request.headers[options.idempotency_header] = secrets.token_urlsafe(24)
            request.extensions[_MINTED] = key
            minted = True
        url = request.url
        host = url.host  # not cheap: it checks for an IDNA name every time
        if ":" in host:  # an IPv6 address, which has many spellings
            host = _ipv6(host)
        scheme, port = url.scheme, url.port
        if port is not None and _DEFAULT_PORTS.get(scheme) == port:
            port = None  # httpx drops a default port only if the scheme was lower case
        # The pipeline's own hooks, else the installed ones, read now so that
        # set_hooks() reaches every transport (as Pipeline.new_context does).
        dispatch = self._dispatch or _dispatch.installed or _dispatch.current()
        call = HttpCall(options, request, key, dispatch, self._name)
        call.partition = (scheme, host, port)
        if call.operation is None and call.dispatch.hooks:
            # Few distinct values, no secrets: it names log events and the call's span
            # (made only when a hook is there to use it).
            call.operation = f"{request.method} {host}"
        response = None
        try:
            response = await self.pipeline.run_context(call)
        except Exception as exc:
            if not call.replayable and sys.version_info >= (3, 11):
                exc.add_note(
                    "resilient: the request body is a one-shot stream that cannot be "
                    "sent again: the request is neither retried nor hedged"
                )
            raise
        finally:
            # The call is its own classifier: that loop cut, it is freed at once,
            # not left for the cyclic garbage collector.
            call.classifier = None
            streams = call.streams
            if streams:
                # A refused answer is not handed over: its stream goes back too.
                refused = call.refused
                keep = None if refused is not None and refused[1] is response else response
                await close_all([r for r in streams if r is not keep])
        if "resilient" not in response.extensions:
            # Not an attempt's answer (a Fallback's, say): the record is the call's.
            response = _own_copy(response)
            self._record(response, call, call)
        refused = call.refused
        if refused is not None and refused[1] is response:
            reason = f"more than the cap or the call's deadline allows ({self._line(request)})"
            raise RetryAfterTooLongError(refused[0], response, reason)
        # A key minted here was never used before, so its 422 is not a mismatch.
        if key is not None and not minted and response.status_code == 422:  # noqa: PLR2004
            raise IdempotencyKeyMismatchError(key, response)
        return response

    def _line(self, request: Any) -> str:
        """The request, fit for a message: secrets in the URL redacted."""
        return f"{request.method} {self.redaction.redact_url(request.url)}"

    def _next_for(self, request: Any) -> Any:
        library = type(request).__module__.split(".")[0]
        transport = self._defaults.get(library)
        if transport is None:
            module = sys.modules[library]
            transport = self._defaults[library] = module.AsyncHTTPTransport()
        return transport

    def _attempt(self, next_step: Step, ctx: Context) -> Awaitable[Any]:
        """One attempt; the exchange's own coroutine when untraced (a frame less)."""
        del next_step  # the exchange is the call
        request = ctx.args[0]
        # The call is the classifier of every context it runs in (a hedge's is a fork).
        call: HttpCall = ctx.classifier  # type: ignore[assignment]
        # Counted on the call, not read from ctx.attempt: Retry and Hedging each
        # number their own attempts, and either may run inside the other.
        if call.sent and not call.replayable:
            raise RequestNotReplayableError(self._line(request))
        call.sent += 1
        if self.attempt_header is not None:
            request.headers[self.attempt_header] = str(call.sent)
        if not self._tracing:
            if time.monotonic() < self._tracing_next:
                return self._exchange(request, ctx, call)  # the hot path: no tracing
            self._tracing_next = time.monotonic() + _TRACING_RECHECK
            self._tracing = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
            if not self._tracing:
                return self._exchange(request, ctx, call)
        return self._traced_exchange(request, ctx, call)

    async def _traced_exchange(self, request: Any, ctx: Context, call: HttpCall) -> Any:
        method = request.method
        span = self._tracer.start_span(
            method if method in _KNOWN_METHODS else "HTTP", kind=trace.SpanKind.CLIENT
        )
        # Sends of this request for any reason, as OpenTelemetry counts resends. httpx
        # copies the extensions into a redirect's request: the count is in a list,
        # which the copy shares, so the whole chain counts as one.
        counter = request.extensions.get(_SENDS)
        if counter is None:
            counter = request.extensions[_SENDS] = [0]
        sends = counter[0]
        counter[0] = sends + 1
        if not span.is_recording():  # sampled out
            return await self._exchange(request, ctx, call)
        span.set_attributes(self._span_attributes(request, sends))
        with trace.use_span(span, end_on_exit=True):
            try:
                response = await self._exchange(request, ctx, call)
            except BaseException as exc:
                # use_span marks an Exception, not a cancellation (a Timeout's).
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(trace.StatusCode.ERROR, type(exc).__qualname__)
                raise
            status = response.status_code
            span.set_attribute("http.response.status_code", status)
            version = response.extensions.get("http_version")  # b"HTTP/1.1", b"HTTP/2"
            if isinstance(version, bytes) and version.startswith(b"HTTP/"):
                span.set_attribute("network.protocol.version", version[5:].decode("ascii"))
            if status >= 400:  # noqa: PLR2004 -- OTel semconv: an error for a client span
                span.set_attribute("error.type", str(status))
                span.set_status(trace.StatusCode.ERROR)
            return response

    async def _exchange(self, request: Any, ctx: Context, call: HttpCall) -> Any:
        transport = self._next
        if transport is None:
            transport = self._next_for(request)
        start = perf_counter()
        try:
            response = await transport.handle_async_request(request)
        except Exception as exc:
            self._scrub(exc, request)
            raise
        try:
            # A body already in memory (a mock's, a cache's) needs no read, nor the
            # Content-Type check that decides whether to read it here.
            if not response.is_stream_consumed:
                if response.status_code >= 400 or not self._streamed(request, response):  # noqa: PLR2004
                    await response.aread()
                    # The client times a response when it closes it, and this one
                    # is closed already: the time is the attempt's, taken here.
                    response.elapsed = timedelta(seconds=perf_counter() - start)
                else:
                    # Handed over unread: if a policy drops it (release) or it is not
                    # the answer when the call ends, the transport closes it.
                    call.keep_stream(response)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await response.aclose()
            if isinstance(exc, Exception):
                self._scrub(exc, request)
            raise
        self._record(response, ctx, call)
        return response

    @staticmethod
    def _record(response: Any, ctx: Context, call: HttpCall) -> None:
        """Write what the call did into ``response.extensions["resilient"]``."""
        attributes = ctx._attributes  # noqa: SLF001 -- None until a policy wrote one
        delays = attributes.get("resilient.delays") if attributes else None
        response.extensions["resilient"] = {
            "attempts": call.sent,
            "delays": list(delays) if delays else [],
            "idempotency_key": ctx.idempotency_key,
        }

    def _scrub(self, exc: BaseException, request: Any) -> None:
        """Take the request's secrets out of an error from the layers below, in place.

        A transport's error may quote the URL or a header; everything that reports
        the error after this (our logs, the attempt's span, the caller) then sees
        it redacted. Its messages, an ``OSError``'s own texts and notes are
        scrubbed, and so are the errors it chains (cause and context) and, for
        an exception group, its members.
        """
        scrub = self.redaction.scrubber(request.headers, request.url, body=_body_fields(request))
        if not scrub:
            return
        seen: set[int] = set()
        pending: list[BaseException] = [exc]
        while pending and len(seen) < _MAX_ERRORS:
            error = pending.pop()
            if id(error) in seen:
                continue
            seen.add(id(error))
            _scrub_one(error, scrub)
            # The cause is taken first: it is what a traceback shows, should the
            # walk reach its limit.
            pending.extend(e for e in (error.__context__, error.__cause__) if e is not None)
            if isinstance(error, BaseExceptionGroup):
                pending.extend(error.exceptions)

    def _span_attributes(self, request: Any, resends: int) -> dict[str, Any]:
        url = request.url
        method = request.method
        attributes: dict[str, Any] = {
            "http.request.method": method if method in _KNOWN_METHODS else "_OTHER",
            "url.full": self.redaction.redact_url(url),
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }
        if method not in _KNOWN_METHODS:
            attributes["http.request.method_original"] = method
        if resends:  # retries, hedges, redirects and auth challenges alike
            attributes["http.request.resend_count"] = resends
        return attributes

    @staticmethod
    def _streamed(request: Any, response: Any) -> bool:
        # A 101's body is the upgraded connection (a WebSocket's): reading it ends it.
        if request.extensions.get("resilient.stream") or response.status_code < 200:  # noqa: PLR2004
            return True
        for key, value in response.headers.raw:
            if len(key) == 12 and key.lower() == b"content-type":  # noqa: PLR2004 -- its length
                streamed = _STREAMED.get(value)
                if streamed is None:
                    streamed = value.split(b";", 1)[0].strip().lower() in _STREAMED_TYPES
                    if len(_STREAMED) < _STREAMED_MAX:
                        _STREAMED[value] = streamed
                return streamed
        return False

    async def aclose(self) -> None:
        """Close the wrapped transport (and the default ones this transport made)."""
        if self._next is not None:
            await self._next.aclose()
        for transport in self._defaults.values():
            await transport.aclose()
        self._defaults.clear()
