"""The local HTTP/1.1 test server, over a real httpx.AsyncClient on the real asyncio loop."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import http_server
from http_server import Behaviour, LocalServer
from resilient._clock import now, sleep
from resilient.testing import VirtualEventLoop, run

pytestmark = pytest.mark.anyio

# Real sockets and real time: every async test of this module runs on the plain
# asyncio loop (this fixture is named ``anyio_backend`` and overrides conftest's).
real_asyncio = http_server.real_asyncio
local_server_fixture = http_server.local_server_fixture


async def test_runs_on_a_real_loop(local_server: LocalServer) -> None:
    assert not isinstance(asyncio.get_running_loop(), VirtualEventLoop)
    assert local_server.url == f"http://127.0.0.1:{local_server.port}"
    assert local_server.port > 0


async def test_answers_scripted_statuses_and_headers(local_server: LocalServer) -> None:
    local_server.script = [
        Behaviour(503, retry_after=2),
        Behaviour(429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
        Behaviour(200, body=b"hello", headers={"X-Test": "yes"}),
        404,
    ]
    async with httpx.AsyncClient(base_url=local_server.url) as client:
        first = await client.get("/a")
        second = await client.get("/b")
        third = await client.get("/c")
        fourth = await client.get("/d")
        after = await client.get("/e")
    assert (first.status_code, first.headers["retry-after"]) == (503, "2")
    assert second.status_code == 429
    assert second.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert (third.status_code, third.content, third.headers["x-test"]) == (200, b"hello", "yes")
    assert "retry-after" not in third.headers
    assert fourth.status_code == 404
    assert fourth.reason_phrase == "Not Found"
    assert (after.status_code, after.content) == (200, b"ok")  # the default, once the script ends
    assert local_server.script == []


async def test_default_may_be_a_callable(local_server: LocalServer) -> None:
    local_server.default = lambda request: Behaviour(200, body=request.path.encode())
    async with httpx.AsyncClient(base_url=local_server.url) as client:
        assert (await client.get("/echo?x=1")).content == b"/echo?x=1"


async def test_records_every_request(local_server: LocalServer) -> None:
    async def chunks():
        yield b"chunk-"
        yield b"ed"

    async with httpx.AsyncClient(base_url=local_server.url) as client:
        await client.post("/items?page=2", content=b"payload", headers={"X-Id": "7"})
        await client.put("/stream", content=chunks())  # no length: sent chunked
        await client.head("/")
    post, put, head = local_server.requests
    assert (post.method, post.path, post.body) == ("POST", "/items?page=2", b"payload")
    assert post.header("x-id") == post.header("X-ID") == "7"
    assert post.header("content-length") == "7"
    assert post.header("missing") is None
    assert (put.method, put.header("transfer-encoding"), put.body) == (
        "PUT",
        "chunked",
        b"chunk-ed",
    )
    assert (head.method, head.body) == ("HEAD", b"")


async def test_keep_alive_reuses_one_connection(local_server: LocalServer) -> None:
    async with httpx.AsyncClient(base_url=local_server.url) as client:
        for i in range(5):
            response = await client.get(f"/{i}")
            assert response.status_code == 200
        assert local_server.connections_open == 1
    assert local_server.connections_opened == 1
    assert {request.connection for request in local_server.requests} == {0}


async def test_close_ends_the_connection_after_the_response(local_server: LocalServer) -> None:
    local_server.script = [Behaviour(200, close=True), Behaviour(200, close=True)]
    async with httpx.AsyncClient(base_url=local_server.url) as client:
        for _ in range(3):
            assert (await client.get("/")).status_code == 200
    assert local_server.connections_opened == 3
    assert [request.connection for request in local_server.requests] == [0, 1, 2]


async def test_reset_makes_httpx_raise_read_error(local_server: LocalServer) -> None:
    """A reset after the request was sent surfaces as httpx.ReadError (ECONNRESET)."""
    local_server.script = [Behaviour(reset=True)]
    async with httpx.AsyncClient(base_url=local_server.url) as client:
        with pytest.raises(httpx.ReadError):
            await client.get("/")
        # The client recovers on a fresh connection.
        assert (await client.get("/")).status_code == 200
    assert local_server.connections_opened == 2
    assert len(local_server.requests) == 2


async def test_slow_body_trickles_one_byte_per_interval(local_server: LocalServer) -> None:
    interval, body = 0.05, b"abcd"
    local_server.script = [Behaviour(200, body=body, slow_body=interval)]
    async with httpx.AsyncClient(base_url=local_server.url) as client:
        start = now()
        async with client.stream("GET", "/") as response:
            head_at = now() - start
            received = [chunk async for chunk in response.aiter_raw()]
        took = now() - start
    assert b"".join(received) == body
    assert took >= len(body) * interval  # one byte per interval...
    assert took - head_at >= (len(body) - 1) * interval  # ...after the head
    assert took < 1.0


async def test_hang_never_answers(local_server: LocalServer) -> None:
    local_server.script = [Behaviour(hang=True)]
    async with httpx.AsyncClient(base_url=local_server.url, timeout=0.1) as client:
        start = now()
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/")
        assert 0.1 <= now() - start < 1.0
    assert len(local_server.requests) == 1


async def test_delay_waits_before_answering(local_server: LocalServer) -> None:
    local_server.script = [Behaviour(204, delay=0.05)]
    async with httpx.AsyncClient(base_url=local_server.url) as client:
        start = now()
        assert (await client.get("/")).status_code == 204
        assert now() - start >= 0.05


async def test_shutdown_closes_every_connection() -> None:
    """Idle keep-alive and hanging connections alike are closed, and nothing listens after."""
    server = LocalServer(script=[200, Behaviour(hang=True)])
    async with (
        server,
        httpx.AsyncClient(base_url=server.url, timeout=5) as idle,
        httpx.AsyncClient(base_url=server.url, timeout=5) as waiting,
    ):
        assert (await idle.get("/")).status_code == 200  # its connection stays open, idle
        hanging = asyncio.ensure_future(waiting.get("/"))
        while len(server.requests) < 2:
            await sleep(0.001)
        assert server.connections_open == 2
        start = now()
        await server.aclose()
        assert server.connections_open == 0
        with pytest.raises(httpx.RemoteProtocolError):
            await hanging  # the server closed it without answering
        assert now() - start < 1.0
        with pytest.raises(httpx.ConnectError):
            await idle.get("/")
    await server.aclose()  # a second close is harmless
    assert server.connections_opened == 2


def test_refuses_to_start_in_virtual_time() -> None:
    async def main() -> None:
        async with LocalServer():
            pass  # pragma: no cover

    with pytest.raises(RuntimeError, match="needs a real event loop"):
        run(main)
    with pytest.raises(RuntimeError, match="needs the asyncio backend"):
        run(main, backend="trio")
