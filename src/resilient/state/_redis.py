"""`RedisState`: breakers, retry budgets and rate limiters shared by every process of a fleet."""

from __future__ import annotations

import asyncio
import math
import re
import weakref
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog

from .._clock import hold, now, wall
from ..policies._validate import check_seconds
from . import _scripts

if TYPE_CHECKING:
    from collections.abc import Hashable

    from ..policies._circuit import CircuitSettings, CircuitState
    from ._budget import SharedRetryBudget
    from ._circuit import SharedCircuit

__all__ = ["RedisState"]

_log = structlog.get_logger("resilient.state")

_NAMESPACE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,100}")

_SCRIPTS: Final = (
    "BREAKER_SYNC",
    "BREAKER_PROBE",
    "BREAKER_RESULT",
    "BREAKER_RELEASE",
    "BUDGET",
    "GCRA",
)

_IDLE_ROUNDS: Final = 50
"""Sync rounds with nothing to do before the sync task ends (it restarts on demand)."""


class _Member(Protocol):
    """Something the sync task keeps in step with Redis."""

    def wants_sync(self, at: float) -> bool: ...

    def idle(self, at: float) -> None: ...

    async def sync(self, state: RedisState) -> None: ...


class RedisState:
    """Shared state for a fleet: circuit breakers, retry budgets and rate limiters in Redis.

    ::

        state = resilient.state.RedisState("redis://cache:6379/0", namespace="checkout")
        breaker = resilient.CircuitBreaker(name="payments", shared=state)
        limiter = resilient.RateLimiter(50, name="partner-api", shared=state)
        budget = state.retry_budget("payments")

    Every process that names the same namespace and name shares one state. The
    hot path pays no round trip: a shared breaker admits calls from its local view
    of the fleet's state and records outcomes in batches; a background task pushes
    them and refreshes the view every *sync_interval* while there is traffic (at
    once when this process's own failures would open the circuit). So a state
    change made anywhere is seen everywhere within *sync_interval* plus a round
    trip: that is the staleness bound. A process without traffic stops trusting
    its view after two intervals: its next call asks Redis first (one round trip),
    and its retry budget makes no retries until it has heard the fleet's balance.
    Half-open probes are granted by Redis, so at most ``half_open_calls`` run
    fleet-wide. Times come from each process's wall clock, so hosts' clocks must
    agree (NTP) to well within an open period. A rate limiter asks Redis for every
    slot (GCRA, exact). State is only ever written by outcomes, never by a process
    starting: a new process joins the fleet's state, it does not reset it.

    Keys live under ``resilient:{namespace}:`` and expire after *ttl* seconds
    without traffic. Runs on asyncio (``redis.asyncio``); needs the ``redis``
    extra.

    Args:
        client: A ``redis.asyncio.Redis`` client, or a Redis URL.
        namespace: Separates fleets (or environments) sharing one Redis.
        sync_interval: Seconds between syncs of local views while there is traffic.
        ttl: Seconds a key outlives its last use.

    Raises:
        TypeError: If *client* is neither a URL nor a client.
        ValueError: If *namespace* or a number is out of range.

    """

    def __init__(
        self,
        client: Any,
        *,
        namespace: str = "default",
        sync_interval: float = 0.1,
        ttl: float = 86_400.0,
    ) -> None:
        if isinstance(client, str):
            try:
                import redis.asyncio  # noqa: PLC0415 -- an optional extra
            except ImportError:  # pragma: no cover -- depends on the installation
                msg = "RedisState needs redis-py: pip install 'resilient-client[redis]'"
                raise ImportError(msg) from None
            client = redis.asyncio.Redis.from_url(client)
        elif not callable(getattr(client, "register_script", None)):
            msg = f"RedisState: client must be a redis.asyncio.Redis or a URL, got {client!r}"
            raise TypeError(msg)
        given: Any = namespace
        if not isinstance(given, str) or not _NAMESPACE.fullmatch(given):
            msg = (
                "RedisState: namespace must be 1-100 characters of letters, digits and "
                f"_.:-, got {namespace!r}"
            )
            raise ValueError(msg)
        check_seconds("RedisState", "sync_interval", sync_interval, positive=True)
        check_seconds("RedisState", "ttl", ttl, positive=True)
        self.client = client
        self.namespace = namespace
        self.sync_interval = float(sync_interval)
        self.ttl = max(1, math.ceil(ttl))
        self.scripts = {name: client.register_script(getattr(_scripts, name)) for name in _SCRIPTS}
        self._members: weakref.WeakSet[Any] = weakref.WeakSet()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"RedisState(namespace={self.namespace!r})"

    def key(self, kind: str, name: str, part: Hashable | None = None) -> str:
        """The Redis key of a shared object (``{...}`` keeps a circuit's keys in one slot)."""
        label = name if part is None else f"{name}[{part!r}]"
        return f"resilient:{self.namespace}:{kind}:{{{label}}}"

    # Factories

    def circuit(
        self, settings: CircuitSettings, key: Hashable | None, state: CircuitState, window: Any
    ) -> SharedCircuit:
        """A circuit of *settings*' breaker whose state is the fleet's (for `CircuitBreaker`)."""
        from ._circuit import SharedCircuit  # noqa: PLC0415 -- imports the policies layer

        circuit = SharedCircuit(
            settings, key, state, self, seconds=window.seconds, buckets=window.buckets
        )
        self._members.add(circuit)
        return circuit

    def retry_budget(
        self, name: str, *, ratio: float = 0.2, max_tokens: float = 10.0
    ) -> SharedRetryBudget:
        """A `RetryBudget` whose tokens every process naming *name* shares.

        Give it to `Retry(budget=...)`. Tokens are spent and earned locally and
        settled with Redis every *sync_interval*, so the fleet may overspend by
        what its processes retry within one interval.
        """
        from ._budget import SharedRetryBudget  # noqa: PLC0415 -- imports the policies layer

        budget = SharedRetryBudget(self, name, ratio=ratio, max_tokens=max_tokens)
        self._members.add(budget)
        return budget

    # Rate limiting

    async def take_slot(self, key: str, interval: float, tolerance: float) -> float:
        """Take a rate-limit slot now (0.0) or say how many seconds until one is free."""
        ttl = max(1, math.ceil(interval + tolerance) + 1)
        with hold():
            allowed, wait = await self.scripts["GCRA"](
                keys=[key], args=[wall(), repr(interval), repr(tolerance), ttl]
            )
        return 0.0 if int(allowed) == 1 else float(wait)

    # The sync task

    def wake(self) -> None:
        """Ask the sync task to run now (starting it if it is not running)."""
        self.ensure()
        assert self._wake is not None  # noqa: S101 -- set with the task
        self._wake.set()

    def ensure(self) -> None:
        """Make sure the sync task runs: something waits for its next round."""
        task = self._task
        if task is None or task.done():
            loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="resilient-redis-sync")

    async def _run(self) -> None:
        idle = 0
        wake = self._wake
        assert wake is not None  # noqa: S101 -- set before the task starts
        loop = asyncio.get_running_loop()
        while idle < _IDLE_ROUNDS:
            timer = loop.call_later(self.sync_interval, wake.set)
            try:
                await wake.wait()
            finally:
                timer.cancel()
            wake.clear()
            at = now()
            due: list[_Member] = []
            for member in self._members:
                if member.wants_sync(at):
                    due.append(member)
                else:
                    member.idle(at)
            idle = 0 if due else idle + 1
            for member in due:
                await self._sync(member)

    async def _sync(self, member: _Member) -> None:
        try:
            await member.sync(self)
        except Exception as exc:  # noqa: BLE001 -- Redis down: keep the local view
            _log.warning(
                "state.sync_failed", error=f"{type(exc).__name__}: {exc}", state=repr(self)
            )

    async def refresh(self) -> None:
        """Sync every shared breaker and budget of this process now (say, at start-up)."""
        for member in list(self._members):
            await self._sync(member)

    async def aclose(self) -> None:
        """Stop syncing and close the client."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            # wait(), not `await task`: the task's cancellation is not ours to raise,
            # and a cancellation of the caller must not be swallowed.
            await asyncio.wait([task])
        await self.client.aclose()
