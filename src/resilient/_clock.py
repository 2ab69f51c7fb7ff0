"""Where every policy reads the time and waits.

The clock is the running event loop's: `now()` is the loop's monotonic time and
`sleep()` waits on the loop's timers, on asyncio and on trio alike. A clock is
injected where trio injects one, into the event loop: `resilient.testing` runs
loops in virtual time, so retries, backoff and timeouts take no real time in
tests, for our code and for the code of everyone who calls it.
"""

from __future__ import annotations

from asyncio import _get_running_loop

import anyio

__all__ = ["now", "sleep"]


def now() -> float:
    """The running event loop's time, in seconds."""
    loop = _get_running_loop()
    if loop is not None:
        return loop.time()
    return anyio.current_time()


async def sleep(seconds: float) -> None:
    """Wait *seconds* on the running event loop's clock."""
    await anyio.sleep(seconds)
