"""Event loops whose clock is virtual: waits take no real time."""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import time
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Mapping

    from _typeshed import FileDescriptorLike

__all__ = ["VirtualEventLoop", "anyio_backends", "run"]

T = TypeVar("T")

_HOLD_POLL = 0.05
"""Real seconds between checks of the clock while time is held."""


class _JumpingSelector(selectors.BaseSelector):
    """A selector that, instead of blocking until the next timer, moves time to it."""

    def __init__(self, loop: VirtualEventLoop, autojump_threshold: float) -> None:
        self._selector = selectors.DefaultSelector()
        self._loop = loop
        self._threshold = autojump_threshold

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._selector.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._selector.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._selector.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        # The loop passes the time until its next timer (None: no timer, so only
        # I/O can wake it; 0: work is ready). Real I/O still wins: poll it, for
        # up to the threshold of real time, before jumping.
        if timeout is None or timeout <= 0:
            return self._selector.select(timeout)
        if self._loop.holding:
            # Real work (a thread) is under way: wait for it in real time.
            return self._selector.select(min(timeout, _HOLD_POLL))
        events = self._selector.select(min(timeout, self._threshold))
        if not events:
            self._loop.advance(timeout)
        return events

    def close(self) -> None:
        self._selector.close()

    def get_key(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._selector.get_key(fileobj)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._selector.get_map()


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose clock jumps to the next timer whenever it would wait.

    Like ``trio.testing.MockClock(autojump_threshold=0)``: sleeps, backoff waits,
    ``asyncio.timeout``, ``anyio.fail_after`` and `resilient.Timeout` all behave as in
    real time, in order, but a test that waits an hour finishes at once. Real I/O
    (sockets, threads) still works: before each jump the loop polls for I/O for up
    to *autojump_threshold* real seconds, so give tests that talk to real servers a
    threshold longer than those servers take to answer.

    Use it through `run` or `anyio_backends`, or as
    ``asyncio.Runner(loop_factory=VirtualEventLoop)``.

    Args:
        autojump_threshold: Real seconds to wait for I/O before moving time on.
        start: The loop's time at start.

    """

    def __init__(self, autojump_threshold: float = 0.0, start: float = 0.0) -> None:
        self._virtual_now = float(start)
        self._wall_origin = time.time() - self._virtual_now
        self._holds = 0
        super().__init__(_JumpingSelector(self, max(0.0, autojump_threshold)))
        if autojump_threshold < 0:
            # Checked after the loop is built: a half-built loop fails in __del__.
            self.close()
            msg = f"autojump_threshold must be >= 0, got {autojump_threshold!r}"
            raise ValueError(msg)

    def time(self) -> float:
        """The virtual time, in seconds."""
        return self._virtual_now

    @property
    def holding(self) -> bool:
        """Whether time is held still (see `hold_time`)."""
        return self._holds > 0

    @contextlib.contextmanager
    def hold_time(self) -> Iterator[None]:
        """Keep time still for the duration: waits for I/O block in real time instead.

        For waits on real work that the loop cannot see as a timer, such as a
        worker thread: `resilient.stores.SQLiteStore` holds time while SQLite
        works, so leases and timeouts around it do not expire at once.
        """
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1

    def wall_time(self) -> float:
        """Seconds since the epoch on this loop's clock: real at start, then virtual."""
        return self._wall_origin + self._virtual_now

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 -- asyncio's signature
        """Join the executor's threads, in real time.

        Python 3.13 bounds this join with a timeout on the loop's clock; in
        virtual time that clock would jump past it while the threads finish.
        """
        del timeout
        await super().shutdown_default_executor()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by *seconds* (timers that come due then run next)."""
        if seconds < 0:
            msg = f"time cannot go backwards: advance({seconds!r})"
            raise ValueError(msg)
        self._virtual_now += seconds


def anyio_backends(*, trio: bool = True) -> list[tuple[Literal["asyncio", "trio"], dict[str, Any]]]:
    """Backends for pytest's anyio plugin that run in virtual time.

    Return them from your ``anyio_backend`` fixture::

        @pytest.fixture(params=resilient.testing.anyio_backends(), ids=lambda b: b[0])
        def anyio_backend(request):
            return request.param

    Args:
        trio: Include trio (with ``trio.testing.MockClock(autojump_threshold=0)``)
            when it is installed.

    """
    backends: list[tuple[Literal["asyncio", "trio"], dict[str, Any]]] = [
        ("asyncio", {"loop_factory": VirtualEventLoop})
    ]
    if trio:
        try:
            from trio.testing import MockClock  # noqa: PLC0415 -- trio is optional
        except ImportError:  # pragma: no cover -- trio is a dev dependency
            return backends
        backends.append(("trio", {"clock": MockClock(autojump_threshold=0)}))
    return backends


def run(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    backend: Literal["asyncio", "trio"] = "asyncio",
) -> T:
    """Run ``fn(*args)`` to completion in virtual time, like ``anyio.run``.

    On asyncio the loop is a `VirtualEventLoop`; on trio the clock is
    ``trio.testing.MockClock(autojump_threshold=0)``.
    """
    if backend == "asyncio":
        options: dict[str, Any] = {"loop_factory": VirtualEventLoop}
    elif backend == "trio":
        from trio.testing import MockClock  # noqa: PLC0415 -- trio is optional

        options = {"clock": MockClock(autojump_threshold=0)}
    else:
        msg = f"backend must be 'asyncio' or 'trio', got {backend!r}"
        raise ValueError(msg)
    return anyio.run(fn, *args, backend=backend, backend_options=options)
