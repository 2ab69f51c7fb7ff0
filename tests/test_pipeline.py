"""Pipeline composition, per-call context and the decorator."""

from __future__ import annotations

import inspect
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import resilient as rs

pytestmark = pytest.mark.anyio


class Recorder:
    """A policy that records when the call enters and leaves it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
        self.log.append(f"enter {self.name}")
        try:
            return await next_step(ctx)
        finally:
            self.log.append(f"leave {self.name}")

    def describe(self) -> str:
        return f"Recorder({self.name})"


async def test_first_policy_is_outermost() -> None:
    """Policies wrap the call in the order given, the first one outermost."""
    log: list[str] = []

    async def call() -> str:
        log.append("call")
        return "done"

    pipeline = rs.Pipeline(Recorder("a", log), Recorder("b", log), Recorder("c", log))
    assert await pipeline.run(call) == "done"
    assert log == ["enter a", "enter b", "enter c", "call", "leave c", "leave b", "leave a"]


async def test_run_passes_positional_and_keyword_arguments() -> None:
    """run(fn, *args, **kwargs) calls fn(*args, **kwargs)."""

    async def add(a: int, b: int, *, scale: int = 1) -> int:
        return (a + b) * scale

    assert await rs.Pipeline(rs.Retry()).run(add, 2, 3, scale=10) == 50


def test_describe_shows_the_composition_outermost_first() -> None:
    """describe() names each policy and its options, in order."""
    pipeline = rs.Pipeline(
        rs.Timeout(10), rs.Retry(attempts=3, budget=None), rs.Timeout(2), name="op"
    )
    assert pipeline.describe() == (
        "Pipeline(Timeout(10) > Retry(attempts=3, "
        "backoff=exponential(0.2, cap=5, jitter=full), budget=None) > Timeout(2))"
    )
    assert repr(pipeline) == pipeline.describe()


async def test_a_nested_pipeline_contributes_its_policies_in_place() -> None:
    """Pipeline(a, Pipeline(b, c)) behaves as Pipeline(a, b, c)."""
    log: list[str] = []

    async def call() -> None:
        log.append("call")

    inner = rs.Pipeline(Recorder("b", log), Recorder("c", log))
    outer = rs.Pipeline(Recorder("a", log), inner)
    assert [p.describe() for p in outer.policies] == ["Recorder(a)", "Recorder(b)", "Recorder(c)"]
    await outer.run(call)
    assert log[:4] == ["enter a", "enter b", "enter c", "call"]


def test_a_non_policy_is_refused_with_its_position() -> None:
    """A wrong argument fails at construction and says which one."""
    with pytest.raises(TypeError, match=r"policies\[1\] must be a policy"):
        rs.Pipeline(rs.Timeout(1), "retry")  # type: ignore[arg-type]


def test_a_non_string_name_is_refused() -> None:
    with pytest.raises(TypeError, match="name must be a str"):
        rs.Pipeline(name=3)  # type: ignore[arg-type]


async def test_an_empty_pipeline_just_calls() -> None:
    """With no policies the call runs once, unchanged."""

    async def call() -> int:
        return 7

    assert await rs.Pipeline().run(call) == 7


async def test_every_call_gets_its_own_context() -> None:
    """Attributes set during one call are not seen by another."""
    seen: list[dict[str, Any]] = []

    class Peek:
        async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
            seen.append(dict(ctx.attributes))
            ctx.attributes["mark"] = True
            return await next_step(ctx)

        def describe(self) -> str:
            return "Peek"

    async def call() -> None:
        pass

    pipeline = rs.Pipeline(Peek())
    await pipeline.run(call)
    await pipeline.run(call)
    assert seen == [{}, {}]


async def test_context_names_the_operation() -> None:
    """The context's name is the pipeline's name, else the callable's qualname."""
    names: list[str] = []

    class Peek:
        async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
            names.append(ctx.name)
            assert ctx.name in repr(ctx)
            return await next_step(ctx)

        def describe(self) -> str:
            return "Peek"

    async def fetch() -> None:
        pass

    await rs.Pipeline(Peek()).run(fetch)
    await rs.Pipeline(Peek(), name="inventory.fetch").run(fetch)
    assert names == [fetch.__qualname__, "inventory.fetch"]


async def test_decorator_keeps_the_function_a_coroutine_function() -> None:
    """The decorated function is still async, keeps its name, signature and docstring."""
    pipeline = rs.Pipeline(rs.Retry())

    async def get_user(uid: str, *, verbose: bool = False) -> dict[str, str]:
        """Fetch a user."""
        return {"uid": uid, "verbose": str(verbose)}

    wrapped = pipeline(get_user)
    assert inspect.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "get_user"
    assert wrapped.__doc__ == "Fetch a user."
    assert inspect.signature(wrapped) == inspect.signature(get_user)
    assert await wrapped("u1", verbose=True) == {"uid": "u1", "verbose": "True"}


def test_decorator_refuses_a_sync_function() -> None:
    """Decorating a plain function is a mistake caught at import time."""

    def sync() -> None:
        pass

    with pytest.raises(TypeError, match="decorates async functions"):
        rs.Pipeline()(sync)  # type: ignore[arg-type]


async def test_concurrent_calls_keep_their_own_attempt_counts() -> None:
    """1,000 concurrent calls of one decorated function each count their own attempts.

    tenacity #93: concurrent coroutines sharing one retry object corrupted each
    other's attempt numbers. Here call i fails i % 4 times, and must see exactly
    attempts 1 .. i % 4 + 1, however the calls interleave.
    """
    seen: dict[int, list[int]] = {}

    attempts_of: dict[int, Any] = {}

    class Capture:
        async def execute(self, next_step: rs.Step, ctx: rs.Context) -> Any:
            attempts_of[ctx.args[0]] = ctx
            return await next_step(ctx)

        def describe(self) -> str:
            return "Capture"

    pipeline = rs.Pipeline(
        rs.Retry(attempts=4, on=ValueError, backoff=rs.Backoff.constant(0.001), budget=None),
        Capture(),
    )

    @pipeline
    async def call(i: int) -> int:
        ctx = attempts_of[i]
        seen.setdefault(i, []).append(ctx.attempt)
        await anyio.lowlevel.checkpoint()  # let the other calls interleave
        if len(seen[i]) <= i % 4:
            raise ValueError(i)
        return i

    async with anyio.create_task_group() as tg:
        for i in range(1000):
            tg.start_soon(call, i)
    assert len(seen) == 1000
    for i, attempts in seen.items():
        assert attempts == list(range(1, i % 4 + 2)), i


def test_fork_copies_what_one_attempt_may_change() -> None:
    async def call() -> None:
        pass

    dispatch = rs.Pipeline(hooks=[])._dispatch
    assert dispatch is not None
    ctx = rs.Context(call, (1,), {"a": 2}, dispatch, "op")
    ctx.deadline = 5.0
    ctx.idempotency_key = "key"
    ctx.attributes["x"] = 1
    twin = ctx.fork()
    assert (twin.fn, twin.args, twin.kwargs, twin.name) == (call, (1,), {"a": 2}, "op")
    assert (twin.deadline, twin.idempotency_key, twin.attributes) == (5.0, "key", {"x": 1})
    twin.deadline = 1.0
    twin.attributes["x"] = 2
    assert ctx.deadline == 5.0
    assert ctx.attributes == {"x": 1}


@pytest.mark.parametrize(("total", "attempt"), [(2.0, 2.0), (1.0, 5.0)])
def test_an_attempt_timeout_not_shorter_than_the_total_is_refused(
    total: float, attempt: float
) -> None:
    with pytest.raises(ValueError, match=r"attempt timeout Timeout\(.*\) inside Retry must be"):
        rs.Pipeline(rs.Timeout(total), rs.Retry(), rs.Timeout(attempt))


def test_coherent_timeouts_are_accepted() -> None:
    rs.Pipeline(rs.Timeout(10), rs.Retry(), rs.Timeout(2))
    rs.Pipeline(rs.Timeout(2), rs.Timeout(5))  # nested totals: the tighter wins, no retry
    rs.Pipeline(rs.Retry(), rs.Timeout(5))  # no total at all


def test_a_breaker_window_shorter_than_twice_the_timeout_warns() -> None:
    breaker = rs.CircuitBreaker(window=rs.TimeWindow(3.0))
    with pytest.warns(rs.PipelineWarning, match=r"TimeWindow\(3\) is shorter than twice"):
        rs.Pipeline(rs.Retry(), breaker, rs.Timeout(2.0))
    rs.Pipeline(rs.Retry(), rs.CircuitBreaker(window=rs.TimeWindow(4.0)), rs.Timeout(2.0))
    rs.Pipeline(rs.CircuitBreaker(window=rs.CountWindow(5), min_calls=5), rs.Timeout(60.0))


def test_a_timeout_inside_hedging_is_an_attempt_timeout() -> None:
    with pytest.raises(ValueError, match=r"Timeout\(3\) inside Hedging must be shorter"):
        rs.Pipeline(rs.Timeout(2), rs.Hedging(delay=0.5), rs.Timeout(3))
    rs.Pipeline(rs.Timeout(2), rs.Hedging(delay=0.5), rs.Timeout(1))
