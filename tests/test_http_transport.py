"""resilient.http.Transport over httpx.MockTransport, in virtual time on asyncio and trio."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import gzip
import math
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import resilient as rs
from resilient import http as rsh
from resilient._clock import now, sleep, wall
from resilient._context import Context
from resilient.http._classification import HttpCall
from resilient.instrumentation import Hook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.anyio

FAST = rs.Backoff.constant(0.5)


class Server:
    """A scripted MockTransport: each item is a status, (status, headers), an exception
    class to raise, or a callable(request) -> Response."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []
        self.headers: list[dict[str, str]] = []  # as sent: the request is reused per attempt
        self.responses: list[httpx.Response] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.headers.append(dict(request.headers))
        self.times.append(now())
        item = self.script.pop(0) if self.script else 200
        if isinstance(item, type) and issubclass(item, Exception):
            raise item("scripted", request=request)
        if callable(item):
            response = item(request)
        elif isinstance(item, tuple):
            response = httpx.Response(item[0], headers=item[1], text="body")
        else:
            response = httpx.Response(item, text="body")
        self.responses.append(response)
        return response


def client(server: Server, policy: Any = None, **options: Any) -> httpx.AsyncClient:
    policy = policy or rs.Pipeline(rs.Retry(backoff=FAST, budget=None), hooks=[])
    transport = rsh.Transport(policy, httpx.MockTransport(server), **options)
    return httpx.AsyncClient(transport=transport, base_url="https://api.example")


async def test_retries_a_retryable_status_and_reports_attempts() -> None:
    server = Server(503, 502, 200)
    async with client(server) as c:
        response = await c.get("/users/1")
    assert response.status_code == 200
    assert response.text == "body"
    info = response.extensions["resilient"]
    assert info["attempts"] == 3
    assert info["delays"] == [0.5, 0.5]
    assert len(server.requests) == 3


async def test_the_failed_attempts_responses_are_closed() -> None:
    def streamed(status: int) -> Callable[[httpx.Request], httpx.Response]:
        return lambda _: httpx.Response(status, stream=httpx.ByteStream(b"body"))

    server = Server(streamed(503), streamed(503), streamed(200))
    async with client(server) as c:
        await c.get("/")
        # Before the client is closed: the failed ones were closed by the transport.
        assert [r.is_closed for r in server.responses] == [True, True, True]


async def test_an_ordinary_4xx_is_returned_at_once() -> None:
    server = Server(404)
    async with client(server) as c:
        assert (await c.get("/")).status_code == 404
    assert len(server.requests) == 1


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])
async def test_idempotent_methods_are_retried(method: str) -> None:
    server = Server(503, 200)
    async with client(server) as c:
        assert (await c.request(method, "/")).status_code == 200
    assert len(server.requests) == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_post_and_patch_are_not_retried_without_a_key(method: str) -> None:
    server = Server(503, 200)
    async with client(server) as c:
        assert (await c.request(method, "/", json={})).status_code == 503
    assert len(server.requests) == 1


async def test_post_with_the_callers_key_is_retried_with_that_key() -> None:
    server = Server(503, 200)
    async with client(server, idempotency_keys=True) as c:
        response = await c.post("/", json={}, headers={"Idempotency-Key": "mine"})
    assert response.status_code == 200
    assert [r.headers["Idempotency-Key"] for r in server.requests] == ["mine", "mine"]
    assert response.extensions["resilient"]["idempotency_key"] == "mine"


async def test_minted_keys_are_stable_across_retries_and_new_per_request() -> None:
    server = Server(503, 200, 200)
    async with client(server, idempotency_keys=True) as c:
        await c.post("/", json={})
        await c.post("/", json={})
        await c.get("/")
    keys = [r.headers.get("Idempotency-Key") for r in server.requests]
    assert keys[0] == keys[1]
    assert keys[2] != keys[0]
    assert keys[3] is None  # GET needs none
    assert len(keys[0] or "") >= 32  # 24 random bytes, base64url


async def test_409_is_retried_with_the_same_key_and_422_raises() -> None:
    server = Server(409, 200, 422)
    async with client(server) as c:
        response = await c.post("/", json={}, headers={"Idempotency-Key": "k1"})
        assert response.status_code == 200
        with pytest.raises(rsh.IdempotencyKeyMismatchError, match="'k2'") as info:
            await c.post("/", json={"other": 1}, headers={"Idempotency-Key": "k2"})
    assert info.value.response.status_code == 422
    assert len(server.requests) == 3


async def test_retry_after_sets_the_wait() -> None:
    server = Server((503, {"Retry-After": "3"}), (429, {"retry-after-ms": "1500"}), 200)
    async with client(server) as c:
        assert (await c.get("/")).status_code == 200
    gaps = [b - a for a, b in zip(server.times, server.times[1:])]  # noqa: B905
    assert gaps == [pytest.approx(3.0), pytest.approx(1.5)]


async def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(wall() + 30, usegmt=True)  # the virtual wall clock
    server = Server((503, {"Retry-After": when}), 200)
    async with client(server) as c:
        assert (await c.get("/")).status_code == 200
    assert 28 <= server.times[1] - server.times[0] <= 31


@pytest.mark.parametrize("value", ["-5", "soon", "nan", "1e400", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_garbage_or_past_retry_after_falls_back_to_the_backoff(value: str) -> None:
    server = Server((503, {"Retry-After": value}), 200)
    async with client(server) as c:
        assert (await c.get("/")).status_code == 200
    assert server.times[1] - server.times[0] == pytest.approx(0.5)


async def test_a_retry_after_above_the_cap_gives_up_at_once() -> None:
    server = Server((503, {"Retry-After": "1200"}), 200)
    start = now()
    async with client(server) as c:
        with pytest.raises(rsh.RetryAfterTooLongError, match="1200") as info:
            await c.get("/")
    assert now() == pytest.approx(start)  # no 20-minute stall
    assert info.value.retry_after == 1200
    assert info.value.response.status_code == 503
    assert len(server.requests) == 1


async def test_a_retry_after_past_the_deadline_gives_up_at_once() -> None:
    server = Server((503, {"Retry-After": "20"}), 200)
    policy = rs.Pipeline(rs.Timeout(10), rs.Retry(backoff=FAST, budget=None), hooks=[])
    async with client(server, policy) as c:
        with pytest.raises(rsh.RetryAfterTooLongError) as info:
            await c.get("/")
    assert info.value.retry_after == 20


async def test_connect_errors_are_retried_even_for_post() -> None:
    server = Server(httpx.ConnectError, 200)
    async with client(server) as c:
        assert (await c.post("/", json={})).status_code == 200


async def test_a_read_error_on_post_without_a_key_is_not_retried() -> None:
    server = Server(httpx.ReadError, 200)
    async with client(server) as c:
        with pytest.raises(httpx.ReadError):
            await c.post("/", json={})
    assert len(server.requests) == 1


async def test_a_read_error_on_get_is_retried() -> None:
    server = Server(httpx.ReadError, httpx.RemoteProtocolError, 200)
    async with client(server) as c:
        assert (await c.get("/")).status_code == 200


async def test_one_failing_origin_does_not_open_the_circuit_for_another() -> None:
    def by_host(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if request.url.host == "bad.example" else 200)

    breaker = rs.CircuitBreaker(window=rs.CountWindow(3), min_calls=3, open_for=60)
    policy = rs.Pipeline(breaker, hooks=[])
    transport = rsh.Transport(policy, httpx.MockTransport(by_host))
    async with httpx.AsyncClient(transport=transport) as c:
        for _ in range(3):
            assert (await c.get("https://bad.example/")).status_code == 503
        with pytest.raises(rs.CircuitOpenError):
            await c.get("https://bad.example/")
        assert (await c.get("https://good.example/")).status_code == 200
    assert breaker.state(("https", "bad.example", None)) is rs.CircuitState.OPEN


async def test_4xx_does_not_count_against_the_breaker() -> None:
    breaker = rs.CircuitBreaker(window=rs.CountWindow(3), min_calls=3)
    server = Server(404, 404, 404, 404)
    async with client(server, rs.Pipeline(breaker, hooks=[])) as c:
        for _ in range(4):
            assert (await c.get("/")).status_code == 404
    assert breaker.statistics(("https", "api.example", None)).failures == 0


async def test_a_streamed_request_body_is_not_retried_and_the_error_says_why() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    server = Server(503, httpx.ConnectError)
    async with client(server) as c:
        response = await c.put("/", content=body())
        assert response.status_code == 503
        with pytest.raises(httpx.ConnectError) as info:
            await c.put("/", content=body())
    assert len(server.requests) == 2
    if sys.version_info >= (3, 11):
        assert "cannot be sent again" in "".join(info.value.__notes__)


async def test_the_total_deadline_bounds_reading_the_body() -> None:
    """A body trickled a byte every 0.5 s cannot hold a 2 s call longer than 2 s."""

    class Trickle(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for _ in range(100):
                await sleep(0.5)
                yield b"x"

    server = Server(lambda _: httpx.Response(200, stream=Trickle()))
    policy = rs.Pipeline(rs.Timeout(2.0), hooks=[])
    start = now()
    async with client(server, policy) as c:
        with pytest.raises(rs.DeadlineExceededError):
            await c.get("/")
    assert now() - start == pytest.approx(2.0)


async def test_event_streams_are_handed_over_unread() -> None:
    """An event stream is returned at its headers: the pipeline's 5 s timeout does not
    cut a stream whose second event comes a minute later."""

    class Events(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"data: 1\n\n"
            await sleep(60)
            yield b"data: 2\n\n"

    server = Server(
        lambda _: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Events()
        )
    )
    policy = rs.Pipeline(rs.Timeout(5.0), hooks=[])
    arrivals: list[tuple[bytes, float]] = []
    async with client(server, policy) as c, c.stream("GET", "/") as response:
        start = now()
        arrivals.extend([(chunk, now() - start) async for chunk in response.aiter_bytes()])
    assert arrivals == [(b"data: 1\n\n", 0.0), (b"data: 2\n\n", pytest.approx(60.0))]


async def test_a_client_span_per_attempt() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = Server(503, httpx.ConnectError, 200)
    async with client(server, tracer_provider=provider, attempt_header="Resilient-Attempt") as c:
        await c.get("/items?api_key=canary-1234")
    spans = [s for s in exporter.get_finished_spans() if s.name == "GET"]
    assert [s.attributes.get("http.request.resend_count") for s in spans] == [None, 1, 2]
    assert [s.attributes.get("http.response.status_code") for s in spans] == [503, None, 200]
    assert [s.attributes.get("error.type") for s in spans] == ["503", "ConnectError", None]
    assert all("canary-1234" not in str(s.attributes["url.full"]) for s in spans)
    assert [h["resilient-attempt"] for h in server.headers] == ["1", "2", "3"]


async def test_resend_count_counts_redirects_and_auth_challenges_too() -> None:
    # OpenTelemetry: resends "for any reason, including redirects" and auth failures.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def network(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(307, headers={"Location": "/new"})
        if "authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Digest realm="r", nonce="n"'})
        return httpx.Response(200, extensions={"http_version": b"HTTP/2"})

    transport = rsh.Transport(
        rs.Pipeline(rs.Retry(), hooks=[]), httpx.MockTransport(network), tracer_provider=provider
    )
    async with httpx.AsyncClient(
        transport=transport, follow_redirects=True, auth=httpx.DigestAuth("u", "p")
    ) as c:
        assert (await c.get("https://api.example/old")).status_code == 200
    spans = sorted(exporter.get_finished_spans(), key=lambda span: span.start_time or 0)
    assert [s.attributes.get("http.response.status_code") for s in spans] == [307, 401, 307, 200]
    assert [s.attributes.get("http.request.resend_count") for s in spans] == [None, 1, 2, 3]
    assert spans[-1].attributes.get("network.protocol.version") == "2"
    assert "network.protocol.version" not in (spans[0].attributes or {})  # the mock says none


async def test_the_default_pipeline_and_aclose() -> None:
    closed: list[bool] = []

    class Closing(httpx.MockTransport):
        async def aclose(self) -> None:
            closed.append(True)

    transport = rsh.Transport(next_transport=Closing(Server()))
    assert "Timeout(30) > Retry(" in repr(transport)
    async with httpx.AsyncClient(transport=transport) as c:
        assert (await c.get("https://x.example/")).status_code == 200
    assert closed == [True]


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: rsh.Transport("retry"), TypeError, "policy must be a Pipeline or a policy"),
        (
            lambda: rsh.Transport(next_transport=object()),
            TypeError,
            "next_transport must be an async transport",
        ),
        (lambda: rsh.Transport(attempt_header=""), ValueError, "attempt_header must be a header"),
        (
            lambda: rsh.HttpClassification(retry_statuses={700}),
            ValueError,
            "retry_statuses must hold HTTP status codes",
        ),
        (lambda: rsh.HttpClassification(max_retry_after=-1), ValueError, "max_retry_after must be"),
        (
            lambda: rsh.HttpClassification(idempotent_methods="GET"),
            TypeError,
            "idempotent_methods must be a collection of method names",
        ),
        # Review findings (2026-11-22): each was accepted, or failed later, or unnamed.
        (lambda: rsh.Transport(rs.Retry), TypeError, "policy must be a Pipeline or a policy"),
        (
            lambda: rsh.Transport(next_transport=httpx.MockTransport),
            TypeError,
            "next_transport must be an async transport",
        ),
        (
            lambda: rsh.Transport(next_transport=type("Half", (), {"handle_async_request": 1})()),
            TypeError,
            "with handle_async_request and aclose",
        ),
        (lambda: rsh.Transport(idempotency_keys="false"), TypeError, "idempotency_keys must be"),
        (lambda: rsh.Transport(redaction="none"), TypeError, "redaction must be a Redaction"),
        (
            lambda: rsh.Transport(classification=rsh.HttpClassification),
            TypeError,
            "classification must be a HttpClassification",
        ),
        (lambda: rsh.Transport(tracer_provider="x"), TypeError, "tracer_provider must be a"),
        (lambda: rsh.Transport(attempt_header="X Attempt"), ValueError, "attempt_header must be"),
        (lambda: rsh.Transport(attempt_header="a\r\nb"), ValueError, "attempt_header must be"),
        (
            lambda: rsh.HttpClassification(retry_statuses=503),  # type: ignore[arg-type]
            TypeError,
            "retry_statuses must be a collection of HTTP status codes",
        ),
        (
            lambda: rsh.HttpClassification(retry_statuses={"503"}),  # type: ignore[arg-type]
            TypeError,
            "retry_statuses must hold HTTP status codes",
        ),
        (
            lambda: rsh.HttpClassification(idempotent_methods=None),  # type: ignore[arg-type]
            TypeError,
            "idempotent_methods must be a collection",
        ),
        (
            lambda: rsh.HttpClassification(idempotent_methods=["GET", "PUT NOW"]),
            ValueError,
            "idempotent_methods must hold method names",
        ),
        (
            lambda: rsh.HttpClassification(idempotency_header="Idempotency Key"),
            ValueError,
            "idempotency_header must be a header name",
        ),
        (
            lambda: rsh.HttpClassification(idempotency_header="Clé"),
            ValueError,
            "idempotency_header must be a header name",
        ),
    ],
)
def test_invalid_options(build: Callable[[], object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build()


async def test_a_per_partition_bulkhead_gives_each_origin_its_own_permits() -> None:
    """One slow origin holding its permit does not block calls to another origin."""
    release = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "slow.example":
            await release.wait()
        return httpx.Response(200)

    bulkhead = rs.Bulkhead(1, per_partition=True)
    transport = rsh.Transport(rs.Pipeline(bulkhead, hooks=[]), httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as c, anyio.create_task_group() as tg:
        tg.start_soon(c.get, "https://slow.example/")
        await sleep(0.1)
        slow = ("https", "slow.example", None)
        assert bulkhead.statistics(slow).running == 1
        with pytest.raises(rs.BulkheadFullError):  # the slow origin's single permit is taken
            await c.get("https://slow.example/")
        assert (await c.get("https://fast.example/")).status_code == 200
        release.set()
    assert "per_partition" in bulkhead.describe()


async def test_a_new_origin_keeps_its_limit_when_every_kept_pool_is_busy() -> None:
    """The pool of a new origin is never the one forgotten to make room for it."""
    release = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200)

    bulkhead = rs.Bulkhead(1, per_partition=True, max_partitions=2)
    transport = rsh.Transport(rs.Pipeline(bulkhead, hooks=[]), httpx.MockTransport(handler))
    refused = 0

    async def get(url: str) -> None:
        nonlocal refused
        try:
            await c.get(url)
        except rs.BulkheadFullError:
            refused += 1

    async with httpx.AsyncClient(transport=transport) as c, anyio.create_task_group() as tg:
        for host in ["a", "b", "new", "new", "new"]:  # a and b fill the kept pools, busy
            tg.start_soon(get, f"https://{host}.example/")
            await sleep(0.1)
        assert bulkhead.statistics(("https", "new.example", None)).running == 1
        release.set()
    assert refused == 2


async def test_messages_and_logs_name_the_request_without_its_secrets(
    logs: list[dict[str, Any]],
) -> None:
    server = Server((503, {"Retry-After": "5000"}), 503, 200)
    transport = rsh.Transport(
        rs.Pipeline(rs.Retry(backoff=FAST, budget=None)), httpx.MockTransport(server)
    )
    async with httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(rsh.RetryAfterTooLongError) as info:
            await c.get("https://api.example/v1?api_key=canary-secret-9")
        await c.get("https://api.example/v1?api_key=canary-secret-9")
    assert "GET https://api.example/v1?api_key=[REDACTED]" in str(info.value)
    assert "canary-secret-9" not in str(info.value)
    assert [e["operation"] for e in logs if e["event"] == "resilient.retry_scheduled"] == [
        "GET api.example"
    ]
    assert "canary-secret-9" not in repr(logs)


async def test_a_stream_body_is_never_sent_twice_even_if_a_predicate_asks() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    server = Server(503, 200)
    policy = rs.Pipeline(
        rs.Retry(on_result=lambda r: r.status_code == 503, backoff=FAST, budget=None), hooks=[]
    )
    async with client(server, policy) as c:
        with pytest.raises(rsh.RequestNotReplayableError, match=r"PUT https://api\.example/"):
            await c.put("/", content=body())
    assert len(server.requests) == 1


async def test_rate_limit_resets_count_only_on_429() -> None:
    """GitHub-style quota headers on a 502 are information, not a request to wait."""
    reset = {"X-RateLimit-Reset": "3600"}
    server = Server((502, reset), (429, {"X-RateLimit-Reset": "2"}), 200)
    async with client(server) as c:
        assert (await c.get("/")).status_code == 200
    gaps = [b - a for a, b in zip(server.times, server.times[1:])]  # noqa: B905
    assert gaps == [pytest.approx(0.5), pytest.approx(2.0)]


async def test_a_422_to_a_minted_key_is_the_servers_own_answer() -> None:
    server = Server(422)
    async with client(server, idempotency_keys=True) as c:
        assert (await c.post("/", json={"bad": True})).status_code == 422


async def test_ndjson_and_opted_in_downloads_are_handed_over_unread() -> None:
    class Slow(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"part"
            await sleep(60)
            yield b"rest"

    kinds = {
        "/lines": "application/x-ndjson",
        "/records": "application/jsonl; charset=utf-8",  # not JSON, for all its prefix
        "/file.zip": "application/zip",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        kind = kinds[request.url.path]
        return httpx.Response(200, headers={"content-type": kind}, stream=Slow())

    server = Server(answer, answer, answer)
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/lines", {}),
        ("/records", {}),
        ("/file.zip", {"resilient.stream": True}),
    ]
    async with client(server, rs.Pipeline(rs.Timeout(5.0), hooks=[])) as c:
        for path, extensions in requests:
            async with c.stream("GET", path, extensions=extensions) as response:
                assert [chunk async for chunk in response.aiter_bytes()] == [b"part", b"rest"]


async def test_the_call_context_has_every_field_and_is_freed_without_the_collector() -> None:
    """HttpCall sets Context's fields itself (no super().__init__ on the hot path): a key
    function sees all of them; and the call, its own classifier, is freed by reference
    counting once the request is done."""
    seen: dict[str, Any] = {}

    def key(ctx: Context) -> str:
        # Every field read (a missing one raises); the classifier by identity only,
        # or keeping it here would keep the call alive.
        seen.update({name: getattr(ctx, name) for name in Context.__slots__})
        seen["classifier"] = ctx.classifier is ctx
        return "one"

    policy = rs.Pipeline(rs.Timeout(5), rs.CircuitBreaker(key=key), name="op", hooks=[])
    server = Server(200)
    gc.collect()  # calls of earlier tests caught in cycles (a traceback's frames, say)
    gc.disable()
    try:
        async with client(server, policy) as c:
            response = await c.post("/items", headers={"Idempotency-Key": "k1"})
        assert [o for o in gc.get_objects() if isinstance(o, HttpCall)] == []
    finally:
        gc.enable()
    assert response.status_code == 200
    assert seen["classifier"] is True
    assert seen["args"] == (server.requests[0],)
    assert seen["kwargs"] == {}
    assert seen["operation"] == "op"
    assert seen["attempt"] == 1
    assert seen["deadline"] is not None
    assert seen["idempotency_key"] == "k1"
    assert seen["partition"] == ("https", "api.example", None)
    assert seen["_attributes"] is None
    assert callable(seen["fn"])
    assert seen["dispatch"].hooks == ()  # the pipeline's own (empty) hook set


async def test_a_default_port_written_out_is_the_same_origin() -> None:
    """``HTTP://API.EXAMPLE:80`` and ``http://api.example`` share one circuit (httpx
    drops a default port only when the scheme is written in lower case)."""
    breaker = rs.CircuitBreaker(window=rs.CountWindow(4), min_calls=4, open_for=60)
    server = Server(503, 503, 503, 503)
    transport = rsh.Transport(rs.Pipeline(breaker, hooks=[]), httpx.MockTransport(server))
    async with httpx.AsyncClient(transport=transport) as c:
        for url in ["http://api.example/", "HTTP://API.EXAMPLE:80/"] * 2:
            assert (await c.get(url)).status_code == 503
        with pytest.raises(rs.CircuitOpenError):
            await c.get("http://api.example/")
        assert (await c.get("HTTPS://api.example:443/")).status_code == 200
    assert breaker.state(("http", "api.example", None)) is rs.CircuitState.OPEN
    assert breaker.state(("https", "api.example", None)) is rs.CircuitState.CLOSED


async def test_an_ipv6_origin_is_one_origin_however_it_is_written() -> None:
    breaker = rs.CircuitBreaker(window=rs.CountWindow(3), min_calls=3, open_for=60)
    server = Server(503, 503, 503)
    transport = rsh.Transport(rs.Pipeline(breaker, hooks=[]), httpx.MockTransport(server))
    async with httpx.AsyncClient(transport=transport) as c:
        for host in ["[::abcd:1]", "[::ABCD:1]", "[0:0:0:0:0:0:abcd:1]"]:
            assert (await c.get(f"http://{host}/")).status_code == 503
        with pytest.raises(rs.CircuitOpenError):
            await c.get("http://[::abcd:1]/")
    assert breaker.state(("http", "::abcd:1", None)) is rs.CircuitState.OPEN


async def test_an_open_origin_stays_open_while_many_new_origins_come_and_go() -> None:
    """Per-origin circuits are forgotten least recently used first, not oldest first."""
    breaker = rs.CircuitBreaker(window=rs.CountWindow(2), min_calls=2, open_for=3600, max_keys=8)

    def network(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if request.url.host == "down.example" else 200)

    transport = rsh.Transport(rs.Pipeline(breaker, hooks=[]), httpx.MockTransport(network))
    reached = 0
    async with httpx.AsyncClient(transport=transport) as c:
        for _ in range(2):
            await c.get("https://down.example/")
        for i in range(40):  # five times the circuits kept, each new
            await c.get(f"https://origin-{i}.example/")
            try:
                await c.get("https://down.example/")
                reached += 1
            except rs.CircuitOpenError:
                pass
    assert reached == 0
    assert breaker.statistics().keys == 8


async def test_a_409_listed_in_retry_statuses_is_retried_without_a_key() -> None:
    options = rsh.HttpClassification(retry_statuses=rsh.RETRY_STATUSES | {409})
    server = Server(409, 200)
    async with client(server, classification=options) as c:
        assert (await c.get("/")).status_code == 200
    assert len(server.requests) == 2


async def test_a_callers_non_ascii_key_is_read_as_httpx_reads_it() -> None:
    server = Server(200)
    async with client(server) as c:
        key = "clé-42".encode()  # UTF-8 bytes: httpx reads them as UTF-8, not Latin-1
        response = await c.post("/", json={}, headers={"Idempotency-Key": key})
    assert response.extensions["resilient"]["idempotency_key"] == "clé-42"


async def test_a_streamed_body_is_not_hedged_and_the_first_attempt_answers() -> None:
    """A hedge cannot resend a one-shot body: the call makes one attempt, which wins."""

    async def body() -> AsyncIterator[bytes]:
        yield b"part1"
        yield b"part2"

    async def slow_ok(request: httpx.Request) -> httpx.Response:
        await request.aread()
        await sleep(1.0)  # slower than the hedging delay
        return httpx.Response(200, text="stored")

    sent: list[bytes] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(await request.aread())
        return await slow_ok(request)

    for policy in (
        rs.Pipeline(rs.Hedging(delay=0.1, budget=None), hooks=[]),
        rs.Pipeline(rs.Hedging(delay=0.1, budget=None), rs.Retry(budget=None), hooks=[]),
    ):
        sent.clear()
        transport = rsh.Transport(policy, httpx.MockTransport(handler))
        async with httpx.AsyncClient(transport=transport) as c:
            response = await c.put("https://api.example/upload", content=body())
        assert response.text == "stored"
        assert sent == [b"part1part2"]


class _Tracked(httpx.AsyncByteStream):
    def __init__(self, log: list[_Tracked]) -> None:
        self.closed = False
        log.append(self)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"

    async def aclose(self) -> None:
        self.closed = True


def _event_stream(log: list[_Tracked]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(_: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=_Tracked(log))

    return answer


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(lambda refuse: rs.Retry(on_result=refuse, budget=None), id="retry"),
        pytest.param(
            lambda refuse: rs.Hedging(delay=math.inf, on_result=refuse, budget=None),
            id="failover-hedging",
        ),
        pytest.param(
            lambda refuse: rs.Pipeline(
                rs.Retry(on_result=refuse, budget=None), rs.Hedging(delay=math.inf, budget=None)
            ),
            id="retry-over-hedging",
        ),
    ],
)
async def test_a_streamed_answer_a_predicate_refused_is_closed_before_the_next_attempt(
    policy: Callable[[Callable[[Any], bool]], Any],
) -> None:
    streams: list[_Tracked] = []
    closed_when_sent: list[bool] = []

    def answer(request: httpx.Request) -> httpx.Response:
        closed_when_sent.append(all(s.closed for s in streams))
        return _event_stream(streams)(request)

    refuse_first = iter([True, False])
    pipeline = rs.Pipeline(policy(lambda _: next(refuse_first)), hooks=[])
    async with client(Server(answer, answer), pipeline) as c, c.stream("GET", "/") as r:
        assert [chunk async for chunk in r.aiter_bytes()] == [b"data: 1\n\n"]
    assert closed_when_sent == [True, True]  # the first was closed before the second went
    assert [s.closed for s in streams] == [True, True]  # the second by the caller


async def test_a_hedge_that_loses_with_a_stream_in_hand_has_it_closed() -> None:
    """Both attempts are woken in the same tick, so both hand a streamed response to
    the transport: all but the winner's are closed when the call ends."""
    streams: list[_Tracked] = []
    both = anyio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        await both.wait()
        return _event_stream(streams)(request)

    async def release() -> None:
        await sleep(0.5)  # both attempts are waiting by then (the hedge starts at 0.01)
        both.set()

    policy = rs.Pipeline(rs.Hedging(delay=0.01, budget=None), hooks=[])
    transport = rsh.Transport(policy, httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport) as c, anyio.create_task_group() as tg:
        tg.start_soon(release)
        request = c.build_request("GET", "https://api.example/events")
        response = await c.send(request, stream=True)
        still_open = [s for s in streams if not s.closed]
        await response.aclose()
    assert len(streams) == 2
    assert len(still_open) == 1  # the one handed to the caller


async def test_the_record_counts_every_request_and_wait_under_retry_and_hedging() -> None:
    server = Server(503, 503, 200)
    policy = rs.Pipeline(
        rs.Retry(backoff=rs.Backoff.constant(1.0), budget=None),
        rs.Hedging(delay=math.inf, budget=None),
        hooks=[],
    )
    async with client(server, policy) as c:
        response = await c.get("/")
    assert response.status_code == 200
    assert response.extensions["resilient"]["attempts"] == 3
    assert response.extensions["resilient"]["delays"] == [1.0]


async def test_spans_follow_the_http_client_conventions_for_errors_and_odd_methods() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    policy = rs.Pipeline(rs.Timeout(1.0), hooks=[])

    async def hang(request: httpx.Request) -> httpx.Response:
        await sleep(5)
        return httpx.Response(200)

    server = Server(503, 404, hang)
    async with client(server, policy, tracer_provider=provider) as c:
        await c.get("/")
        await c.request("PURGE", "/cache")
        with pytest.raises(rs.DeadlineExceededError):
            await c.get("/slow")
    unavailable, purge, timed_out = exporter.get_finished_spans()
    assert unavailable.status.status_code is StatusCode.ERROR
    assert purge.name == "HTTP"
    assert purge.attributes is not None
    assert purge.attributes["http.request.method"] == "_OTHER"
    assert purge.attributes["http.request.method_original"] == "PURGE"
    assert purge.status.status_code is StatusCode.ERROR  # a 4xx, for a client span
    assert timed_out.status.status_code is StatusCode.ERROR  # cancelled by the Timeout


async def test_a_tracer_provider_set_later_is_seen_within_a_tenth_of_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import trace

    from resilient.http import _transport

    clock = [1000.0]
    monkeypatch.setattr(_transport, "time", type("Clock", (), {"monotonic": lambda: clock[0]}))
    providers: list[Any] = [trace.ProxyTracerProvider()]
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: providers[0])
    async with client(Server(200, 200, 200)) as c:
        await c.get("/")
        providers[0] = TracerProvider()  # as if set globally now
        await c.get("/")
        assert not c._transport._tracing  # type: ignore[attr-defined]
        clock[0] += 0.1
        await c.get("/")
        assert c._transport._tracing  # type: ignore[attr-defined]


async def test_in_testing_mode_a_retry_after_past_the_cap_still_gives_up() -> None:
    """Testing mode skips the waits, not the refusal of a wait production would refuse."""
    server = Server((503, {"Retry-After": "1200"}), 200)
    with rs.testing.set_testing(attempts=2):
        async with client(server) as c:
            with pytest.raises(rsh.RetryAfterTooLongError) as info:
                await c.get("/")
    assert info.value.retry_after == 1200.0
    assert len(server.requests) == 1


async def test_the_default_testing_mode_still_refuses_a_retry_after_past_the_cap() -> None:
    """With one attempt (the default testing mode), the refusal is not hidden either."""
    server = Server((503, {"Retry-After": "1200"}), 200)
    with rs.testing.set_testing():
        async with client(server) as c:
            with pytest.raises(rsh.RetryAfterTooLongError):
                await c.get("/")
        async with client(Server(503, 200)) as c:  # an ordinary failure: returned, not retried
            assert (await c.get("/")).status_code == 503


async def test_an_asyncio_timeout_error_from_below_is_a_timeout() -> None:
    """Before Python 3.11 asyncio.TimeoutError is a class of its own: retried all the same."""

    def slow(request: httpx.Request) -> httpx.Response:
        raise asyncio.TimeoutError

    server = Server(slow, 200)
    breaker = rs.CircuitBreaker(window=rs.CountWindow(2), min_calls=2, failure_rate=0.9)
    async with client(
        server, rs.Pipeline(rs.Retry(backoff=FAST, budget=None), breaker, hooks=[])
    ) as c:
        assert (await c.get("/")).status_code == 200
    assert len(server.requests) == 2
    assert breaker.statistics(("https", "api.example", None)).failures == 1


async def test_a_retry_after_past_a_hedges_own_deadline_gives_up_at_once() -> None:
    """A Timeout inside Hedging narrows the hedge's deadline only: the server's wait is
    weighed against that one, and the call still ends in RetryAfterTooLongError."""
    server = Server((503, {"Retry-After": "10"}), (503, {"Retry-After": "10"}), 200)
    policy = rs.Pipeline(
        rs.Hedging(delay=math.inf, budget=None), rs.Timeout(5.0), rs.Retry(budget=None), hooks=[]
    )
    async with client(server, policy) as c:
        with pytest.raises(rsh.RetryAfterTooLongError) as info:
            await c.get("/")
    assert info.value.retry_after == 10.0
    assert len(server.requests) == 2  # one per hedge, none waited for


async def test_a_hedges_context_has_every_field_and_shares_the_calls_record() -> None:
    seen: list[dict[str, Any]] = []

    def key(ctx: Context) -> str:
        seen.append({name: getattr(ctx, name) for name in Context.__slots__})
        return "one"

    waits = iter([1.0, 0.5])  # the hedge answers first

    async def answer(request: httpx.Request) -> httpx.Response:
        await sleep(next(waits))
        return httpx.Response(200)

    policy = rs.Pipeline(rs.Hedging(delay=0, budget=None), rs.CircuitBreaker(key=key), hooks=[])
    transport = rsh.Transport(policy, httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport) as c:
        response = await c.post("https://api.example/", headers={"Idempotency-Key": "k1"})
    assert [s["attempt"] for s in sorted(seen, key=lambda s: s["attempt"])] == [1, 2]
    assert all(s["idempotency_key"] == "k1" for s in seen)
    assert all(s["partition"] == ("https", "api.example", None) for s in seen)
    assert all(s["classifier"] is not None for s in seen)
    assert response.extensions["resilient"]["attempts"] == 2  # the call's count, not a hedge's


async def test_a_refused_streamed_answer_is_closed_not_handed_over() -> None:
    """A streamed 202 that asks for an hour: the call gives up, and the response the
    error carries no longer holds its connection."""
    streams: list[_Tracked] = []

    def answer(_: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream", "retry-after": "3600"}
        return httpx.Response(202, headers=headers, stream=_Tracked(streams))

    retry = rs.Retry(on_result=lambda r: r.status_code == 202, backoff=FAST, budget=None)
    async with client(Server(answer), rs.Pipeline(retry, hooks=[])) as c:
        with pytest.raises(rsh.RetryAfterTooLongError) as info:
            await c.get("/")
    assert info.value.response.is_closed
    assert [s.closed for s in streams] == [True]


async def test_a_losing_streams_close_error_does_not_replace_the_answer() -> None:
    class Broken(_Tracked):
        async def aclose(self) -> None:
            await super().aclose()
            raise httpx.ReadError("reset while closing")

    streams: list[_Tracked] = []
    waits = iter([0.0, 0.5])  # the first answers first, is refused, and then loses

    async def answer(_: httpx.Request) -> httpx.Response:
        wait = next(waits)
        await sleep(wait)
        stream = (Broken if wait == 0 else _Tracked)(streams)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    refuse_first = iter([True, False])
    hedging = rs.Hedging(delay=0, on_result=lambda _: next(refuse_first), budget=None)
    transport = rsh.Transport(rs.Pipeline(hedging, hooks=[]), httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport) as c:
        request = c.build_request("GET", "https://api.example/")
        response = await c.send(request, stream=True)
        assert response.status_code == 200
        await response.aclose()
    assert [s.closed for s in streams] == [True, True]


async def test_a_streamed_call_is_freed_without_the_collector() -> None:
    streams: list[_Tracked] = []
    gc.collect()
    gc.disable()
    try:
        async with client(Server(_event_stream(streams)), rs.Pipeline(hooks=[])) as c:
            request = c.build_request("GET", "/")
            response = await c.send(request, stream=True)
            await response.aclose()
        assert [o for o in gc.get_objects() if isinstance(o, HttpCall)] == []
    finally:
        gc.enable()


# --- Review findings (2026-11-22): each test failed on the code before its fix. ---


def _streamed_body(status: int, body: bytes = b"body") -> Callable[[httpx.Request], httpx.Response]:
    """A response whose body is still to be read, as a network transport's is."""
    return lambda _request: httpx.Response(status, stream=httpx.ByteStream(body))


async def test_a_response_read_by_the_transport_has_its_elapsed_time() -> None:
    server = Server(_streamed_body(200))
    async with client(server) as c:
        response = await c.get("/")
    assert response.text == "body"
    assert response.elapsed >= timedelta(0)  # raised RuntimeError


async def test_a_101_is_handed_over_unread_so_the_upgraded_connection_stays_open() -> None:
    server = Server(_streamed_body(101))
    async with client(server) as c:
        request = c.build_request("GET", "/ws", headers={"Upgrade": "websocket"})
        response = await c.send(request, stream=True)
        assert response.status_code == 101
        assert not response.is_stream_consumed
        assert not response.is_closed
        await response.aclose()


async def test_a_minted_key_stays_minted_when_httpx_follows_a_redirect() -> None:
    def moved(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"Location": "https://api.example/v2"})

    server = Server(moved, 422)
    async with client(server, idempotency_keys=True) as c:
        response = await c.post("/", json={"bad": True}, follow_redirects=True)
    assert response.status_code == 422  # was IdempotencyKeyMismatchError
    keys = [h["idempotency-key"] for h in server.headers]
    assert len(set(keys)) == 1


async def test_an_empty_idempotency_key_is_no_key() -> None:
    server = Server(503, 200)
    async with client(server) as c:
        response = await c.post("/", json={}, headers={"Idempotency-Key": " "})
    assert response.status_code == 503  # a POST without a key is not retried
    assert response.extensions["resilient"]["idempotency_key"] is None
    server = Server(503, 200)
    async with client(server, idempotency_keys=True) as c:
        response = await c.post("/", json={}, headers={"Idempotency-Key": ""})
    assert response.status_code == 200
    keys = [h["idempotency-key"] for h in server.headers]
    assert keys[0] == keys[1] != ""
    assert len(keys[0]) == 32


async def test_a_fallbacks_response_carries_the_calls_record() -> None:
    async def substitute(outcome: Any, ctx: Any) -> httpx.Response:
        return httpx.Response(200, text="cached")

    server = Server(503, 503, 503)
    policy = rs.Pipeline(
        rs.Fallback(handler=substitute),
        rs.Retry(attempts=3, backoff=FAST, budget=None),
        hooks=[],
    )
    async with client(server, policy) as c:
        response = await c.get("/")
    assert response.text == "cached"
    assert response.extensions["resilient"] == {
        "attempts": 3,
        "delays": [0.5, 0.5],
        "idempotency_key": None,
    }


async def test_a_fixed_fallback_response_is_a_copy_of_its_own_for_each_call() -> None:
    # One object answers every call: the client writes each call's request into
    # what it gets, so handing the value itself over would mix callers up.
    cached = httpx.Response(
        200, content=gzip.compress(b'{"cached": true}'), headers={"Content-Encoding": "gzip"}
    )
    server = Server(httpx.ConnectError, httpx.ConnectError)
    policy = rs.Pipeline(rs.Fallback(value=cached), hooks=[])
    async with client(server, policy) as c:
        first = await c.get("/a")
        second = await c.get("/b")
    assert first is not second
    assert (first.request.url.path, second.request.url.path) == ("/a", "/b")
    assert first.json() == second.json() == {"cached": True}  # decoded once, not twice
    assert first.extensions["resilient"]["attempts"] == 1
    assert "resilient" not in cached.extensions  # the value itself is left as it was


async def test_a_fallback_responses_copy_keeps_what_its_maker_set() -> None:
    class Cached(httpx.Response):
        def __init__(self, text: str) -> None:
            super().__init__(200, content=text.encode("latin-1"), headers={"X-Cache": "hit"})
            self.encoding = "latin-1"  # no charset in the headers: set by its maker

    server = Server(httpx.ConnectError)
    async with client(server, rs.Pipeline(rs.Fallback(value=Cached("h\xe9llo")), hooks=[])) as c:
        response = await c.get("/")
    assert isinstance(response, Cached)
    assert response.text == "h\xe9llo"
    assert response.headers["x-cache"] == "hit"


async def test_a_custom_on_does_not_retry_a_one_shot_body_again_and_again() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    server = Server(httpx.ConnectError)
    retried: list[int] = []
    policy = rs.Pipeline(
        rs.Retry(attempts=6, on=Exception, backoff=FAST, budget=None),
        hooks=[_OnRetry(retried)],
    )
    async with client(server, policy) as c:
        with pytest.raises(rsh.RequestNotReplayableError):
            await c.put("/", content=body())
    assert len(server.requests) == 1
    assert retried == [1]  # one retry says why; there were 5


class _OnRetry(Hook):
    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    def on_retry(self, details: Any) -> None:
        self.seen.append(details.attempt)


async def test_a_post_without_a_key_is_hedged_only_after_a_failure_that_never_left() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await sleep(1.0)
        return httpx.Response(200)

    # The POST is slow: a hedge on the clock would send it again.
    server = Server(slow)
    policy = rs.Pipeline(rs.Hedging(delay=0.1, max_attempts=3, budget=None), hooks=[])
    async with client(server, policy) as c:
        assert (await c.post("/", json={})).status_code == 200
    assert len(server.requests) == 1  # were 3
    server = Server(httpx.ConnectError, 200)
    async with client(server, policy) as c:
        assert (await c.post("/", json={})).status_code == 200
    assert len(server.requests) == 2  # a connection refused: the POST never left


@pytest.mark.parametrize("delay", [0.1, math.inf])
async def test_a_hedge_waits_for_the_retry_after_of_a_failed_attempt(delay: float) -> None:
    server = Server((429, {"Retry-After": "30"}), 200)
    policy = rs.Pipeline(rs.Hedging(delay=delay, budget=None), hooks=[])
    async with client(server, policy) as c:
        assert (await c.get("/")).status_code == 200
    assert server.times[1] - server.times[0] == pytest.approx(30.0)  # was 0


async def test_a_hedge_gives_up_on_a_retry_after_beyond_the_cap() -> None:
    server = Server((429, {"Retry-After": "1200"}), 200)
    policy = rs.Pipeline(rs.Hedging(delay=math.inf, budget=None), hooks=[])
    async with client(server, policy) as c:
        with pytest.raises(rsh.RetryAfterTooLongError) as info:
            await c.get("/")
    assert info.value.retry_after == 1200
    assert len(server.requests) == 1


async def test_a_hedge_refused_by_a_half_open_breaker_does_not_cancel_the_probe() -> None:
    healthy = [False]

    async def origin(request: httpx.Request) -> httpx.Response:
        if not healthy[0]:
            return httpx.Response(503)
        await sleep(0.5)  # recovered, but slower than the hedge delay
        return httpx.Response(200)

    breaker = rs.CircuitBreaker(window=rs.CountWindow(2), min_calls=2, open_for=10)
    policy = rs.Pipeline(
        rs.Hedging(delay=0.1, on_result=lambda r: r.status_code >= 500, budget=None),
        breaker,
        hooks=[],
    )
    async with httpx.AsyncClient(transport=rsh.Transport(policy, httpx.MockTransport(origin))) as c:
        assert (await c.get("https://api.example/")).status_code == 503  # two attempts fail
        origin_key = ("https", "api.example", None)
        assert breaker.state(origin_key) is rs.CircuitState.OPEN
        healthy[0] = True
        await sleep(10)
        assert (await c.get("https://api.example/")).status_code == 200  # was CircuitOpenError
        assert breaker.state(origin_key) is rs.CircuitState.CLOSED


async def test_a_hedge_refused_by_a_full_bulkhead_lets_the_first_attempt_answer() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await sleep(0.5)
        return httpx.Response(200)

    policy = rs.Pipeline(
        rs.Hedging(delay=0.1, budget=None), rs.Bulkhead(1, per_partition=True), hooks=[]
    )
    async with httpx.AsyncClient(transport=rsh.Transport(policy, httpx.MockTransport(slow))) as c:
        assert (await c.get("https://api.example/")).status_code == 200  # was BulkheadFullError


async def test_a_rejection_with_nothing_else_running_still_ends_the_call() -> None:
    breaker = rs.CircuitBreaker(window=rs.CountWindow(2), min_calls=2, open_for=60)
    server = Server(503, 503, 200)
    policy = rs.Pipeline(rs.Hedging(delay=0.1, budget=None), breaker, hooks=[])
    async with client(server, policy) as c:
        assert (await c.get("/")).status_code == 503  # two attempts fail: the circuit opens
        with pytest.raises(rs.CircuitOpenError):
            await c.get("/")
    assert len(server.requests) == 2


@pytest.mark.parametrize("name", ["idempotency-key", "Authorization", "Host"])
def test_the_attempt_header_may_not_replace_a_header_the_request_needs(name: str) -> None:
    with pytest.raises(ValueError, match="attempt_header must be a header of its own"):
        rsh.Transport(attempt_header=name)


def test_collections_given_as_generators_are_read_whole() -> None:
    options = rsh.HttpClassification(
        retry_statuses=map(int, ["429", "503"]),  # type: ignore[arg-type]
        idempotent_methods=(m for m in ["get", "put"]),  # type: ignore[arg-type]
    )
    assert options.retry_statuses == {429, 503}  # was empty: all() used the iterator up
    assert options.idempotent_methods == {"GET", "PUT"}


def test_a_transport_warns_about_its_pipeline_once() -> None:
    with pytest.warns(rs.PipelineWarning) as warned:
        rsh.Transport(
            rs.Pipeline(rs.Retry(), rs.CircuitBreaker(window=rs.TimeWindow(1)), rs.Timeout(10))
        )
    assert len(warned) == 1  # was 2: the transport's own pipeline was checked again


def test_the_repr_shows_the_options_that_change_what_is_sent() -> None:
    plain = repr(rsh.Transport(rs.Retry()))
    assert plain == f"resilient.http.Transport({rs.Pipeline(rs.Retry()).describe()})"
    custom = repr(
        rsh.Transport(
            rs.Retry(),
            idempotency_keys=True,
            attempt_header="X-Attempt",
            classification=rsh.HttpClassification(retry_statuses={503}),
        )
    )
    assert "idempotency_keys=True" in custom
    assert "attempt_header='X-Attempt'" in custom
    assert "retry_statuses=frozenset({503})" in custom
