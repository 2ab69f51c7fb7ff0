"""Soak run: steady traffic through rotating faults, bounded (about 5 minutes by default).

    .venv/bin/python benchmarks/soak.py               # about 5 minutes
    .venv/bin/python benchmarks/soak.py --minutes 1   # shorter

A real HTTP server on 127.0.0.1 (``tests/http_server.py``) sits behind the TCP fault
proxy of ``tests/fault_proxy.py``, whose fault rotates every few seconds: none,
latency, resets, cuts after N bytes, a trickle, a blackhole. Two kinds of traffic
run together for the whole time:

- calls: paced GETs through ``resilient.http.Transport`` (Timeout > Retry >
  CircuitBreaker > Timeout). In the fault-free phases each call is paired with a
  bare ``httpx`` call straight to the server, so the report gives the latency the
  library adds (p50 and p99 of resilient minus bare, through the proxy);
- messages: POSTs sent through an `Outbox` on a `SQLiteStore`, delivered by a relay
  through the proxy; at the end the outbox is drained and the receiver's keys are
  compared with those sent: lost messages must be 0.

It prints the figures and exits 1 if a message was lost or memory grew more than
``--max-growth-mb`` (tracemalloc, after the first minute) over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import httpx
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import resilient as rs
from fault_proxy import Fault, FaultProxy
from http_server import Behaviour, LocalServer, SeenRequest
from resilient import http as rsh
from resilient.delivery import DeliveryOptions, Outbox
from resilient.stores import SQLiteStore

FAULTS = [
    Fault.none(),
    Fault.latency(0.05),
    Fault.none(),
    Fault.reset(),
    Fault.none(),
    Fault.cut(40),
    Fault.none(),
    Fault.trickle(0.05),
    Fault.none(),
    Fault.blackhole(),
]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def soak(minutes: float, phase: float, max_growth_mb: float) -> int:
    delivered: Counter[str] = Counter()

    def answer(request: SeenRequest) -> Behaviour:
        key = request.header("idempotency-key")
        if request.method == "POST" and key:
            delivered[key] += 1
        return Behaviour(200, body=b"ok" * 50)

    outcomes: Counter[str] = Counter()
    added: list[float] = []
    memory: list[tuple[float, int]] = []
    sent: list[str] = []
    deadline = time.monotonic() + minutes * 60
    tracemalloc.start()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "soak.db")
        async with LocalServer(default=answer) as server, FaultProxy(server.port) as proxy:
            policy = rs.Pipeline(
                rs.Timeout(2.0),
                rs.Retry(backoff=rs.Backoff.exponential(0.02, cap=0.2), budget=None),
                rs.CircuitBreaker(min_calls=20, open_for=1.0),
                rs.Timeout(0.5),
                hooks=[],
            )
            resilient_client = httpx.AsyncClient(
                transport=rsh.Transport(policy), base_url=proxy.url
            )
            bare = httpx.AsyncClient(base_url=proxy.url, timeout=5.0)
            relay_client = httpx.AsyncClient(
                transport=rsh.Transport(
                    rs.Pipeline(rs.Timeout(2.0), rs.Retry(budget=None), rs.Timeout(0.5), hooks=[])
                )
            )
            options = DeliveryOptions(
                backoff=rs.Backoff.exponential(0.05, cap=1.0),
                poll_interval=0.1,
                lease=10.0,
                max_attempts=1000,
            )
            outbox = Outbox(store, client=relay_client, options=options)
            async with resilient_client, bare, relay_client, outbox.relay(workers=4) as relay:

                async def rotate() -> None:
                    i = 0
                    while time.monotonic() < deadline:
                        proxy.fault = FAULTS[i % len(FAULTS)]
                        i += 1
                        await asyncio.sleep(phase)
                    proxy.fault = Fault.none()

                async def calls() -> None:
                    while time.monotonic() < deadline:
                        clean = proxy.fault.kind == "none"
                        t0 = time.perf_counter()
                        try:
                            await resilient_client.get("/call")
                            outcomes["ok"] += 1
                        except Exception as exc:
                            outcomes[type(exc).__name__] += 1
                        t1 = time.perf_counter()
                        if clean and proxy.fault.kind == "none":
                            try:
                                await bare.get("/bare")
                                t2 = time.perf_counter()
                                if proxy.fault.kind == "none":
                                    added.append((t1 - t0) - (t2 - t1))
                            except httpx.HTTPError:
                                pass
                        await asyncio.sleep(0.01)

                async def messages() -> None:
                    n = 0
                    while time.monotonic() < deadline:
                        key = f"soak-{n:07d}"
                        request = httpx.Request(
                            "POST", f"{proxy.url}/orders", json={"n": n},
                            headers={"Idempotency-Key": key},
                        )  # fmt: skip
                        await outbox.send(request)
                        sent.append(key)
                        n += 1
                        await asyncio.sleep(0.02)

                async def sample() -> None:
                    while time.monotonic() < deadline:
                        await asyncio.sleep(5)
                        server.requests.clear()  # the test server's own record, not ours
                        gc.collect()
                        memory.append(
                            (time.monotonic() - started, tracemalloc.get_traced_memory()[0])
                        )
                        elapsed = time.monotonic() - started
                        print(
                            f"  {elapsed:6.0f} s  fault={proxy.fault.kind:9}  "
                            f"calls={dict(outcomes)}  "
                            f"sent={len(sent)} delivered={len(delivered)}",
                            flush=True,
                        )

                await asyncio.gather(rotate(), calls(), messages(), sample())
                proxy.fault = Fault.none()
                drained = await relay.drain(timeout=120)
            await store.close()
    tracemalloc.stop()

    lost = sorted(set(sent) - set(delivered))
    duplicates = sum(n - 1 for n in delivered.values())
    after_warmup = [m for t, m in memory if t >= 60] or [m for _, m in memory]
    growth = (after_warmup[-1] - after_warmup[0]) / 2**20 if len(after_warmup) > 1 else 0.0
    print(f"\nsoak: {minutes:g} min, faults rotating every {phase:g} s")
    print(f"  calls: {dict(outcomes)}")
    print(
        f"  added latency (resilient - bare, fault-free phases, {len(added)} pairs): "
        f"p50 {statistics.median(added) * 1e6:.0f} us, p99 {percentile(added, 99) * 1e6:.0f} us"
        if added
        else "  added latency: no fault-free pairs"
    )
    print(f"  memory (tracemalloc) growth after the first minute: {growth:.2f} MiB")
    print(
        f"  messages: {len(sent)} sent, {len(sent) - len(lost)} delivered, lost {len(lost)}, "
        f"duplicates {duplicates}, drained {drained}"
    )
    failed = bool(lost) or not drained or growth > max_growth_mb
    print("  result:", "FAIL" if failed else "ok")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run (5)")
    parser.add_argument("--phase", type=float, default=6.0, help="seconds per fault (6)")
    parser.add_argument(
        "--max-growth-mb", type=float, default=5.0, help="memory growth allowed (5 MiB)"
    )
    args = parser.parse_args()
    # The retries and redeliveries are the point: log only warnings and worse.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return asyncio.run(soak(args.minutes, args.phase, args.max_growth_mb))


if __name__ == "__main__":
    sys.exit(main())
