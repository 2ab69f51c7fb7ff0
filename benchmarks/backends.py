# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""Real backends: the Redis-backed breaker beside the memory one; the PostgreSQL relay.

Two sections, each skipped with a note when its server is unreachable:

- **Redis**: ``CircuitBreaker(name=..., shared=RedisState(REDIS_URL, namespace=<unique>),
  window=TimeWindow(30))`` beside the same breaker without *shared*, each in a
  ``Pipeline`` used as a decorator, on the success path of ``async def work():
  return 1``, with ``overhead.py``'s interleaved rounds (the bare call as the
  reference). A shared breaker admits from its local view and records outcomes in
  batches that a background task pushes every ``sync_interval`` (0.1 s), so its hot
  path makes no round trip; the table shows what that bookkeeping costs. The
  namespace's keys are deleted afterwards.
- **PostgreSQL**: ``Outbox(PostgresStore(POSTGRES_URL, schema=<unique>))`` with a no-op
  handler, ``relay(workers=4)``, draining ``--messages`` messages (5,000), beside a
  minimal hand-written loop: 4 tasks, each with its own psycopg connection, claiming
  32 due rows with ``FOR UPDATE SKIP LOCKED`` (one transaction), decoding each
  document, deleting the batch (another transaction). Before every drain the table
  is refilled (one ``executemany`` in one transaction, untimed). Rounds shuffled; the
  per-round ratio of ns/message, median [min-max]. The schema is dropped afterwards.

``.venv/bin/python benchmarks/backends.py`` (``--quick`` for fewer rounds and messages).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from typing import Any

import anyio

import resilient as rs
from overhead import (
    BARE,
    Contender,
    _loadavg,
    _print_table,
    _ratios,
    _summary,
    _version,
    machine_info,
    measure,
)
from resilient.delivery import Outbox
from resilient.instrumentation import set_hooks

REDIS_URL = os.environ.get("RESILIENT_BENCH_REDIS", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "RESILIENT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
HANDLER = "bench.noop"
BATCH = 32
WORKERS = 4
SHARE_BAR = 0.70
"""outbox.py's SQLite target (relay >= 70 % of the hand-written loop), shown for comparison."""

MEMORY_BREAKER = "resilient CircuitBreaker(TimeWindow(30)), in memory"
REDIS_BREAKER = "resilient CircuitBreaker(TimeWindow(30), shared=RedisState)"
PG_RELAY = "relay, PostgresStore, no-op handler (workers=4)"
PG_LOOP = "hand-written psycopg loop, 4 tasks (SKIP LOCKED)"


async def work() -> int:
    return 1


# --- Redis ------------------------------------------------------------------------------


async def _redis_reachable() -> str | None:
    try:
        import redis.asyncio  # noqa: PLC0415 -- the optional extra
    except ImportError:
        return "redis-py is not installed"
    client = redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__})"
    finally:
        await client.aclose()
    return None


async def redis_section(rounds: int, calls: int, rng: random.Random) -> dict[str, Any]:
    reason = await _redis_reachable()
    if reason is not None:
        return {"skipped": reason}
    namespace = f"bench-{uuid.uuid4().hex[:12]}"
    state = rs.state.RedisState(REDIS_URL, namespace=namespace)
    shared = rs.CircuitBreaker(name="bench", shared=state, window=rs.TimeWindow(30))
    local = rs.CircuitBreaker(name="bench", window=rs.TimeWindow(30))
    contenders = [
        Contender(BARE, work),
        Contender(MEMORY_BREAKER, rs.Pipeline(local, hooks=[])(work)),
        Contender(REDIS_BREAKER, rs.Pipeline(shared, hooks=[])(work)),
    ]
    try:
        await measure(contenders, "success", rounds, calls, rng)
        # Read before going idle: after two sync intervals without traffic the shared
        # breaker stops trusting its view, and its statistics then read OPEN.
        stats = shared.statistics()
        await asyncio.sleep(0.3)  # let the last batch reach Redis
    finally:
        await state.aclose()
        keys = [k async for k in state.client.scan_iter(match=f"resilient:{namespace}:*")]
        if keys:
            await state.client.delete(*keys)
        await state.client.aclose()
    summary = _summary(contenders)
    by = {c.name: c for c in contenders}
    ratios = _ratios(by[REDIS_BREAKER], by[MEMORY_BREAKER])
    return {
        "contenders": contenders,
        "summary": summary,
        "shared_vs_memory": {
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        },
        "shared_statistics": repr(stats),
        "namespace_keys_deleted": len(keys),
    }


# --- PostgreSQL -------------------------------------------------------------------------


async def _pg_reachable() -> str | None:
    try:
        import psycopg  # noqa: PLC0415 -- the optional extra
    except ImportError:
        return "psycopg is not installed"
    try:
        conn = await psycopg.AsyncConnection.connect(POSTGRES_URL, connect_timeout=3)
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(exc).__name__})"
    await conn.close()
    return None


def _payload(i: int) -> dict[str, Any]:
    return {"order": i, "sku": f"sku-{i * 7919 % 1000:03d}", "quantity": i % 7 + 1}


async def _refill(conn: Any, schema: str, template: tuple[str, str, float], count: int) -> None:
    data, destination, created = template
    async with conn.transaction():
        await conn.execute(f'DELETE FROM "{schema}".resilient_outbox')  # noqa: S608 -- ours
        async with conn.cursor() as cur:
            insert = (
                f'INSERT INTO "{schema}".resilient_outbox (id, data, destination, '  # noqa: S608
                "idempotency_key, ordering_key, created_at, attempts, next_attempt_at) "
                "VALUES (%s, %s, %s, %s, NULL, %s, 0, %s)"
            )
            await cur.executemany(
                insert,
                [
                    (uuid.uuid4().hex, data, destination, f"key-{i}", created, created + i * 1e-6)
                    for i in range(count)
                ],
            )
    await conn.execute(f'VACUUM ANALYZE "{schema}".resilient_outbox')


RELAY_PATIENCE = 60.0
"""Seconds a drain may take before it is abandoned and its undelivered messages counted."""


async def _relay_drain(store: Any, count: int) -> tuple[int, int]:
    outbox = Outbox(store)
    calls = [0]

    @outbox.handler(HANDLER)
    async def noop(delivery: rs.Delivery) -> None:
        del delivery
        calls[0] += 1

    relay = outbox.relay(workers=WORKERS)
    start = time.perf_counter_ns()
    give_up = start + int(RELAY_PATIENCE * 1e9)
    async with relay:
        while relay.statistics.delivered < count:
            await anyio.sleep(0.0005)
            if relay.statistics.dead_lettered or time.perf_counter_ns() > give_up:
                break  # counted below as pending or dead-lettered: an error
        elapsed = time.perf_counter_ns() - start
    try:
        stats = await store.stats(now=time.time())
    except Exception:
        return elapsed, count - calls[0] or count
    return elapsed, stats.pending + stats.dead_letters + abs(calls[0] - count)


async def _loop_drain(schema: str, count: int) -> tuple[int, int]:
    import psycopg  # noqa: PLC0415 -- the optional extra

    s = f'"{schema}"'
    claim = (  # the schema name is this script's own, not input
        f"UPDATE {s}.resilient_outbox SET"  # noqa: S608
        f" attempts = attempts + 1, lease_owner = 'loop', "
        "lease_token = %(token)s, lease_until = %(until)s WHERE seq IN (SELECT seq FROM "
        f"{s}.resilient_outbox WHERE next_attempt_at <= %(now)s AND (lease_until IS NULL OR "
        "lease_until <= %(now)s) ORDER BY next_attempt_at, seq LIMIT %(limit)s FOR UPDATE "
        "SKIP LOCKED) RETURNING seq, data"
    )
    delete = f"DELETE FROM {s}.resilient_outbox WHERE seq = ANY(%s) AND lease_token = %s"  # noqa: S608
    conns = [await psycopg.AsyncConnection.connect(POSTGRES_URL) for _ in range(WORKERS)]
    delivered = [0]
    failed = [0]

    async def worker(conn: Any) -> None:
        while True:
            token = uuid.uuid4().hex
            now = time.time()
            async with conn.transaction():
                cur = await conn.execute(
                    claim, {"token": token, "until": now + 60, "now": now, "limit": BATCH}
                )
                rows = await cur.fetchall()
            if not rows:
                return
            done = []
            for seq, data in rows:
                if json.loads(data)["kind"] == "handler":
                    done.append(seq)
                else:
                    failed[0] += 1
            async with conn.transaction():
                cur = await conn.execute(delete, (done, token))
                delivered[0] += cur.rowcount

    start = time.perf_counter_ns()
    try:
        async with anyio.create_task_group() as group:
            for conn in conns:
                group.start_soon(worker, conn)
        elapsed = time.perf_counter_ns() - start
    finally:
        for conn in conns:
            await conn.close()
    return elapsed, failed[0] + abs(count - delivered[0])


async def postgres_section(rounds: int, count: int, rng: random.Random) -> dict[str, Any]:
    reason = await _pg_reachable()
    if reason is not None:
        return {"skipped": reason}
    import psycopg  # noqa: PLC0415 -- the optional extra

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    store = rs.stores.PostgresStore(POSTGRES_URL, schema=schema)
    admin = await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True)
    samples: dict[str, list[float]] = {PG_RELAY: [], PG_LOOP: []}
    errors = dict.fromkeys(samples, 0)
    try:
        await store.open()
        await Outbox(store).send(HANDLER, _payload(0))
        first = f'SELECT data, destination, created_at FROM "{schema}".resilient_outbox'  # noqa: S608
        row = await (await admin.execute(first)).fetchone()
        template = (row[0], row[1], row[2])
        for r in range(rounds + 1):  # round 0: warm-up
            order = list(samples)
            rng.shuffle(order)
            for name in order:
                await _refill(admin, schema, template, count)
                if name == PG_RELAY:
                    elapsed, errs = await _relay_drain(store, count)
                else:
                    elapsed, errs = await _loop_drain(schema, count)
                if r:
                    samples[name].append(elapsed / count)
                    errors[name] += errs
    finally:
        await store.close()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    ratios = [a / b for a, b in zip(samples[PG_RELAY], samples[PG_LOOP], strict=True)]
    shares = [1 / r for r in ratios]
    return {
        "schema_dropped": schema,
        "messages": count,
        "ns_per_message": samples,
        "errors": errors,
        "relay_vs_loop": {
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "share_median": statistics.median(shares),
            "share_min": min(shares),
            "share_max": max(shares),
            "ratios": ratios,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and messages")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    rounds, calls = (5, 2000) if args.quick else (15, 5000)
    pg_rounds, messages = (3, 1000) if args.quick else (7, 5000)

    from _common import print_header, write_json  # noqa: PLC0415

    set_hooks([])
    info = machine_info()
    info["versions"] = {"resilient": rs.__version__} | {
        n: _version(n) for n in ("redis", "psycopg", "psycopg-pool")
    }
    print_header(
        "resilient backends benchmark: Redis-shared breaker, PostgreSQL relay",
        info,
        f"Redis: {rounds} rounds x {calls:,} calls, shuffled (overhead.py's loop); {REDIS_URL}",
        f"PostgreSQL: {pg_rounds} rounds x {messages:,} messages, shuffled; {POSTGRES_URL}",
    )
    rng = random.Random(args.seed)
    started = time.perf_counter()
    redis_out = asyncio.run(redis_section(rounds, calls, rng))
    if "skipped" in redis_out:
        print(f"\nRedis: skipped: {redis_out['skipped']}")
    else:
        _print_table(
            "Breaker on the success path (ns per call)",
            redis_out.pop("contenders"),
            redis_out["summary"],
            calls,
        )
        r = redis_out["shared_vs_memory"]
        print(
            f"  shared (Redis) / in memory: {r['ratio_median']:.3f}x "
            f"[{r['ratio_min']:.3f}-{r['ratio_max']:.3f}]"
        )
        print(f"  the shared breaker's statistics afterwards: {redis_out['shared_statistics']}")
    pg_out = asyncio.run(postgres_section(pg_rounds, messages, rng))
    if "skipped" in pg_out:
        print(f"\nPostgreSQL: skipped: {pg_out['skipped']}")
    else:
        print(f"\nPostgreSQL relay, {messages:,} messages per drain (ns per message):")
        for name, values in pg_out["ns_per_message"].items():
            med = statistics.median(values)
            print(
                f"  {name:<52} {med:>9,.0f} [{min(values):,.0f}-{max(values):,.0f}] "
                f"{1e9 / med:>8,.0f} msg/s  errors {pg_out['errors'][name]}"
            )
        r = pg_out["relay_vs_loop"]
        print(
            f"  relay throughput / loop's: {r['share_median']:.1%} "
            f"[{r['share_min']:.1%}-{r['share_max']:.1%}] (outbox.py's SQLite target is "
            f">= {SHARE_BAR:.0%}; information here)"
        )
    info["loadavg_end"] = _loadavg()
    elapsed = time.perf_counter() - started
    print(f"\nloadavg at end {info['loadavg_end']}; measured in {elapsed:.0f} s")
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "backends",
                "machine": info,
                "redis": redis_out,
                "postgres": pg_out,
                "elapsed_seconds": elapsed,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
