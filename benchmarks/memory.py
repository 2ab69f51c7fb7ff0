# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""Memory and growth: what a key, a pending message and a big backlog cost.

Four measurements, in one run:

- **bytes per idle keyed breaker**: a ``CircuitBreaker(window=CountWindow(100),
  key=..., max_keys=...)`` in a pipeline, called once with each of ``--keys`` keys
  (10,000), so it holds that many circuits, each idle after one success; the bytes
  ``tracemalloc`` sees allocated by those calls (after ``gc.collect()``; the keys
  themselves are made beforehand), divided by the number of keys. Target <= 1 KiB.
- **bytes per pending message** in ``MemoryStore``: ``Outbox(MemoryStore()).send``
  of ``--keys`` handler messages with a small JSON payload (the same as
  ``outbox.py``'s), the bytes allocated divided by the count (information).
- **per-call cost with 1, 1,000 and 100,000 keys**: the same keyed breaker (one per
  contender, ``max_keys`` = its key count, every circuit created beforehand), each
  call taking the next key in turn, timed with ``overhead.py``'s interleaved rounds
  beside the bare call. Target: 100,000 keys within 1.2x of 1 key (median of the
  per-round ratios).
- **relay throughput with 10,000 vs 1,000,000 pending** SQLite messages (``--quick``:
  10,000 vs 200,000): each file filled once with ``executemany`` in one transaction
  (rows as ``Outbox.send`` writes them), then per round a fresh copy of each is
  flushed to disk (so the timing does not include writing back the copy) and
  opened, and the relay (no-op handler, ``workers=4``, default options) drains the
  first ``--drain`` messages (5,000); the two in a shuffled order. Target: the big
  backlog's ns/message within 1.5x of the small one's (claims use the
  ``(next_attempt_at, seq)`` index; a scan would grow with the backlog).

``.venv/bin/python benchmarks/memory.py`` (``--quick`` for a short run, ``--profile``
adds a cProfile of one keyed call loop with the most keys).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

import resilient as rs
from resilient.delivery import Outbox
from resilient.stores import MemoryStore, SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

BREAKER_BYTES_LIMIT = 1024
KEYS_RATIO_LIMIT = 1.2
BACKLOG_RATIO_LIMIT = 1.5
HANDLER = "bench.noop"
KEY_COUNTS = (1, 1_000, 100_000)


async def work(key: int) -> int:
    del key
    return 1


def _keyed_breaker(max_keys: int) -> rs.Pipeline:
    breaker = rs.CircuitBreaker(
        window=rs.CountWindow(100), key=lambda ctx: ctx.args[0], max_keys=max_keys
    )
    return rs.Pipeline(breaker, hooks=[])


def _payload(i: int) -> dict[str, Any]:
    return {"order": i, "sku": f"sku-{i * 7919 % 1000:03d}", "quantity": i % 7 + 1}


# --- bytes ----------------------------------------------------------------------------


async def _allocated(setup: Callable[[], Awaitable[Any]]) -> tuple[int, Any]:
    """Bytes allocated (and still held) by ``await setup()``, and what it returned."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = await setup()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, kept


async def breaker_bytes(keys: int) -> dict[str, Any]:
    """Bytes per idle circuit of a keyed CountWindow(100) breaker holding *keys* circuits."""
    pipeline = _keyed_breaker(keys)
    names = list(range(keys, 2 * keys))  # ints outside the small-int cache, made beforehand
    await pipeline.run(work, -1)  # the pipeline's own first-call allocations, not counted

    async def fill() -> rs.Pipeline:
        for k in names:
            await pipeline.run(work, k)
        return pipeline

    allocated, _ = await _allocated(fill)
    breaker = pipeline.policies[0] if hasattr(pipeline, "policies") else None
    held = len(breaker._circuits) if breaker is not None else None  # noqa: SLF001 -- a check
    return {
        "keys": keys,
        "circuits_held": held,
        "bytes": allocated,
        "bytes_per_key": allocated / keys,
    }


async def message_bytes(count: int) -> dict[str, Any]:
    """Bytes per pending message in a MemoryStore, enqueued with Outbox.send."""
    store = MemoryStore()
    outbox = Outbox(store)
    await store.open()
    payloads = [_payload(i) for i in range(count)]

    async def fill() -> MemoryStore:
        for p in payloads:
            await outbox.send(HANDLER, p)
        return store

    allocated, _ = await _allocated(fill)
    stats = await store.stats(now=time.time())
    await store.close()
    return {
        "messages": count,
        "pending": stats.pending,
        "bytes": allocated,
        "bytes_per_message": allocated / count,
    }


# --- per-call cost by key count ---------------------------------------------------------


def _keyed_contender(name: str, keys: int) -> tuple[Any, rs.Pipeline, list[int]]:
    from overhead import Contender  # noqa: PLC0415 -- the timing loop's record

    pipeline = _keyed_breaker(keys)
    names = list(range(keys))
    state = [0]
    run_ = pipeline.run

    async def call() -> int:
        i = state[0] + 1
        if i == keys:
            i = 0
        state[0] = i
        return await run_(work, names[i])  # type: ignore[no-any-return]

    return Contender(name, call), pipeline, names


async def keyed_cost(
    key_counts: Sequence[int], rounds: int, calls: int, rng: random.Random
) -> tuple[list[Any], dict[str, Any]]:
    from overhead import BARE, Contender, measure  # noqa: PLC0415

    state = [0]

    async def bare() -> int:
        i = state[0] + 1
        if i == 1:
            i = 0
        state[0] = i
        return await work(i)

    contenders = [Contender(BARE, bare)]
    for n in key_counts:
        contender, pipeline, names = _keyed_contender(f"keyed breaker, {n:,} keys", n)
        for k in names:  # every circuit exists before the timing
            await pipeline.run(work, k)
        contenders.append(contender)
    await measure(contenders, "success", rounds, calls, rng)
    return contenders, {}


def profile_keyed(keys: int, calls: int) -> str:
    """cProfile of *calls* keyed calls cycling over *keys* keys (the hot path)."""

    async def loop() -> None:
        contender, pipeline, names = _keyed_contender("profile", keys)
        for k in names:
            await pipeline.run(work, k)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            await contender.call()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
        result[0] = out.getvalue()

    result = [""]
    asyncio.run(loop())
    return result[0]


# --- the relay against a backlog -------------------------------------------------------


def fill_backlog(path: Path, count: int) -> float:
    """A store file with *count* pending handler messages; returns the seconds it took."""
    started = time.perf_counter()

    async def schema() -> tuple[Any, ...]:
        store = SQLiteStore(path)
        outbox = Outbox(store)
        await store.open()
        await outbox.send(HANDLER, _payload(0))
        await store.close()
        return ()

    anyio.run(schema)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        (data, destination, created) = conn.execute(
            "SELECT data, destination, created_at FROM resilient_outbox"
        ).fetchone()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM resilient_outbox")
        conn.executemany(
            "INSERT INTO resilient_outbox (id, data, destination, idempotency_key, "
            "ordering_key, created_at, attempts, next_attempt_at) "
            "VALUES (?, ?, ?, ?, NULL, ?, 0, ?)",
            (
                (f"{i:032x}", data, destination, f"key-{i}", created, created + i * 1e-6)
                for i in range(count)
            ),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


async def drain_first(path: Path, count: int) -> int:
    """ns for the relay (no-op handler, workers=4) to deliver the first *count* messages."""
    store = SQLiteStore(path)
    outbox = Outbox(store)

    @outbox.handler(HANDLER)
    async def noop(delivery: rs.Delivery) -> None:
        del delivery

    await store.open()
    relay = outbox.relay(workers=4)
    start = time.perf_counter_ns()
    async with relay:
        while relay.statistics.delivered < count:
            await anyio.sleep(0.0005)
            if relay.statistics.dead_lettered:
                break
        elapsed = time.perf_counter_ns() - start
    await store.close()
    return elapsed


def _flush(path: Path) -> None:
    # The copy leaves the whole file dirty in the OS page cache; unflushed, the
    # relay's first checkpoint fsync would write back all of it (267 MB for a
    # million messages), timing the copy rather than the relay.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backlog_throughput(
    small: int, big: int, drain: int, rounds: int, rng: random.Random
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="resilient-memory-bench-") as tmp:
        scratch = Path(tmp)
        templates = {small: scratch / "small.db", big: scratch / "big.db"}
        fill_seconds = {n: fill_backlog(p, n) for n, p in templates.items()}
        sizes = {n: p.stat().st_size for n, p in templates.items()}
        samples: dict[int, list[float]] = {small: [], big: []}
        for r in range(rounds + 1):  # round 0: warm-up, not recorded
            order = [small, big]
            rng.shuffle(order)
            for n in order:
                path = scratch / f"drain-{r}-{n}.db"
                shutil.copyfile(templates[n], path)
                _flush(path)
                elapsed = anyio.run(drain_first, path, drain)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                if r:
                    samples[n].append(elapsed / drain)
    ratios = [b / s for b, s in zip(samples[big], samples[small], strict=True)]
    return {
        "small": small,
        "big": big,
        "drained_per_round": drain,
        "fill_seconds": fill_seconds,
        "file_bytes": sizes,
        "ns_per_message": {str(n): s for n, s in samples.items()},
        "ratios": ratios,
    }


# --- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, a 200k backlog")
    parser.add_argument("--profile", action="store_true", help="cProfile the keyed hot path")
    parser.add_argument("--keys", type=int, default=10_000, help="keys / messages for bytes")
    parser.add_argument("--drain", type=int, default=None, help="messages drained per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else 11
    calls = 2000 if args.quick else 5000
    big = 200_000 if args.quick else 1_000_000
    drain = args.drain or (2000 if args.quick else 5000)
    backlog_rounds = 3 if args.quick else 5

    from _common import print_checks, print_header, spread, write_json  # noqa: PLC0415
    from overhead import _loadavg, _print_table, _ratios, _summary, judge, machine_info  # noqa: PLC0415
    from resilient.instrumentation import set_hooks  # noqa: PLC0415

    set_hooks([])
    info = machine_info()
    info["versions"] = {"resilient": rs.__version__}
    print_header(
        "resilient memory and growth benchmark",
        info,
        f"bytes: tracemalloc over {args.keys:,} keys / messages; per-call cost: {rounds} "
        f"rounds x {calls:,} calls, shuffled (overhead.py's loop)",
        f"backlog: {args.keys:,} vs {big:,} pending SQLite messages, first {drain:,} drained "
        f"per round, {backlog_rounds} rounds",
    )
    started = time.perf_counter()
    rng = random.Random(args.seed)

    per_breaker = asyncio.run(breaker_bytes(args.keys))
    per_message = asyncio.run(message_bytes(args.keys))
    print(
        f"\nidle keyed breaker (CountWindow(100)), {args.keys:,} keys: "
        f"{per_breaker['bytes_per_key']:,.0f} bytes per key"
    )
    print(
        f"pending message in MemoryStore, {args.keys:,} messages: "
        f"{per_message['bytes_per_message']:,.0f} bytes per message"
    )

    contenders, _ = asyncio.run(keyed_cost(KEY_COUNTS, rounds, calls, rng))
    summary = _summary(contenders)
    _print_table("Keyed breaker, per call, by key count", contenders, summary, calls)
    by_name = {c.name: c for c in contenders}
    one, most = (by_name[f"keyed breaker, {n:,} keys"] for n in (KEY_COUNTS[0], KEY_COUNTS[-1]))
    keys_verdict = judge(_ratios(most, one), KEYS_RATIO_LIMIT)
    mid_ratio = spread(_ratios(by_name[f"keyed breaker, {KEY_COUNTS[1]:,} keys"], one))

    backlog = backlog_throughput(args.keys, big, drain, backlog_rounds, rng)
    backlog_verdict = judge(backlog["ratios"], BACKLOG_RATIO_LIMIT)
    print(f"\nRelay (no-op handler, workers=4), first {drain:,} of a backlog (ns per message):")
    for n in (args.keys, big):
        s = spread(backlog["ns_per_message"][str(n)])
        print(
            f"  {n:>9,} pending ({backlog['file_bytes'][n] / 1e6:,.0f} MB, filled in "
            f"{backlog['fill_seconds'][n]:.1f} s): {s['median']:,.0f} "
            f"[{s['min']:,.0f}-{s['max']:,.0f}] ns/msg, "
            f"{1e9 / s['median']:,.0f} msg/s"
        )

    targets = [
        {
            "what": "bytes per idle keyed breaker, CountWindow(100)",
            "value": per_breaker["bytes_per_key"],
            "limit": BREAKER_BYTES_LIMIT,
            "pass": per_breaker["bytes_per_key"] <= BREAKER_BYTES_LIMIT,
            "detail": f"{per_breaker['bytes_per_key']:,.0f} B <= {BREAKER_BYTES_LIMIT} B",
        },
        {
            "what": f"per call, {KEY_COUNTS[-1]:,} keys / 1 key",
            "pass": keys_verdict["pass"],
            "detail": (
                f"{keys_verdict['ratio_median']:.3f}x [{keys_verdict['ratio_min']:.3f}-"
                f"{keys_verdict['ratio_max']:.3f}] <= {KEYS_RATIO_LIMIT}x (1,000 keys: "
                f"{mid_ratio['median']:.3f}x)"
            ),
            **keys_verdict,
        },
        {
            "what": f"relay ns/msg, {big:,} pending / {args.keys:,} pending",
            "pass": backlog_verdict["pass"],
            "detail": (
                f"{backlog_verdict['ratio_median']:.3f}x [{backlog_verdict['ratio_min']:.3f}-"
                f"{backlog_verdict['ratio_max']:.3f}] <= {BACKLOG_RATIO_LIMIT}x"
            ),
            **backlog_verdict,
        },
    ]
    print_checks(targets)
    profiled = profile_keyed(KEY_COUNTS[-1], calls * 4) if args.profile else None
    if profiled:
        print(f"\n--- cProfile: {calls * 4:,} calls over {KEY_COUNTS[-1]:,} keys ---\n{profiled}")

    info["loadavg_end"] = _loadavg()
    elapsed = time.perf_counter() - started
    print(f"\nloadavg at end {info['loadavg_end']}; measured in {elapsed:.0f} s")
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "memory",
                "machine": info,
                "rounds": rounds,
                "calls": calls,
                "breaker_bytes": per_breaker,
                "message_bytes": per_message,
                "keyed_cost": summary,
                "keyed_ratio_1000_vs_1": mid_ratio,
                "backlog": backlog,
                "targets": targets,
                "profile": profiled,
                "elapsed_seconds": elapsed,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
