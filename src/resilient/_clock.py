"""Where every policy reads the time and waits.

The clock is the running event loop's: `now()` is the loop's monotonic time and
`sleep()` waits on the loop's timers, on asyncio and on trio alike. A clock is
injected where trio injects one, into the event loop: `resilient.testing` runs
loops in virtual time, so retries, backoff and timeouts take no real time in
tests, for our code and for the code of everyone who calls it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import weakref
from asyncio import AbstractEventLoop, BaseEventLoop, _get_running_loop
from threading import get_ident
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["clock_of", "hold", "now", "running_loop", "sleep", "wall"]

_last: list[tuple[Any, Any]] = [(None, None)]
"""The asyncio loop `running_loop` found last, with the function that reads its time.

One tuple, replaced whole, so another thread never reads one loop's clock with another loop.
"""


def running_loop() -> AbstractEventLoop | None:
    """The running asyncio event loop, or ``None`` (under trio, or outside any loop).

    What ``asyncio._get_running_loop()`` returns, which on Python 3.11 makes a
    ``getpid()`` system call every time (to notice a fork) and policies ask on
    every call. The loop found last is taken again while it runs in this thread
    (an asyncio loop records the thread that runs it, and a thread runs one loop
    at a time); a forked child forgets it.
    """
    loop = _last[0][0]
    if loop is not None and loop._thread_id == get_ident():  # noqa: SLF001
        return loop  # type: ignore[no-any-return]
    found = _get_running_loop()
    if isinstance(found, BaseEventLoop):
        _last[0] = (found, clock_of(found))
    return found


def clock_of(loop: AbstractEventLoop) -> Callable[[], float]:
    """The function that reads *loop*'s time, as cheaply as it can be read.

    asyncio's ``loop.time()`` is a Python method around ``time.monotonic()``: that is
    read directly, unless the loop keeps time its own way (a virtual clock does).
    """
    return time.monotonic if type(loop).time is BaseEventLoop.time else loop.time


os.register_at_fork(after_in_child=lambda: _last.__setitem__(0, (None, None)))

# Per trio MockClock: the wall time at its zero, and how many holds are open.
_trio_origins: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
_trio_holds: weakref.WeakKeyDictionary[Any, tuple[int, float]] = weakref.WeakKeyDictionary()


def now() -> float:
    """The running event loop's time, in seconds."""
    loop, clock = _last[0]
    if loop is not None and loop._thread_id == get_ident():  # noqa: SLF001
        return clock()  # type: ignore[no-any-return]  # the hot path: running_loop's own test
    loop = running_loop()
    if loop is None:
        return anyio.current_time()
    return loop.time()


def wall() -> float:
    """Seconds since the epoch, for times that are written down and read by other processes.

    A virtual clock keeps a wall clock of its own, moving with its virtual
    time, so that times persisted by the outbox come due in tests as they
    would in production.
    """
    loop = _get_running_loop()
    if loop is not None:
        wall_time = getattr(loop, "wall_time", None)
        if wall_time is not None:
            return float(wall_time())
        return time.time()
    clock = _trio_mock_clock()
    if clock is None:
        return time.time()
    origin = _trio_origins.get(clock)
    if origin is None:
        origin = _trio_origins[clock] = time.time() - clock.current_time()
    return origin + float(clock.current_time())


@contextlib.contextmanager
def hold() -> Iterator[None]:
    """Keep a virtual clock still while the caller waits for real work, such as a thread.

    A virtual clock jumps to the next timer whenever the loop would wait; a
    wait for a worker thread looks the same to it, so without a hold the
    deadlines around a database call in a thread would expire at once. Real
    clocks are unaffected.
    """
    loop = _get_running_loop()
    if loop is not None:
        hold_time = getattr(loop, "hold_time", None)
        if hold_time is None:
            yield
            return
        with hold_time():
            yield
        return
    clock = _trio_mock_clock()
    if clock is None:
        yield
        return
    count, threshold = _trio_holds.get(clock, (0, clock.autojump_threshold))
    _trio_holds[clock] = (count + 1, threshold)
    clock.autojump_threshold = float("inf")
    try:
        yield
    finally:
        count, threshold = _trio_holds[clock]
        if count == 1:
            del _trio_holds[clock]
            clock.autojump_threshold = threshold
        else:
            _trio_holds[clock] = (count - 1, threshold)


def _trio_mock_clock() -> Any:
    if "trio" not in sys.modules:
        return None
    import trio  # noqa: PLC0415 -- only when trio runs
    from trio.testing import MockClock  # noqa: PLC0415

    try:
        clock = trio.lowlevel.current_clock()
    except RuntimeError:
        return None
    return clock if isinstance(clock, MockClock) else None


async def sleep(seconds: float) -> None:
    """Wait *seconds* on the running event loop's clock."""
    await anyio.sleep(seconds)
