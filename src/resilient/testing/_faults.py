"""`FaultTransport`: an httpx transport that injects latency, errors and error statuses."""

from __future__ import annotations

import random
import re
import sys
from collections import deque
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import anyio
import httpx

from .._clock import sleep
from ..http._redact import Redaction
from ..policies._validate import check_seconds

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

__all__ = ["FaultLogEntry", "FaultStatistics", "FaultTransport"]

_OWNER = "FaultTransport"

_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")
"""A header value httpx sends as it is: visible ASCII, inner spaces, no line break."""

_REDACTION = Redaction()

# The errors a script or *errors* may name, and the class of the request's library
# (httpx or httpx2) each stands for. All of them take ``(message, *, request=...)``.
_NAMED_ERRORS = {
    "connect_error": "ConnectError",
    "connect_timeout": "ConnectTimeout",
    "pool_timeout": "PoolTimeout",
    "read_error": "ReadError",
    "read_timeout": "ReadTimeout",
    "remote_protocol_error": "RemoteProtocolError",
    "write_error": "WriteError",
    "write_timeout": "WriteTimeout",
}
_OK, _HANG, _ERROR = "ok", "hang", "error"
_SCRIPT_WORDS = (_OK, _HANG, _ERROR, *_NAMED_ERRORS)

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class _AsyncTransport(Protocol):
    """What `FaultTransport` needs of the transport it wraps (httpx's or httpx2's)."""

    async def handle_async_request(self, request: Any) -> Any: ...

    async def aclose(self) -> None: ...


class FaultLogEntry(NamedTuple):
    """What `FaultTransport` did with one request; compares equal to a plain 2-tuple.

    Attributes:
        request: The request's method and URL, e.g. ``"GET https://api.test/items"``.
        fault: ``"ok"`` (forwarded), ``"hang"``, an HTTP status (an int, answered
            without forwarding), or the snake_case name of the exception raised,
            e.g. ``"connect_error"`` for ``ConnectError``.

    """

    request: str
    fault: str | int


@dataclass(frozen=True, slots=True)
class FaultStatistics:
    """A snapshot of a `FaultTransport`'s counters.

    Attributes:
        requests: Requests handled (each one is counted once, whatever its fault).
        forwarded: Requests passed on to the wrapped transport.
        errors: Requests answered by raising an exception.
        statuses: Requests answered by an injected status.
        hangs: Requests that hung (until cancelled).
        scripted: Requests whose fault came from the script.
        script_left: Script entries not used yet.
        latency: Total seconds of latency added.

    """

    requests: int
    forwarded: int
    errors: int
    statuses: int
    hangs: int
    scripted: int
    script_left: int
    latency: float


class _State:
    """The mutable part of a `FaultTransport`: its random generator, script and record."""

    __slots__ = ("latency", "log", "rng", "script", "scripted")

    def __init__(self, seed: int | None, script: Sequence[object]) -> None:
        self.rng = random.Random(seed)  # noqa: S311 -- faults, not secrets
        self.script: deque[object] = deque(script)
        self.log: list[FaultLogEntry] = []
        self.scripted = 0
        self.latency = 0.0


def _library(request: Any) -> ModuleType:
    """The module (httpx or httpx2) the request's class comes from."""
    return sys.modules[type(request).__module__.split(".")[0]]


def _kind(error: BaseException) -> str:
    """``ConnectError`` -> ``"connect_error"``."""
    return _CAMEL_HUMP.sub("_", type(error).__name__).lower()


def _named_error(name: str, request: Any) -> BaseException:
    error_class = getattr(_library(request), _NAMED_ERRORS[name])
    error: BaseException = error_class(f"injected fault: {name}", request=request)
    return error


def _check_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{_OWNER}: {name} must be a probability in [0, 1], got {value!r}"
        raise TypeError(msg + f" ({type(value).__name__})")
    if not 0 <= value <= 1:  # also refuses NaN
        msg = f"{_OWNER}: {name} must be a probability in [0, 1], got {value!r}"
        raise ValueError(msg)


def _check_status(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{_OWNER}: {name} must be an HTTP status, an int in [100, 599], got {value!r}"
        raise TypeError(msg + f" ({type(value).__name__})")
    if not 100 <= value <= 599:  # noqa: PLR2004 -- the range of HTTP statuses
        msg = f"{_OWNER}: {name} must be an HTTP status, an int in [100, 599], got {value!r}"
        raise ValueError(msg)


def _check_error(name: str, value: Any) -> None:
    if isinstance(value, str):
        if value not in _NAMED_ERRORS:
            known = ", ".join(sorted(_NAMED_ERRORS))
            msg = f"{_OWNER}: {name} must be one of {known} or a callable, got {value!r}"
            raise ValueError(msg)
    elif not callable(value):
        msg = (
            f"{_OWNER}: {name} must be an error name or a callable taking the request "
            f"and returning an exception, got {value!r} ({type(value).__name__})"
        )
        raise TypeError(msg)


def _check_script_item(name: str, value: Any) -> None:
    if isinstance(value, str):
        if value not in _SCRIPT_WORDS:
            words = ", ".join(repr(word) for word in _SCRIPT_WORDS)
            msg = (
                f"{_OWNER}: {name} must be one of {words}, an HTTP status or an error "
                f"factory, got {value!r}"
            )
            raise ValueError(msg)
    elif isinstance(value, int) and not isinstance(value, bool):
        _check_status(name, value)
    else:
        _check_error(name, value)


def _as_tuple(name: str, value: Any) -> tuple[Any, ...]:
    """A sequence given as a list or tuple (not a string), as a tuple."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        msg = f"{_OWNER}: {name} must be a list or tuple, got {value!r} ({type(value).__name__})"
        raise TypeError(msg)
    return tuple(value)


@dataclass(frozen=True, eq=False)
class FaultTransport(httpx.AsyncBaseTransport):
    """An httpx transport that makes the transport it wraps slow and unreliable, on purpose.

    Put it between an ``httpx.AsyncClient`` and the transport that really answers
    (``httpx.MockTransport(handler)`` in unit tests, ``httpx.AsyncHTTPTransport()``
    against a real server) to check that your code survives latency, connection
    errors and error statuses. For each request it decides, in this order:

    1. the latency: *latency* seconds, or a uniform draw from a ``(low, high)``
       range, waited on the event loop's clock before anything else (so tests in
       virtual time, `resilient.testing.run` or `anyio_backends`, pay nothing);
    2. the fault: the next entry of *script*, while there is one; then, drawing
       one random number, an exception with probability *error_rate* (one of
       *errors*), an injected status with probability *status_rate* (one of
       *statuses*, with a ``Retry-After`` header if *retry_after* is set), and
       otherwise ``"ok"``: the request is forwarded to the wrapped transport.

    Faults are decided when a request arrives, before any wait, so concurrent
    requests get them in arrival order, and with a *seed* the n-th request to
    arrive gets the same fault, run after run. (Trio starts concurrent tasks in
    a random order, so there the same *requests* get them only when they are
    sent one after another.) `log` and `statistics()` say what was done; the
    URLs in `log` are redacted with *redaction*.

    A script entry is ``"ok"`` (forward), an HTTP status such as ``503``,
    ``"hang"`` (wait until cancelled: for testing timeouts), ``"error"`` (one of
    *errors*), the name of an error of the request's library
    (``"connect_error"``, ``"connect_timeout"``, ``"read_error"``,
    ``"read_timeout"``, ``"write_error"``, ``"write_timeout"``, ``"pool_timeout"``,
    ``"remote_protocol_error"``) or a callable that takes the request and returns
    the exception to raise. *errors* takes names and callables too.

    It only calls ``handle_async_request(request)`` and ``aclose()`` on the wrapped
    transport, and builds responses and errors with the request's own library, so
    it wraps httpx2 transports as well as httpx ones.

    ===============  ===========================  =========================================
    Option           Default                      Allowed
    ===============  ===========================  =========================================
    ``latency``      0                            seconds >= 0, or ``(low, high)`` with
                                                  0 <= low <= high, finite
    ``error_rate``   0                            a probability in [0, 1]
    ``errors``       ``("connect_error",)``       a non-empty list of error names and
                                                  callables ``request -> exception``
    ``status_rate``  0                            a probability in [0, 1];
                                                  ``error_rate + status_rate <= 1``
    ``statuses``     ``(503,)``                   a non-empty list of ints in [100, 599]
    ``retry_after``  ``None``                     ``None``, seconds (an int >= 0), or a
                                                  header value (a non-empty str)
    ``seed``         ``None`` (a fresh sequence)  ``None`` or an int
    ``script``       ``()``                       a list of script entries (see above)
    ``redaction``    ``Redaction()``              a `resilient.http.Redaction`
    ===============  ===========================  =========================================

    Example, in a test of your own::

        import httpx
        import resilient as rs
        from resilient.testing import FaultTransport

        async def test_get_items_survives_a_flaky_api():
            def api(request):
                return httpx.Response(200, json=["item"])

            faults = FaultTransport(httpx.MockTransport(api), script=["connect_error", "ok"])
            async with httpx.AsyncClient(transport=faults) as client:
                response = await rs.Pipeline(rs.Retry()).run(client.get, "https://api.test/items")
            assert response.json() == ["item"]
            assert [fault for _, fault in faults.log] == ["connect_error", "ok"]

    Args:
        next_transport: The transport that answers the requests let through.
        latency: Seconds added before each request, or a ``(low, high)`` range.
        error_rate: The probability of raising one of *errors* instead of forwarding.
        errors: What to raise: error names and callables ``request -> exception``.
        status_rate: The probability of answering with one of *statuses* instead.
        statuses: The statuses to answer with.
        retry_after: A ``Retry-After`` value for injected statuses.
        seed: The seed of the transport's own ``random.Random``.
        script: Faults for the first requests, in order, before any random fault.
        redaction: What the URLs in `log` hide (the transport's own, for its settings).

    Raises:
        TypeError: If an option has the wrong type.
        ValueError: If an option is out of range.

    """

    next_transport: _AsyncTransport
    _: KW_ONLY
    latency: float | tuple[float, float] = 0.0
    error_rate: float = 0.0
    errors: Sequence[str | Callable[[Any], BaseException]] = ("connect_error",)
    status_rate: float = 0.0
    statuses: Sequence[int] = (503,)
    retry_after: int | str | None = None
    seed: int | None = None
    script: Sequence[int | str | Callable[[Any], BaseException]] = ()
    redaction: Redaction = _REDACTION
    _state: _State = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for method in ("handle_async_request", "aclose"):
            if not callable(getattr(self.next_transport, method, None)):
                msg = (
                    f"{_OWNER}: next_transport must have async handle_async_request() and "
                    f"aclose() methods, got {self.next_transport!r}"
                )
                raise TypeError(msg)
        self._check_latency()
        _check_probability("error_rate", self.error_rate)
        _check_probability("status_rate", self.status_rate)
        if self.error_rate + self.status_rate > 1:
            msg = (
                f"{_OWNER}: error_rate + status_rate must be <= 1, got "
                f"{self.error_rate!r} + {self.status_rate!r}"
            )
            raise ValueError(msg)
        errors = _as_tuple("errors", self.errors)
        if not errors:
            raise ValueError(f"{_OWNER}: errors must not be empty")
        for i, error in enumerate(errors):
            _check_error(f"errors[{i}]", error)
        statuses = _as_tuple("statuses", self.statuses)
        if not statuses:
            raise ValueError(f"{_OWNER}: statuses must not be empty")
        for i, status in enumerate(statuses):
            _check_status(f"statuses[{i}]", status)
        self._check_retry_after()
        self._check_seed_and_redaction()
        script = _as_tuple("script", self.script)
        for i, item in enumerate(script):
            _check_script_item(f"script[{i}]", item)
        object.__setattr__(self, "errors", errors)
        object.__setattr__(self, "statuses", statuses)
        object.__setattr__(self, "script", script)
        object.__setattr__(self, "_state", _State(self.seed, script))

    def _check_seed_and_redaction(self) -> None:
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            msg = f"{_OWNER}: seed must be an int or None, got {self.seed!r}"
            raise TypeError(msg + f" ({type(self.seed).__name__})")
        if not isinstance(self.redaction, Redaction):
            msg = f"{_OWNER}: redaction must be a resilient.http.Redaction, got {self.redaction!r}"
            raise TypeError(msg)

    def _check_latency(self) -> None:
        latency = self.latency
        if not isinstance(latency, tuple):
            if isinstance(latency, list):
                msg = f"{_OWNER}: latency must be seconds or a (low, high) tuple, got {latency!r}"
                raise TypeError(msg)
            check_seconds(_OWNER, "latency", latency)
            return
        if len(latency) != 2:  # noqa: PLR2004 -- a (low, high) pair
            msg = f"{_OWNER}: latency must be seconds or a (low, high) pair, got {latency!r}"
            raise ValueError(msg)
        low, high = latency
        check_seconds(_OWNER, "latency[0]", low)
        check_seconds(_OWNER, "latency[1]", high)
        if low > high:
            msg = f"{_OWNER}: latency must be (low, high) with low <= high, got {latency!r}"
            raise ValueError(msg)

    def _check_retry_after(self) -> None:
        value = self.retry_after
        if value is None:
            return
        allowed = "None, seconds (an int >= 0) or a non-empty header value (ASCII, one line)"
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            msg = f"{_OWNER}: retry_after must be {allowed}, got {value!r} ({type(value).__name__})"
            raise TypeError(msg)
        if (isinstance(value, int) and value < 0) or (
            isinstance(value, str) and not _HEADER_VALUE.fullmatch(value)
        ):
            msg = f"{_OWNER}: retry_after must be {allowed}, got {value!r}"
            raise ValueError(msg)

    @property
    def log(self) -> list[FaultLogEntry]:
        """What was done to each request so far, in arrival order (a copy)."""
        return list(self._state.log)

    def statistics(self) -> FaultStatistics:
        """A snapshot of the counters."""
        state = self._state
        faults = [entry.fault for entry in state.log]
        statuses = sum(isinstance(fault, int) for fault in faults)
        forwarded, hangs = faults.count(_OK), faults.count(_HANG)
        return FaultStatistics(
            requests=len(faults),
            forwarded=forwarded,
            errors=len(faults) - forwarded - hangs - statuses,
            statuses=statuses,
            hangs=hangs,
            scripted=state.scripted,
            script_left=len(state.script),
            latency=state.latency,
        )

    def _draw_latency(self) -> float:
        latency = self.latency
        if isinstance(latency, tuple):
            return self._state.rng.uniform(*latency)
        return float(latency)

    def _draw_fault(self) -> object:
        state = self._state
        if state.script:
            state.scripted += 1
            return state.script.popleft()
        draw = state.rng.random()
        if draw < self.error_rate:
            return _ERROR
        if draw < self.error_rate + self.status_rate:
            return state.rng.choice(self.statuses)
        return _OK

    def _error(self, fault: object, request: Any) -> BaseException:
        if fault == _ERROR:
            fault = self._state.rng.choice(self.errors)
        if isinstance(fault, str):
            return _named_error(fault, request)
        error = fault(request)  # type: ignore[operator]  # checked callable in __post_init__
        if not isinstance(error, BaseException):
            msg = f"{_OWNER}: an error factory must return an exception, got {error!r}"
            raise TypeError(msg)
        return error

    async def handle_async_request(self, request: Any) -> Any:
        """Wait the latency, then forward *request*, raise, answer a status, or hang."""
        state = self._state
        # Everything random is decided now, before waiting, so that the faults
        # follow the order in which requests arrive, even concurrent ones.
        delay = self._draw_latency()
        fault = self._draw_fault()
        error: BaseException | None = None
        kind: str | int
        # Not `fault in {...}`: an error factory may be unhashable.
        if isinstance(fault, int) or (isinstance(fault, str) and fault in (_OK, _HANG)):
            kind = fault  # a status, "ok" or "hang"
        else:
            error = self._error(fault, request)
            kind = _kind(error)
        # The URL as logs show it: a password or an API key in it is redacted.
        state.log.append(
            FaultLogEntry(f"{request.method} {self.redaction.redact_url(request.url)}", kind)
        )
        state.latency += delay
        if delay > 0:
            await sleep(delay)
        if error is not None:
            raise error
        if kind == _OK:
            return await self.next_transport.handle_async_request(request)
        if kind == _HANG:
            await anyio.sleep_forever()
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return _library(request).Response(kind, headers=headers, request=request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.next_transport.aclose()
