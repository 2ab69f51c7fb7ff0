"""The HTTP transport behind a TCP fault proxy (``tests/fault_proxy.py``), in real time.

A real ``httpx.AsyncClient`` with ``resilient.http.Transport`` calls a real HTTP
server (``tests/http_server.py``) through a proxy whose fault the test switches at
runtime: latency, connection reset, a cut after N bytes, a blackhole, a trickle.
The promise under a blackhole and a trickle: every call with a 2 s total deadline
ends by 2.1 s with `DeadlineExceededError`, and afterwards the proxy holds no
connection and no task of the test is left running.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import httpx
import pytest

import http_server
import resilient as rs
from fault_proxy import Fault, FaultProxy
from http_server import Behaviour, LocalServer
from resilient import http as rsh
from resilient.instrumentation import Hook, RetryDetails

pytestmark = pytest.mark.anyio

real_asyncio = http_server.real_asyncio
local_server_fixture = http_server.local_server_fixture

QUICK = rs.Backoff.constant(0.02)
DEADLINE = 2.0
SLACK = 0.1  # every call ends by DEADLINE + SLACK
CALLS = 20


def pipeline(*policies: rs.Policy) -> rs.Pipeline:
    return rs.Pipeline(*policies, hooks=[])


@pytest.fixture
async def proxy(local_server: LocalServer):
    async with FaultProxy(local_server.port) as running:
        yield running


def other_tasks(baseline: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """Tasks alive now that were not alive at *baseline*, the current one aside."""
    return {
        task
        for task in asyncio.all_tasks()
        if task not in baseline and task is not asyncio.current_task() and not task.done()
    }


async def finished(tasks: set[asyncio.Task[object]], *, within: float = 1.0) -> bool:
    """Wait (on the tasks themselves, not a timer) until *tasks* have all ended."""
    if not tasks:
        return True
    _, pending = await asyncio.wait(tasks, timeout=within)
    return not pending


class LiftOnRetry(Hook):
    """Lifts the proxy's fault as soon as a retry is scheduled: during its backoff."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy

    def on_retry(self, details: RetryDetails) -> None:
        del details
        self.proxy.fault = Fault.none()


async def test_the_proxy_forwards_and_adds_latency(
    local_server: LocalServer, proxy: FaultProxy
) -> None:
    transport = rsh.Transport(pipeline(rs.Timeout(5)))
    async with httpx.AsyncClient(transport=transport, base_url=proxy.url) as client:
        started = time.monotonic()
        assert (await client.get("/")).text == "ok"
        bare = time.monotonic() - started
        proxy.fault = Fault.latency(0.1)  # switched at runtime, on the open connection
        started = time.monotonic()
        assert (await client.get("/")).text == "ok"
        slowed = time.monotonic() - started
    # The request and the response each waited 0.1 s in the proxy.
    assert bare < 0.1
    assert 0.2 <= slowed < 0.5
    assert proxy.connections_opened == 1  # the pool kept its connection through the switch


async def test_a_reset_is_retried_and_a_switch_back_lets_the_retry_through(
    local_server: LocalServer, proxy: FaultProxy
) -> None:
    proxy.fault = Fault.reset()
    transport = rsh.Transport(pipeline(rs.Retry(attempts=3, backoff=QUICK, budget=None)))
    async with httpx.AsyncClient(transport=transport, base_url=proxy.url) as client:
        # Reset every time: three attempts, then the transport's own error, unwrapped.
        with pytest.raises(httpx.TransportError):
            await client.get("/")
    assert proxy.connections_opened == 3
    assert local_server.requests == []

    # Reset, then the fault is lifted during the backoff: the retry gets through.
    slow = rs.Retry(attempts=3, backoff=rs.Backoff.constant(0.3), budget=None)
    transport = rsh.Transport(rs.Pipeline(slow, hooks=[LiftOnRetry(proxy)]))
    async with httpx.AsyncClient(transport=transport, base_url=proxy.url) as client:
        response = await client.get("/again")
    assert response.text == "ok"
    assert response.extensions["resilient"]["attempts"] == 2
    assert [r.path for r in local_server.requests] == ["/again"]


async def test_a_response_cut_after_n_bytes_is_a_transport_error_and_is_retried(
    local_server: LocalServer, proxy: FaultProxy
) -> None:
    local_server.default = Behaviour(200, body=b"x" * 5000)
    proxy.fault = Fault.cut(300)  # the head and the start of the body
    retry = rs.Retry(attempts=2, backoff=QUICK, budget=None)
    transport = rsh.Transport(pipeline(rs.Timeout(5), retry))
    async with httpx.AsyncClient(transport=transport, base_url=proxy.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")
        assert len(local_server.requests) == 2  # both attempts reached the server
        assert proxy.bytes_down == 600  # 300 bytes each, then cut
        proxy.fault = Fault.none()
        response = await client.get("/")
    assert response.content == b"x" * 5000


@pytest.mark.parametrize(
    "fault",
    [Fault.blackhole(), Fault.trickle(0.3)],
    ids=["blackhole", "trickle"],
)
async def test_every_call_ends_by_its_deadline_and_leaves_nothing_open(
    local_server: LocalServer, proxy: FaultProxy, fault: Fault
) -> None:
    """20 concurrent calls, 2 s total (0.5 s per attempt, retried): each ends by 2.1 s."""
    baseline = set(asyncio.all_tasks())
    local_server.default = Behaviour(200, body=b"y" * 100)
    proxy.fault = fault
    transport = rsh.Transport(
        pipeline(rs.Timeout(DEADLINE), rs.Retry(backoff=QUICK, budget=None), rs.Timeout(0.5))
    )
    elapsed: list[float] = []
    errors: list[BaseException] = []
    async with httpx.AsyncClient(transport=transport, base_url=proxy.url) as client:

        async def call() -> None:
            started = time.monotonic()
            try:
                await client.get("/")
            except Exception as exc:
                errors.append(exc)
            elapsed.append(time.monotonic() - started)

        async with anyio.create_task_group() as tg:
            for _ in range(CALLS):
                tg.start_soon(call)

        # With the client still open: no connection is left at the proxy.
        assert await finished(set(proxy.tasks)), proxy.connections_open
        assert proxy.connections_open == 0
        leftover = other_tasks(baseline) - proxy.tasks - set(local_server._handlers)
        assert leftover == set()

    assert len(errors) == CALLS
    assert all(isinstance(e, rs.DeadlineExceededError) and e.timeout == DEADLINE for e in errors)
    assert min(elapsed) >= DEADLINE
    assert max(elapsed) <= DEADLINE + SLACK, max(elapsed)
    assert proxy.connections_opened >= CALLS  # a connection per call (and more, retried)
    # After the client closed too: no task of the test, the proxy's or the server's left.
    assert await finished(other_tasks(baseline) - set(local_server._handlers))
    assert other_tasks(baseline) - set(local_server._handlers) == set()
    print(  # noqa: T201 -- the figures, shown with -s
        f"\n{fault.kind}: {CALLS} calls, {proxy.connections_opened} connections, "
        f"ended after {min(elapsed):.3f}-{max(elapsed):.3f} s (deadline {DEADLINE} s)"
    )
