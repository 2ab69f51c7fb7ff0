"""Crashes of what the library depends on, with real processes, in real time.

- **Redis killed and restarted under a shared breaker.** The test starts a private
  ``redis-server`` on a random port (never the shared one), runs two "processes"
  (two `RedisState` objects with their own clients) calling a real HTTP server
  through ``Transport(Pipeline(CircuitBreaker(shared=...)))``, kills Redis with
  SIGKILL mid-traffic and starts it again on the same port (empty: no persistence).
  Figures: calls refused or failed while Redis was down, the time from the restart
  to the first successful sync, and the time for failures seen by one process to
  open the circuit for the other once Redis is back.
- **The downstream restarted mid-stream.** The HTTP server dies (its connections
  reset) during a steady stream of outbox deliveries and comes back on the same
  port once a retry has been refused a connection. Figures: messages lost (0),
  duplicates seen by the receiver (bounded: only messages whose 200 was lost with
  the dying connection), the time from the restart to a drained outbox.

SIGKILL of the relay itself, at points across the drain, is proven by
``tests/test_outbox_crash.py`` (SQLite) and ``tests/test_fleet_postgres.py``
(PostgreSQL); ``docs/reliability.md`` gives their figures.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest

import http_server
import resilient as rs
from http_server import Behaviour, LocalServer, SeenRequest
from resilient import http as rsh
from resilient.delivery import DeliveryOptions, Outbox
from resilient.stores import SQLiteStore
from resilient.testing import VirtualEventLoop

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

real_asyncio = http_server.real_asyncio

SYNC = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A ``redis-server`` of the test's own, on a random port, without persistence."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(  # noqa: S603 -- the installed server, our arguments
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # Its log says when it listens: read up to that line instead of polling the port.
        stdout = self.process.stdout
        assert stdout is not None
        for line in iter(stdout.readline, b""):
            if b"Ready to accept connections" in line:
                # Redis ignores SIGPIPE: closing our end only drops its later log lines.
                stdout.close()
                return
        pytest.fail("the private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary")
    pytest.importorskip("redis")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_redis_killed_and_restarted_under_a_shared_breaker(
    private_redis: PrivateRedis, logs: list[dict[str, Any]]
) -> None:
    import redis.asyncio

    from resilient.state import RedisState

    namespace = f"crash-{uuid.uuid4().hex[:8]}"
    states = [RedisState(private_redis.url, namespace=namespace, sync_interval=SYNC) for _ in "ab"]
    breakers = [
        rs.CircuitBreaker(
            name="payments",
            shared=state,
            window=rs.TimeWindow(10),
            min_calls=10,
            failure_rate=0.5,
            open_for=5.0,
        )
        for state in states
    ]
    admin = redis.asyncio.Redis.from_url(private_redis.url)
    phase = "before"
    by_phase: dict[str, Counter[str]] = defaultdict(Counter)
    calls: Counter[tuple[str, int, str]] = Counter()  # (phase, process, outcome)
    changed = [anyio.Event()]  # set (and replaced) after every call: phases wait on calls

    async with LocalServer() as server:
        clients = [
            httpx.AsyncClient(
                transport=rsh.Transport(rs.Pipeline(breaker, hooks=[])),
                base_url=server.url,
                timeout=2.0,
            )
            for breaker in breakers
        ]

        async def traffic(index: int) -> None:
            while True:
                try:
                    response = await clients[index].get("/")
                    outcome = "ok" if response.status_code < 400 else "failed"
                except rs.CircuitOpenError:
                    outcome = "rejected"
                except Exception as exc:
                    outcome = type(exc).__name__
                by_phase[phase][outcome] += 1
                calls[phase, index, outcome] += 1
                event, changed[0] = changed[0], anyio.Event()
                event.set()
                # A rejected call returns without I/O: let the other tasks run.
                await anyio.lowlevel.checkpoint()

        def made(n: int) -> bool:
            """Whether both processes made *n* calls in this phase."""
            return all(
                sum(c for (p, i, _), c in calls.items() if (p, i) == (phase, index)) >= n
                for index in (0, 1)
            )

        async def until(condition: Callable[[], bool]) -> None:
            with anyio.fail_after(10):
                while not condition():
                    await changed[0].wait()

        async def synced_since(at: float) -> float:
            """Seconds from *at* until the fleet's circuit is in the new Redis."""
            with anyio.fail_after(5):
                while True:
                    # The admin's own connection died with the server: retried.
                    with contextlib.suppress(redis.exceptions.ConnectionError):
                        if await admin.keys(f"resilient:{namespace}:*"):
                            break
                    await anyio.lowlevel.checkpoint()
            return time.monotonic() - at

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(traffic, 0)
                tg.start_soon(traffic, 1)
                await synced_since(time.monotonic())
                await until(lambda: made(20))

                phase = "redis down"
                private_redis.kill()
                # Calls go on, and each process has tried (and failed) to sync.
                await until(
                    lambda: made(40) and sum(e["event"] == "state.sync_failed" for e in logs) >= 2
                )

                phase = "restarted"
                private_redis.start()
                restarted = time.monotonic()
                recovery = await synced_since(restarted)
                await until(lambda: made(20))

                # The shared breaker works again: process 0's failures open the
                # circuit for process 1 too.
                phase = "downstream failing"
                server.default = Behaviour(500)
                failing = time.monotonic()
                await until(lambda: calls[phase, 1, "rejected"] > 0)
                opened = time.monotonic() - failing
                tg.cancel_scope.cancel()
        finally:
            for client in clients:
                await client.aclose()
            for state in states:
                await state.aclose()
            await admin.aclose()

    fleet = await _hashes(private_redis.url, namespace)
    down = by_phase["redis down"]
    print(  # noqa: T201 -- the figures, shown with -s
        f"\nredis crash: before {dict(by_phase['before'])}; while down {dict(down)}; "
        f"after restart {dict(by_phase['restarted'])}; first sync {recovery * 1000:.0f} ms "
        f"after the restart; circuit open for the other process "
        f"{opened * 1000:.0f} ms after the downstream began failing"
    )
    # Before the crash every call went through.
    assert set(by_phase["before"]) == {"ok"}
    # While Redis was down, traffic did not stop, the local views kept admitting
    # calls, and the failed syncs were logged.
    assert down["ok"] > 0
    assert any(event["event"] == "state.sync_failed" for event in logs)
    # After the restart, the state is back in Redis within a few sync intervals.
    assert recovery < 1.0
    # And the fleet's circuit works: opened for both processes, in Redis.
    assert b"open" in {fields.get(b"state") for fields in fleet.values()}, fleet
    assert opened < 2.0


async def _hashes(url: str, namespace: str) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash of *namespace* in Redis: key -> fields."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        found = {}
        for key in await client.keys(f"resilient:{namespace}:*"):
            if await client.type(key) == b"hash":
                found[key] = await client.hgetall(key)
        return found
    finally:
        await client.aclose()


async def test_downstream_restarted_mid_stream_loses_no_message(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    """The receiver dies (connections reset) mid-drain and comes back once the relay has
    been refused a connection."""
    messages = 600
    seen: list[tuple[str | None, float]] = []  # (key, when)
    delivered: set[str | None] = set()
    a_third = anyio.Event()  # the receiver has a third of the messages: time to kill it

    def receive(request: SeenRequest) -> Behaviour:
        key = request.header("idempotency-key")
        seen.append((key, time.monotonic()))
        delivered.add(key)
        if len(delivered) >= messages // 3:
            a_third.set()
        return Behaviour(200, delay=0.002)

    refused = anyio.Event()  # the relay tried to connect while the receiver was down

    class Watching(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                return await super().handle_async_request(request)
            except httpx.ConnectError:
                refused.set()
                raise

    store = SQLiteStore(tmp_path / "outbox.db")
    options = DeliveryOptions(
        backoff=rs.Backoff.constant(0.05), poll_interval=0.05, lease=5.0, grace=1.0
    )
    server = LocalServer(default=receive)
    await server.start()
    port = server.port
    url = f"{server.url}/orders"
    async with httpx.AsyncClient(timeout=2.0, transport=Watching()) as client:
        outbox = Outbox(store, client=client, options=options)
        for i in range(messages):
            request = httpx.Request(
                "POST", url, json={"order": i}, headers={"Idempotency-Key": f"order-{i:04d}"}
            )
            await outbox.send(request)
        try:
            async with outbox.relay(workers=4) as relay:
                with anyio.fail_after(20):
                    await a_third.wait()
                # The downstream dies mid-stream: every connection it holds is closed.
                await server.aclose()
                died = time.monotonic()
                delivered_at_death = len(delivered)
                # Down until a retry has found nothing listening: the outage is
                # seen by the relay, not just by the requests it cut.
                with anyio.fail_after(10):
                    await refused.wait()
                server = LocalServer(default=receive)
                await _restart(server, port)
                restarted = time.monotonic()
                assert await relay.drain(timeout=20)
                drained = time.monotonic()
            statistics = relay.statistics
        finally:
            await server.aclose()
    stats = await store.stats(now=time.time())
    await store.close()

    sent = {f"order-{i:04d}" for i in range(messages)}
    counts = Counter(key for key, _ in seen)
    duplicates = sum(n - 1 for n in counts.values())
    # Nothing lost: every message reached the receiver, and the outbox is empty.
    assert delivered == sent
    assert stats.pending == 0
    assert stats.dead_letters == 0
    assert stats.delivered == messages
    # The outage made attempts fail and be rescheduled, not lost.
    assert statistics.rescheduled > 0
    # Duplicates: only a message whose response died with the server comes again;
    # at most one per worker in flight at the moment of death.
    assert duplicates <= 4
    print(  # noqa: T201 -- the figures, shown with -s
        f"\ndownstream restart: {messages} messages, died after {delivered_at_death}, down "
        f"{restarted - died:.2f} s; {statistics.rescheduled} attempts rescheduled; lost 0; "
        f"duplicates {duplicates}; drained {drained - restarted:.2f} s after the restart"
    )


async def _restart(server: LocalServer, port: int) -> None:
    """Start *server* on *port* again (the port the relay's messages name)."""
    import asyncio

    server._closing = asyncio.Event()
    # The old listener is closed, and asyncio sets SO_REUSEADDR: the port binds at once.
    server._server = await asyncio.start_server(server._serve, "127.0.0.1", port)
    server._port = port


# Virtual time: the idle wait is the clock's, not the test's (Redis is still real).
@pytest.mark.parametrize(
    "anyio_backend", [("asyncio", {"loop_factory": VirtualEventLoop})], ids=["virtual"]
)
async def test_an_idle_process_with_redis_down_goes_on_from_the_state_it_last_heard(
    private_redis: PrivateRedis, logs: list[dict[str, Any]]
) -> None:
    # A Redis outage must not become an outage of every call: last heard closed, the
    # call goes through (and the outage is logged), rather than raising Redis's error.
    from resilient.state import RedisState

    state = RedisState(private_redis.url, namespace="idle", sync_interval=SYNC)
    breaker = rs.CircuitBreaker(name="payments", shared=state, window=rs.TimeWindow(10))
    try:
        transport = rsh.Transport(
            rs.Pipeline(breaker, hooks=[]), httpx.MockTransport(lambda _: httpx.Response(200))
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            assert (await client.get("/")).status_code == 200
            private_redis.kill()
            await anyio.sleep(4 * SYNC)  # idle (virtual): the local view is no longer trusted
            assert (await client.get("/")).status_code == 200
    finally:
        await state.aclose()
    assert [e["event"] for e in logs if e["event"] == "state.unreachable"] == ["state.unreachable"]
