"""`Fallback`: answer with a substitute when the rest of the pipeline fails."""

from __future__ import annotations

import inspect
import reprlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._exceptions import RejectedError
from .._outcome import Outcome
from ._predicates import exception_matcher
from ._retry import DEFAULT_ON as RETRY_DEFAULT_ON

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._context import Context
    from .._pipeline import Step

__all__ = ["DEFAULT_ON", "Fallback"]

DEFAULT_ON: tuple[type[Exception], ...] = (*RETRY_DEFAULT_ON, RejectedError)
"""Handled by default: what `Retry` retries (unreachable, too slow), and refusals."""


class _Missing:
    """The type of `_MISSING`: no *value* was given (``None`` is a value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


_MISSING: Any = _Missing()


def _is_async_callable(fn: object) -> bool:
    """Whether *fn* is an ``async def``, a partial of one, or has an ``async def __call__``."""
    # Calls look __call__ up on the type, so that is where to look.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


@dataclass(frozen=True, kw_only=True, eq=False)
class Fallback:
    """Return a substitute when the rest of the pipeline fails: a fixed *value*, or *handler*'s.

    The rest of the pipeline failed if it raised an exception that *on* matches,
    or returned a result for which *on_result* is true. Then `Fallback` returns
    *value*, or awaits ``handler(outcome, ctx)`` with the failed `Outcome` and the
    call's `Context` and returns what the handler returns. Give exactly one of
    them; ``value=None`` is a value like any other.

    Anything else passes through untouched: results *on_result* accepts, and
    exceptions *on* does not match, which propagate as they were raised.
    ``BaseException`` s that are not ``Exception`` s (cancellation,
    ``KeyboardInterrupt``) are never handled, whatever *on* says. An exception the
    handler raises propagates, with the failure it was handling as its context.

    The default *on* covers failures of availability, not of correctness: those
    `Retry` retries by default, where the downstream could not be reached
    (``ConnectionError``) or was too slow (``TimeoutError``, `DeadlineExceededError`
    included), and refusals by a policy (`RejectedError`: an open circuit, a full
    bulkhead, a rate limit, a budget). A stale or default answer is a fair
    substitute for those. It is not one for a ``TypeError`` or a ``KeyError`` in
    your code, which a broad ``on=Exception`` would quietly turn into a
    plausible-looking value.

    Put `Fallback` first in a pipeline (outermost), so it sees the errors of every
    policy inside it: a `Timeout` outside a `Fallback` cancels the fallback too.

    ===============  ==========================================================
    Option           Default
    ===============  ==========================================================
    ``value``        none: give *value* or *handler*, exactly one
    ``handler``      none: give *value* or *handler*, exactly one
    ``on``           `Retry`'s default, plus `RejectedError`
    ``on_result``    ``None``: no result is a failure
    ===============  ==========================================================

    Args:
        value: What to return instead of a failure; any value, ``None`` included.
        handler: An ``async def`` function called as ``await handler(outcome, ctx)``
            with the failed `Outcome` and the call's `Context`; it returns the
            substitute. It must be async (a coroutine function, a
            ``functools.partial`` of one, or an object with an ``async def
            __call__``), so a plain function is refused here rather than failing
            in the middle of an outage.
        on: Which exceptions to replace: an exception class, a tuple of them,
            or a predicate on the exception.
        on_result: A predicate on a returned value: true means replace it.

    Raises:
        TypeError: If both or neither of *value* and *handler* are given, if
            *handler* is not an async callable, or if an option has the wrong type.
        ValueError: If *on* is an empty tuple.

    """

    value: Any = _MISSING
    handler: Callable[[Outcome[Any], Context], Awaitable[Any]] | None = None
    on: type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool] = (
        DEFAULT_ON
    )
    on_result: Callable[[Any], bool] | None = None
    _match: Callable[[BaseException], bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        has_value = self.value is not _MISSING
        if has_value == (self.handler is not None):
            given = "both" if has_value else "neither"
            msg = f"Fallback: give exactly one of value and handler, got {given}"
            raise TypeError(msg)
        if self.handler is not None and not _is_async_callable(self.handler):
            msg = (
                "Fallback: handler must be an async function taking (outcome, ctx), "
                f"got {self.handler!r} ({type(self.handler).__name__})"
            )
            raise TypeError(msg)
        object.__setattr__(self, "_match", exception_matcher("Fallback", self.on))
        if self.on_result is not None and not callable(self.on_result):
            msg = f"Fallback: on_result must be callable or None, got {self.on_result!r}"
            raise TypeError(msg)

    def describe(self) -> str:
        """E.g. ``Fallback(value=None)`` or ``Fallback(handler=cached_user)``."""
        if self.handler is not None:
            name = getattr(self.handler, "__qualname__", None) or repr(self.handler)
            return f"Fallback(handler={name})"
        return f"Fallback(value={reprlib.repr(self.value)})"

    async def execute(self, next_step: Step, ctx: Context) -> Any:
        """Run *next_step*; replace its outcome if it failed."""
        try:
            result = await next_step(ctx)
        except Exception as exc:
            outcome: Outcome[Any] = Outcome(exception=exc)
            classifier = ctx.classifier
            if classifier is not None and self.on is DEFAULT_ON:
                # The protocol's judgement, plus every rejection, as the default does.
                failed = isinstance(exc, RejectedError) or classifier.is_failure(outcome)
            else:
                failed = self._match(exc)
            if not failed:
                raise
            return await self._substitute(outcome, ctx)
        if self.on_result is not None:
            if self.on_result(result):
                return await self._substitute(Outcome(result), ctx)
        elif ctx.classifier is not None and ctx.classifier.is_failure(Outcome(result)):
            return await self._substitute(Outcome(result), ctx)
        return result

    async def _substitute(self, outcome: Outcome[Any], ctx: Context) -> Any:
        if self.handler is None:
            return self.value
        return await self.handler(outcome, ctx)
