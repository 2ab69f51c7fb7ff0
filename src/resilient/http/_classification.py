"""What HTTP outcomes mean: which are retried, which count against a breaker."""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._clock import now, wall
from .._context import Context
from ..policies._validate import check_seconds
from ._options import check_header_name, is_token, items_of
from ._retry_after import parse_server_delay

if TYPE_CHECKING:
    from collections.abc import Collection, Hashable

    from .._outcome import Outcome
    from ..instrumentation._dispatch import Dispatch

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "HttpCall",
    "HttpClassification",
]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses retried by default: the server says "not now", not "no"."""

FAILURE_STATUSES = frozenset(range(500, 600))
"""Statuses a circuit breaker counts as failures by default: the server is in trouble."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Methods RFC 9110 defines as idempotent, so retried without an idempotency key."""

# Transport errors by class name, so that httpx and its fork httpx2 (other classes,
# same names) are judged alike.
_NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout", "ProxyError"})
_MAYBE_SENT = frozenset(
    {"ReadError", "ReadTimeout", "WriteError", "WriteTimeout", "RemoteProtocolError"}
)

_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)
"""Timeouts (`DeadlineExceededError` is a ``TimeoutError``); ``asyncio.TimeoutError`` is
a class of its own before Python 3.11."""

_WAIT_HEADERS = (b"retry-after", b"retry-after-ms")

_NO_KWARGS: dict[str, Any] = {}  # never written: the call takes no keyword arguments


async def _never_called(request: Any) -> Any:  # pragma: no cover
    del request  # the transport's innermost step sends instead


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _is_transport_error(exc: BaseException) -> bool:
    module = type(exc).__module__.split(".")[0]
    return module in ("httpx", "httpx2") and "TransportError" in _names(exc)


@dataclass(frozen=True, kw_only=True)
class HttpClassification:
    """How `Transport` judges HTTP outcomes for the policies of its pipeline.

    A request is *idempotent* if its method is in *idempotent_methods* or it carries
    the *idempotency_header*. Then:

    - **retried**: a response whose status is in *retry_statuses* (plus 409 when
      the request carries an idempotency key: the same key is still being
      processed), and transport errors: connect errors and pool timeouts always
      (the request never left), read/write errors, remote protocol errors and
      timeouts only for idempotent requests;
    - **counted as a breaker failure**: a status in *failure_statuses*, any
      transport error and any timeout; never an ordinary 4xx;
    - **waited for**: ``Retry-After`` (delta-seconds or HTTP-date) and
      ``retry-after-ms`` set the next wait, and so do ``RateLimit-Reset`` and
      ``X-RateLimit-Reset`` on a 429, up to *max_retry_after*. A server that asks
      for more than that, or for more than the call's deadline leaves, makes the
      call give up at once with `RetryAfterTooLongError`, which carries the
      server's value.

    A request whose body is a stream that cannot be sent again is never retried.

    ======================  ==========================================
    Option                  Default
    ======================  ==========================================
    ``retry_statuses``      408, 429, 500, 502, 503, 504
    ``failure_statuses``    500-599
    ``idempotent_methods``  GET, HEAD, OPTIONS, PUT, DELETE, TRACE
    ``idempotency_header``  ``"Idempotency-Key"``
    ``max_retry_after``     60.0 seconds
    ======================  ==========================================

    Raises:
        TypeError: If an option has the wrong type.
        ValueError: If an option is out of range.

    """

    # Any collection in (a set, a list); a frozenset once made.
    retry_statuses: Collection[int] = RETRY_STATUSES
    failure_statuses: Collection[int] = FAILURE_STATUSES
    idempotent_methods: Collection[str] = IDEMPOTENT_METHODS
    idempotency_header: str = "Idempotency-Key"
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        owner = "HttpClassification"
        for name in ("retry_statuses", "failure_statuses"):
            statuses = items_of(owner, name, getattr(self, name), "HTTP status codes (100-599)")
            for status in statuses:
                if isinstance(status, bool) or not isinstance(status, int):
                    msg = (
                        f"{owner}: {name} must hold HTTP status codes (int, 100-599), "
                        f"got {status!r} ({type(status).__name__})"
                    )
                    raise TypeError(msg)
                if not 100 <= status <= 599:  # noqa: PLR2004
                    msg = f"{owner}: {name} must hold HTTP status codes (100-599), got {status!r}"
                    raise ValueError(msg)
            object.__setattr__(self, name, frozenset(statuses))
        methods = items_of(owner, "idempotent_methods", self.idempotent_methods, "method names")
        for method in methods:
            if not isinstance(method, str):
                msg = (
                    f"{owner}: idempotent_methods must hold method names (str), "
                    f"got {method!r} ({type(method).__name__})"
                )
                raise TypeError(msg)
            if not is_token(method):
                msg = f"{owner}: idempotent_methods must hold method names, got {method!r}"
                raise ValueError(msg)
        object.__setattr__(self, "idempotent_methods", frozenset(m.upper() for m in methods))
        check_header_name(owner, "idempotency_header", self.idempotency_header)
        check_seconds("HttpClassification", "max_retry_after", self.max_retry_after)

    def is_idempotent(self, method: str) -> bool:
        """Whether *method* is retried without an idempotency key."""
        return method.upper() in self.idempotent_methods


class HttpCall(Context):
    """One request's call through the transport's pipeline, and the judge of its outcomes.

    Both the call's `Context` and its `resilient.Classifier` (`HttpClassification`
    applied to the request): one object, made once per request, where the HTTP
    success path used to pay for two. It is its own ``classifier``; the transport
    clears that when the call ends, so the object is freed at once, not left to
    the cyclic garbage collector.
    """

    __slots__ = ("_options", "_stream", "key", "refused", "request", "sent", "streams")

    def __init__(
        self,
        options: HttpClassification,
        request: Any,
        key: str | None,
        dispatch: Dispatch,
        operation: str | None,
    ) -> None:
        # Context's fields, set here rather than by Context.__init__: one frame per
        # request, not two (a test checks that every field of Context is set).
        self.fn = _never_called
        self.args = (request,)
        self.kwargs = _NO_KWARGS
        self.dispatch = dispatch
        self.operation = operation
        self.deadline: float | None = None
        self.attempt = 1
        self.idempotency_key = key
        self.classifier = self
        self.partition: Hashable | None = None
        self._attributes = None
        self._options = options
        self.request = request
        # The body as sent first: a transport may swap in a buffered copy later.
        self._stream = request.stream
        self.key = key
        self.refused: tuple[float, Any] | None = None  # (the server's delay, response)
        self.sent = 0  # attempts sent, retries and hedges alike
        self.streams: list[Any] | None = None  # streamed responses handed over unread

    def fork(self) -> HttpCall:
        """A hedge's context: its own deadline and attempt, the call's request and record.

        It is its own classifier, so that a ``Retry-After`` is weighed against the
        deadline of the hedge it came in (a `Timeout` inside `Hedging` narrows only
        that), while what the call has sent, its open streams and a refused wait
        stay the call's.
        """
        return _HttpFork(self)

    def keep_stream(self, response: Any) -> None:
        """Remember a streamed response, to close it if it is not the call's answer."""
        if self.streams is None:
            self.streams = []
        self.streams.append(response)

    async def release(self, result: Any) -> None:
        """Close *result*, a response a policy drops, if it is a stream still open.

        `Retry` calls it before the next attempt, `Hedging` for a hedge that lost
        or was superseded, so that the response's connection goes back to the
        pool then, not when the call ends (see `resilient.Classifier`).
        """
        streams = self.streams
        if streams and any(response is result for response in streams):
            streams.remove(result)
            await close_all([result])

    # Asked only when something failed: computed then, not for every request.

    @property
    def idempotent(self) -> bool:
        """Whether the request may be sent twice: an idempotent method, or a key."""
        # httpx upper-cases methods; the set was upper-cased when the options were made.
        return self.key is not None or self.request.method in self._options.idempotent_methods

    @property
    def replayable(self) -> bool:
        """Whether the body is held in memory, so it can be sent again."""
        return type(self._stream).__name__ == "ByteStream"

    def accepts(self, result: Any) -> bool:
        """A response under 400: nothing for any policy to act on."""
        return result.status_code < 400  # type: ignore[no-any-return]  # noqa: PLR2004

    def should_retry(self, outcome: Outcome[Any]) -> bool:
        """Retry statuses and safe transport errors, for requests that can be sent again."""
        if not self.replayable:
            return False
        exc = outcome.exception
        if exc is None:
            response: Any = outcome.result
            status = response.status_code
            if status == 409 and self.key is not None:  # noqa: PLR2004 -- the same key, busy
                return True
            return status in self._options.retry_statuses and self.idempotent
        names = _names(exc)
        if names & _NOT_SENT:
            return True
        if names & _MAYBE_SENT or isinstance(exc, _TIMEOUTS):
            return self.idempotent
        return False

    def is_failure(self, outcome: Outcome[Any]) -> bool:
        """5xx, transport errors and timeouts; never an ordinary 4xx."""
        exc = outcome.exception
        if exc is None:
            response: Any = outcome.result
            return response.status_code in self._options.failure_statuses
        return _is_transport_error(exc) or isinstance(exc, _TIMEOUTS)

    def delay_hint(self, outcome: Outcome[Any]) -> float | None:
        """The server's ``Retry-After`` (and kin); ``inf`` if it asks for too much."""
        response = outcome.result
        if response is None:
            return None
        headers = response.headers
        if response.status_code != 429:  # noqa: PLR2004
            # Rate-limit reset headers describe a quota, and many APIs send them on
            # every response: only a 429 makes them a request to wait.
            headers = [(k, v) for k, v in headers.raw if k.lower() in _WAIT_HEADERS]
        # Server times are wall-clock times: the loop's wall clock, which a
        # virtual clock moves with its virtual time.
        asked = parse_server_delay(headers, now=wall(), cap=self._options.max_retry_after)
        if asked is None:
            return None
        deadline = self.deadline
        if asked.exceeds_cap or (deadline is not None and now() + asked.requested >= deadline):
            self.refused = (asked.requested, response)
            return math.inf  # Retry gives up at once; Transport raises RetryAfterTooLongError
        return asked.requested


async def close_all(responses: list[Any]) -> None:
    """Close *responses*, dropped by the call.

    Shielded: a connection goes back even when the caller is cancelled. A close
    that fails drops the connection with the response; it is not an error to
    replace the call's outcome.
    """
    for response in responses:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await response.aclose()


_FORKED = (
    *(name for name in Context.__slots__ if name != "classifier"),
    "_options",
    "_stream",
    "key",
    "request",
)
"""The fields a fork copies: Context's (bar the classifier, itself) and the request's."""


class _HttpFork(HttpCall):
    """`HttpCall.fork`: a concurrent attempt's view of the call."""

    __slots__ = ("_call",)

    def __init__(self, parent: HttpCall) -> None:
        # Not HttpCall.__init__: the fields are the parent's, and the record the call's.
        self._call: HttpCall = getattr(parent, "_call", parent)
        for name in _FORKED:
            setattr(self, name, getattr(parent, name))
        if self._attributes is not None:
            self._attributes = dict(self._attributes)  # as Context.fork: the hedge's own
        self.classifier = self  # freed by the cyclic collector: hedged calls are few

    # The call's record, not the fork's.

    @property
    def sent(self) -> int:
        return self._call.sent

    @sent.setter
    def sent(self, value: int) -> None:
        self._call.sent = value

    @property
    def streams(self) -> list[Any] | None:
        return self._call.streams

    @streams.setter
    def streams(self, value: list[Any] | None) -> None:
        self._call.streams = value

    @property
    def refused(self) -> tuple[float, Any] | None:
        return self._call.refused

    @refused.setter
    def refused(self, value: tuple[float, Any] | None) -> None:
        self._call.refused = value
