"""`running_loop`: the running asyncio loop, without a system call per lookup.

These tests start their own event loops (in threads and a forked child), so they
are plain functions, not anyio tests.
"""

from __future__ import annotations

import asyncio
import os
import threading
import warnings

import pytest

from resilient._clock import running_loop


async def _found() -> tuple[asyncio.AbstractEventLoop | None, asyncio.AbstractEventLoop]:
    return running_loop(), asyncio.get_running_loop()


def test_it_is_none_outside_any_loop() -> None:
    assert running_loop() is None


def test_it_finds_each_new_loop_not_the_one_it_remembered() -> None:
    seen = []
    for _ in range(3):
        found, running = asyncio.run(_found())
        assert found is running
        seen.append(found)
    assert len({id(loop) for loop in seen}) == 3
    assert running_loop() is None  # the last one stopped: not taken again


def test_threads_each_see_their_own_loop() -> None:
    barrier = threading.Barrier(2)
    results: list[bool] = []

    async def both_running() -> None:
        barrier.wait(timeout=10)  # both loops run now, each remembered in turn
        for _ in range(100):
            results.append(running_loop() is asyncio.get_running_loop())
            await asyncio.sleep(0)
        barrier.wait(timeout=10)

    threads = [threading.Thread(target=asyncio.run, args=(both_running(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [True] * 200


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_see_its_parents_loop() -> None:
    async def fork() -> tuple[int, int]:
        assert running_loop() is asyncio.get_running_loop()  # remembered
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover -- the child reports through the pipe
            # The parent's loop object exists here too, "running" in this same
            # thread id; a child must still start from no loop at all.
            os.write(write, b"none" if running_loop() is None else b"parent's")
            os._exit(0)
        os.close(write)
        return pid, read

    with warnings.catch_warnings():
        # 3.12+ warns of fork() in a process with threads (this one may have some,
        # idle, from earlier tests); the child here touches none of them.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid, read = asyncio.run(fork())
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert answer == b"none"
