"""Crash safety of the outbox: a relay killed with SIGKILL mid-drain loses nothing.

The relay runs in a process of its own (``tests/outbox_relay_process.py``) over a
`SQLiteStore` file; the receiver is a real HTTP server on 127.0.0.1
(``tests/http_server.py``) in this test's event loop. Real processes need real
time, so these tests run on the plain asyncio loop and poll instead of sleeping.

The relay's client is a plain ``httpx.AsyncClient`` (see the helper's docstring):
with ``resilient.http.Transport`` its `Retry` would absorb the receiver's 503s
within one delivery attempt, and the outbox's own redelivery would go untested.
The store is `SQLiteStore`'s default, ``synchronous="FULL"``; it is fast enough.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

import http_server
from http_server import LocalServer, SeenRequest
from resilient.delivery import Outbox
from resilient.stores import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.anyio

# Real processes and a real server: the plain asyncio loop, in real time.
real_asyncio = http_server.real_asyncio

RELAY_SCRIPT = Path(__file__).with_name("outbox_relay_process.py")
KEY_HEADER = "idempotency-key"


def fails_first_attempt(key: str) -> bool:
    """Whether the receiver answers 503 to the first request carrying *key* (about 1 in 10).

    A hash of the key, so the same keys fail in every run.
    """
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 10 == 0


@dataclass
class Receiver:
    """What the server answers, and a record of every request: (key, body, status)."""

    seen: list[tuple[str | None, bytes, int]] = field(default_factory=list)
    keys_seen: set[str | None] = field(default_factory=set)
    delivered: set[str | None] = field(default_factory=set)
    delay: float = 0.0
    # Set on every request: the test waits on it instead of polling in real time.
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, request: SeenRequest) -> http_server.Behaviour:
        self.arrived.set()
        key = request.header(KEY_HEADER)
        first = key not in self.keys_seen
        self.keys_seen.add(key)
        status = 503 if first and key is not None and fails_first_attempt(key) else 200
        self.seen.append((key, request.body, status))
        if status == 200:
            self.delivered.add(key)
        return http_server.Behaviour(status, delay=self.delay)


@dataclass
class RelayProcess:
    """One run of the relay script, its output going to a log file."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, db: Path, log: Path, *, lease: float) -> RelayProcess:
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 -- our own script, with our own interpreter
                [sys.executable, str(RELAY_SCRIPT), str(db), "--lease", str(lease)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(process, log)

    async def stop(self, signum: int) -> int:
        """Send *signum*, wait for the process to end, return its exit status.

        The wait runs in a thread: the receiver runs in this event loop, and a
        relay that stops gracefully needs it to answer the deliveries in flight.
        """
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


async def next_arrival(receiver: Receiver) -> None:
    """Wait for the receiver's next request (bounded: a relay may die without sending one)."""
    receiver.arrived.clear()
    with anyio.move_on_after(1.0):
        await receiver.arrived.wait()


async def wait_for(
    condition: Callable[[], bool],
    receiver: Receiver,
    relay: RelayProcess,
    *,
    within: float,
    what: str,
) -> None:
    """Wait until *condition* holds, checking it at each request the receiver gets.

    Fails if the relay exits first or *within* seconds pass.
    """
    with anyio.move_on_after(within):
        while not condition():
            if relay.process.poll() is not None:
                status = relay.process.returncode
                pytest.fail(f"the relay exited ({status}) before {what}:\n{relay.output()}")
            await next_arrival(receiver)
        return
    pytest.fail(f"not {what} within {within} s; relay output:\n{relay.output()}")


async def enqueue(outbox: Outbox, url: str, count: int) -> dict[str, bytes]:
    """Send *count* POSTs with distinct JSON bodies and our own keys; key -> body."""
    sent: dict[str, bytes] = {}
    for i in range(count):
        key = f"order-{i:05d}"
        body = {"order": i, "sku": f"sku-{i * 7919 % 1000:03d}", "quantity": i % 7 + 1}
        request = httpx.Request("POST", url, json=body, headers={"Idempotency-Key": key})
        await outbox.send(request)
        sent[key] = request.content
    return sent


async def pending(store: SQLiteStore) -> int:
    return (await store.stats(now=time.time())).pending


@pytest.mark.parametrize(
    ("messages", "kills"),
    [
        pytest.param(400, 1, id="400-messages-1-kill"),
        pytest.param(2000, 3, id="2000-messages-3-kills", marks=pytest.mark.scenario),
    ],
)
async def test_relay_killed_mid_drain_delivers_every_message(
    tmp_path: Path, messages: int, kills: int
) -> None:
    started = time.perf_counter()
    db, log = tmp_path / "outbox.db", tmp_path / "relay.log"
    receiver = Receiver()
    store = SQLiteStore(db)  # synchronous="FULL", the default
    killed: list[tuple[int, int, int]] = []  # (keys delivered, exit status, pending) at each kill
    async with LocalServer(default=receiver) as server:
        sent = await enqueue(Outbox(store), f"{server.url}/orders", messages)
        enqueued = time.perf_counter()
        relay: RelayProcess | None = None
        # Random kill points (the seed is printed, to replay a failure) between 5 %
        # and 90 % delivered, each a random few requests late, so the kills land in
        # claims, deliveries and commits alike.
        seed = random.randrange(2**32)
        rng = random.Random(seed)
        points = sorted(rng.sample(range(messages // 20, messages * 9 // 10), kills))
        try:
            for threshold in points:
                relay = RelayProcess.start(db, log, lease=2.0)
                await wait_for(
                    lambda t=threshold: len(receiver.delivered) >= t,
                    receiver,
                    relay,
                    within=30,
                    what=f"{threshold} messages delivered",
                )
                for _ in range(rng.randrange(20)):  # a random few requests later
                    await next_arrival(receiver)
                status = await relay.stop(signal.SIGKILL)
                killed.append((len(receiver.delivered), status, await pending(store)))
            relay = RelayProcess.start(db, log, lease=2.0)
            deadline = time.perf_counter() + 60
            while await pending(store):
                if time.perf_counter() > deadline:
                    pytest.fail(f"the outbox did not drain in 60 s:\n{relay.output()}")
                if relay.process.poll() is not None:
                    pytest.fail(f"the last relay exited:\n{relay.output()}")
                await next_arrival(receiver)
            drained = time.perf_counter()
            assert await relay.stop(signal.SIGTERM) == 0, relay.output()
        finally:
            if relay is not None:
                relay.kill()
    stats = await store.stats(now=time.time())
    integrity = await store.integrity_check()
    await store.close()

    # Every kill was a SIGKILL that landed mid-drain.
    assert [status for _, status, _ in killed] == [-signal.SIGKILL] * kills
    assert all(delivered < messages and left > 0 for delivered, _, left in killed), killed

    bodies: dict[str | None, set[bytes]] = defaultdict(set)
    answered_200: dict[str | None, int] = defaultdict(int)
    for key, body, status in receiver.seen:
        bodies[key].add(body)
        answered_200[key] += status == 200
    # Every message arrived, with a 200, and nothing else arrived.
    assert set(answered_200) == set(sent)
    assert all(answered_200[key] >= 1 for key in sent)
    # Each key carried one body: the one it was sent with.
    assert {key: bodies[key] for key in sent} == {key: {body} for key, body in sent.items()}
    # Each key picked to fail its first attempt did, and was redelivered.
    failed_first = {key for key, _, status in receiver.seen if status == 503}
    assert failed_first == {key for key in sent if fails_first_attempt(key)}
    assert messages / 20 < len(failed_first) < messages * 3 / 20
    # Nothing pending, nothing dead, each message removed once, a sound file.
    assert stats.pending == 0
    assert stats.dead_letters == 0
    assert stats.delivered == messages
    assert integrity == ["ok"]

    duplicates = sum(n - 1 for n in answered_200.values())
    print(  # noqa: T201 -- the figures, shown with -s
        f"\ncrash test (seed {seed}): {messages} messages, SIGKILL at "
        f"{', '.join(f'{d} delivered ({p} pending)' for d, _, p in killed)}; "
        f"{len(receiver.seen)} requests, {len(failed_first)} first attempts answered 503, "
        f"{duplicates} duplicate deliveries (200 answered again for a delivered key) "
        f"on {sum(n > 1 for n in answered_200.values())} keys; enqueue "
        f"{enqueued - started:.1f} s, drain {drained - enqueued:.1f} s, total "
        f"{time.perf_counter() - started:.1f} s"
    )


async def test_relay_stopped_with_sigterm_gives_claimed_messages_back(tmp_path: Path) -> None:
    # A long lease: messages the stopping relay did not give back would stay leased
    # for 60 s, so `leased == 0` right after it exits shows they were released.
    messages = 400
    db, log = tmp_path / "outbox.db", tmp_path / "relay.log"
    receiver = Receiver(delay=0.01)  # slow enough that batches are in hand when it stops
    store = SQLiteStore(db)
    async with LocalServer(default=receiver) as server:
        sent = await enqueue(Outbox(store), f"{server.url}/orders", messages)
        relay = RelayProcess.start(db, log, lease=60.0)
        try:
            await wait_for(
                lambda: len(receiver.delivered) >= messages // 4,
                receiver,
                relay,
                within=30,
                what=f"{messages // 4} messages delivered",
            )
            status = await relay.stop(signal.SIGTERM)
        finally:
            relay.kill()
        stopped = await store.stats(now=time.time())

        assert status == 0, relay.output()
        assert "relay stopped" in relay.output()
        assert 0 < stopped.pending < messages
        assert stopped.leased == 0
        assert stopped.due == stopped.pending  # claimable now, not after the lease
        # Every message the receiver answered 200 to was recorded as delivered
        # (no in-flight delivery was cut off and left for redelivery).
        assert stopped.delivered == len(receiver.delivered)

        # Another relay delivers the rest at once (no lease to wait out).
        relay = RelayProcess.start(db, log, lease=60.0)
        try:
            await wait_for(
                lambda: receiver.delivered >= set(sent),
                receiver,
                relay,
                within=30,
                what="every message delivered",
            )
            assert await relay.stop(signal.SIGTERM) == 0, relay.output()
        finally:
            relay.kill()
    stats = await store.stats(now=time.time())
    await store.close()
    assert stats.pending == 0
    assert stats.dead_letters == 0
    assert stats.delivered == messages
    answered_200 = [key for key, _, status in receiver.seen if status == 200]
    assert sorted(answered_200) == sorted(sent)  # no duplicates: nothing was redelivered
