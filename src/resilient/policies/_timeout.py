"""`Timeout`: a deadline for everything inside it."""

from __future__ import annotations

import asyncio
import sys
import weakref
from asyncio import CancelledError, current_task
from collections import deque
from dataclasses import dataclass, field
from threading import get_ident
from types import FunctionType
from typing import TYPE_CHECKING, Any

import anyio

from .._clock import clock_of, running_loop
from .._exceptions import DeadlineExceededError
from ..instrumentation._dispatch import TimeoutDetails
from ._validate import check_seconds

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .._context import Context
    from .._pipeline import Step

__all__ = ["Timeout"]


_RUNNING, _FIRED, _DONE = 0, 1, 2

# Task.uncancel() (3.11) tells our own cancellation from anyone else's; without it
# (and on trio) anyio keeps that account.
_NATIVE = sys.version_info >= (3, 11)

# The running task of a loop. On 3.11 asyncio.current_task() is a Python function
# around this lookup (a frame per call on the hot path); from 3.12 it is C.
_task_of: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = (
    asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]  # noqa: SLF001
    if isinstance(current_task, FunctionType)
    else current_task
)


# One call's deadline in a lane: [deadline, task, state], a list because it is
# made for every call and a list costs a fraction of an object with __init__.
_DEADLINE, _TASK, _STATE = 0, 1, 2


class _Lane:
    """The deadlines of one `Timeout`'s calls on one event loop, under one loop timer.

    Every call through one Timeout gets ``loop.time() + seconds``, so deadlines
    fall due in the order the calls started: a FIFO queue replaces asyncio's
    timer heap, and a call costs an append and a flag instead of a timer handle
    scheduled and cancelled (the bulk of asyncio.timeout()'s cost). One timer
    waits for the oldest deadline still running; when it fires it cancels every
    call whose deadline has passed and re-arms for the next.
    """

    __slots__ = ("armed_for", "clock", "entries", "handle", "limit", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clock = clock_of(loop)
        self.entries: deque[list[Any]] = deque()
        # Finished calls queued behind a long-running one would pile up: past this
        # length they are dropped, and the limit is set to twice what is left
        # (amortised O(1)).
        self.limit = 64
        self.handle: asyncio.TimerHandle | None = None
        self.armed_for = 0.0

    def arm(self, deadline: float) -> None:
        """Wake at *deadline* to cancel the calls due then."""
        self.armed_for = deadline
        self.handle = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        # The loop runs a timer slightly early (within its clock resolution), so
        # what is due is judged against the time the timer was armed for.
        due = max(self.loop.time(), self.armed_for)
        entries = self.entries
        while entries:
            entry = entries[0]
            if entry[_STATE] == _RUNNING:
                if entry[_DEADLINE] > due:
                    break
                entry[_STATE] = _FIRED
                entry[_TASK].cancel()
            entries.popleft()
        self.handle = None
        if entries:
            self.arm(entries[0][_DEADLINE])

    def compact(self) -> None:
        """Drop the finished calls queued behind running ones."""
        self.entries = deque(e for e in self.entries if e[_STATE] != _DONE)
        self.limit = 2 * len(self.entries) + 64


@dataclass(frozen=True, eq=False)
class Timeout:
    """Cancel everything inside this policy once *seconds* have passed.

    Where it stands decides what it bounds: first in a pipeline it is the total
    deadline of the call, retries and waits included; inside a `Retry` it bounds
    each attempt. Nested timeouts take the tighter deadline, and `Retry` never
    starts a wait that would cross the deadline of an enclosing `Timeout`.

    Cancellation is cooperative, through the event loop (asyncio or trio): the
    call is cancelled at the point where it waits, and its cleanup runs. When the
    timeout expires the call raises `DeadlineExceededError`, which is also a
    builtin `TimeoutError`; a cancellation that comes from elsewhere passes
    through untouched.

    Args:
        seconds: The time allowed, > 0 and finite.

    Raises:
        TypeError: If *seconds* is not a number.
        ValueError: If *seconds* is not > 0 and finite.

    """

    seconds: float
    _lanes: dict[asyncio.AbstractEventLoop, _Lane] = field(init=False, repr=False)
    _last: list[_Lane | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_seconds("Timeout", "seconds", self.seconds, positive=True)
        object.__setattr__(self, "_lanes", weakref.WeakKeyDictionary())
        # The lane last used: a process usually runs one loop, and a weak
        # dictionary lookup costs more than the rest of this policy.
        object.__setattr__(self, "_last", [None])

    def check_composition(self, outer: Sequence[object], inner: Sequence[object]) -> None:
        """Refuse a per-attempt timeout that a total timeout outside it makes moot."""
        del inner
        for i in range(len(outer) - 1, -1, -1):
            if getattr(outer[i], "runs_attempts", False):
                totals = [p for p in outer[:i] if isinstance(p, Timeout)]
                if totals and self.seconds >= min(t.seconds for t in totals):
                    total = min(t.seconds for t in totals)
                    msg = (
                        f"the attempt timeout Timeout({self.seconds:g}) inside "
                        f"{type(outer[i]).__name__} must be shorter than the total "
                        f"Timeout({total:g}) outside it, or no attempt could be retried"
                    )
                    raise ValueError(msg)
                return

    def describe(self) -> str:
        """E.g. ``Timeout(2)``."""
        return f"Timeout({self.seconds:g})"

    async def execute(self, next_step: Step, ctx: Context) -> Any:  # noqa: C901, PLR0912 -- the hot path, inlined on purpose
        """Run *next_step* with the deadline; raise `DeadlineExceededError` when it passes."""
        lane = self._last[0]
        # The lane used last serves while its loop runs in this thread: that loop is
        # then the running one (a thread runs one loop at a time).
        if lane is None or lane.loop._thread_id != get_ident():  # type: ignore[attr-defined]  # noqa: SLF001
            lane = self._lane_here()
            if lane is None:
                return await self._execute_anyio(next_step, ctx)
        task = _task_of(lane.loop)
        if task is None:  # pragma: no cover -- await always runs inside a task
            return await next_step(ctx)
        deadline = lane.clock() + self.seconds
        entry = [deadline, task, _RUNNING]
        cancelling = task.cancelling()
        # Inlined lane bookkeeping (this is every call's path): queue the deadline,
        # and arm the lane's one timer if it is idle.
        entries = lane.entries
        entries.append(entry)
        if lane.handle is None:
            lane.arm(deadline)
        outer = ctx.deadline
        if outer is None or deadline < outer:
            ctx.deadline = deadline
        try:
            return await next_step(ctx)
        except CancelledError as exc:
            # As asyncio.timeout() does: the cancellation is ours only if nobody
            # else asked for one too (uncancel() counts the requests).
            if entry[_STATE] == _FIRED:
                entry[_STATE] = _RUNNING
                if task.uncancel() <= cancelling:
                    raise self._expired(ctx) from exc
            raise
        finally:
            ctx.deadline = outer
            if entry[_STATE] == _FIRED:
                # It fired, but the call ended without seeing the cancellation.
                task.uncancel()
            entry[_STATE] = _DONE
            entries = lane.entries  # compact() may have replaced the queue
            if entries and entries[0] is entry:
                # The oldest call ended (with calls one at a time, the only one):
                # drop it and the finished calls queued behind it.
                entries.popleft()
                while entries and entries[0][_STATE] == _DONE:
                    entries.popleft()
            elif len(entries) > lane.limit:
                lane.compact()
            # The timer stays armed even when nothing runs: re-arming it for each
            # call would cost what the lane saves; a stale timer fires once, idle.

    def _lane_here(self) -> _Lane | None:
        """The lane for the running asyncio loop, made on first use; None: no lanes here.

        Lanes need ``Task.uncancel()`` (3.11) and an asyncio loop; under trio, or
        on 3.10, the call takes anyio's cancel scope instead.
        """
        loop = running_loop()
        if loop is None or not _NATIVE:
            return None
        lane = self._lanes.get(loop)
        if lane is None:
            lane = self._lanes[loop] = _Lane(loop)
        if isinstance(loop, asyncio.BaseEventLoop):
            # Only such a loop says which thread runs it (the fast path's test).
            self._last[0] = lane
        return lane

    async def _execute_anyio(self, next_step: Step, ctx: Context) -> Any:
        deadline = anyio.current_time() + self.seconds
        outer = ctx.deadline
        if outer is None or deadline < outer:
            ctx.deadline = deadline
        try:
            with anyio.CancelScope(deadline=deadline):
                return await next_step(ctx)
        finally:
            ctx.deadline = outer
        # Reached only when the scope caught its own cancellation.
        raise self._expired(ctx)

    def _expired(self, ctx: Context) -> DeadlineExceededError:
        hooks = ctx.dispatch.on_timeout
        if hooks:
            details = TimeoutDetails(ctx.name, self.seconds, ctx.attempt)
            for hook in hooks:
                hook(details)
        return DeadlineExceededError(self.seconds)
