"""A fleet of processes sharing one circuit breaker in Redis, against a real failing server.

Four OS processes, eight concurrent callers each, call a real HTTP server on
127.0.0.1 (``tests/http_server.py``) that this test runs and controls, through
``resilient.http.Transport(Pipeline(CircuitBreaker(shared=RedisState(...))))``: no
Retry, so every call is one request. The server records when each request arrived
(``time.time()``) and which process sent it; each process reports every call's
outcome (ok, failed, rejected) with its start and end times on its stdout, a line each.
The Redis hash of the circuit tells when the fleet's circuit opened.

Phases: the server answers 500 until every process has seen the circuit open; then
200 after 0.5 s, so half-open probes take long enough to overlap with the other
callers' attempts. Real processes need real time: the test runs on the plain asyncio
loop and waits on the processes' reports. It skips when Redis is down, and fails under
CI=true.

This file is also the process that calls: ``python tests/test_state_fleet.py ...``.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import TextIO

    import anyio.abc

    import http_server

PROCESSES = 4
CALLERS = 8
MIN_CALLS = 20
OPEN_FOR = 2.0
PROBES = 2  # half_open_calls
SYNC_INTERVAL = 0.1  # RedisState's default
PACE = 1.0
"""Seconds each caller waits between calls: longer than two sync intervals (plus a round
trip), so that each caller starts at most one call in the window in which its process
has not yet heard that the fleet's circuit opened (see the bound below)."""
RECOVERY_DELAY = 0.5  # how long the recovered server takes to answer
PROCESS_HEADER = "x-process"


# The calling process


async def calls(url: str, redis: str, namespace: str, index: int, reports: TextIO) -> None:
    """Run CALLERS callers until a line on stdin says stop, reporting each call's outcome."""
    import resilient as rs
    from resilient.http import Transport
    from resilient.state import RedisState

    state = RedisState(redis, namespace=namespace, sync_interval=SYNC_INTERVAL)
    breaker = rs.CircuitBreaker(
        name="fleet",
        shared=state,
        window=rs.TimeWindow(30),
        min_calls=MIN_CALLS,
        failure_rate=0.5,
        open_for=OPEN_FOR,
        half_open_calls=PROBES,
    )
    stopping = asyncio.Event()

    def report(line: str) -> None:
        reports.write(line + "\n")
        reports.flush()

    async with httpx.AsyncClient(transport=Transport(rs.Pipeline(breaker)), timeout=10.0) as client:

        async def caller(n: int) -> None:
            # Staggered starts: the fleet's calls spread evenly over each PACE.
            await asyncio.sleep(PACE * (n * PROCESSES + index) / (PROCESSES * CALLERS))
            while not stopping.is_set():
                start = time.time()
                try:
                    response = await client.get(url, headers={PROCESS_HEADER: str(index)})
                except rs.CircuitOpenError as exc:
                    outcome, detail = "rejected", exc.state
                except Exception as exc:
                    outcome, detail = "error", type(exc).__name__
                else:
                    outcome = "ok" if response.status_code == 200 else "failed"
                    detail = str(response.status_code)
                report(f"{index} {n} {start:.6f} {time.time():.6f} {outcome} {detail}")
                await asyncio.sleep(PACE)

        async def stop_on_the_next_line() -> None:
            await asyncio.to_thread(sys.stdin.readline)
            stopping.set()

        report("ready")
        # The test writes "go" to every process's stdin at once: block until then.
        await asyncio.to_thread(sys.stdin.readline)
        await asyncio.gather(stop_on_the_next_line(), *(caller(n) for n in range(CALLERS)))
    await state.aclose()


def main(argv: list[str]) -> int:
    """``URL REDIS_URL NAMESPACE INDEX``: one calling process, reporting on its stdout."""
    url, redis, namespace, index = argv
    # Reports go to the real stdout; anything else printed (logs) goes to stderr.
    reports = sys.stdout
    sys.stdout = sys.stderr
    asyncio.run(calls(url, redis, namespace, int(index), reports))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# The test

import anyio  # noqa: E402 -- the calling process above needs none of the test's imports

import http_server  # noqa: E402
from backends import REDIS_URL, redis_url  # noqa: E402
from http_server import LocalServer, SeenRequest  # noqa: E402

pytestmark = [pytest.mark.anyio, pytest.mark.scenario]

# Real processes and a real server: the plain asyncio loop, in real time.
real_asyncio = http_server.real_asyncio


@dataclass(frozen=True)
class Arrival:
    at: float
    process: int
    status: int


@dataclass
class Downstream:
    """The server's answers (switchable by the test) and every request's arrival."""

    status: int = 500
    delay: float = 0.0
    arrivals: list[Arrival] = field(default_factory=list)

    def __call__(self, request: SeenRequest) -> http_server.Behaviour:
        process = int(request.header(PROCESS_HEADER) or -1)
        self.arrivals.append(Arrival(time.time(), process, self.status))
        return http_server.Behaviour(self.status, delay=self.delay)


@dataclass(frozen=True)
class Call:
    process: int
    caller: int
    start: float
    end: float
    outcome: str  # ok, failed, rejected, error
    detail: str  # the status, CircuitOpenError.state, or the exception's type


class Fleet:
    """The calling processes, and what they have reported on their stdout so far."""

    def __init__(self, logs: list[Path]) -> None:
        self.logs = logs  # each process's stderr
        self.processes: list[anyio.abc.Process] = []
        self.calls: list[Call] = []
        self.ready: set[int] = set()
        self.ended: list[int] = []  # processes whose stdout closed
        self._changed = anyio.Event()

    async def start(self, tg: anyio.abc.TaskGroup, url: str, namespace: str) -> None:
        """Start every process, and a task reading its reports."""
        for index, log in enumerate(self.logs):
            command = [sys.executable, __file__, url, REDIS_URL, namespace, str(index)]
            with log.open("wb") as errors:
                process = await anyio.open_process(command, stderr=errors)
            self.processes.append(process)
            tg.start_soon(self._read, index, process)

    async def _read(self, index: int, process: anyio.abc.Process) -> None:
        assert process.stdout is not None
        pending = b""
        async for chunk in process.stdout:
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line == b"ready":
                    self.ready.add(index)
                else:
                    p, n, start, end, outcome, detail = line.decode().split()
                    self.calls.append(
                        Call(int(p), int(n), float(start), float(end), outcome, detail)
                    )
            self._notify()
        self.ended.append(index)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def tell_all(self, line: bytes) -> None:
        for process in self.processes:
            assert process.stdin is not None
            await process.stdin.send(line)

    async def wait_for(self, condition: Callable[[], bool], *, within: float, what: str) -> None:
        """Wait until *condition* holds after a report; fail if a process ends first."""
        with anyio.move_on_after(within):
            while not condition():
                if self.ended:
                    text = self.logs[self.ended[0]].read_text(errors="replace")[-3000:]
                    pytest.fail(f"a process ended before {what}:\n{text}")
                await self._changed.wait()
            return
        text = "\n".join(log.read_text(errors="replace")[-2000:] for log in self.logs)
        pytest.fail(f"not {what} within {within} s:\n{text}")

    async def aclose(self) -> None:
        """Kill what still runs, and wait for every process."""
        with anyio.CancelScope(shield=True):
            for process in self.processes:
                if process.returncode is None:
                    process.kill()
                await process.wait()
                await process.aclose()


async def circuit_hash(namespace: str) -> dict[str, str]:
    """The fleet's circuit as Redis holds it (state, gen, open_until, ...)."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = [
            key
            async for key in client.scan_iter(f"resilient:{namespace}:breaker:*")
            if not key.endswith(":w")
        ]
        assert len(keys) == 1, keys  # one circuit: one breaker, one origin
        found = await client.hgetall(keys[0])
        return {str(name): str(value) for name, value in found.items()}
    finally:
        await client.aclose()


async def forget(namespace: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(f"resilient:{namespace}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_a_fleet_of_processes_opens_probes_and_closes_one_shared_circuit(
    tmp_path: Path,
) -> None:
    redis_url()  # skip (or fail under CI) when Redis is down
    namespace = f"fleet-{uuid.uuid4().hex[:12]}"
    downstream = Downstream()
    fleet = Fleet([tmp_path / f"process-{i}.log" for i in range(PROCESSES)])

    def by_process() -> dict[int, list[Call]]:
        grouped: dict[int, list[Call]] = defaultdict(list)
        for call in fleet.calls:
            grouped[call.process].append(call)
        return grouped

    def all_saw(outcome: str, after: float = 0.0) -> bool:
        grouped = by_process()
        return all(
            any(c.outcome == outcome and c.start >= after for c in grouped[i])
            for i in range(PROCESSES)
        )

    try:
        async with LocalServer(default=downstream) as server, anyio.create_task_group() as tg:
            await fleet.start(tg, server.url, namespace)
            await fleet.wait_for(
                lambda: len(fleet.ready) == PROCESSES, within=20, what="every process ready"
            )
            # Phase 1: the server fails every request, until every process has seen
            # the circuit open (a rejection).
            await fleet.tell_all(b"go\n")
            went = time.time()
            await fleet.wait_for(lambda: all_saw("rejected"), within=10, what="the circuit open")
            opened = await circuit_hash(namespace)
            switched = time.time()
            open_until = float(opened["open_until"])
            assert opened["state"] == "open", opened
            assert switched < open_until, "the test was too slow to switch the server in time"
            # Phase 2: the server recovers, slowly, so probes overlap other callers.
            downstream.status, downstream.delay = 200, RECOVERY_DELAY
            await fleet.wait_for(lambda: all_saw("ok"), within=10, what="every process closed")

            # Let every process make three calls well after the probes were answered.
            def settled() -> bool:
                later = [a for a in downstream.arrivals if a.at >= open_until]
                if len(later) < PROBES:
                    return False
                ended = max(a.at for a in sorted(later, key=lambda a: a.at)[:PROBES])
                grouped = by_process()
                return all(
                    sum(c.outcome == "ok" and c.start > ended + 1.0 for c in grouped[i]) >= 3
                    for i in range(PROCESSES)
                )

            await fleet.wait_for(settled, within=10, what="every process settled")
            await fleet.tell_all(b"stop\n")
            with anyio.fail_after(10):
                for process in fleet.processes:
                    await process.wait()
            closed = await circuit_hash(namespace)
    finally:
        await fleet.aclose()
        await forget(namespace)

    assert [p.returncode for p in fleet.processes] == [0] * PROCESSES, [
        log.read_text(errors="replace")[-2000:] for log in fleet.logs
    ]
    everything = fleet.calls
    grouped = by_process()
    arrivals = sorted(downstream.arrivals, key=lambda a: a.at)
    assert not [c for c in everything if c.outcome == "error"]
    assert all(c.detail == "500" for c in everything if c.outcome == "failed")

    # Phase 1. The fleet's circuit opened (in Redis) at T_open, when its window held
    # min_calls failures. Every request that reached the server was admitted on a
    # process's "closed" view. At most min_calls - 1 were counted in Redis before the
    # sync that opened it; every other one was made after its process's last sync
    # before T_open and before its first sync after (RedisState's staleness bound:
    # one sync interval plus a round trip, each way: about 0.2 s in all). A caller
    # waits PACE (> 0.2 s) between calls, so it starts at most one call in that
    # window: at most min_calls - 1 + PROCESSES * CALLERS requests in all.
    opened_at = open_until - OPEN_FOR
    failing = [a for a in arrivals if a.at < switched]
    assert all(a.status == 500 for a in failing)
    bound = MIN_CALLS + PROCESSES * CALLERS
    assert len(failing) <= bound, (len(failing), bound)
    # Every process saw the circuit open (every one rejected a call), and soon.
    first_rejection = {
        i: min(c.start for c in grouped[i] if c.outcome == "rejected") for i in range(PROCESSES)
    }
    # Nothing was refused before the fleet's window held min_calls failures, each of
    # which had reached the server before Redis opened the circuit.
    assert sum(a.at < opened_at for a in failing) >= MIN_CALLS
    assert min(first_rejection.values()) >= opened_at - 0.01
    assert all(
        c.detail == "open"
        for c in everything
        if c.outcome == "rejected" and c.start < open_until - 0.05
    )
    learned = max(first_rejection.values()) - opened_at
    assert learned <= SYNC_INTERVAL + PACE + 0.2, learned

    # While open: nothing reached the server from a process that had seen it open,
    # and nothing at all once the staleness bound had passed, until open_for was over.
    stale = SYNC_INTERVAL + 0.1  # one interval, plus a round trip and scheduling
    while_open = [a for a in arrivals if opened_at < a.at < open_until]
    assert all(a.at <= opened_at + stale for a in while_open), while_open
    for i, seen in first_rejection.items():
        late = [a for a in while_open if a.process == i and a.at > seen + 0.05]
        assert not late, (i, seen, late)

    # Half-open: the first PROBES requests after open_for are the probes; the state
    # is decided only once both have answered (RECOVERY_DELAY after they arrived),
    # and until then no other request reached the server, fleet-wide, though other
    # callers asked (and were refused: "half_open").
    after = [a for a in arrivals if a.at >= open_until]
    probes = after[:PROBES]
    assert len(probes) == PROBES
    decided = max(a.at for a in probes) + RECOVERY_DELAY
    early = [a for a in after[PROBES:] if a.at < decided - 0.01]
    assert not early, (probes, early)
    refused = [c for c in everything if c.outcome == "rejected" and c.detail == "half_open"]
    assert refused, "no caller asked while the probes ran: the probe limit went untested"
    # A process refuses locally for one sync interval after it last asked Redis,
    # so it may still refuse half-open for that long after the decision.
    assert all(open_until - 0.05 <= c.start <= decided + SYNC_INTERVAL + 0.1 for c in refused), (
        refused
    )

    # Recovered: every process closed within a sync interval (plus slack) of the
    # decision, and every call any process started after that succeeded.
    settle = SYNC_INTERVAL + 0.2
    for i in range(PROCESSES):
        after_decision = [c for c in grouped[i] if c.start > decided + settle]
        assert len(after_decision) >= 3, i
        assert all(c.outcome == "ok" for c in after_decision), (i, after_decision)
    assert closed["state"] == "closed", closed

    first_ok = {
        i: min(c.start for c in grouped[i] if c.outcome == "ok" and c.start >= decided)
        for i in range(PROCESSES)
    }
    per_process = {i: sum(a.process == i for a in failing) for i in range(PROCESSES)}
    print(  # noqa: T201 -- the figures, shown with -s
        f"\nshared breaker: {PROCESSES} processes x {CALLERS} callers, min_calls {MIN_CALLS}, "
        f"open_for {OPEN_FOR} s, {PROBES} probes; {len(failing)} requests reached the failing "
        f"server (bound {bound}; per process {per_process}); opened "
        f"{opened_at - went:.2f} s after go; every process rejecting within {learned:.3f} s; "
        f"{len(while_open)} requests arrived while open, the last "
        f"{max((a.at - opened_at for a in while_open), default=0.0):.3f} s after it opened; "
        f"first probe {probes[0].at - open_until:.3f} s after open_for; "
        f"{len(refused)} calls refused half-open; every process's first success "
        f"{max(first_ok.values()) - decided:.3f} s after the decision; "
        f"{len(everything)} calls, {len(arrivals)} requests"
    )
