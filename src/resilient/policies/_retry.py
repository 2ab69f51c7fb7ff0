"""`Retry`: run a failing call again, after a backoff, within a budget and a deadline."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import tenacity

from .._classify import release
from .._clock import now, sleep
from .._exceptions import RejectedError
from .._mode import testing_mode
from .._outcome import Outcome
from ..instrumentation._dispatch import GiveUpDetails, GiveUpReason, RetryDetails
from ._backoff import Backoff
from ._budget import RetryBudget
from ._predicates import exception_matcher
from ._validate import check_count, check_seconds

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._context import Context
    from .._pipeline import Step

__all__ = ["DEFAULT_BACKOFF", "DEFAULT_ON", "Retry"]

DEFAULT_ON: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,  # not yet the builtin on 3.10
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
"""Retried by default: connection failures and timeouts (ours and httpx's), nothing else."""

DEFAULT_BACKOFF = Backoff.exponential(0.2, cap=5.0, jitter="full")
"""The default waits: full jitter over 0.2 s, 0.4 s, 0.8 s, ... capped at 5 s."""


@dataclass(frozen=True, kw_only=True, eq=False)
class Retry:
    """Run the rest of the pipeline again when it fails, up to *attempts* times.

    An attempt failed if it raised an exception that *on* matches, or returned a
    result for which *on_result* is true. When *on* or *on_result* is left at its
    default and the call carries a classifier (`resilient.http.Transport` sets one),
    the classifier decides instead, and supplies the delay hint (and a result
    `Retry` retries is given back to the classifier's ``release``, if it has one,
    before the wait: a streamed HTTP response closes). Before each retry `Retry`
    waits (the *delay_hint* if it gives one, else the *backoff*), unless giving up
    is the better answer:

    - no attempts are left, or a tenacity *stop* says stop;
    - the wait would take the waits of this call past *max_total_delay*;
    - the wait would end at or after the call's deadline (set by an enclosing
      `Timeout`): waiting would only end in a timeout, so the caller gets the
      real error now;
    - the retry *budget* refuses;
    - the delay hint is infinite: the downstream asked for a wait the caller's
      layer will not make (an HTTP ``Retry-After`` above its cap, say).

    A `RejectedError` that carries a ``retry_after`` (an open circuit, a rate
    limit) sets the wait when no *delay_hint* does, if *on* retries it at all.

    Giving up hands the caller the last outcome unchanged: the last exception
    propagates as it was raised, or the last result is returned. Exceptions that
    *on* does not match propagate at once; ``BaseException`` s that are not
    ``Exception`` s (cancellation, ``KeyboardInterrupt``) are never retried.

    Per-call state (attempt number, previous wait) lives on the call's `Context`
    and in local variables, so one `Retry` serves any number of concurrent calls.

    ===================  ========================================================
    Option               Default
    ===================  ========================================================
    ``attempts``         4 (the first attempt and up to 3 retries)
    ``on``               `DEFAULT_ON`: ``ConnectionError``, ``TimeoutError``
                         (``asyncio.TimeoutError`` on 3.10), and httpx's
                         ``TimeoutException``, ``NetworkError`` and
                         ``RemoteProtocolError``
    ``on_result``        ``None``: no result is a failure
    ``backoff``          ``Backoff.exponential(0.2, cap=5.0, jitter="full")``
    ``stop``             ``None``
    ``max_total_delay``  ``None``: bounded by attempts, backoff and deadline
    ``budget``           a new ``RetryBudget()`` per `Retry` (ratio 0.2, 10 tokens)
    ``delay_hint``       ``None``
    ===================  ========================================================

    Args:
        attempts: Attempts in all, first included; an int >= 1.
        on: Which exceptions are failures worth retrying: an exception class, a
            tuple of them, or a predicate on the exception.
        on_result: A predicate on a returned value: true means retry.
        backoff: A `Backoff`, or a tenacity ``wait_*`` object (any callable taking
            a ``tenacity.RetryCallState`` and returning seconds).
        stop: A tenacity ``stop_*`` object, consulted after each failed attempt
            in addition to *attempts*.
        max_total_delay: The most seconds to spend waiting between the attempts
            of one call, or ``None``.
        budget: The `RetryBudget` retries draw from; ``None`` turns budgeting off.
        delay_hint: Given the failed attempt's `Outcome`, the wait the downstream
            asked for (a ``Retry-After``, say) or ``None`` to use *backoff*. The
            hint replaces the backoff and is not capped here (the HTTP layer caps
            ``Retry-After``), but *max_total_delay* and the deadline still apply;
            a negative or NaN hint is ignored; ``math.inf`` gives up at once.

    Raises:
        TypeError: If an option has the wrong type.
        ValueError: If an option is out of range.

    """

    attempts: int = 4
    on: type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool] = (
        DEFAULT_ON
    )
    on_result: Callable[[Any], bool] | None = None
    backoff: Backoff | Callable[[tenacity.RetryCallState], float] = DEFAULT_BACKOFF
    stop: Callable[[tenacity.RetryCallState], bool] | None = None
    max_total_delay: float | None = None
    budget: RetryBudget | None = field(default_factory=RetryBudget)
    delay_hint: Callable[[Outcome[Any]], float | None] | None = None
    _match: Callable[[BaseException], bool] = field(init=False, repr=False)
    _tenacity: bool = field(init=False, repr=False)
    _default_on: bool = field(init=False, repr=False)

    runs_attempts: ClassVar[bool] = True
    """Policies inside a Retry run once per attempt (Pipeline validation reads this)."""

    def __post_init__(self) -> None:
        check_count("Retry", "attempts", self.attempts)
        object.__setattr__(self, "_match", exception_matcher("Retry", self.on))
        # Left at its default, *on* yields to a classifier the call carries (HTTP).
        object.__setattr__(self, "_default_on", self.on is DEFAULT_ON)
        # tenacity's wait_* and stop_* need a RetryCallState, which needs the start time.
        object.__setattr__(
            self, "_tenacity", self.stop is not None or not isinstance(self.backoff, Backoff)
        )
        for name in ("on_result", "stop", "delay_hint"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                msg = f"Retry: {name} must be callable or None, got {value!r}"
                raise TypeError(msg)
        if not isinstance(self.backoff, Backoff) and not callable(self.backoff):
            msg = (
                "Retry: backoff must be a resilient.Backoff or a tenacity wait "
                f"(callable), got {self.backoff!r}"
            )
            raise TypeError(msg)
        check_seconds("Retry", "max_total_delay", self.max_total_delay, allow_none=True)
        if self.budget is not None and not isinstance(self.budget, RetryBudget):
            msg = f"Retry: budget must be a RetryBudget or None, got {self.budget!r}"
            raise TypeError(msg)

    def describe(self) -> str:
        """E.g. ``Retry(attempts=4, backoff=exponential(0.2, cap=5, jitter=full), ...)``."""
        backoff = (
            self.backoff.describe() if isinstance(self.backoff, Backoff) else repr(self.backoff)
        )
        parts = [f"attempts={self.attempts}", f"backoff={backoff}"]
        if self.max_total_delay is not None:
            parts.append(f"max_total_delay={self.max_total_delay:g}")
        parts.append(f"budget={self.budget.describe() if self.budget else None}")
        return f"Retry({', '.join(parts)})"

    async def execute(self, next_step: Step, ctx: Context) -> Any:
        """Run *next_step*, retrying it as the options say."""
        ctx.attempt = 1
        start = now() if self._tenacity else 0.0
        try:
            result = await next_step(ctx)
        except Exception as exc:
            if not self._retries(ctx, exc):
                raise
            return await self._retry(next_step, ctx, Outcome(exception=exc), start)
        # _retries_result, inlined: every successful call passes here.
        on_result, classifier = self.on_result, ctx.classifier
        if on_result is not None:
            failed = bool(on_result(result))
        else:
            failed = (
                classifier is not None
                and not classifier.accepts(result)
                and classifier.should_retry(Outcome(result))
            )
        if failed:
            return await self._retry(next_step, ctx, Outcome(result), start)
        if self.budget is not None:
            self.budget.record_success()
        return result

    def _retries(self, ctx: Context, exc: Exception) -> bool:
        """Whether *exc* is a failure to retry: *on*, or the context's classifier."""
        classifier = ctx.classifier
        if classifier is not None and self._default_on:
            return classifier.should_retry(Outcome(exception=exc))
        return self._match(exc)

    def _retries_result(self, ctx: Context, result: Any) -> bool:
        """Whether *result* is a failure to retry: *on_result*, or the classifier."""
        if self.on_result is not None:
            return bool(self.on_result(result))
        classifier = ctx.classifier
        return (
            classifier is not None
            and not classifier.accepts(result)
            and classifier.should_retry(Outcome(result))
        )

    async def _retry(
        self, next_step: Step, ctx: Context, outcome: Outcome[Any], start: float
    ) -> Any:
        """The slow path: attempt 1 failed with *outcome*."""
        # The attempt number is counted here, not read back from the context: a
        # Retry nested inside this one renumbers ctx.attempt for its own attempts.
        attempt = 1
        attempts, waits = self._limits()
        state = self._tenacity_state(ctx, start) if self._tenacity else None
        total_delay = previous = 0.0
        while True:
            delay, reason = self._plan(
                ctx,
                outcome,
                state,
                attempt=attempt,
                attempts=attempts,
                waits=waits,
                total_delay=total_delay,
                previous=previous,
            )
            if reason is not None:
                return self._give_up(ctx, outcome, reason, attempt)
            await self._wait(ctx, outcome, attempt, delay, total_delay)
            total_delay += delay
            previous = delay
            if state is not None:
                state.idle_for = total_delay
            attempt += 1
            ctx.attempt = attempt
            try:
                result = await next_step(ctx)
            except Exception as exc:
                # A call that cannot be made again (an HTTP request whose body was a
                # one-shot stream) has now said why: that is final, whatever *on* says.
                if not self._retries(ctx, exc) or not getattr(ctx.classifier, "replayable", True):
                    raise
                outcome = Outcome(exception=exc)
                continue
            if self._retries_result(ctx, result):
                outcome = Outcome(result)
                continue
            if self.budget is not None:
                self.budget.record_success()
            return result

    @staticmethod
    async def _wait(
        ctx: Context, outcome: Outcome[Any], attempt: int, delay: float, total_delay: float
    ) -> None:
        # On the call's record, for whoever reports it (the HTTP transport does).
        ctx.attributes.setdefault("resilient.delays", []).append(delay)
        if ctx.dispatch.on_retry:
            details = RetryDetails(ctx.name, attempt, delay, total_delay, outcome)
            for hook in ctx.dispatch.on_retry:
                hook(details)
        # The hooks have seen it; a result it holds is let go before the wait.
        await release(ctx.classifier, outcome)
        if delay > 0:
            await sleep(delay)

    def _limits(self) -> tuple[int, bool]:
        """Attempts allowed and whether to wait, after the testing mode has its say."""
        mode = testing_mode.get()
        if mode is None:
            return self.attempts, True
        attempts = self.attempts if mode.attempts is None else min(self.attempts, mode.attempts)
        return attempts, mode.waits

    def _plan(
        self,
        ctx: Context,
        outcome: Outcome[Any],
        state: tenacity.RetryCallState | None,
        *,
        attempt: int,
        attempts: int,
        waits: bool,
        total_delay: float,
        previous: float,
    ) -> tuple[float, GiveUpReason | None]:
        """The wait before the next attempt, or the reason to give up instead."""
        if state is not None:
            self._record(state, attempt, outcome)
        if attempt >= attempts:
            # The testing mode's lower limit must not hide the refusal production makes.
            if attempt < self.attempts and self._hint(ctx, outcome) == math.inf:
                return math.inf, "delay_hint"
            return 0.0, "attempts"
        delay = self._delay(ctx, attempt, outcome, state, previous)
        if delay == math.inf:  # asked even without waits: giving up is what production does
            return delay, "delay_hint"
        if not waits:
            delay = 0.0
        return delay, self._refusal(ctx, state, delay, total_delay)

    def _refusal(
        self,
        ctx: Context,
        state: tenacity.RetryCallState | None,
        delay: float,
        total_delay: float,
    ) -> GiveUpReason | None:
        """Why waiting *delay* and trying again would be wrong, if it would."""
        if state is not None:
            state.upcoming_sleep = delay
            if self.stop is not None and self.stop(state):
                return "stop"
        if self.max_total_delay is not None and total_delay + delay > self.max_total_delay:
            return "max_total_delay"
        deadline = ctx.deadline
        if deadline is not None and now() + delay >= deadline:
            return "deadline"
        if self.budget is not None and not self.budget.try_retry():
            return "budget"
        return None

    def _delay(
        self,
        ctx: Context,
        attempt: int,
        outcome: Outcome[Any],
        state: tenacity.RetryCallState | None,
        previous: float,
    ) -> float:
        hint = self._hint(ctx, outcome)
        # A negative or NaN hint is ignored; an infinite one means "do not wait for me".
        if hint is not None and hint >= 0:
            return hint
        if isinstance(self.backoff, Backoff):
            return self.backoff.delay(attempt, previous)
        return self.backoff(state)  # type: ignore[arg-type]

    def _hint(self, ctx: Context, outcome: Outcome[Any]) -> float | None:
        """The wait that the outcome asks for, if it asks: *delay_hint*'s, or the classifier's."""
        hint = self.delay_hint(outcome) if self.delay_hint is not None else None
        if hint is None and ctx.classifier is not None:
            hint = ctx.classifier.delay_hint(outcome)  # Retry-After, for HTTP
        if hint is None and isinstance(outcome.exception, RejectedError):
            hint = outcome.exception.retry_after  # an open breaker says when to come back
        return hint

    def _give_up(
        self, ctx: Context, outcome: Outcome[Any], reason: GiveUpReason, attempts: int
    ) -> Any:
        hooks = ctx.dispatch.on_give_up
        if hooks:
            details = GiveUpDetails(ctx.name, attempts, reason, outcome)
            for hook in hooks:
                hook(details)
        if outcome.exception is not None:
            raise outcome.exception
        return outcome.result

    @staticmethod
    def _tenacity_state(ctx: Context, start: float) -> tenacity.RetryCallState:
        # Times are on our clock, so tenacity's stop_after_delay runs in virtual time too.
        state = tenacity.RetryCallState(None, ctx.fn, ctx.args, ctx.kwargs)  # type: ignore[arg-type]
        state.start_time = start
        return state

    @staticmethod
    def _record(state: tenacity.RetryCallState, attempt: int, outcome: Outcome[Any]) -> None:
        state.attempt_number = attempt
        future = tenacity.Future(attempt)
        if outcome.exception is not None:
            future.set_exception(outcome.exception)
        else:
            future.set_result(outcome.result)
        state.outcome = future
        state.outcome_timestamp = now()
