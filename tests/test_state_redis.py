"""Shared state in a real Redis: breakers, budgets and rate limiters seen by many processes.

Each `RedisState` object stands for one process (its own client, its own local views);
the multi-process proof is in test_state_fleet.py. Time is virtual: the scripts take
the time from the caller's wall clock, which a virtual loop keeps.
"""

from __future__ import annotations

import itertools
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import resilient as rs
from backends import REDIS_URL, redis_url
from resilient._clock import hold, sleep
from resilient.state import RedisState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> object:
    """redis.asyncio runs on asyncio."""
    return ("asyncio", {"loop_factory": rs.testing.VirtualEventLoop})


@pytest.fixture
async def fleet() -> AsyncIterator[Callable[[], RedisState]]:
    """Makes "processes": RedisState objects that share one fresh namespace."""
    redis_url()
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    made: list[RedisState] = []

    def process() -> RedisState:
        state = RedisState(REDIS_URL, namespace=namespace, sync_interval=0.1)
        made.append(state)
        return state

    yield process
    for state in made:
        await state.aclose()
    with hold():  # real I/O: keep the virtual clock (and redis-py's timeouts) still
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(f"resilient:{namespace}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def breaker(state: RedisState, **options: Any) -> rs.CircuitBreaker:
    options.setdefault("window", rs.TimeWindow(30.0))
    options.setdefault("min_calls", 10)
    options.setdefault("open_for", 5.0)
    return rs.CircuitBreaker(name="payments", shared=state, **options)


class Downstream:
    def __init__(self) -> None:
        self.calls = 0
        self.healthy = False
        self.delay = 0.0

    async def __call__(self) -> str:
        self.calls += 1
        if self.delay:
            await sleep(self.delay)
        if not self.healthy:
            raise ConnectionError("down")
        return "ok"


async def call(policy: rs.CircuitBreaker, downstream: Downstream) -> str:
    try:
        return await rs.Pipeline(policy).run(downstream)
    except ConnectionError:
        return "failed"
    except rs.CircuitOpenError:
        return "rejected"


async def test_failures_in_one_process_open_the_circuit_for_all(fleet: Any) -> None:
    a, b = breaker(fleet()), breaker(fleet())
    downstream = Downstream()
    outcomes = []
    for _ in range(30):
        outcomes.append(await call(a, downstream))
        await sleep(0.01)
    assert outcomes.count("failed") == 10  # min_calls, then A's own view opens at the sync
    await sleep(0.2)
    assert a.state() is rs.CircuitState.OPEN
    assert await call(b, downstream) == "rejected"  # B never saw a failure itself
    assert downstream.calls == 10


async def test_a_new_process_joins_the_fleets_state_rather_than_resetting_it(fleet: Any) -> None:
    a = breaker(fleet())
    downstream = Downstream()
    for _ in range(12):
        await call(a, downstream)
    await sleep(0.3)
    assert a.state() is rs.CircuitState.OPEN
    before = downstream.calls
    latecomer = breaker(fleet())  # starts while the fleet's circuit is open
    assert await call(latecomer, downstream) == "rejected"
    assert downstream.calls == before
    assert a.state() is rs.CircuitState.OPEN


async def test_half_open_probes_are_limited_fleet_wide_and_success_closes_all(
    fleet: Any,
) -> None:
    breakers = [breaker(fleet(), half_open_calls=2) for _ in range(3)]
    downstream = Downstream()
    for _ in range(12):
        await call(breakers[0], downstream)
    await sleep(0.3)
    await sleep(5.0)  # the open period ends
    downstream.healthy = True
    downstream.delay = 1.0  # the probes take a second: everyone else arrives meanwhile
    before = downstream.calls
    outcomes: list[str] = []

    async def caller(b: rs.CircuitBreaker) -> None:
        outcomes.append(await call(b, downstream))

    async with anyio.create_task_group() as group:
        for b in breakers:
            for _ in range(4):
                group.start_soon(caller, b)
    assert downstream.calls - before == 2  # two probes, fleet-wide
    assert sorted(outcomes) == ["ok"] * 2 + ["rejected"] * 10
    downstream.delay = 0.0
    await sleep(0.5)
    # Each process learns at its next call that the probes closed the fleet's circuit.
    assert [await call(b, downstream) for b in breakers] == ["ok"] * 3
    assert [b.state() for b in breakers] == [rs.CircuitState.CLOSED] * 3


async def test_a_failed_probe_opens_the_circuit_again_for_everyone(fleet: Any) -> None:
    a, b = breaker(fleet()), breaker(fleet())
    downstream = Downstream()
    for _ in range(12):
        await call(a, downstream)
    await sleep(5.3)
    assert await call(b, downstream) == "failed"  # B's probe fails
    await sleep(0.3)
    assert a.state() is rs.CircuitState.OPEN
    assert await call(a, downstream) == "rejected"


async def test_listeners_hear_the_fleets_transitions(fleet: Any) -> None:
    heard: list[tuple[rs.CircuitState, rs.CircuitState]] = []
    a = breaker(fleet())
    b = breaker(fleet(), listeners=[lambda t: heard.append((t.old, t.new))])
    downstream = Downstream()
    await call(b, downstream)  # B learns the fleet's (closed) state: no transition
    for _ in range(12):
        await call(a, downstream)
    await sleep(0.3)
    await call(b, downstream)
    assert heard == [(rs.CircuitState.CLOSED, rs.CircuitState.OPEN)]


def test_a_shared_breaker_needs_a_time_window_and_a_name() -> None:
    state = RedisState(REDIS_URL)
    with pytest.raises(TypeError, match="needs a TimeWindow"):
        rs.CircuitBreaker(name="x", shared=state, window=rs.CountWindow(10), min_calls=5)
    with pytest.raises(ValueError, match="needs a name"):
        rs.CircuitBreaker(shared=state)
    with pytest.raises(TypeError, match="shared must be a shared state"):
        rs.CircuitBreaker(name="x", shared="redis://")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"namespace": ""}, ValueError, "namespace"),
        ({"namespace": "a b"}, ValueError, "namespace"),
        ({"sync_interval": 0}, ValueError, "sync_interval"),
        ({"ttl": -1}, ValueError, "ttl"),
    ],
)
def test_invalid_redis_state_options_name_the_field(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        RedisState(REDIS_URL, **kwargs)


def test_the_client_must_be_a_redis_client_or_a_url() -> None:
    with pytest.raises(TypeError, match="client must be"):
        RedisState(42)


async def test_the_retry_budget_is_shared(fleet: Any) -> None:
    first, second = fleet(), fleet()
    a = first.retry_budget("payments", max_tokens=5.0)
    b = second.retry_budget("payments", max_tokens=5.0)
    await first.refresh()  # hears the fleet's balance: a full bucket
    assert [a.try_retry() for _ in range(6)] == [True] * 5 + [False]
    await sleep(0.3)  # A settles: the fleet has no tokens left
    b.record_success()
    assert not b.try_retry()  # B has not heard the fleet yet: it does not guess
    await sleep(0.3)  # B settles: the fleet's 0 plus B's 0.2
    assert b.statistics().tokens == pytest.approx(0.2)
    for _ in range(4):
        b.record_success()
    assert b.try_retry()  # 1.0 token: one retry
    assert not b.try_retry()


async def test_retry_uses_a_shared_budget(fleet: Any) -> None:
    state = fleet()
    budget = state.retry_budget("calls", max_tokens=2.0)
    await state.refresh()
    downstream = Downstream()
    retry = rs.Retry(attempts=5, backoff=rs.Backoff.constant(0.01), budget=budget)
    with pytest.raises(ConnectionError):
        await rs.Pipeline(retry).run(downstream)
    assert downstream.calls == 3  # the first attempt and two retries the budget paid for


async def test_the_rate_limit_is_shared(fleet: Any) -> None:
    limiters = [rs.RateLimiter(10, burst=5, name="partner", shared=fleet()) for _ in range(3)]

    async def admitted(limiter: rs.RateLimiter) -> int:
        async def ok() -> None:
            return None

        try:
            await rs.Pipeline(limiter).run(ok)
        except rs.RateLimitedError:
            return 0
        return 1

    first = [await admitted(limiter) for _ in range(4) for limiter in limiters]
    assert sum(first) == 5  # the burst, fleet-wide: 12 calls at one instant
    await sleep(1.0)
    second = [await admitted(limiter) for limiter in limiters for _ in range(10)]
    assert sum(second) == 5  # a second refills ten slots, up to the burst of five


async def test_a_shared_limiter_waits_for_its_slot(fleet: Any) -> None:
    limiter = rs.RateLimiter(2, name="slow", shared=fleet(), max_wait=1.0)
    times = []

    async def stamp() -> None:
        times.append(rs._clock.now())

    for _ in range(3):
        await rs.Pipeline(limiter).run(stamp)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.49 <= gap <= 0.52 for gap in gaps), gaps
    assert limiter.statistics().waited == 2


def test_a_shared_limiter_needs_a_name() -> None:
    with pytest.raises(ValueError, match="needs a name"):
        rs.RateLimiter(10, shared=RedisState(REDIS_URL))


async def test_keys_carry_the_namespace_and_expire(fleet: Any) -> None:
    state = fleet()
    b = breaker(state)
    downstream = Downstream()
    await call(b, downstream)
    await sleep(0.3)
    with hold():
        keys = sorted(
            [key async for key in state.client.scan_iter(f"resilient:{state.namespace}:*")]
        )
        ttl = await state.client.ttl(keys[0])
    assert keys == [f"resilient:{state.namespace}:breaker:{{payments}}:w".encode()]
    assert 0 < ttl <= 86_400


async def test_an_idle_process_reports_the_fleets_state_not_its_ask_first_view(
    fleet: Any,
) -> None:
    b = breaker(fleet())
    downstream = Downstream()
    downstream.healthy = True
    assert await call(b, downstream) == "ok"
    await sleep(5.0)  # idle: the view is no longer trusted, the next call asks first
    assert b.state() is rs.CircuitState.CLOSED
    assert b.statistics().state is rs.CircuitState.CLOSED
    assert await call(b, downstream) == "ok"
