"""`Bulkhead`: a cap on the calls running at once, with a bounded queue in front of it."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from .._clock import now
from .._exceptions import BulkheadFullError
from ._validate import check_count, check_seconds

if TYPE_CHECKING:
    from collections.abc import Hashable

    from .._context import Context
    from .._pipeline import Step

__all__ = ["Bulkhead", "BulkheadStatistics"]


@dataclass(frozen=True, slots=True)
class BulkheadStatistics:
    """A snapshot of a `Bulkhead`.

    Attributes:
        limit: The most calls that run at once.
        queue: The most calls that wait for a permit.
        running: Calls holding a permit now.
        waiting: Calls waiting in the queue now.
        admitted: Calls that got a permit, at once or after waiting.
        waited: Of those, the calls that waited in the queue first.
        rejected: Calls refused: the queue was full or their wait ran out.

    """

    limit: int
    queue: int
    running: int
    waiting: int
    admitted: int
    waited: int
    rejected: int


class _Permits:
    """The state every call through one `Bulkhead` shares.

    Plain Python rather than an anyio semaphore: a policy is built at import time,
    outside any event loop, and must then serve asyncio and trio alike. Only a
    call that has to wait makes an event, inside its own loop.
    """

    __slots__ = ("admitted", "queue", "rejected", "running", "waited")

    def __init__(self) -> None:
        self.running = 0
        # Waiters in arrival order. An OrderedDict rather than a deque: a waiter
        # that is cancelled or gives up leaves from the middle in O(1).
        self.queue: OrderedDict[anyio.Event, None] = OrderedDict()
        self.admitted = 0
        self.waited = 0
        self.rejected = 0

    def release(self) -> None:
        """Give up one permit: to the first waiter if there is one, else back to the pool."""
        if self.queue:
            # Handing the permit over directly, with `running` unchanged, keeps a
            # newcomer from taking it before the waiter wakes: the queue stays FIFO.
            # The event is set only here, together with leaving the queue, so a
            # set event means "this waiter holds a permit".
            waiter, _ = self.queue.popitem(last=False)
            waiter.set()
        else:
            self.running -= 1


@dataclass(frozen=True, eq=False)
class Bulkhead:
    """Let at most *limit* calls run at once; queue up to *queue* more, first come first served.

    A call that finds a free permit runs at once, without waiting on anything. One
    that finds all *limit* permits taken joins the queue, if it has room, and runs
    when a permit comes free, in arrival order; it is rejected at once with
    `BulkheadFullError` if the queue is full, and after *max_wait* seconds of
    waiting if no permit came by then. A bulkhead keeps a slow downstream from
    tying up every task (and every connection) of the caller, and the bounded
    queue turns overload into a fast, explicit rejection instead of a pile-up.

    The permit is given back however the call ends: a result, an exception, or a
    cancellation while it runs. A call cancelled while it waits (by an enclosing
    `Timeout`, say) leaves the queue; if a permit reached it at that same moment,
    the permit goes on to the next waiter, so none is ever lost.

    The state (permits, queue, counters) lives in this object and is shared by
    every call through it, in every pipeline that holds it: share one bulkhead
    to cap several operations together. With *per_partition*, each partition of
    the calls (each origin, under `resilient.http.Transport`) gets a pool of its
    own, so one slow host cannot take every permit; at most *max_partitions*
    idle pools are kept. It serves the calls of one event loop
    (asyncio or trio) at a time, in one process.

    ============  ===========  =================================================
    Option        Default      Allowed
    ============  ===========  =================================================
    ``limit``     (required)   an int >= 1
    ``queue``     0            an int >= 0: no queue, reject when all are busy
    ``max_wait``  ``None``     seconds >= 0, finite, or ``None``: wait as long
                               as the call's own deadline or cancellation allows
    ============  ===========  =================================================

    Args:
        limit: The most calls that run at once; the only positional option.
        queue: The most calls that wait for a permit.
        max_wait: The most seconds a call waits in the queue, or ``None``.
        per_partition: Keep one pool of permits per partition (origin); default
            False: one pool for all calls.
        max_partitions: The most idle per-partition pools kept, an int >= 1;
            default 1024.

    Raises:
        TypeError: If an option has the wrong type.
        ValueError: If an option is out of range.

    """

    limit: int
    _: KW_ONLY
    queue: int = 0
    max_wait: float | None = None
    per_partition: bool = False
    max_partitions: int = 1024
    _permits: _Permits = field(init=False, repr=False)
    _partitions: OrderedDict[Hashable, _Permits] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_count("Bulkhead", "limit", self.limit)
        check_count("Bulkhead", "queue", self.queue, minimum=0)
        check_seconds("Bulkhead", "max_wait", self.max_wait, allow_none=True)
        if not isinstance(self.per_partition, bool):
            msg = f"Bulkhead: per_partition must be a bool, got {self.per_partition!r}"
            raise TypeError(msg)
        check_count("Bulkhead", "max_partitions", self.max_partitions)
        object.__setattr__(self, "_permits", _Permits())
        object.__setattr__(self, "_partitions", OrderedDict())

    def describe(self) -> str:
        """E.g. ``Bulkhead(limit=64, queue=128)``."""
        wait = "" if self.max_wait is None else f", max_wait={self.max_wait:g}"
        per = ", per_partition" if self.per_partition else ""
        return f"Bulkhead(limit={self.limit}, queue={self.queue}{wait}{per})"

    def statistics(self, partition: Hashable | None = None) -> BulkheadStatistics:
        """A snapshot of the permits, the queue and the counters (of one partition's pool)."""
        permits = (
            self._permits if partition is None else self._partitions.get(partition, _Permits())
        )
        return BulkheadStatistics(
            limit=self.limit,
            queue=self.queue,
            running=permits.running,
            waiting=len(permits.queue),
            admitted=permits.admitted,
            waited=permits.waited,
            rejected=permits.rejected,
        )

    def _permits_for(self, partition: Hashable) -> _Permits:
        partitions = self._partitions
        permits = partitions.get(partition)
        if permits is None:
            if len(partitions) >= self.max_partitions:
                # Forget the least recently used idle pool, before the new one is
                # made (it would be idle too); a busy one must stay, or its limit
                # would not hold: with every pool busy, there are more pools.
                for key, old in partitions.items():
                    if not old.running and not old.queue:
                        del partitions[key]
                        break
            permits = partitions[partition] = _Permits()
        else:
            partitions.move_to_end(partition)
        return permits

    async def execute(self, next_step: Step, ctx: Context) -> Any:
        """Run *next_step* holding a permit; raise `BulkheadFullError` if none comes."""
        if self.per_partition and ctx.partition is not None:
            permits = self._permits_for(ctx.partition)
        else:
            permits = self._permits
        # Nobody waits while a permit is free (release() hands permits straight to
        # waiters), so a free permit is this call's without any await.
        if permits.running < self.limit:
            permits.running += 1
            permits.admitted += 1
        else:
            await self._wait(permits)
        # No await between getting the permit and this try: nothing can cancel
        # the call in between, so the permit is always released.
        try:
            return await next_step(ctx)
        finally:
            permits.release()

    async def _wait(self, permits: _Permits) -> None:
        """The slow path: return holding a permit, or raise `BulkheadFullError`."""
        if len(permits.queue) >= self.queue or self.max_wait == 0:
            permits.rejected += 1
            raise BulkheadFullError(self.limit, self.queue)
        waiter = anyio.Event()
        permits.queue[waiter] = None
        try:
            if self.max_wait is None:
                await waiter.wait()
            else:
                with anyio.CancelScope(deadline=now() + self.max_wait):
                    await waiter.wait()
        except BaseException:
            if waiter.is_set():
                # The permit arrived together with the cancellation: pass it on.
                permits.release()
            else:
                del permits.queue[waiter]
            raise
        # The wait can run out in the same instant as the permit arrives; a
        # permit in hand wins.
        if not waiter.is_set():
            del permits.queue[waiter]
            permits.rejected += 1
            raise BulkheadFullError(self.limit, self.queue)
        permits.admitted += 1
        permits.waited += 1
