"""A fleet of relay processes over one PostgreSQL outbox: SKIP LOCKED claims, leases, SIGKILL.

Each relay runs in a process of its own (``tests/fleet_relay_process.py``) over a
`PostgresStore` in a fresh schema; the receiver is a real HTTP server on 127.0.0.1
(``tests/http_server.py``) in this test's event loop, which records every request:
its idempotency key, when it arrived (``time.time()``, the clock the relays write
their leases with) and which relay process sent it (``X-Relay: <pid>``). Real
processes need real time, so these tests run on the plain asyncio loop and poll
instead of sleeping. They skip when PostgreSQL is down, and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import psycopg
import pytest

import http_server
from backends import POSTGRES_URL, drop_schema, postgres_url
from http_server import LocalServer, SeenRequest
from resilient.delivery import Outbox
from resilient.stores import PostgresStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.anyio

# Real processes and a real server: the plain asyncio loop (psycopg needs asyncio), in real time.
real_asyncio = http_server.real_asyncio

RELAY_SCRIPT = Path(__file__).with_name("fleet_relay_process.py")
KEY_HEADER = "idempotency-key"
RELAY_HEADER = "x-relay"
READY_PATH = "/relay-ready"


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    """A fresh schema, dropped after the test."""
    postgres_url()  # skip (or fail under CI) when the server is down
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    yield name
    await drop_schema(name)


def fails_first_attempt(key: str) -> bool:
    """Whether the crash test's receiver answers 503 to the first request with *key* (1 in 10)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 10 == 0


@dataclass(frozen=True)
class Arrival:
    """One request as the receiver saw it."""

    key: str | None
    body: bytes
    status: int
    at: float  # time.time() when the request was read
    relay: int  # the pid of the relay process that sent it


@dataclass
class Receiver:
    """Answers 200 (or 503 to the first attempt of keys picked to fail) and records everything."""

    fail_first: bool = False
    seen: list[Arrival] = field(default_factory=list)
    keys_seen: set[str | None] = field(default_factory=set)
    delivered: set[str | None] = field(default_factory=set)
    per_relay: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    ready: set[int] = field(default_factory=set)
    # Set on every request: the test waits on it instead of polling in real time.
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, request: SeenRequest) -> http_server.Behaviour:
        self.arrived.set()
        if request.path == READY_PATH:
            self.ready.add(int(request.header(RELAY_HEADER) or 0))
            return http_server.Behaviour(204)
        at = time.time()
        key = request.header(KEY_HEADER)
        first = key not in self.keys_seen
        self.keys_seen.add(key)
        failing = self.fail_first and first and key is not None and fails_first_attempt(key)
        status = 503 if failing else 200
        relay = int(request.header(RELAY_HEADER) or 0)
        self.seen.append(Arrival(key, request.body, status, at, relay))
        if status == 200:
            self.delivered.add(key)
            self.per_relay[relay] += 1
        return http_server.Behaviour(status)


@dataclass
class RelayProcess:
    """One relay process, its output going to a log file."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls,
        schema: str,
        log: Path,
        *,
        lease: float,
        batch: int,
        poll: float,
        announce: str | None = None,
    ) -> RelayProcess:
        command = [sys.executable, str(RELAY_SCRIPT), POSTGRES_URL, "--schema", schema]
        command += ["--lease", str(lease), "--batch", str(batch), "--poll", str(poll)]
        if announce is not None:
            command += ["--announce", announce]
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 -- our own script, with our own interpreter
                command, stdout=out, stderr=subprocess.STDOUT
            )
        return cls(process, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self, signum: int) -> int:
        """Send *signum* and wait for the exit status (in a thread: the receiver runs here)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return await anyio.to_thread.run_sync(lambda: self.process.wait(timeout=15))

    def kill(self) -> None:
        """Clean-up: SIGKILL the process if it still runs, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=15)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


async def wait_for(
    condition: Callable[[], bool],
    receiver: Receiver,
    relays: list[RelayProcess],
    *,
    within: float,
    what: str,
) -> None:
    """Wait until *condition* holds, checking it whenever a request arrives.

    Fails if a relay exits first or *within* seconds pass.
    """
    with anyio.move_on_after(within):
        while not condition():
            for relay in relays:
                if relay.process.poll() is not None:
                    status = relay.process.returncode
                    pytest.fail(f"a relay exited ({status}) before {what}:\n{relay.output()}")
            await next_arrival(receiver)
        return
    logs = "\n".join(relay.output() for relay in relays)
    pytest.fail(f"not {what} within {within} s; relay output:\n{logs}")


async def next_arrival(receiver: Receiver) -> None:
    """Wait for the receiver's next request (bounded: a relay may die without sending one)."""
    receiver.arrived.clear()
    with anyio.move_on_after(1.0):
        await receiver.arrived.wait()


async def wait_drained(
    store: PostgresStore, receiver: Receiver, relays: list[RelayProcess], *, within: float
) -> None:
    """Check the store at each delivery until nothing is pending; fail if a relay exits."""
    deadline = time.perf_counter() + within
    while (await store.stats(now=time.time())).pending:
        if time.perf_counter() > deadline:
            logs = "\n".join(relay.output() for relay in relays)
            pytest.fail(f"the outbox did not drain in {within} s:\n{logs}")
        for relay in relays:
            if relay.process.poll() is not None:
                pytest.fail(f"a relay exited:\n{relay.output()}")
        await next_arrival(receiver)


def order(url: str, i: int) -> httpx.Request:
    """Message *i*: a POST with its own JSON body and our own idempotency key."""
    body = {"order": i, "sku": f"sku-{i * 7919 % 1000:03d}", "quantity": i % 7 + 1}
    return httpx.Request("POST", url, json=body, headers={"Idempotency-Key": f"order-{i:05d}"})


async def enqueue(store: PostgresStore, url: str, count: int) -> dict[str, bytes]:
    """Send *count* messages in one transaction of our own (`Outbox.send(connection=)`).

    One commit makes them all due at once, and its NOTIFY wakes the relays. Returns
    key -> body.
    """
    await store.open()  # the transactional enqueue needs the schema
    outbox = Outbox(store)
    sent: dict[str, bytes] = {}
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as conn, conn.transaction():
        for i in range(count):
            request = order(url, i)
            await outbox.send(request, connection=conn)
            sent[request.headers["Idempotency-Key"]] = request.content
    return sent


async def leases_of(store: PostgresStore, pid: int) -> dict[str, float]:
    """The messages still leased to the relay process *pid*: idempotency key -> lease end."""
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as conn:
        cursor = await conn.execute(
            f'SELECT idempotency_key, lease_until FROM "{store.schema}".resilient_outbox '
            "WHERE lease_owner LIKE %s AND lease_token IS NOT NULL",
            (f"%:{pid}:%",),
        )
        return {key: float(until) for key, until in await cursor.fetchall()}


@pytest.mark.scenario
async def test_three_relays_drain_10000_messages_and_redeliver_a_killed_relays_leases(
    schema: str, tmp_path: Path
) -> None:
    messages, lease, poll, batch = 10_000, 3.0, 0.2, 16
    # The receiver stamps arrivals after the relay stamped its claim; the slack covers
    # claiming and delivering a killed relay's leased messages once they come due.
    tolerance, slack = 0.05, 1.0
    receiver = Receiver()
    store = PostgresStore(POSTGRES_URL, schema=schema)
    await store.open()  # the schema exists before three relays race to migrate it
    relays: list[RelayProcess] = []
    try:
        async with LocalServer(default=receiver) as server:
            for n in range(3):
                log = tmp_path / f"relay-{n}.log"
                relays.append(
                    RelayProcess.start(
                        schema,
                        log,
                        lease=lease,
                        batch=batch,
                        poll=poll,
                        announce=f"{server.url}{READY_PATH}",
                    )
                )
            await wait_for(
                lambda: receiver.ready >= {relay.pid for relay in relays},
                receiver,
                relays,
                within=30,
                what="three relays ready",
            )
            started = time.perf_counter()
            sent = await enqueue(store, f"{server.url}/orders", messages)
            committed = time.perf_counter()
            victim, survivors = relays[0], relays[1:]
            await wait_for(
                lambda: (
                    len(receiver.delivered) >= messages * 3 // 10
                    and receiver.per_relay[victim.pid] > 0
                ),
                receiver,
                relays,
                within=30,
                what="30 % of the messages delivered",
            )
            status = await victim.stop(signal.SIGKILL)
            killed_at = time.time()
            delivered_at_kill = len(receiver.delivered)
            leased = await leases_of(store, victim.pid)
            await wait_drained(store, receiver, survivors, within=40)
            drained = time.perf_counter()
            # The survivors stop cleanly: every delivery recorded, nothing given back.
            exits = [await relay.stop(signal.SIGTERM) for relay in survivors]
            assert exits == [0, 0], "\n".join(relay.output() for relay in survivors)
        stats = await store.stats(now=time.time())
    finally:
        for relay in relays:
            relay.kill()
        await store.close()

    # The kill was a SIGKILL mid-drain, of a relay that held leases.
    assert status == -signal.SIGKILL
    assert delivered_at_kill < messages
    assert leased, "the killed relay held no lease: the kill proved nothing"
    assert all(until > killed_at - tolerance for until in leased.values())

    arrivals: dict[str | None, list[Arrival]] = defaultdict(list)
    for arrival in receiver.seen:
        arrivals[arrival.key].append(arrival)
    # Every message arrived (answered 200), with the body it was sent with; nothing else came.
    assert set(arrivals) == set(sent)
    assert all(arrival.status == 200 for arrival in receiver.seen)
    assert all(
        arrival.body == sent.get(key or "") for key, got in arrivals.items() for arrival in got
    )
    # All three relays delivered a share, the victim before it died, the others after.
    assert set(receiver.per_relay) == {relay.pid for relay in relays}
    assert all(arrival.at < killed_at for arrival in receiver.seen if arrival.relay == victim.pid)

    # No message was delivered twice while its lease held: a second delivery of a key
    # came either after the first one's relay was killed, or a whole lease later.
    duplicated = {key: got for key, got in arrivals.items() if len(got) > 1}
    for key, got in duplicated.items():
        for first, second in itertools.pairwise(got):
            assert first.relay == victim.pid or second.at - first.at >= lease - tolerance, (
                key,
                got,
            )
    # Only messages the killed relay had leased were delivered twice, each at most
    # once by it and once by a survivor.
    assert set(duplicated) <= set(leased)
    for key in duplicated:
        assert [a.relay == victim.pid for a in arrivals[key]] == [True, False], arrivals[key]

    # Each of the killed relay's leased messages was redelivered by a survivor, not
    # before its lease ran out, and within one poll (+ slack for the machine) of that:
    # a message whose lease ran out keeps its place at the front of the queue, so
    # "within lease + one poll of the kill" holds whatever backlog the survivors have.
    delays = []
    for key, until in leased.items():
        again = [a for a in arrivals[key] if a.relay != victim.pid]
        assert len(again) == 1, (key, arrivals[key])
        assert again[0].at >= until - tolerance, (key, until, again[0])
        assert again[0].at <= until + poll + slack, (key, until, again[0])
        assert until <= killed_at + lease
        delays.append(again[0].at - killed_at)

    # Nothing lost, nothing dead, each message removed once.
    assert stats.pending == 0
    assert stats.dead_letters == 0
    assert stats.delivered == messages

    print(  # noqa: T201 -- the figures, shown with -s
        f"\nfleet: {messages} messages, 3 relays x 4 workers (lease {lease} s, poll {poll} s, "
        f"batch {batch}); enqueue {committed - started:.1f} s; SIGKILL of pid {victim.pid} at "
        f"{delivered_at_kill} delivered, holding {len(leased)} leases; redelivered "
        f"{min(delays):.2f}-{max(delays):.2f} s after the kill (bound lease + poll = "
        f"{lease + poll:.1f} s, + {slack} s slack asserted); {len(receiver.seen)} requests, "
        f"{len(receiver.seen) - messages} duplicates on {len(duplicated)} keys; per relay "
        f"{dict(receiver.per_relay)}; drain {drained - committed:.1f} s"
    )


@pytest.mark.parametrize(
    ("messages", "kills"),
    [
        pytest.param(400, 1, id="400-messages-1-kill"),
        pytest.param(2000, 3, id="2000-messages-3-kills", marks=pytest.mark.scenario),
    ],
)
async def test_crash_test_against_postgres_relay_killed_mid_drain(
    schema: str, tmp_path: Path, messages: int, kills: int
) -> None:
    started = time.perf_counter()
    log = tmp_path / "relay.log"
    receiver = Receiver(fail_first=True)
    store = PostgresStore(POSTGRES_URL, schema=schema)
    killed: list[tuple[int, int, int]] = []  # (keys delivered, exit status, pending) at each kill
    relay: RelayProcess | None = None
    try:
        async with LocalServer(default=receiver) as server:
            sent = await enqueue(store, f"{server.url}/orders", messages)
            enqueued = time.perf_counter()
            for nth in range(1, kills + 1):
                relay = RelayProcess.start(schema, log, lease=2.0, batch=32, poll=0.05)
                threshold = messages * nth // (kills + 1)

                def reached(threshold: int = threshold) -> bool:
                    return len(receiver.delivered) >= threshold

                await wait_for(
                    reached,
                    receiver,
                    [relay],
                    within=30,
                    what=f"{threshold} messages delivered",
                )
                status = await relay.stop(signal.SIGKILL)
                killed.append((len(receiver.delivered), status, await pending(store)))
            relay = RelayProcess.start(schema, log, lease=2.0, batch=32, poll=0.05)
            await wait_drained(store, receiver, [relay], within=60)
            drained = time.perf_counter()
            assert await relay.stop(signal.SIGTERM) == 0, relay.output()
        stats = await store.stats(now=time.time())
    finally:
        if relay is not None:
            relay.kill()
        await store.close()

    # Every kill was a SIGKILL that landed mid-drain.
    assert [status for _, status, _ in killed] == [-signal.SIGKILL] * kills
    assert all(delivered < messages and left > 0 for delivered, _, left in killed), killed

    bodies: dict[str | None, set[bytes]] = defaultdict(set)
    answered_200: dict[str | None, int] = defaultdict(int)
    for arrival in receiver.seen:
        bodies[arrival.key].add(arrival.body)
        answered_200[arrival.key] += arrival.status == 200
    # Every message arrived, with a 200, and nothing else arrived.
    assert set(answered_200) == set(sent)
    assert all(answered_200[key] >= 1 for key in sent)
    # Each key carried one body: the one it was sent with.
    assert {key: bodies[key] for key in sent} == {key: {body} for key, body in sent.items()}
    # Each key picked to fail its first attempt did, and was redelivered.
    failed_first = {arrival.key for arrival in receiver.seen if arrival.status == 503}
    assert failed_first == {key for key in sent if fails_first_attempt(key)}
    assert messages / 20 < len(failed_first) < messages * 3 / 20
    # Nothing pending, nothing dead, each message removed once.
    assert stats.pending == 0
    assert stats.dead_letters == 0
    assert stats.delivered == messages

    duplicates = sum(n - 1 for n in answered_200.values())
    print(  # noqa: T201 -- the figures, shown with -s
        f"\npostgres crash test: {messages} messages, SIGKILL at "
        f"{', '.join(f'{d} delivered ({p} pending)' for d, _, p in killed)}; "
        f"{len(receiver.seen)} requests, {len(failed_first)} first attempts answered 503, "
        f"{duplicates} duplicate deliveries on {sum(n > 1 for n in answered_200.values())} "
        f"keys; enqueue {enqueued - started:.1f} s, drain {drained - enqueued:.1f} s, total "
        f"{time.perf_counter() - started:.1f} s"
    )


async def pending(store: PostgresStore) -> int:
    return (await store.stats(now=time.time())).pending
