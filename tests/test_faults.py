"""FaultTransport: scripted and seeded faults, latency in virtual time, any httpx-like library."""

from __future__ import annotations

import sys
import types
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest

import http_server
import resilient as rs
from http_server import LocalServer
from resilient._clock import now, sleep
from resilient.testing import FaultLogEntry, FaultStatistics, FaultTransport

pytestmark = pytest.mark.anyio

URL = "https://api.test/items"

# Only the test marked @http_server.real_loop asks for it.
local_server_fixture = http_server.local_server_fixture


class Api:
    """The wrapped transport's handler: answers 200 and counts what reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, _request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(200, text="from the api")


def faulty(**options: Any) -> tuple[FaultTransport, Api]:
    api = Api()
    return FaultTransport(httpx.MockTransport(api), **options), api


async def outcomes(transport: FaultTransport, n: int) -> list[int | str]:
    """Send *n* GETs through an AsyncClient: each status, or the error's class name."""

    async def outcome(client: httpx.AsyncClient) -> int | str:
        try:
            return (await client.get(URL)).status_code
        except httpx.TransportError as exc:
            return type(exc).__name__

    async with httpx.AsyncClient(transport=transport) as client:
        return [await outcome(client) for _ in range(n)]


async def test_without_faults_every_request_is_forwarded() -> None:
    transport, api = faulty()
    assert await outcomes(transport, 3) == [200, 200, 200]
    assert api.calls == 3
    assert transport.log == [(f"GET {URL}", "ok")] * 3
    assert transport.statistics() == FaultStatistics(
        requests=3,
        forwarded=3,
        errors=0,
        statuses=0,
        hangs=0,
        scripted=0,
        script_left=0,
        latency=0.0,
    )


async def test_the_script_comes_first_then_the_rates() -> None:
    """While the script lasts it decides; error_rate=1 only applies after it."""
    transport, api = faulty(script=["connect_error", 503, "ok", 429], error_rate=1.0)
    assert await outcomes(transport, 6) == [
        "ConnectError",
        503,
        200,
        429,
        "ConnectError",
        "ConnectError",
    ]
    assert api.calls == 1  # only the scripted "ok" reached the api
    assert [fault for _, fault in transport.log] == [
        "connect_error",
        503,
        "ok",
        429,
        "connect_error",
        "connect_error",
    ]
    stats = transport.statistics()
    assert (stats.scripted, stats.script_left) == (4, 0)
    assert (stats.forwarded, stats.errors, stats.statuses) == (1, 3, 2)


async def test_statistics_count_what_the_script_has_left() -> None:
    transport, _ = faulty(script=[500, 502, 504])
    assert await outcomes(transport, 1) == [500]
    assert transport.statistics().script_left == 2
    assert transport.script == (500, 502, 504)  # the option itself is not consumed


async def test_the_log_names_the_request_and_the_fault() -> None:
    transport, _ = faulty(script=[503])
    async with httpx.AsyncClient(transport=transport) as client:
        await client.post("https://api.test/orders?id=1", json={})
    assert transport.log == [FaultLogEntry("POST https://api.test/orders?id=1", 503)]
    entry = transport.log[0]
    assert (entry.request, entry.fault) == ("POST https://api.test/orders?id=1", 503)
    transport.log.clear()  # a copy: the record is untouched
    assert len(transport.log) == 1


async def test_the_log_redacts_secrets_in_the_url() -> None:
    transport, _ = faulty(script=[503])
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://user:hunter22@api.test/v1?api_key=sk-live-123456&page=2")
    (entry,) = transport.log
    assert "hunter22" not in entry.request
    assert "sk-live-123456" not in entry.request
    assert entry.request.endswith("api.test/v1?api_key=[REDACTED]&page=2")


async def test_the_log_redacts_with_the_redaction_given() -> None:
    redaction = rs.http.Redaction(query=rs.http.SENSITIVE_QUERY | {"session"})
    transport, _ = faulty(script=[503], redaction=redaction)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.test/v1?session=sess-0123456789&page=2")
    (entry,) = transport.log
    assert entry.request.endswith("api.test/v1?session=[REDACTED]&page=2")


async def test_script_errors_are_the_request_librarys() -> None:
    transport, _ = faulty(
        script=[
            "connect_timeout",
            "read_error",
            "read_timeout",
            "write_error",
            "write_timeout",
            "pool_timeout",
            "remote_protocol_error",
        ]
    )
    assert await outcomes(transport, 7) == [
        "ConnectTimeout",
        "ReadError",
        "ReadTimeout",
        "WriteError",
        "WriteTimeout",
        "PoolTimeout",
        "RemoteProtocolError",
    ]
    assert [fault for _, fault in transport.log][:3] == [
        "connect_timeout",
        "read_error",
        "read_timeout",
    ]


async def test_injected_errors_carry_the_request() -> None:
    transport, _ = faulty(error_rate=1.0)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError, match="injected fault: connect_error") as info:
            await client.get(URL)
    assert info.value.request.url == URL


async def test_errors_may_be_factories_and_script_error_picks_one() -> None:
    def refused(request: httpx.Request) -> Exception:
        return ConnectionRefusedError(f"no {request.url.host}")

    transport, _ = faulty(errors=[refused], script=["error", refused])
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(2):
            with pytest.raises(ConnectionRefusedError, match=r"no api\.test"):
                await client.get(URL)
    assert [fault for _, fault in transport.log] == ["connection_refused_error"] * 2


async def test_a_factory_that_cannot_be_hashed_is_a_script_entry_like_any_other() -> None:
    class Refuse:  # a callable with __eq__ and no __hash__, as a dataclass would be
        def __eq__(self, other: object) -> bool:
            return isinstance(other, Refuse)

        __hash__ = None  # type: ignore[assignment]

        def __call__(self, request: httpx.Request) -> Exception:
            return ConnectionRefusedError(f"no {request.url.host}")

    transport, _ = faulty(script=[Refuse()])
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(ConnectionRefusedError, match=r"no api\.test"):
            await client.get(URL)


async def test_a_factory_must_return_an_exception() -> None:
    transport, _ = faulty(script=[lambda _: "oops"])
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(TypeError, match="must return an exception, got 'oops'"):
            await client.get(URL)


async def test_injected_statuses_carry_retry_after() -> None:
    transport, api = faulty(script=[429, "ok"], status_rate=1.0, retry_after=7)
    async with httpx.AsyncClient(transport=transport) as client:
        scripted, forwarded, random = [await client.get(URL) for _ in range(3)]
    assert (scripted.status_code, scripted.headers["retry-after"]) == (429, "7")
    assert (random.status_code, random.headers["retry-after"]) == (503, "7")
    assert "retry-after" not in forwarded.headers  # the api's own response is untouched
    assert forwarded.text == "from the api"
    assert scripted.request.url == URL
    assert api.calls == 1


async def test_retry_after_may_be_an_http_date_and_is_absent_by_default() -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    dated, _ = faulty(script=[503], retry_after=date)
    plain, _ = faulty(script=[503])
    async with httpx.AsyncClient(transport=dated) as client:
        assert (await client.get(URL)).headers["retry-after"] == date
    async with httpx.AsyncClient(transport=plain) as client:
        assert "retry-after" not in (await client.get(URL)).headers


async def test_the_same_seed_gives_the_same_faults_and_latencies() -> None:
    options: dict[str, Any] = {
        "error_rate": 0.2,
        "status_rate": 0.3,
        "statuses": (429, 500, 503),
        "errors": ("connect_error", "read_timeout"),
        "latency": (0.1, 2.0),
    }
    runs = []
    for seed in (42, 42, 43):
        transport, _ = faulty(seed=seed, **options)
        start = now()
        seen = await outcomes(transport, 40)
        runs.append((seen, transport.log, transport.statistics().latency, now() - start))
    (seen_a, log_a, latency_a, took_a), (seen_b, log_b, latency_b, took_b), other = runs
    assert (seen_a, log_a, latency_a) == (seen_b, log_b, latency_b)
    assert took_a == pytest.approx(took_b)
    assert other[1] != log_a  # another seed, another sequence


async def test_rates_are_honoured_exactly_for_a_fixed_seed() -> None:
    """1000 requests, seed 2024: 10% errors and 20% statuses come out as 82 and 194."""
    transport, api = faulty(
        seed=2024,
        error_rate=0.1,
        status_rate=0.2,
        statuses=(429, 503),
        errors=("connect_error", "read_timeout"),
    )
    await outcomes(transport, 1000)
    assert Counter(fault for _, fault in transport.log) == {
        "ok": 724,
        429: 109,
        503: 85,
        "read_timeout": 45,
        "connect_error": 37,
    }
    stats = transport.statistics()
    assert (stats.requests, stats.forwarded, stats.errors, stats.statuses) == (1000, 724, 82, 194)
    assert api.calls == 724


async def test_fixed_latency_is_waited_in_virtual_time() -> None:
    transport, api = faulty(latency=2.5, script=[503])
    start = now()
    assert await outcomes(transport, 2) == [503, 200]  # latency applies to every request
    assert now() - start == pytest.approx(5.0)
    assert transport.statistics().latency == pytest.approx(5.0)
    assert api.calls == 1


async def test_a_latency_range_is_drawn_from_the_seeded_generator() -> None:
    import random

    transport, _ = faulty(latency=(1.0, 3.0), seed=5)
    start = now()
    await outcomes(transport, 3)
    expected = random.Random(5)
    draws = []
    for _ in range(3):  # each request draws its latency, then its fault
        draws.append(expected.uniform(1.0, 3.0))
        expected.random()
    assert now() - start == pytest.approx(sum(draws))
    assert all(1.0 <= draw <= 3.0 for draw in draws)


async def test_faults_are_decided_when_a_request_arrives() -> None:
    """The log shows a request at once, before its latency has passed."""
    transport, api = faulty(latency=10.0)
    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.get, URL)
        await sleep(1)
        assert transport.log == [(f"GET {URL}", "ok")]
        assert api.calls == 0
    assert api.calls == 1


async def test_hang_waits_until_a_timeout_cancels_it() -> None:
    transport, api = faulty(script=["hang"])
    async with httpx.AsyncClient(transport=transport) as client:
        start = now()
        with pytest.raises(rs.DeadlineExceededError):
            await rs.Pipeline(rs.Timeout(30)).run(client.get, URL)
        assert now() - start == pytest.approx(30)
        assert (await client.get(URL)).status_code == 200
    assert transport.statistics().hangs == 1
    assert api.calls == 1


async def test_a_retry_policy_gets_through_scripted_connection_errors() -> None:
    transport, api = faulty(script=["connect_error", "connect_error"])
    async with httpx.AsyncClient(transport=transport) as client:
        retry = rs.Retry(attempts=3, backoff=rs.Backoff.constant(0))
        response = await rs.Pipeline(retry).run(client.get, URL)
    assert response.status_code == 200
    assert [fault for _, fault in transport.log] == ["connect_error", "connect_error", "ok"]
    assert api.calls == 1


class Inner:
    """A transport that is no httpx transport: it only has the two methods."""

    def __init__(self) -> None:
        self.closed = 0
        self.requests: list[object] = []

    async def handle_async_request(self, request: object) -> object:
        self.requests.append(request)
        return "forwarded"

    async def aclose(self) -> None:
        self.closed += 1


async def test_aclose_is_forwarded() -> None:
    inner = Inner()
    transport = FaultTransport(inner)
    await transport.aclose()
    assert inner.closed == 1
    async with transport:  # as httpx.AsyncClient uses it
        pass
    assert inner.closed == 2
    async with httpx.AsyncClient(transport=FaultTransport(inner)):
        pass
    assert inner.closed == 3


def fake_library() -> types.ModuleType:
    """A stand-in for httpx2: its own Request, Response and errors."""
    library = types.ModuleType("fakehttp")

    class Request:
        __module__ = "fakehttp._models"

        def __init__(self, method: str, url: str) -> None:
            self.method, self.url = method, url

    class Response:
        def __init__(self, status_code: int, *, headers: dict[str, str], request: Any) -> None:
            self.status_code, self.headers, self.request = status_code, headers, request

    class ConnectError(Exception):
        def __init__(self, message: str, *, request: Any) -> None:
            super().__init__(message)
            self.request = request

    library.Request, library.Response, library.ConnectError = Request, Response, ConnectError
    return library


async def test_responses_and_errors_come_from_the_requests_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Wrapping an httpx2-like transport: nothing of httpx is mixed in."""
    library = fake_library()
    monkeypatch.setitem(sys.modules, "fakehttp", library)
    inner = Inner()
    transport = FaultTransport(inner, script=[503, "connect_error", "ok"], retry_after=1)
    request = library.Request("GET", "https://api.test/")

    response = await transport.handle_async_request(request)
    assert type(response) is library.Response
    assert (response.status_code, response.headers, response.request) == (
        503,
        {"Retry-After": "1"},
        request,
    )
    with pytest.raises(library.ConnectError) as info:
        await transport.handle_async_request(request)
    assert info.value.request is request
    assert await transport.handle_async_request(request) == "forwarded"
    assert inner.requests == [request]
    assert transport.log == [
        ("GET https://api.test/", 503),
        ("GET https://api.test/", "connect_error"),
        ("GET https://api.test/", "ok"),
    ]


@http_server.real_loop
async def test_wraps_a_real_transport_against_a_real_server(local_server: LocalServer) -> None:
    """This test alone runs on the real asyncio loop, to talk to a real server."""
    local_server.script = [201]
    transport = FaultTransport(httpx.AsyncHTTPTransport(), script=[503, "ok"])
    async with httpx.AsyncClient(transport=transport, base_url=local_server.url) as client:
        assert (await client.get("/")).status_code == 503
        assert (await client.get("/")).status_code == 201
        assert (await client.get("/")).status_code == 200
    assert [request.path for request in local_server.requests] == ["/", "/"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"latency": -1}, ValueError, r"latency must be a finite number >= 0, got -1"),
        ({"latency": "1"}, TypeError, r"latency must be a finite number >= 0, got '1' \(str\)"),
        ({"latency": float("inf")}, ValueError, r"latency must be a finite number >= 0"),
        ({"latency": (2.0, 1.0)}, ValueError, r"latency must be \(low, high\) with low <= high"),
        ({"latency": (1.0,)}, ValueError, r"latency must be seconds or a \(low, high\) pair"),
        ({"latency": (-1.0, 1.0)}, ValueError, r"latency\[0\] must be a finite number >= 0"),
        ({"error_rate": 1.5}, ValueError, r"error_rate must be a probability in \[0, 1\], got 1.5"),
        ({"error_rate": float("nan")}, ValueError, r"error_rate must be a probability in \[0, 1\]"),
        ({"status_rate": -0.1}, ValueError, r"status_rate must be a probability in \[0, 1\]"),
        ({"status_rate": True}, TypeError, r"status_rate must be a probability .* \(bool\)"),
        (
            {"error_rate": 0.6, "status_rate": 0.5},
            ValueError,
            r"error_rate \+ status_rate must be <= 1, got 0.6 \+ 0.5",
        ),
        ({"errors": []}, ValueError, r"errors must not be empty"),
        ({"errors": "connect_error"}, TypeError, r"errors must be a list or tuple"),
        ({"errors": ["boom"]}, ValueError, r"errors\[0\] must be one of connect_error, "),
        ({"errors": [42]}, TypeError, r"errors\[0\] must be an error name or a callable"),
        ({"statuses": ()}, ValueError, r"statuses must not be empty"),
        ({"statuses": (503, 99)}, ValueError, r"statuses\[1\] must be an HTTP status, an int in"),
        ({"statuses": (503.0,)}, TypeError, r"statuses\[0\] must be an HTTP status.* \(float\)"),
        ({"retry_after": -1}, ValueError, r"retry_after must be None, seconds \(an int >= 0\)"),
        ({"retry_after": " "}, ValueError, r"retry_after must be .*, got ' '"),
        ({"retry_after": 1.5}, TypeError, r"retry_after must be .* \(float\)"),
        ({"retry_after": "1\r\nX-Evil: 1"}, ValueError, r"retry_after must be .*one line"),
        ({"retry_after": "\u4e2d"}, ValueError, r"retry_after must be .*ASCII"),
        ({"latency": [0.1, 0.2]}, TypeError, r"latency must be seconds or a \(low, high\) tuple"),
        ({"seed": "x"}, TypeError, r"seed must be an int or None, got 'x' \(str\)"),
        ({"script": ["oops"]}, ValueError, r"script\[0\] must be one of 'ok', 'hang', 'error'"),
        ({"script": ["ok", 600]}, ValueError, r"script\[1\] must be an HTTP status"),
        ({"script": [None]}, TypeError, r"script\[0\] must be an error name or a callable"),
        ({"script": "ok"}, TypeError, r"script must be a list or tuple, got 'ok'"),
        ({"redaction": {"session"}}, TypeError, r"redaction must be a resilient.http.Redaction"),
    ],
)
def test_options_are_validated(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^FaultTransport: {message}"):
        FaultTransport(httpx.MockTransport(Api()), **options)


def test_the_wrapped_transport_must_be_a_transport() -> None:
    with pytest.raises(TypeError, match="next_transport must have async handle_async_request"):
        FaultTransport(Api())  # type: ignore[arg-type]


def test_it_is_an_httpx_transport_with_a_readable_repr() -> None:
    transport = FaultTransport(httpx.MockTransport(Api()), script=[503])
    assert isinstance(transport, httpx.AsyncBaseTransport)
    assert "script=(503,)" in repr(transport)
    assert "_state" not in repr(transport)
