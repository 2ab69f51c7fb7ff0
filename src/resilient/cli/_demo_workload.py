"""The demo's workload: users' calls through the HTTP pipeline, and the outbox's messages.

Calls arrive at a steady rate whatever the server does (an open loop, like real
traffic: users do not slow down because an API is down), so an outage shows as
what it is: failed calls, retries refused by the budget, a breaker that opens.

Everything the client side sees is counted here, in a `Tally`, to be compared
with what the server saw: attempts are counted at the wire, below the
pipeline, once the request is fully written, so an attempt refused by an open
circuit (which never leaves the process) is not one.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from .._exceptions import CircuitOpenError, DeadlineExceededError
from .._pipeline import Pipeline
from ..http._errors import RetryAfterTooLongError
from ..instrumentation import GiveUpDetails, Hook, RetryDetails
from ..policies._backoff import Backoff
from ..policies._breaker import CircuitBreaker, TimeWindow
from ..policies._retry import Retry
from ..policies._timeout import Timeout
from ._demo_server import CATALOG, ORIGINS, PARTNER, source_of

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ..delivery import Outbox
    from ..policies._circuit import CircuitTransition
    from ._demo_server import Schedule

__all__ = [
    "Call",
    "Message",
    "OriginTally",
    "Tally",
    "Transition",
    "WireCounter",
    "Workload",
    "demo_pipeline",
    "drive",
    "plan",
]

_WRITING = "http11.send_request_headers.started"
"""httpcore's trace event as it starts writing a request to the socket."""
_SENT = "http11.send_request_body.complete"
"""httpcore's trace event once a request, body included, is written to the socket."""


@dataclass(frozen=True)
class Call:
    """One user's HTTP call, *at* seconds into the demo."""

    at: float
    origin: str
    method: str
    path: str
    idempotency_key: str | None = None
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Message:
    """One message put in the outbox, *at* seconds into the demo, for the partner's *path*."""

    at: float
    path: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Workload:
    """The calls and messages of one run, in order of time."""

    calls: tuple[Call, ...]
    messages: tuple[Message, ...]


def plan(schedule: Schedule, *, calls: int, seed: int) -> Workload:
    """*calls* calls spread evenly over the schedule, and one outbox message per 5 calls.

    The mix: catalog reads, partner reads, idempotent PUTs, and POSTs that carry
    an ``Idempotency-Key`` (so they may be retried). Every 8th message goes to
    the partner's retired ``/v1`` endpoint, which answers 410 Gone: those become
    dead letters, whatever the seed.
    """
    rng = random.Random(seed)  # noqa: S311 -- a simulated workload, not secrets
    span = schedule.total
    planned: list[Call] = []
    for i in range(calls):
        at = span * i / calls
        draw = rng.random()
        order = rng.randrange(1000, 10_000)
        if draw < 0.3:  # noqa: PLR2004 -- the mix, spelled out
            planned.append(Call(at, CATALOG, "GET", f"/products/sku-{rng.randrange(500):03d}"))
        elif draw < 0.65:  # noqa: PLR2004
            planned.append(Call(at, PARTNER, "GET", f"/v2/orders/{order}"))
        elif draw < 0.8:  # noqa: PLR2004
            status = {"status": "packed"}
            planned.append(Call(at, PARTNER, "PUT", f"/v2/orders/{order}/status", body=status))
        else:
            body: dict[str, Any] = {
                "sku": f"sku-{rng.randrange(500):03d}",
                "quantity": rng.randrange(1, 5),
            }
            key = f"demo-{seed}-order-{i}"
            planned.append(Call(at, PARTNER, "POST", "/v2/orders", key, body))
    count = max(1, calls // 5)
    messages = tuple(
        Message(
            span * j / count,
            "/v1/events" if j % 8 == 3 else "/v2/events",  # noqa: PLR2004 -- 1 in 8, from the 4th
            {"type": "order.placed", "order": 1000 + j},
        )
        for j in range(count)
    )
    return Workload(tuple(planned), messages)


@dataclass(frozen=True)
class Transition:
    """A circuit breaker's change of state, *at* seconds into the demo."""

    at: float
    origin: str
    old: str
    new: str


@dataclass
class OriginTally:
    """What the users' calls to one origin came to, as the client saw it."""

    calls: int = 0
    succeeded: int = 0
    failed: int = 0
    attempts: int = 0
    """Attempts written to the wire (the server should have seen each)."""
    cut: int = 0
    """Attempts cancelled while being written: the server may have all of it, or not.

    A write hands bytes to the kernel and then yields; a timeout landing on that
    yield cancels an attempt whose request is already on its way.
    """
    unsent: int = 0
    """Attempts handed to the wire that were cancelled before the request was written."""
    rejected: int = 0
    """Calls failed at once by the open circuit: they never reached the server."""


@dataclass
class Tally:
    """Everything the client side counted, live (the display reads it too)."""

    origins: dict[str, OriginTally] = field(
        default_factory=lambda: {origin: OriginTally() for origin in ORIGINS}
    )
    failures: Counter[str] = field(default_factory=Counter)
    """Failed calls by why they failed: ``"HTTP 503"``, ``"circuit open"``..."""
    outbox_attempts: int = 0
    """Delivery attempts the relay wrote to the wire."""
    outbox_cut: int = 0
    outbox_unsent: int = 0
    enqueued: int = 0
    retries: int = 0
    budget_refusals: int = 0
    transitions: list[Transition] = field(default_factory=list)
    in_flight: int = 0

    @property
    def calls(self) -> int:
        """Users' calls finished."""
        return sum(o.calls for o in self.origins.values())

    @property
    def attempts(self) -> int:
        """Users' attempts written to the wire."""
        return sum(o.attempts for o in self.origins.values())


class _Counter(Hook):
    """Counts the pipeline's retries, and retries the retry budget refused."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally

    def on_retry(self, details: RetryDetails) -> None:
        del details
        self._tally.retries += 1

    def on_give_up(self, details: GiveUpDetails) -> None:
        if details.reason == "budget":
            self._tally.budget_refusals += 1


def demo_pipeline(
    scale: float, tally: Tally, on_transition: Callable[[CircuitTransition], None]
) -> Pipeline:
    """The standard HTTP pipeline's shape, its times scaled to the demo's phases.

    ``Timeout > Retry > CircuitBreaker (per origin) > Timeout``, as
    `resilient.http.default_pipeline`, with the default retry budget. The
    breaker judges 5 s windows and stays open 1.5 s (at full length) rather than
    30 s and 15 s: otherwise a 26 s demo would never see it close again.
    """
    return Pipeline(
        Timeout(10.0 * scale),
        Retry(backoff=Backoff.exponential(0.2 * scale, cap=5.0 * scale, jitter="full")),
        CircuitBreaker(
            window=TimeWindow(5.0 * scale, buckets=10),
            min_calls=10,
            open_for=1.5 * scale,
            listeners=[on_transition],
        ),
        Timeout(2.0 * scale),
        name="demo",
        hooks=[_Counter(tally)],
    )


class WireCounter(httpx.AsyncBaseTransport):
    """The transport under the pipeline: counts each attempt that reaches the socket.

    An attempt counts once httpcore reports its request written, body included
    (its ``trace`` extension): from then on the server has all of it, even if
    the client gives up waiting for the answer.
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, tally: Tally, origins: dict[int, str]
    ) -> None:
        self._inner = inner
        self._tally = tally
        self._origins = origins  # by port: both origins are on 127.0.0.1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        tally = self._tally
        outbox = source_of(request.url.path) == "outbox"
        origin = tally.origins[self._origins[request.url.port or 80]]
        writing = sent = False

        async def trace(event: str, info: dict[str, Any]) -> None:
            nonlocal writing, sent
            del info
            if event == _WRITING:
                writing = True
            elif event == _SENT and not sent:
                sent = True
                if outbox:
                    tally.outbox_attempts += 1
                else:
                    origin.attempts += 1

        # The same request object comes back for each retry: the callback is replaced.
        request.extensions["trace"] = trace
        try:
            return await self._inner.handle_async_request(request)
        finally:
            if not sent:
                if outbox:
                    tally.outbox_cut += writing
                    tally.outbox_unsent += not writing
                else:
                    origin.cut += writing
                    origin.unsent += not writing

    async def aclose(self) -> None:
        await self._inner.aclose()


async def drive(
    work: Workload,
    client: httpx.AsyncClient,
    outbox: Outbox,
    *,
    urls: dict[str, str],
    tally: Tally,
    elapsed: Callable[[], float],
) -> None:
    """Make every call and send every message at its time; return when all calls ended."""
    items: list[tuple[float, Callable[[], Coroutine[Any, Any, None]]]] = [
        (c.at, _caller(c, client, urls, tally)) for c in work.calls
    ]
    items += [(m.at, _sender(m, outbox, urls, tally)) for m in work.messages]
    items.sort(key=lambda item: item[0])
    async with anyio.create_task_group() as group:
        for at, job in items:
            wait = at - elapsed()
            if wait > 0:
                await anyio.sleep(wait)
            group.start_soon(job)


def _caller(
    call: Call, client: httpx.AsyncClient, urls: dict[str, str], tally: Tally
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def make_call() -> None:
        headers = {} if call.idempotency_key is None else {"Idempotency-Key": call.idempotency_key}
        origin = tally.origins[call.origin]
        tally.in_flight += 1
        failure: str | None
        try:
            response = await client.request(
                call.method, urls[call.origin] + call.path, headers=headers, json=call.body
            )
        except Exception as exc:  # noqa: BLE001 -- a failed call is data for the report
            failure = _failure(exc)
            if isinstance(exc, CircuitOpenError):
                origin.rejected += 1
        else:
            failure = None if response.status_code < 400 else f"HTTP {response.status_code}"  # noqa: PLR2004
        finally:
            tally.in_flight -= 1
        origin.calls += 1
        if failure is None:
            origin.succeeded += 1
        else:
            origin.failed += 1
            tally.failures[failure] += 1

    return make_call


def _sender(
    message: Message, outbox: Outbox, urls: dict[str, str], tally: Tally
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def send() -> None:
        await outbox.send(httpx.Request("POST", urls[PARTNER] + message.path, json=message.body))
        tally.enqueued += 1

    return send


def _failure(exc: Exception) -> str:
    """Why a call failed, in the report's words."""
    if isinstance(exc, CircuitOpenError):
        return "circuit open"
    if isinstance(exc, RetryAfterTooLongError):
        return "Retry-After too long"
    if isinstance(exc, (DeadlineExceededError, TimeoutError, httpx.TimeoutException)):
        return "timed out"
    return type(exc).__name__
