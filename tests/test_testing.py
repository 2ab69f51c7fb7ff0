"""resilient.testing: virtual time on asyncio and trio."""

from __future__ import annotations

import asyncio
import socket

import anyio
import pytest

import resilient as rs
from resilient.testing import VirtualEventLoop, anyio_backends, run


def test_run_jumps_over_waits_on_both_backends() -> None:
    """An hour of sleeping passes in virtual time, exactly."""

    async def main() -> float:
        start = anyio.current_time()
        await anyio.sleep(3600)  # anyio.sleep itself runs in virtual time
        return anyio.current_time() - start

    assert run(main) == 3600
    assert run(main, backend="trio") == 3600


def test_run_refuses_an_unknown_backend() -> None:
    async def main() -> None:
        pass

    with pytest.raises(ValueError, match="backend must be 'asyncio' or 'trio'"):
        run(main, backend="curio")  # type: ignore[arg-type]


def test_timers_fire_in_order() -> None:
    """Concurrent sleepers wake in deadline order, at their own virtual times."""
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await anyio.sleep(delay)
        woke.append((name, anyio.current_time()))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper, "c", 3.0)
            tg.start_soon(sleeper, "a", 1.0)
            tg.start_soon(sleeper, "b", 2.0)

    run(main)
    assert woke == [("a", 1.0), ("b", 2.0), ("c", 3.0)]


def test_real_io_still_works_on_the_virtual_loop() -> None:
    """Sockets wake the loop; time jumps only when nothing is ready."""

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        left.setblocking(False)
        right.setblocking(False)
        try:
            loop.call_later(5, right.send, b"ping")
            return await loop.sock_recv(left, 4)
        finally:
            left.close()
            right.close()

    assert run(main) == b"ping"


def test_the_loop_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="autojump_threshold must be >= 0"):
        VirtualEventLoop(autojump_threshold=-1)
    loop = VirtualEventLoop(start=10.0)
    try:
        assert loop.time() == 10.0
        loop.advance(2.5)
        assert loop.time() == 12.5
        with pytest.raises(ValueError, match="time cannot go backwards"):
            loop.advance(-1)
    finally:
        loop.close()


def test_anyio_backends_lists_both_backends() -> None:
    backends = anyio_backends()
    assert [name for name, _ in backends] == ["asyncio", "trio"]
    assert backends[0][1]["loop_factory"] is VirtualEventLoop
    assert [name for name, _ in anyio_backends(trio=False)] == ["asyncio"]


def test_set_testing_validates_attempts() -> None:
    with pytest.raises(ValueError, match="set_testing: attempts must be an int >= 1, got 0"):
        rs.testing.set_testing(attempts=0)


def test_set_testing_as_a_plain_call_can_be_undone() -> None:
    """Called without `with`, the returned token restores the previous mode on exit."""
    from resilient._mode import testing_mode

    token = rs.testing.set_testing(attempts=3)
    try:
        mode = testing_mode.get()
        assert mode is not None
        assert mode.attempts == 3
    finally:
        token.__exit__(None, None, None)
    assert testing_mode.get() is None
