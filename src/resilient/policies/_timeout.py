"""`Timeout`: a deadline for everything inside it."""

from __future__ import annotations

import asyncio
import sys
from asyncio import CancelledError, _get_running_loop
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import DeadlineExceededError
from ..instrumentation._dispatch import TimeoutDetails
from ._validate import check_seconds

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._context import Context
    from .._pipeline import Step

__all__ = ["Timeout"]


class _Expiry:
    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        self.task.cancel()


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

    def __post_init__(self) -> None:
        check_seconds("Timeout", "seconds", self.seconds, positive=True)

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

    async def execute(self, next_step: Step, ctx: Context) -> Any:
        """Run *next_step* with the deadline; raise `DeadlineExceededError` when it passes."""
        loop = _get_running_loop()
        # Task.uncancel() (3.11) tells our own cancellation from anyone else's;
        # without it (and on trio) anyio keeps that account.
        if loop is None or sys.version_info < (3, 11):
            return await self._execute_anyio(next_step, ctx)
        # On asyncio arm one loop timer, as asyncio.timeout() does, with less
        # bookkeeping: this sits on the hot path of every call.
        deadline = loop.time() + self.seconds
        outer = ctx.deadline
        task = asyncio.current_task(loop)
        if task is None:  # pragma: no cover -- await always runs inside a task
            return await next_step(ctx)
        expiry = _Expiry(task)
        cancelling = task.cancelling()
        handle = loop.call_at(deadline, expiry)
        if outer is None or deadline < outer:
            ctx.deadline = deadline
        try:
            return await next_step(ctx)
        except CancelledError as exc:
            if expiry.fired:
                expiry.fired = False
                if task.uncancel() <= cancelling:
                    raise self._expired(ctx) from exc
            raise
        finally:
            handle.cancel()
            ctx.deadline = outer
            if expiry.fired:
                # It fired, but the call ended without seeing the cancellation.
                task.uncancel()

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
