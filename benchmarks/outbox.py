# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""Outbox relay throughput (messages/s) with the SQLite store, next to hand-written loops.

Two sections, each with its own reference (the "bare call" row), in one run:

- no-op handler: the relay (``Outbox(SQLiteStore(...))`` with a handler that does
  nothing, ``relay(workers=4)``) drains N messages from a SQLite file; the
  reference is a minimal hand-written loop on the same kind of file (the store's
  own schema and pragmas: WAL, ``synchronous=FULL``): claim a batch with an
  ``UPDATE`` of the lease columns in ``BEGIN IMMEDIATE``, decode and "deliver"
  each message (a no-op), ``DELETE`` the batch; each transaction run through
  ``anyio.to_thread``, as an async application must. The same loop blocking the
  event loop (the "bare call" row) is reported beside it as the floor.
- HTTP sink: the relay delivers N HTTP POSTs to a local sink (a minimal asyncio
  HTTP/1.1 server on 127.0.0.1 in a process of its own, answering 200 at once);
  the reference is a bare httpx loop posting the same bodies (and an
  ``Idempotency-Key`` header, as the relay sends) to the same sink with the same
  concurrency, 4 workers sharing one ``httpx.AsyncClient``.

Every drain starts from a fresh copy of the same filled SQLite file (filled once,
outside the timing). Method as in ``overhead.py``: ``--rounds`` rounds; in each
round every contender of a section drains the same messages (``--calls`` of them
in the HTTP section, four times as many in the much faster no-op section), the
contenders in a freshly shuffled order; a figure is the median over rounds (ns
per message, and messages/s) with the min and max; ratios are taken within each
round and their median reported. Target: the relay's throughput >= 70 % of each
reference, judged with ``overhead.judge`` as relay ns/message over the
reference's <= 1/0.7.

``.venv/bin/python benchmarks/outbox.py`` (``--quick`` for a short run; ``--profile``
adds, per section, a cProfile of one relay drain and a breakdown of its store
calls; ``--help`` for the other flags).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import json
import multiprocessing
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import httpx

import resilient as rs

# overhead.py sits next to this script (first on sys.path when the script is run).
from overhead import (
    BARE,
    Contender,
    _loadavg,
    _print_table,
    _ratios,
    _summary,
    _version,
    judge,
    machine_info,
    parse_args,
)
from resilient.delivery import DeliveryOptions, Outbox
from resilient.instrumentation import set_hooks
from resilient.stores import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from multiprocessing.connection import Connection

NOOP_FACTOR = 4
"""The no-op section drains this many times ``--calls`` messages (it is ~25x faster)."""

TARGET_SHARE = 0.70
"""The relay's throughput must be at least this share of each reference's."""

WORKERS = 4
BATCH = DeliveryOptions().batch  # the relay's default claim size, used by the loops too
HANDLER = "bench.noop"
KEY_HEADER = "Idempotency-Key"

RELAY_NOOP = "relay, no-op handler (defaults, workers=4)"
LOOP_ASYNC = "hand-written loop, sqlite3 via anyio.to_thread"
RELAY_HTTP = "relay -> sink, default client (Transport())"
RELAY_HTTP_PLAIN = "relay -> sink, plain httpx.AsyncClient() [info]"

# (section, what, reference): the targets, each judged as relay ns/msg <= ref / 0.7.
# The no-op reference is the hand-written loop as an async application must run it
# (its transactions off the event loop: an fsync-ing commit on the loop would stall
# every other task); the blocking loop is the floor, reported beside it.
TARGETS: tuple[tuple[str, str, str], ...] = (
    ("noop", RELAY_NOOP, LOOP_ASYNC),
    ("http", RELAY_HTTP, BARE),
)
# (section, what, reference): more per-round ratios, for information.
OTHER_RATIOS: tuple[tuple[str, str, str], ...] = (
    ("noop", LOOP_ASYNC, BARE),
    ("noop", RELAY_NOOP, BARE),
    ("http", RELAY_HTTP_PLAIN, BARE),
    ("http", RELAY_HTTP, RELAY_HTTP_PLAIN),
)

PEERS = ("httpx", "anyio")

CONFIG_NOTES: dict[str, tuple[str, ...]] = {
    "both sections": (
        (
            "store: SQLiteStore(path) with its defaults (WAL, synchronous=FULL, busy "
            "timeout 5 s); every drain starts from a fresh copy of one filled file, in a "
            "temporary directory on the same file system"
        ),
        (
            "relay: Outbox(store, client=...), DeliveryOptions() defaults (batch 32, lease "
            "60 s), outbox.relay(workers=4); timed from entering `async with relay` until "
            "relay.statistics.delivered == N (polled every 0.5 ms), leaving it untimed"
        ),
        "instrumentation off: resilient set_hooks([]); structlog logs nothing on success",
    ),
    "no-op handler": (
        "relay: @outbox.handler(...) async def noop(delivery): count it",
        (
            "'bare call': a hand-written loop on the same file, one connection (WAL, "
            "synchronous=FULL): BEGIN IMMEDIATE; SELECT 32 due rows ORDER BY "
            "next_attempt_at, seq; UPDATE their lease columns; COMMIT; json.loads each "
            "document and call a no-op; BEGIN IMMEDIATE; DELETE the 32 by seq and lease "
            "token; COMMIT; until a claim finds nothing. Plain blocking sqlite3 in one "
            "thread: the floor"
        ),
        (
            "the reference: the same loop with each transaction run through "
            "anyio.to_thread.run_sync, as an async application must (the relay's store "
            "does the same)"
        ),
    ),
    "HTTP sink": (
        (
            "sink: asyncio.Protocol HTTP/1.1 server on 127.0.0.1 in its own process; "
            "reads the request head and Content-Length body, answers 200 with an empty "
            "body, keeps the connection alive, counts requests and distinct keys"
        ),
        (
            "messages: POST /orders with a JSON body (~45 bytes) and Idempotency-Key; "
            "enqueued with Outbox.send(request, connection=...) in one transaction"
        ),
        (
            "relay: client=None, so the relay makes httpx.AsyncClient(transport="
            "resilient.http.Transport()) (default pipeline Timeout(30) > Retry() > "
            "CircuitBreaker() > Timeout(10)); [info] the same with a plain "
            "httpx.AsyncClient()"
        ),
        (
            "'bare call': 4 tasks sharing one plain httpx.AsyncClient() take (body, key) "
            "pairs from one in-memory list and `await client.post(url, content=body, "
            "headers=...)` the same body, content-type and Idempotency-Key; a non-200 "
            "counts as an error"
        ),
    ),
}


# --- the HTTP sink ------------------------------------------------------------------

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class _SinkProtocol(asyncio.Protocol):
    """One keep-alive connection: parse requests, answer 200, count them."""

    def __init__(self, seen: dict[str, Any]) -> None:
        self.seen = seen
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 -- TCP
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
            length, key = 0, None
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "idempotency-key":
                    key = value.strip()
            total = end + 4 + length
            if len(buffer) < total:
                return
            del buffer[:total]
            target = lines[0].split(" ")[1]
            assert self.transport is not None  # noqa: S101 -- set on connect
            if target == "/stats":
                body = json.dumps(
                    {"requests": self.seen["requests"], "keys": len(self.seen["keys"])}
                )
                raw = body.encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(raw)}\r\n\r\n".encode()
                    + raw
                )
            elif target == "/reset":
                self.seen["requests"] = 0
                self.seen["keys"] = set()
                self.transport.write(_OK)
            else:
                self.seen["requests"] += 1
                self.seen["keys"].add(key)
                self.transport.write(_OK)


async def _serve_sink(conn: Connection) -> None:
    seen: dict[str, Any] = {"requests": 0, "keys": set()}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _SinkProtocol(seen), "127.0.0.1", 0)
    conn.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def run_sink(conn: Connection) -> None:
    """The sink process: serve until terminated."""
    asyncio.run(_serve_sink(conn))


@contextlib.contextmanager
def sink_process() -> Any:
    """Start the sink in a process of its own; yield its base URL."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=run_sink, args=(child,), daemon=True)
    process.start()
    try:
        if not parent.poll(30):
            msg = "the HTTP sink did not start"
            raise RuntimeError(msg)
        yield f"http://127.0.0.1:{parent.recv()}"
    finally:
        process.terminate()
        process.join(5)
        parent.close()
        child.close()


# --- filling a file -----------------------------------------------------------------


@dataclass
class Workload:
    """A filled SQLite file to copy for every drain, and what it holds."""

    template: Path
    count: int
    bodies: list[tuple[bytes, str]]  # (body, key) of each HTTP message
    url: str | None


def _body(i: int) -> dict[str, Any]:
    return {"order": i, "sku": f"sku-{i * 7919 % 1000:03d}", "quantity": i % 7 + 1}


async def fill(template: Path, count: int, url: str | None) -> Workload:
    """Write *count* messages with `Outbox.send` in one transaction (handler or HTTP)."""
    store = SQLiteStore(template)
    outbox = Outbox(store)
    await store.open()
    bodies: list[tuple[bytes, str]] = []
    conn = sqlite3.connect(template, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for i in range(count):
            if url is None:
                await outbox.send(HANDLER, _body(i), connection=conn)
            else:
                key = f"order-{i:06d}"
                request = httpx.Request("POST", url, json=_body(i), headers={KEY_HEADER: key})
                await outbox.send(request, connection=conn)
                bodies.append((request.content, key))
        conn.execute("COMMIT")
    finally:
        conn.close()
    await store.close()  # the last connection: the WAL is checkpointed into the file
    return Workload(template, count, bodies, url)


# --- the contenders -----------------------------------------------------------------


@dataclass
class Drain:
    """One contender: drains a fresh copy of the workload; returns (ns, errors)."""

    name: str
    run: Callable[[Path, Workload], Awaitable[tuple[int, int]]]


async def relay_drain(
    path: Path,
    work: Workload,
    *,
    client: httpx.AsyncClient | None = None,
    store: SQLiteStore | None = None,
    workers: int = WORKERS,
) -> tuple[int, int]:
    """Drain *path* with the relay; errors = messages not delivered (or wrongly)."""
    store = SQLiteStore(path) if store is None else store
    outbox = Outbox(store, client=client)
    calls = [0]

    @outbox.handler(HANDLER)
    async def noop(delivery: rs.Delivery) -> None:
        del delivery
        calls[0] += 1

    await store.open()  # untimed: the relay opens it again, which is then a no-op
    relay = outbox.relay(workers=workers)
    count = work.count
    start = time.perf_counter_ns()
    async with relay:
        while relay.statistics.delivered < count:
            await anyio.sleep(0.0005)
            if relay.statistics.dead_lettered:
                break
        elapsed = time.perf_counter_ns() - start
    stats = await store.stats(now=time.time())
    await store.close()
    expected_calls = count if work.url is None else 0
    errors = stats.pending + stats.dead_letters + abs(calls[0] - expected_calls)
    return elapsed, errors


async def relay_drain_plain(path: Path, work: Workload) -> tuple[int, int]:
    async with httpx.AsyncClient() as client:
        return await relay_drain(path, work, client=client)


_CLAIM = (
    "SELECT seq, data FROM resilient_outbox WHERE next_attempt_at <= ? "
    "ORDER BY next_attempt_at, seq LIMIT ?"
)
_LEASE = (
    "UPDATE resilient_outbox SET attempts = attempts + 1, lease_owner = ?, lease_token = ?, "
    "lease_until = ?, next_attempt_at = ? WHERE seq = ?"
)
_DELETE = "DELETE FROM resilient_outbox WHERE seq = ? AND lease_token = ?"


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _claim(conn: sqlite3.Connection, token: str, lease: float = 60.0) -> list[tuple[int, str]]:
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(_CLAIM, (now, BATCH)).fetchall()
        conn.executemany(_LEASE, [("loop", token, now + lease, now + lease, r[0]) for r in rows])
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return rows


def _delete(conn: sqlite3.Connection, seqs: list[int], token: str) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        deleted = conn.executemany(_DELETE, [(seq, token) for seq in seqs]).rowcount
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return deleted


def _deliver(data: str) -> bool:
    """Decode the stored document and "deliver" it (a no-op)."""
    return json.loads(data)["kind"] == "handler"


async def loop_drain(path: Path, work: Workload) -> tuple[int, int]:
    """The minimal hand-written loop: plain blocking sqlite3 (the floor)."""
    conn = _connect(path)
    delivered = failed = 0
    start = time.perf_counter_ns()
    token = 0
    while True:
        token += 1
        rows = _claim(conn, str(token))
        if not rows:
            break
        done = []
        for seq, data in rows:
            if _deliver(data):
                done.append(seq)
            else:
                failed += 1
        delivered += _delete(conn, done, str(token))
    elapsed = time.perf_counter_ns() - start
    conn.close()
    return elapsed, failed + abs(work.count - delivered)


async def loop_drain_async(path: Path, work: Workload) -> tuple[int, int]:
    """The same loop, every transaction in a worker thread (what async code must do)."""
    conn = await anyio.to_thread.run_sync(_connect, path)
    delivered = failed = 0
    start = time.perf_counter_ns()
    token = 0
    while True:
        token += 1
        rows = await anyio.to_thread.run_sync(_claim, conn, str(token))
        if not rows:
            break
        done = []
        for seq, data in rows:
            if _deliver(data):
                done.append(seq)
            else:
                failed += 1
        delivered += await anyio.to_thread.run_sync(_delete, conn, done, str(token))
    elapsed = time.perf_counter_ns() - start
    conn.close()
    return elapsed, failed + abs(work.count - delivered)


async def httpx_drain(path: Path, work: Workload) -> tuple[int, int]:
    """4 workers, one plain client, posting the same bodies and keys to the sink."""
    del path
    assert work.url is not None  # noqa: S101 -- the HTTP section
    url = work.url
    pending = list(reversed(work.bodies))
    errors = [0]

    async with httpx.AsyncClient() as client:

        async def worker() -> None:
            while pending:
                body, key = pending.pop()
                response = await client.post(
                    url,
                    content=body,
                    headers={"content-type": "application/json", KEY_HEADER: key},
                )
                if response.status_code != 200:
                    errors[0] += 1

        start = time.perf_counter_ns()
        async with anyio.create_task_group() as group:
            for _ in range(WORKERS):
                group.start_soon(worker)
        elapsed = time.perf_counter_ns() - start
    return elapsed, errors[0]


# --- measuring ----------------------------------------------------------------------


async def _sink(url: str, command: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url.rsplit('/', 1)[0]}/{command}")
        return response.json() if command == "stats" else {}


async def measure_section(
    drains: list[Drain], work: Workload, rounds: int, scratch: Path, rng: random.Random
) -> tuple[list[Contender], dict[str, list[dict[str, Any]]]]:
    """Warm up, then *rounds* shuffled rounds; the sink's count checked after each drain."""
    contenders = [Contender(d.name, _unused) for d in drains]
    by_name = {c.name: c for c in contenders}
    sink_seen: dict[str, list[dict[str, Any]]] = {d.name: [] for d in drains}
    copies = 0

    async def one(drain: Drain, *, record: bool) -> None:
        nonlocal copies
        copies += 1
        path = scratch / f"drain-{copies}.db"
        shutil.copyfile(work.template, path)
        if work.url is not None:
            await _sink(work.url, "reset")
        elapsed, errors = await drain.run(path, work)
        if work.url is not None:
            seen = await _sink(work.url, "stats")
            errors += abs(seen["requests"] - work.count) + abs(seen["keys"] - work.count)
            if record:
                sink_seen[drain.name].append(seen)
        _remove(path)
        if record:
            contender = by_name[drain.name]
            contender.samples.append(elapsed / work.count)
            contender.errors += errors
            if errors:
                contender.error_types.add("undelivered or miscounted messages")

    for drain in drains:  # warm-up, not recorded
        await one(drain, record=False)
    for _ in range(rounds):
        order = drains[:]
        rng.shuffle(order)
        for drain in order:
            await one(drain, record=True)
    return contenders, sink_seen


async def _unused() -> int:  # Contender wants a call; drains are timed by `one`
    return 1


class TimedStore(SQLiteStore):
    """A `SQLiteStore` that counts and times its operations (``--profile`` only).

    *awaited*: from the caller's ``await`` to its return (thread hop included);
    *in_thread*: inside the store's worker thread, from taking its lock to the
    end of ``COMMIT`` (the fsync included). This overrides the store's private
    ``_in_thread``: a diagnostic that may need updating when the store changes.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: Counter[str] = Counter()
        self.awaited: Counter[str] = Counter()
        self.in_thread: Counter[str] = Counter()

    def _in_thread(self, work: Callable[[sqlite3.Connection], Any], write: bool) -> Any:
        start = time.perf_counter_ns()
        try:
            return super()._in_thread(work, write)
        finally:
            # work is e.g. SQLiteStore.claim.<locals>.work: the operation is part 1
            parts = getattr(work, "__qualname__", "?").split(".")
            self.in_thread[parts[1] if len(parts) > 1 else parts[0]] += (
                time.perf_counter_ns() - start
            )


def _timed(name: str) -> Callable[..., Awaitable[Any]]:
    async def operation(self: TimedStore, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return await getattr(SQLiteStore, name)(self, *args, **kwargs)
        finally:
            self.calls[name] += 1
            self.awaited[name] += time.perf_counter_ns() - start

    return operation


_OPERATIONS = ("open", "claim", "complete", "reschedule", "release", "bury", "stats", "next_due")
for _name in (*_OPERATIONS, "trim"):
    setattr(TimedStore, _name, _timed(_name))


async def profile_relay(work: Workload, scratch: Path) -> str:
    """cProfile one relay drain, then break a one-worker drain down by store call."""
    out = io.StringIO()
    path = scratch / "profile.db"
    shutil.copyfile(work.template, path)
    if work.url is not None:
        await _sink(work.url, "reset")
    profiler = cProfile.Profile()
    profiler.enable()
    await relay_drain(path, work)
    profiler.disable()
    _remove(path)
    print(
        f"cProfile of one relay drain (workers={WORKERS}; the event-loop thread only, "
        "the store's thread is not seen; by tottime):",
        file=out,
    )
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)

    shutil.copyfile(work.template, path)
    if work.url is not None:
        await _sink(work.url, "reset")
    store = TimedStore(path)
    elapsed, errors = await relay_drain(path, work, store=store, workers=1)
    _remove(path)
    n = work.count
    print(
        f"Store calls of one relay drain with workers=1 (no lock contention), "
        f"{elapsed / n / 1000:.1f} us/message in all{', with errors' if errors else ''}:",
        file=out,
    )
    print(
        f"  {'operation':<12} {'calls':>6} {'in thread us/msg':>17} {'awaited us/msg':>15}",
        file=out,
    )
    for name, calls in store.calls.most_common():
        print(
            f"  {name:<12} {calls:>6} {store.in_thread[name] / n / 1000:>17.2f} "
            f"{store.awaited[name] / n / 1000:>15.2f}",
            file=out,
        )
    awaited = sum(store.awaited.values())
    in_thread = sum(store.in_thread.values())
    print(
        f"  in the store's thread {in_thread / n / 1000:.1f} us/msg; thread hops and "
        f"waits {(awaited - in_thread) / n / 1000:.1f}; the relay's own work on the event "
        "loop (decode, pipeline, handler or HTTP, bookkeeping) "
        f"{(elapsed - awaited) / n / 1000:.1f}",
        file=out,
    )
    return out.getvalue()


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- reporting ----------------------------------------------------------------------


def _throughput(c: Contender) -> dict[str, float]:
    per_second = [1e9 / ns for ns in c.samples]
    return {
        "messages_per_s_median": statistics.median(per_second),
        "messages_per_s_min": min(per_second),
        "messages_per_s_max": max(per_second),
    }


def _targets(section: str, by_name: dict[str, Contender]) -> list[dict[str, Any]]:
    results = []
    for t_section, what, ref in TARGETS:
        if t_section != section:
            continue
        ratios = _ratios(by_name[what], by_name[ref])  # ns/message: relay / reference
        verdict = judge(ratios, 1 / TARGET_SHARE)
        shares = [1 / r for r in ratios]
        verdict["pass"] = verdict["pass"] and by_name[what].errors == 0
        results.append(
            {
                "section": section,
                "what": what,
                "reference": ref,
                "share_median": statistics.median(shares),
                "share_min": min(shares),
                "share_max": max(shares),
                "clean": by_name[what].errors == 0 and by_name[ref].errors == 0,
                **verdict,
            }
        )
    return results


def _other_ratios(section: str, by_name: dict[str, Contender]) -> list[dict[str, Any]]:
    results = []
    for r_section, what, ref in OTHER_RATIOS:
        if r_section != section or what not in by_name or ref not in by_name:
            continue
        shares = [1 / r for r in _ratios(by_name[what], by_name[ref])]
        results.append(
            {
                "section": section,
                "what": what,
                "reference": ref,
                "share_median": statistics.median(shares),
                "share_min": min(shares),
                "share_max": max(shares),
            }
        )
    return results


def _print_throughput(contenders: list[Contender]) -> None:
    print(f"\n{'':<60} {'messages/s median [min-max]':>28}")
    for c in sorted(contenders, key=lambda c: statistics.median(c.samples)):
        t = _throughput(c)
        spread = (
            f"{t['messages_per_s_median']:,.0f} "
            f"[{t['messages_per_s_min']:,.0f}-{t['messages_per_s_max']:,.0f}]"
        )
        print(f"{c.name:<60} {spread:>28}")


SECTION_TITLES = {
    "noop": (
        "No-op handler ('bare call' = the hand-written claim/deliver/delete loop, blocking: "
        "the floor; the target's reference is the same loop off the event loop)"
    ),
    "http": "HTTP sink ('bare call' = the bare httpx loop, 4 workers)",
}


def _print_targets(results: list[dict[str, Any]]) -> None:
    print(
        f"\nTargets: relay throughput >= {TARGET_SHARE:.0%} of the reference (median over "
        "rounds of the per-round share = reference ns/msg / relay ns/msg):"
    )
    for r in results:
        verdict = "PASS" if r["pass"] else "FAIL"
        print(
            f"  {verdict}  [{r['section']}] {r['what']} / {r['reference']}: "
            f"{r['share_median']:.1%} [{r['share_min']:.1%}-{r['share_max']:.1%}] "
            f">= {TARGET_SHARE:.0%} (ns/msg ratio {r['ratio_median']:.3f}x <= "
            f"{r['limit']:.3f}x; within in {r['rounds_within']}/{r['rounds']} rounds)"
        )
        if not r["clean"]:
            print("        (a contender lost or miscounted messages: see the notes above)")


def _print_other_ratios(results: list[dict[str, Any]]) -> None:
    print("\nMore per-round throughput shares (information, not targets):")
    for r in results:
        print(
            f"  [{r['section']}] {r['what']} / {r['reference']}: {r['share_median']:.1%} "
            f"[{r['share_min']:.1%}-{r['share_max']:.1%}]"
        )


SWITCHES = {
    "--quick": "a short run: 3 rounds, 1,000 messages (unless --rounds/--calls say otherwise)",
    "--profile": "add, per section, a cProfile of one relay drain and its store calls",
}


async def run_section(
    section: str, count: int, rounds: int, url: str | None, rng: random.Random, *, profile: bool
) -> tuple[list[Contender], dict[str, Any], str | None]:
    """Fill a file with *count* messages, then measure the section's contenders on it."""
    with tempfile.TemporaryDirectory(prefix="resilient-outbox-bench-") as tmp:
        scratch = Path(tmp)
        work = await fill(scratch / "template.db", count, None if section == "noop" else url)
        if section == "noop":
            drains = [
                Drain(BARE, loop_drain),
                Drain(RELAY_NOOP, relay_drain),
                Drain(LOOP_ASYNC, loop_drain_async),
            ]
        else:
            drains = [
                Drain(BARE, httpx_drain),
                Drain(RELAY_HTTP, relay_drain),
                Drain(RELAY_HTTP_PLAIN, relay_drain_plain),
            ]
        contenders, sink_seen = await measure_section(drains, work, rounds, scratch, rng)
        profiled = await profile_relay(work, scratch) if profile else None
    return contenders, sink_seen, profiled


def main(argv: list[str] | None = None) -> int:
    # --quick changes the defaults, so it is looked for before the parser sets them.
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    args = parse_args(
        __doc__.splitlines()[0],
        argv,
        rounds=3 if quick else 9,
        calls=1000 if quick else 5000,
        switches=SWITCHES,
    )
    profile = args.profile
    counts = {"noop": args.calls * NOOP_FACTOR, "http": args.calls}
    set_hooks([])

    info = machine_info()
    info["versions"] = {"resilient": rs.__version__} | {name: _version(name) for name in PEERS}
    print("resilient outbox benchmark: relay throughput beside hand-written loops")
    print(f"python      {info['python']}")
    print(f"platform    {info['platform']} ({info['implementation']})")
    print(f"cpus        {info['cpu_count']} (usable: {info['cpus_usable']})")
    print(f"loadavg     {info['loadavg']}")
    print("versions    " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print(
        f"method      {args.rounds} rounds (after one warm-up drain each); per round every "
        f"contender drains {counts['noop']:,}\n            messages (no-op handler) or "
        f"{counts['http']:,} (HTTP sink) from a fresh copy of one file, in a\n"
        "            shuffled order; ratios taken per round, then the median"
    )
    print("config")
    for section, notes in CONFIG_NOTES.items():
        print(f"  {section}:")
        for note in notes:
            print(f"  - {note}")

    rng = random.Random(args.seed)
    started = time.perf_counter()
    sections: dict[str, Any] = {}
    target_results: list[dict[str, Any]] = []
    other_results: list[dict[str, Any]] = []
    profiles: dict[str, str] = {}
    with sink_process() as base:
        url = f"{base}/orders"
        for section in ("noop", "http"):
            contenders, sink_seen, profiled = asyncio.run(
                run_section(section, counts[section], args.rounds, url, rng, profile=profile)
            )
            summary = _summary(contenders)
            for c in contenders:
                summary[c.name] |= _throughput(c)
            sections[section] = {"contenders": summary, "sink": sink_seen}
            _print_table(
                f"{SECTION_TITLES[section]}\n(ns per message; x bare = per-round ratio)",
                contenders,
                summary,
                counts[section],
            )
            _print_throughput(contenders)
            if section == "http":
                exact = all(
                    s == {"requests": counts[section], "keys": counts[section]}
                    for seen in sink_seen.values()
                    for s in seen
                )
                print(
                    "  the sink saw exactly one request per message from every contender in "
                    "every round"
                    if exact
                    else "  note: the sink's counts differ from one request per message"
                )
            by_name = {c.name: c for c in contenders}
            target_results += _targets(section, by_name)
            other_results += _other_ratios(section, by_name)
            if profiled is not None:
                profiles[section] = profiled

    _print_targets(target_results)
    _print_other_ratios(other_results)
    for section, text in profiles.items():
        print(f"\n--- profile: {SECTION_TITLES[section].split(' (')[0]} ---")
        print(text)

    info["loadavg_end"] = _loadavg()
    elapsed = time.perf_counter() - started
    print(f"\nloadavg at end {info['loadavg_end']}; measured in {elapsed:.0f} s")
    print("Figures are from one run on one machine; compare ratios, not absolute figures.")

    if args.json:
        doc = {
            "benchmark": "outbox",
            "machine": info,
            "rounds": args.rounds,
            "messages": counts,
            "seed": args.seed,
            "config": {k: list(v) for k, v in CONFIG_NOTES.items()},
            "sections": sections,
            "targets": target_results,
            "other_ratios": other_results,
            "elapsed_seconds": elapsed,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
