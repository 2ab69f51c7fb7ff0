"""The demo's flaky HTTP server: two origins on 127.0.0.1 and the phases they go through.

Standard library and anyio only: ``resilient demo`` must run where nothing but
``resilient`` is installed. It is a deliberately small HTTP/1.1 server (one
request at a time per connection, ``Content-Length`` bodies, keep-alive), run
in the demo's own event loop, and it writes down every request it answers, so
the demo's report can be checked against what the server really saw.

Two origins, one listening socket each, make the per-origin circuit breakers
visible: the *partner* API goes through the phases of the `Schedule`, the
*catalog* API answers every request.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anyio
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import SocketStream, TaskGroup

__all__ = [
    "CATALOG",
    "ORIGINS",
    "OUTBOX_PATHS",
    "PARTNER",
    "DemoServer",
    "Phase",
    "Schedule",
    "ServedRequest",
    "source_of",
]

PARTNER: Final = "partner"
"""The flaky origin: it goes through every phase."""
CATALOG: Final = "catalog"
"""The steady origin: it answers 200 throughout, so its breaker never moves."""
ORIGINS: Final = (PARTNER, CATALOG)

OUTBOX_PATHS: Final = ("/v2/events", "/v1/events")
"""Where the outbox's messages go, on the partner API (``/v1`` is retired: 410 Gone)."""

_MAX_HEAD: Final = 16_384
_REASONS: Final = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def source_of(path: str) -> str:
    """``"outbox"`` for a request the outbox's relay sends, else ``"users"``.

    One definition for the server's records and the client's counters, so the
    two sides are compared request class by request class.
    """
    return "outbox" if path.startswith(OUTBOX_PATHS) else "users"


@dataclass(frozen=True)
class Phase:
    """What the partner API does for a while.

    Attributes:
        name: A short name, shown live and on the plot.
        seconds: How long it lasts (already scaled for ``--short``).
        summary: What it means, in a few words, for people.
        error_rate: The share of the partner's requests that fail.
        statuses: The statuses failing requests get, picked at random.
        retry_after: Seconds a 429 asks the client to wait, else ``None``.

    """

    name: str
    seconds: float
    summary: str
    error_rate: float = 0.0
    statuses: tuple[int, ...] = ()
    retry_after: float | None = None


# The phases at full length: about 26 s, which leaves room for the outbox to drain
# within the minute the issue allows. --short scales every duration down together.
_PHASES: Final = (
    Phase("healthy", 5.0, "every request succeeds"),
    Phase("5xx burst", 5.0, "20% of requests fail with 500/502/503", 0.2, (500, 502, 503)),
    Phase("throttled", 4.0, "25% of requests get 429 with Retry-After", 0.25, (429,), 1.0),
    Phase("outage", 6.0, "every request gets 503", 1.0, (503,)),
    Phase("recovered", 6.0, "every request succeeds again"),
)


class Schedule:
    """The phases of the partner API, one after the other, from time 0.

    Args:
        scale: Multiplies every duration (1 for the full demo, less for ``--short``).

    """

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.phases = tuple(
            Phase(
                p.name,
                p.seconds * scale,
                p.summary,
                p.error_rate,
                p.statuses,
                None if p.retry_after is None else p.retry_after * scale,
            )
            for p in _PHASES
        )
        starts = [0.0]
        for phase in self.phases:
            starts.append(starts[-1] + phase.seconds)
        self.starts = tuple(starts[:-1])
        self.total = starts[-1]

    def index_at(self, elapsed: float) -> int:
        """The index of the phase at *elapsed* seconds; the last one lasts for ever."""
        for i in range(len(self.phases) - 1, -1, -1):
            if elapsed >= self.starts[i]:
                return i
        return 0

    def at(self, elapsed: float) -> Phase:
        """The phase at *elapsed* seconds."""
        return self.phases[self.index_at(elapsed)]

    def spans(self) -> list[tuple[Phase, float, float]]:
        """Each phase with its start and end, in seconds."""
        return [(p, s, s + p.seconds) for p, s in zip(self.phases, self.starts, strict=True)]


@dataclass(frozen=True)
class ServedRequest:
    """One request as the server saw it.

    Attributes:
        at: Seconds since the demo started.
        origin: `PARTNER` or `CATALOG`.
        method: The request's method.
        path: Its path.
        idempotency_key: Its ``Idempotency-Key`` header, if any.
        status: The status the server answered.

    """

    at: float
    origin: str
    method: str
    path: str
    idempotency_key: str | None
    status: int

    @property
    def source(self) -> str:
        """``"outbox"`` or ``"users"`` (see `source_of`)."""
        return source_of(self.path)


@dataclass
class DemoServer:
    """The partner and catalog APIs, each on its own random port of 127.0.0.1.

    Use `start` inside a task group; the listeners stop when the group's scope
    is cancelled. Every answered request is appended to `requests`.

    Args:
        schedule: The partner's phases.
        seed: Seeds which of the partner's requests fail.
        elapsed: Seconds since the demo started (the demo's clock).

    """

    schedule: Schedule
    seed: int
    elapsed: Callable[[], float]
    requests: list[ServedRequest] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 -- simulated failures, not secrets

    def url(self, origin: str) -> str:
        """The base URL of *origin*, such as ``http://127.0.0.1:40123``."""
        return f"http://127.0.0.1:{self.ports[origin]}"

    def origin_of_port(self, port: int | None) -> str | None:
        """The origin listening on *port*, or ``None``."""
        for origin, bound in self.ports.items():
            if bound == port:
                return origin
        return None

    async def start(self, group: TaskGroup) -> None:
        """Bind both origins to random ports and serve them in *group*."""
        for origin in ORIGINS:
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
            port = listener.listeners[0].extra(SocketAttribute.local_port)  # noqa: S610 -- anyio's, not Django's
            self.ports[origin] = port
            group.start_soon(self._serve, listener, origin)

    async def _serve(self, listener: anyio.abc.Listener[SocketStream], origin: str) -> None:
        async def handle(stream: SocketStream) -> None:
            await self._connection(stream, origin)

        async with listener:
            await listener.serve(handle)

    async def _connection(self, stream: SocketStream, origin: str) -> None:
        """Answer the requests of one keep-alive connection until the client closes it."""
        reader = BufferedByteReceiveStream(stream)
        async with stream:
            while True:
                try:
                    head = await reader.receive_until(b"\r\n\r\n", _MAX_HEAD)
                    method, path, headers = _parse_head(head)
                    length = int(headers.get("content-length", "0"))
                    if length:
                        await reader.receive_exactly(length)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                    return  # the client closed the connection: nothing more to answer
                except (ValueError, anyio.DelimiterNotFound):
                    await _send(stream, 400, {})
                    return
                status, extra = self._answer(origin, method, path)
                self.requests.append(
                    ServedRequest(
                        self.elapsed(), origin, method, path, headers.get("idempotency-key"), status
                    )
                )
                try:
                    await _send(stream, status, extra)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return

    def _answer(self, origin: str, method: str, path: str) -> tuple[int, dict[str, str]]:
        """The status for a request now, and the headers that go with it."""
        if origin == CATALOG:
            return 200, {}
        phase = self.schedule.at(self.elapsed())
        if phase.error_rate and self._rng.random() < phase.error_rate:
            status = self._rng.choice(phase.statuses)
            if status == 429 and phase.retry_after is not None:  # noqa: PLR2004
                return status, _retry_after(phase.retry_after)
            return status, {}
        if path.startswith("/v1/"):
            return 410, {}  # the retired version: the outbox's messages to it are dead letters
        return (201 if method == "POST" else 200), {}


def _retry_after(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (the RFC's form), and in ms as many APIs add."""
    return {
        "retry-after": str(max(1, math.ceil(seconds))),
        # Read first by the client: lets --short ask for a fraction of a second.
        "retry-after-ms": str(round(seconds * 1000)),
    }


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """The method, path and headers (lower-case names) of a request head.

    Raises:
        ValueError: If the head is not an HTTP/1.1 request head.

    """
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    if not version.startswith("HTTP/1."):
        msg = f"not an HTTP/1.x request: {lines[0]!r}"
        raise ValueError(msg)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target.split("?", 1)[0], headers


async def _send(stream: SocketStream, status: int, extra: dict[str, str]) -> None:
    body = json.dumps({"status": status}).encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(f"{name}: {value}" for name, value in extra.items()),
        "",
        "",
    ]
    await stream.send("\r\n".join(lines).encode("latin-1") + body)
