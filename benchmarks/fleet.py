# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""A fleet of clients against a server of limited capacity, through an outage, in virtual time.

The server: ``WORKERS`` workers take requests from one FIFO queue of at most
``QUEUE`` requests (a request that finds it full is refused at once with
``ConnectionError``); a request takes ``SERVICE`` seconds of a worker, longer when
the queue is long (it degrades under overload: up to ``1 + DEGRADE`` times at a
full queue, the cost of thrashing). A worker serves every request it dequeues,
even one whose client has given up (it cannot know): that work is wasted. During
the outage (``OUTAGE`` seconds, from ``OUTAGE_AT``) the workers stall, as if a
dependency of theirs hung, so requests queue and time out.

The fleet: ``CLIENTS`` clients, each with its own pipeline (its own budget and
breaker, as separate processes would have), each starting logical calls at
random (Poisson) so that together they offer ``LOAD`` of the server's capacity.
Every call runs through ``Timeout(2)`` (the caller's deadline) > [Retry] >
[CircuitBreaker] > ``Timeout(0.25)`` (per attempt), in these configurations:

- no retry;
- retry, no jitter, no budget: ``Retry(backoff=Backoff.exponential(0.2, cap=5,
  jitter="none"), budget=None)``;
- + jitter: ``Retry(budget=None)`` (its default backoff has full jitter);
- + budget: no jitter, the default ``RetryBudget()``;
- + breaker: no jitter, no budget, ``CircuitBreaker()`` (its defaults);
- resilient defaults: ``Retry()`` (full jitter, budget) and ``CircuitBreaker()``.

Per configuration: goodput (successful calls / calls started) before, during and
after the outage; the time to recover after it ends (the first second from which
goodput stays >= 90 % for 3 seconds in a row, or "not recovered" by the end); the
attempts per call (the load the fleet put on the server); per-second series for the
plot. ``simulate(config)`` runs one; importing this module runs nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

import resilient as rs
from resilient.testing import run

WORKERS = 8
SERVICE = 0.02
"""Seconds of a worker per request with a short queue: capacity WORKERS / SERVICE = 400/s."""
QUEUE = 200
DEGRADE = 0.5
"""At a full queue a request takes (1 + DEGRADE) x SERVICE: throughput falls by a third."""
LOAD = 0.5
"""The fleet's offered load, as a share of the server's capacity (200 calls/s)."""
CLIENTS = 50
ATTEMPT_TIMEOUT = 0.25
CALL_DEADLINE = 2.0
OUTAGE_AT = 10.0
OUTAGE = 10.0
DURATION = 60.0
RECOVERED_SHARE = 0.9
RECOVERED_FOR = 3

CONFIGS: dict[str, str] = {
    "no retry": "Timeout(2) > Timeout(0.25)",
    "retry, no jitter, no budget": (
        "Timeout(2) > Retry(backoff=exponential(0.2, cap=5, jitter=none), budget=None) "
        "> Timeout(0.25)"
    ),
    "retry + jitter": "Timeout(2) > Retry(budget=None) > Timeout(0.25)",
    "retry + budget": (
        "Timeout(2) > Retry(backoff=exponential(0.2, cap=5, jitter=none)) > Timeout(0.25)"
    ),
    "retry + breaker": (
        "Timeout(2) > Retry(backoff=exponential(0.2, cap=5, jitter=none), budget=None) "
        "> CircuitBreaker() > Timeout(0.25)"
    ),
    "resilient defaults": "Timeout(2) > Retry() > CircuitBreaker() > Timeout(0.25)",
}


def _pipeline(config: str) -> rs.Pipeline:
    no_jitter = rs.Backoff.exponential(0.2, cap=5.0, jitter="none")
    inner = rs.Timeout(ATTEMPT_TIMEOUT)
    steps: tuple[Any, ...]
    if config == "no retry":
        steps = ()
    elif config == "retry, no jitter, no budget":
        steps = (rs.Retry(backoff=no_jitter, budget=None),)
    elif config == "retry + jitter":
        steps = (rs.Retry(budget=None),)
    elif config == "retry + budget":
        steps = (rs.Retry(backoff=no_jitter),)
    elif config == "retry + breaker":
        steps = (rs.Retry(backoff=no_jitter, budget=None), rs.CircuitBreaker())
    elif config == "resilient defaults":
        steps = (rs.Retry(), rs.CircuitBreaker())
    else:
        msg = f"config must be one of {', '.join(CONFIGS)}; got {config!r}"
        raise ValueError(msg)
    return rs.Pipeline(rs.Timeout(CALL_DEADLINE), *steps, inner, hooks=[])


@dataclass
class _Server:
    queue: asyncio.Queue[asyncio.Future[None]]
    down_until: float = 0.0
    down_from: float = float("inf")
    attempts: int = 0
    refused: int = 0
    served: int = 0
    wasted: int = 0

    async def request(self) -> None:
        self.attempts += 1
        if self.queue.full():
            self.refused += 1
            msg = "server overloaded: queue full"
            raise ConnectionError(msg)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(future)
        await future

    async def worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            future = await self.queue.get()
            now = loop.time()
            if self.down_from <= now < self.down_until:
                await asyncio.sleep(self.down_until - now)  # stalled: the outage
            await asyncio.sleep(SERVICE * (1.0 + DEGRADE * self.queue.qsize() / QUEUE))
            if future.done():  # its client gave up: the work was for nothing
                self.wasted += 1
            else:
                self.served += 1
                future.set_result(None)


def _recovery(good: list[int], started: list[int], outage_end: int) -> float | None:
    """Seconds after the outage until goodput stays >= 90 % for 3 s in a row."""
    ok = [s > 0 and g / s >= RECOVERED_SHARE for g, s in zip(good, started, strict=True)]
    for t in range(outage_end, len(ok) - RECOVERED_FOR + 1):
        if all(ok[t : t + RECOVERED_FOR]):
            return float(t - outage_end)
    return None


async def _fleet(config: str, duration: float, seed: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    rng = random.Random(f"fleet:{seed}:{config}")
    start = loop.time()
    server = _Server(asyncio.Queue(QUEUE), OUTAGE_AT + start + OUTAGE, OUTAGE_AT + start)
    workers = [asyncio.ensure_future(server.worker()) for _ in range(WORKERS)]
    seconds = int(duration)
    started = [0] * seconds  # calls started in second t
    good = [0] * seconds  # of those, how many succeeded
    load = [0] * seconds  # attempts the server saw in second t
    calls: set[asyncio.Task[None]] = set()
    rate = LOAD * WORKERS / SERVICE / CLIENTS  # calls per second per client

    async def one_call(pipeline: rs.Pipeline, t: int) -> None:
        try:
            await pipeline.run(server.request)
        except Exception:  # noqa: S110 -- a failed call is counted by not counting it
            pass
        else:
            good[t] += 1

    async def client() -> None:
        pipeline = _pipeline(config)
        while True:
            await asyncio.sleep(rng.expovariate(rate))
            t = int(loop.time() - start)
            if t >= seconds:
                return
            started[t] += 1
            task = asyncio.ensure_future(one_call(pipeline, t))
            calls.add(task)
            task.add_done_callback(calls.discard)

    async def sampler() -> None:
        last = 0
        for t in range(seconds):
            await asyncio.sleep(start + t + 1 - loop.time())
            load[t] = server.attempts - last
            last = server.attempts

    await asyncio.gather(sampler(), *(client() for _ in range(CLIENTS)))
    while calls:
        await asyncio.gather(*list(calls))
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)

    out_start, out_end = int(OUTAGE_AT), int(OUTAGE_AT + OUTAGE)

    def share(a: int, b: int) -> float:
        n = sum(started[a:b])
        return sum(good[a:b]) / n if n else 0.0

    recovery = _recovery(good, started, out_end)
    return {
        "config": config,
        "pipeline": CONFIGS[config],
        "calls": sum(started),
        "attempts": server.attempts,
        "attempts_per_call": server.attempts / max(1, sum(started)),
        "refused": server.refused,
        "served": server.served,
        "wasted": server.wasted,
        "goodput_before": share(0, out_start),
        "goodput_during": share(out_start, out_end),
        "goodput_after": share(out_end, seconds),
        "recovery_seconds": recovery,
        "started_per_second": started,
        "good_per_second": good,
        "server_load_per_second": load,
    }


def simulate(config: str, *, duration: float = DURATION, seed: int = 0) -> dict[str, Any]:
    """One configuration of the fleet through the outage, in virtual time."""
    if config not in CONFIGS:
        msg = f"config must be one of {', '.join(CONFIGS)}; got {config!r}"
        raise ValueError(msg)
    if duration < OUTAGE_AT + OUTAGE + RECOVERED_FOR:
        msg = f"duration must be >= {OUTAGE_AT + OUTAGE + RECOVERED_FOR}, got {duration!r}"
        raise ValueError(msg)
    state = random.getstate()  # resilient's jitter draws from the random module
    random.seed(f"fleet-jitter:{seed}:{config}")
    real = time.perf_counter()
    try:
        out = run(_fleet, config, duration, seed)
    finally:
        random.setstate(state)
    out["real_seconds"] = time.perf_counter() - real
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 40 s simulation, not 60 s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    duration = 40.0 if args.quick else DURATION

    from _common import write_json  # noqa: PLC0415
    from overhead import machine_info  # noqa: PLC0415

    capacity = WORKERS / SERVICE
    print("Fleet simulation: goodput and recovery after an outage (virtual time)")
    print(
        f"server: {WORKERS} workers x {SERVICE * 1000:g} ms = {capacity:g} requests/s, FIFO "
        f"queue of {QUEUE} (full: refused at once), up to {1 + DEGRADE:g}x slower at a full "
        f"queue; abandoned requests are still served (wasted)"
    )
    print(
        f"fleet: {CLIENTS} clients, Poisson calls, {LOAD:.0%} of capacity "
        f"({LOAD * capacity:g} calls/s); outage (workers stall) from t={OUTAGE_AT:g} s for "
        f"{OUTAGE:g} s; {duration:g} s in all"
    )
    print(
        f"recovery: seconds after the outage until goodput >= {RECOVERED_SHARE:.0%} for "
        f"{RECOVERED_FOR} s in a row"
    )
    started = time.perf_counter()
    rows = []
    head = (
        f"{'configuration':<30} {'before':>7} {'during':>7} {'after':>7} "
        f"{'recovery':>10} {'attempts/call':>14} {'wasted':>8}"
    )
    print(f"\ngoodput (successful calls / calls started)\n{head}\n{'-' * len(head)}")
    for config in CONFIGS:
        r = simulate(config, duration=duration, seed=args.seed)
        rows.append(r)
        rec = "never" if r["recovery_seconds"] is None else f"{r['recovery_seconds']:.0f} s"
        print(
            f"{config:<30} {r['goodput_before']:>7.1%} {r['goodput_during']:>7.1%} "
            f"{r['goodput_after']:>7.1%} {rec:>10} {r['attempts_per_call']:>14.2f} "
            f"{r['wasted']:>8,}"
        )
    for r in rows:
        print(f"  {r['config']}: {r['pipeline']}")
    elapsed = time.perf_counter() - started
    print(f"\nran in {elapsed:.1f} s of real time")
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "fleet",
                "machine": machine_info(),
                "model": {
                    "workers": WORKERS,
                    "service_seconds": SERVICE,
                    "queue": QUEUE,
                    "degrade": DEGRADE,
                    "load": LOAD,
                    "clients": CLIENTS,
                    "attempt_timeout": ATTEMPT_TIMEOUT,
                    "call_deadline": CALL_DEADLINE,
                    "outage_at": OUTAGE_AT,
                    "outage_seconds": OUTAGE,
                    "duration": duration,
                },
                "rows": rows,
                "elapsed_seconds": elapsed,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
