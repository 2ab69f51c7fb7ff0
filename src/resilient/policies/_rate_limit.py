"""`RateLimiter`: at most *rate* calls per second, with bursts, by GCRA; optionally per key."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from .._clock import now, sleep
from .._exceptions import RateLimitedError
from ._shared import SharedState
from ._validate import check_count, check_seconds

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from .._context import Context
    from .._pipeline import Step

__all__ = ["RateLimiter", "RateLimiterStatistics"]

# Float sums of the same intervals can differ in their last bits (0.1 * 3 is not
# 0.3), so a call less than a nanosecond ahead of its slot counts as on time:
# otherwise it would be refused, or sleep again, for a rounding error.
_EARLY = 1e-9


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    """A snapshot of a `RateLimiter`.

    Attributes:
        admitted: Calls let through, at once or after waiting.
        waited: Of those, the calls that waited for their slot first.
        rejected: Calls refused because their slot was too far away.
        waiting: Calls waiting for their slot now.
        keys: For a keyed limiter, how many keys it holds (at most *max_keys*); else 1.

    """

    admitted: int
    waited: int
    rejected: int
    waiting: int
    keys: int


class _Cell:
    """The GCRA state of one limit (the only one, or one key's)."""

    __slots__ = ("queue", "tat")

    def __init__(self) -> None:
        # The theoretical arrival time: when the next call would be due if calls
        # came exactly at the rate. -inf: no call yet, the full burst is free.
        self.tat = -math.inf
        # Calls waiting for a slot, in arrival order; made by the first that waits.
        self.queue: OrderedDict[anyio.Event, None] | None = None


class _Counters:
    __slots__ = ("admitted", "rejected", "waited", "waiting")

    def __init__(self) -> None:
        self.admitted = 0
        self.waited = 0
        self.rejected = 0
        self.waiting = 0


@dataclass(frozen=True, eq=False)
class RateLimiter:
    """Let calls through at *rate* per second on average, with bursts of up to *burst*.

    This is GCRA, the generic cell rate algorithm: a token bucket of *burst*
    tokens refilled at *rate* per second, kept as a single timestamp (the
    theoretical arrival time) rather than a token count, so every call costs a
    comparison and an addition. A fresh limiter admits *burst* calls at once,
    then one every ``1 / rate`` seconds. For any two admitted calls at times
    ``s <= e``, the calls admitted in ``[s, e]`` number at most
    ``burst + rate * (e - s)``. For 100 calls a minute write ``rate=100 / 60``.

    A call whose slot is free runs at once, without sleeping. Otherwise it waits
    for its slot, in arrival order, if the slot is at most *max_wait* seconds away
    (and before the deadline of an enclosing `Timeout`: a wait that could only end
    in a timeout is not started); if not, it is rejected at once with
    `RateLimitedError`, whose ``retry_after`` says how many seconds until a slot
    (`Retry` waits that long if it retries the error). A waiting call takes its
    slot only when it runs, so one cancelled while it waits uses up nothing.

    With *key*, each key (a user, a tenant, a host, computed from the call's
    `Context`) gets a limit of its own. At most *max_keys* keys are held; the one
    used least recently is then forgotten, and a forgotten key starts fresh, with
    its full burst.

    The state lives in this object and is shared by every call through it, in
    every pipeline that holds it. It serves the calls of one event loop (asyncio
    or trio) at a time, in one process; with *shared*
    (`resilient.state.RedisState`), the limit is one for every process that
    names it: each call takes its slot from Redis (GCRA in a script, on the
    server's clock), and waiting calls ask again when their slot should be free.

    ============  ============  ==============================================
    Option        Default       Allowed
    ============  ============  ==============================================
    ``rate``      (required)    calls per second: a finite number > 0
    ``burst``     1             an int >= 1: calls allowed at once
    ``max_wait``  0.0           seconds >= 0, finite: 0 rejects at once
    ``key``       ``None``      a callable taking the `Context`, returning a
                                hashable key; ``None``: one limit for all
    ``max_keys``  10 000        an int >= 1
    ``name``      ``None``      a str: the limit's name (required when shared)
    ``shared``    ``None``      a shared state; ``None``: this process only
    ============  ============  ==============================================

    Args:
        rate: Calls per second, on average; the only positional option.
        burst: Calls that may run at once after a quiet spell.
        max_wait: The most seconds a call waits for its slot.
        key: Computes the key of a call; calls with equal keys share a limit.
        max_keys: The most keys held at once (used only with *key*).
        name: Names the limit; processes share a limit by name.
        shared: Where a limit shared by many processes lives.

    Raises:
        TypeError: If an option has the wrong type.
        ValueError: If an option is out of range.

    """

    rate: float
    _: KW_ONLY
    burst: int = 1
    max_wait: float = 0.0
    key: Callable[[Context], Hashable] | None = None
    max_keys: int = 10_000
    name: str | None = None
    shared: SharedState | None = None
    _interval: float = field(init=False, repr=False)
    _tolerance: float = field(init=False, repr=False)
    _cell: _Cell = field(init=False, repr=False)
    _cells: OrderedDict[Hashable, _Cell] = field(init=False, repr=False)
    _counters: _Counters = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_seconds("RateLimiter", "rate", self.rate, positive=True)
        check_count("RateLimiter", "burst", self.burst)
        check_seconds("RateLimiter", "max_wait", self.max_wait)
        if self.key is not None and not callable(self.key):
            msg = (
                "RateLimiter: key must be a callable taking the Context, or None; "
                f"got {self.key!r} ({type(self.key).__name__})"
            )
            raise TypeError(msg)
        check_count("RateLimiter", "max_keys", self.max_keys)
        if self.shared is not None:
            if not isinstance(self.shared, SharedState):
                msg = (
                    "RateLimiter: shared must be a shared state such as "
                    f"resilient.state.RedisState, or None; got {self.shared!r}"
                )
                raise TypeError(msg)
            if not isinstance(self.name, str) or not self.name:
                msg = "RateLimiter: a shared limit needs a name: processes share it by name"
                raise ValueError(msg)
        interval = 1.0 / self.rate
        object.__setattr__(self, "_interval", interval)
        # How far ahead of the steady schedule a call may come: the burst.
        object.__setattr__(self, "_tolerance", (self.burst - 1) * interval)
        object.__setattr__(self, "_cell", _Cell())
        object.__setattr__(self, "_cells", OrderedDict())
        object.__setattr__(self, "_counters", _Counters())

    def describe(self) -> str:
        """E.g. ``RateLimiter(rate=10, burst=5, max_wait=1)``."""
        parts = [f"rate={self.rate:g}", f"burst={self.burst}"]
        if self.max_wait:
            parts.append(f"max_wait={self.max_wait:g}")
        if self.key is not None:
            parts.append(f"keyed, max_keys={self.max_keys}")
        if self.shared is not None:
            parts.append(f"name={self.name!r}, shared={self.shared!r}")
        return f"RateLimiter({', '.join(parts)})"

    def statistics(self) -> RateLimiterStatistics:
        """A snapshot of the counters and of the keys held."""
        counters = self._counters
        return RateLimiterStatistics(
            admitted=counters.admitted,
            waited=counters.waited,
            rejected=counters.rejected,
            waiting=counters.waiting,
            keys=1 if self.key is None else len(self._cells),
        )

    async def execute(self, next_step: Step, ctx: Context) -> Any:
        """Run *next_step* in its slot: at once, after a wait, or not (`RateLimitedError`)."""
        if self.shared is not None:
            await self._take_shared(self.shared, ctx)
            return await next_step(ctx)
        key = self.key
        cell = self._cell if key is None else self._cell_for(key(ctx))
        t = now()
        tat = cell.tat
        # Not max(): this runs on every call and max() costs several times more.
        tat = tat if tat > t else t  # noqa: FURB136
        # A call that finds others waiting queues behind them even if its own
        # slot looks free: the first waiter is about to take it.
        if not cell.queue and t + _EARLY >= tat - self._tolerance:
            cell.tat = tat + self._interval
            self._counters.admitted += 1
        else:
            await self._wait(cell, t, ctx)
        return await next_step(ctx)

    async def _take_shared(self, shared: SharedState, ctx: Context) -> None:
        """Take a slot of the fleet's limit, waiting for it as the local limit would."""
        name = self.name or ""
        slot = shared.key("rate", name, None if self.key is None else self.key(ctx))
        counters = self._counters
        start = now()
        while True:
            wait = await shared.take_slot(slot, self._interval, self._tolerance)
            t = now()
            if wait <= 0:
                counters.admitted += 1
                if t > start:
                    counters.waited += 1
                return
            deadline = ctx.deadline
            if t - start + wait > self.max_wait + _EARLY or (
                deadline is not None and t + wait >= deadline
            ):
                counters.rejected += 1
                raise RateLimitedError(wait)
            counters.waiting += 1
            try:
                await sleep(wait)
            finally:
                counters.waiting -= 1

    def _cell_for(self, key: Hashable) -> _Cell:
        cells = self._cells
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _Cell()
            if len(cells) > self.max_keys:
                # Forget the least recently used key. Calls already waiting on it
                # keep its old schedule; new calls start from a fresh one.
                cells.popitem(last=False)
        else:
            cells.move_to_end(key)
        return cell

    async def _wait(self, cell: _Cell, t: float, ctx: Context) -> None:
        """The slow path: return in the call's slot, or raise `RateLimitedError` at once."""
        counters = self._counters
        queue = cell.queue
        ahead = len(queue) if queue else 0
        # Each call waiting ahead takes one interval after the first free slot.
        wait = max(cell.tat, t) - self._tolerance + ahead * self._interval - t
        deadline = ctx.deadline
        # A wait that ends at or after the deadline could only end in a timeout.
        if wait > self.max_wait + _EARLY or (deadline is not None and t + wait >= deadline):
            counters.rejected += 1
            raise RateLimitedError(wait)
        if queue is None:
            queue = cell.queue = OrderedDict()
        # Only the first waiter sleeps until its slot; the others wait for their
        # turn. The slot is taken when the call runs, never reserved ahead, so a
        # waiter that leaves frees its place in the queue and nothing else.
        turn = anyio.Event()
        queue[turn] = None
        counters.waiting += 1
        try:
            if ahead:
                await turn.wait()
            while True:
                t = now()
                tat = max(cell.tat, t)
                delay = tat - self._tolerance - t
                if delay <= _EARLY:
                    break
                await sleep(delay)
        except BaseException:
            counters.waiting -= 1
            first = next(iter(queue)) is turn
            del queue[turn]
            if first and queue:
                next(iter(queue)).set()
            raise
        cell.tat = tat + self._interval
        counters.waiting -= 1
        counters.waited += 1
        counters.admitted += 1
        del queue[turn]  # it was first in the queue
        if queue:
            next(iter(queue)).set()
