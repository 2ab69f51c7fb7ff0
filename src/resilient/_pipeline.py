"""`Policy`, the protocol every policy implements, and `Pipeline`, which composes them."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeAlias, TypeVar, runtime_checkable

from ._context import Context
from .instrumentation import _dispatch
from .instrumentation._dispatch import AttemptInfo, CallInfo, Dispatch

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterable

    from .instrumentation._dispatch import Hook

__all__ = ["Pipeline", "Policy", "Step"]

P = ParamSpec("P")
T = TypeVar("T")

Step: TypeAlias = Callable[[Context], Awaitable[Any]]
"""The rest of a pipeline, as a policy sees it: call it with the context to go on."""


@runtime_checkable
class Policy(Protocol):
    """What a pipeline needs of a policy.

    A policy is immutable configuration plus, for some, state shared by every call
    (a retry budget, a breaker). Everything that belongs to one call lives in the
    `Context`, never on the policy, so one policy serves any number of concurrent
    calls.
    """

    def execute(self, next_step: Step, ctx: Context) -> Awaitable[Any]:
        """Run *next_step* (the rest of the pipeline) for the call *ctx*, under this policy.

        Usually an ``async def``. A policy may run *next_step* once, several times,
        or not at all, and it may change *ctx* for the steps inside it; it
        restores what it narrowed.
        """
        ...

    def describe(self) -> str:
        """A short description of the policy and its options, for tests and logs."""
        ...


def _check_composition(policies: tuple[Policy, ...]) -> None:
    # A policy that can judge its place implements check_composition(outer, inner);
    # the core stays ignorant of which policies there are.
    for i, policy in enumerate(policies):
        check = getattr(policy, "check_composition", None)
        if check is not None:
            check(policies[:i], policies[i + 1 :])


def _compose(policies: tuple[Policy, ...]) -> Step:
    """The entry step of *policies* around one attempt: each one's execute, bound."""
    step: Step = _attempt
    for policy in reversed(policies):
        step = functools.partial(policy.execute, step)
    return step


def _attempt(ctx: Context) -> Awaitable[Any]:
    """The innermost step: one attempt of the wrapped call."""
    # The call's own awaitable is returned as it is, not awaited in a coroutine of
    # ours: one frame less on every call.
    if ctx.dispatch.trace_attempt:
        return _traced_attempt(ctx)
    return ctx.fn(*ctx.args, **ctx.kwargs)


async def _traced_attempt(ctx: Context) -> Any:
    with ExitStack() as stack:
        info = AttemptInfo(ctx.name, ctx.attempt)
        for trace in ctx.dispatch.trace_attempt:
            cm = trace(info)
            if cm is not None:
                stack.enter_context(cm)
        return await ctx.fn(*ctx.args, **ctx.kwargs)


class Pipeline:
    """Policies composed around a call; **the first policy is the outermost**.

    ``Pipeline(Timeout(10), Retry(), Timeout(2))`` gives every call a 10 s deadline
    in total, retries failures inside it, and gives each attempt 2 s, because the
    second `Timeout` sits inside the `Retry`. This is Polly's order (the first
    strategy added is the outermost) and the opposite of resilience4j's decorators.

    Use it as a decorator on an async function, or call `run`::

        policy = Pipeline(Timeout(10.0), Retry(attempts=4), Timeout(2.0))

        @policy
        async def get_user(uid: str) -> User: ...

        user = await policy.run(fetch_user, uid)

    A pipeline inside a pipeline contributes its policies in place.

    Incoherent compositions are refused here rather than discovered in
    production: a per-attempt `Timeout` at least as long as the total one raises
    ``ValueError``; a `CircuitBreaker` whose time window is shorter than twice the
    timeout of the calls it judges warns with `PipelineWarning`.

    Args:
        *policies: The policies, outermost first.
        name: The operation name for logs and spans; by default the wrapped
            callable's qualified name.
        hooks: Instrumentation for this pipeline only; by default the hooks
            installed with `resilient.instrumentation.set_hooks`.

    Raises:
        TypeError: If a policy does not implement `Policy`, or a hook is not a `Hook`.
        ValueError: If the composition cannot work as written.

    """

    __slots__ = ("_description", "_dispatch", "_entry", "_name", "policies")

    def __init__(
        self,
        *policies: Policy | Pipeline,
        name: str | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        flat: list[Policy] = []
        for i, policy in enumerate(policies):
            if isinstance(policy, Pipeline):
                flat.extend(policy.policies)
            elif isinstance(policy, Policy) and not isinstance(policy, type):  # type: ignore[redundant-expr]  # a class has the methods too
                flat.append(policy)
            else:
                msg = (
                    f"policies[{i}] must be a policy (with execute() and describe()), "
                    f"got {type(policy).__name__}: {policy!r}"
                )
                raise TypeError(msg)
        if name is not None and not isinstance(name, str):
            msg = f"name must be a str or None, got {type(name).__name__}"
            raise TypeError(msg)
        self.policies: tuple[Policy, ...] = tuple(flat)
        _check_composition(self.policies)
        self._name = name
        self._dispatch = None if hooks is None else Dispatch(hooks)
        self._description = f"Pipeline({' > '.join(p.describe() for p in self.policies)})"
        self._entry = _compose(self.policies)

    def around(self, step: Policy) -> Pipeline:
        """A copy of the pipeline with *step* innermost, inside every policy.

        For protocol layers: `resilient.http.Transport` puts its HTTP exchange
        there, so that each attempt gets its own context. The composition was
        checked when this pipeline was made and is not checked (nor warned about)
        again; the name, hooks and description stay this pipeline's.
        """
        pipeline = object.__new__(Pipeline)
        pipeline.policies = (*self.policies, step)
        pipeline._name = self._name
        pipeline._dispatch = self._dispatch
        pipeline._description = self._description
        pipeline._entry = _compose(pipeline.policies)
        return pipeline

    @property
    def name(self) -> str | None:
        """The operation name given to the pipeline, if any."""
        return self._name

    @property
    def hooks(self) -> tuple[Hook, ...] | None:
        """The pipeline's own hooks, or ``None`` if it uses the installed ones."""
        return None if self._dispatch is None else self._dispatch.hooks

    def describe(self) -> str:
        """The composition, outermost first, e.g. ``Pipeline(Timeout(10) > Retry(...))``."""
        return self._description

    def __repr__(self) -> str:
        return self._description

    def run(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]:
        """Call ``fn(*args, **kwargs)`` under the pipeline's policies; await the result.

        Returns:
            What the call returned, or the last result `Retry` accepted.

        Raises:
            Exception: Whatever the call raised and no policy handled.
            RejectedError: A policy refused the call (an open circuit, a full
                bulkhead, a rate limit, a deadline).

        """
        return self._start(fn, args, kwargs)  # type: ignore[return-value]

    def _start(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]:
        return self.run_context(self.new_context(fn, args, kwargs))

    def new_context(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Context:
        """A context for calling ``fn(*args, **kwargs)`` through this pipeline.

        For protocol layers (`resilient.http.Transport`) that fill in the context
        (classifier, partition, idempotency key) before `run_context`.
        """
        # Read the global hook set at call time, so set_hooks() reaches every pipeline.
        dispatch = self._dispatch or _dispatch.installed or _dispatch.current()
        return Context(fn, args, kwargs, dispatch, self._name)

    def run_context(self, ctx: Context) -> Awaitable[Any]:
        """Run the call that *ctx* describes through the pipeline; await the result."""
        if ctx.dispatch.trace_call:
            return self._traced(ctx)
        return self._entry(ctx)

    async def _traced(self, ctx: Context) -> Any:
        with ExitStack() as stack:
            info = CallInfo(ctx.name, self._description)
            for trace in ctx.dispatch.trace_call:
                cm = trace(info)
                if cm is not None:
                    stack.enter_context(cm)
            return await self._entry(ctx)

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate the async function *fn* so that every call runs under the pipeline.

        The wrapper keeps *fn*'s signature for type checkers and is itself a
        coroutine function.

        Raises:
            TypeError: If *fn* is not an async function.

        """
        if not inspect.iscoroutinefunction(fn):
            msg = f"Pipeline decorates async functions; {fn!r} is not one"
            raise TypeError(msg)
        own, name, entry, traced = self._dispatch, self._name, self._entry, self._traced

        # The body of _start, inlined: this wrapper is the hot path of decorated calls.
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            dispatch = own or _dispatch.installed or _dispatch.current()
            ctx = Context(fn, args, kwargs, dispatch, name)
            if dispatch.trace_call:
                return await traced(ctx)  # type: ignore[no-any-return]
            return await entry(ctx)  # type: ignore[no-any-return]

        return wrapper
