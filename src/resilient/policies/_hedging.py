"""`Hedging`: start another attempt when the ones under way are slow or failing.

**For idempotent operations only**: several attempts of one call run at once, and
the losers are cancelled, not undone. Whatever a cancelled attempt already did at
the downstream stays done.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from .._classify import release
from .._clock import now
from .._exceptions import RejectedError
from .._mode import testing_mode
from .._outcome import Outcome
from ._budget import RetryBudget
from ._predicates import exception_matcher
from ._retry import DEFAULT_ON
from ._validate import check_count

if sys.version_info < (3, 11):  # pragma: no cover -- a builtin from 3.11
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._context import Context
    from .._pipeline import Step

__all__ = ["MAX_ATTEMPTS", "Hedging"]

MAX_ATTEMPTS = 10
"""The most attempts one call may make under `Hedging`, the first included."""


def _check_delay(value: Any) -> None:
    allowed = "a number >= 0 (math.inf: hedge only after a failure)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"Hedging: delay must be {allowed}, got {value!r} ({type(value).__name__})"
        raise TypeError(msg)
    if math.isnan(value) or value < 0:
        msg = f"Hedging: delay must be {allowed}, got {value!r}"
        raise ValueError(msg)


def _fatal_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The first exception in *group* (nested groups included) that is not a cancellation."""
    cancelled = anyio.get_cancelled_exc_class()
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaf = _fatal_leaf(exc)
            if leaf is not None:
                return leaf
        elif not isinstance(exc, cancelled):
            return exc
    return None


class _Race:
    """The state of one hedged call, shared by its attempts and the task that starts them."""

    __slots__ = (
        "cancel",
        "decided",
        "last_failure",
        "not_before",
        "running",
        "stopped",
        "unanswered",
        "waits",
        "wake",
    )

    def __init__(self, cancel: anyio.CancelScope, *, waits: bool) -> None:
        self.cancel = cancel
        self.waits = waits  # False: a testing mode without waits (an inf hint still stops)
        self.decided: Outcome[Any] | None = None  # the winner, or a fatal exception
        self.last_failure: Outcome[Any] | None = None
        self.unanswered = 0  # failed attempts not yet answered by a new hedge
        self.running = 0  # attempts started and not yet judged
        self.not_before = -math.inf  # no hedge before this time: the server asked
        self.stopped = False  # no more hedges: the server asked for too long a pause
        self.wake = anyio.Event()

    def failed(self, outcome: Outcome[Any], *, hedge: bool = True) -> Outcome[Any] | None:
        """Record a failed attempt; return the outcome no longer needed (to release).

        With *hedge* false the failure starts no new hedge at once (a policy of this
        process refused the attempt: another one now would be refused too).
        """
        if self.decided is not None:
            return outcome
        superseded, self.last_failure = self.last_failure, outcome
        if hedge:
            self.unanswered += 1
        return superseded

    def pause(self, hint: float | None) -> None:
        """Take the wait a failed attempt's server asked for (``inf``: stop hedging)."""
        if hint is None or not hint > 0:  # not > 0: NaN too
            return
        if hint == math.inf:
            self.stopped = True
        elif self.waits:
            self.not_before = max(self.not_before, now() + hint)

    def decide(self, outcome: Outcome[Any]) -> Outcome[Any] | None:
        """Settle the call on *outcome*; return the outcome no longer needed (to release)."""
        if self.decided is not None:
            return outcome  # a loser
        self.decided = outcome
        self.cancel.cancel()  # the other attempts, and the wait for the next hedge
        return self.drop_failure()

    def drop_failure(self) -> Outcome[Any] | None:
        """Forget the last failure, no longer a possible answer; return it (to release)."""
        failure, self.last_failure = self.last_failure, None
        return failure

    async def next_hedge_due(self, delay: float) -> bool:
        """Wait until an attempt fails or *delay* passes; False if no hedge is to start.

        Then, if a server asked for a pause (``Retry-After``), wait for that too.
        """
        if delay > 0:
            # A deadline of math.inf never fires: only a failure wakes us.
            with anyio.CancelScope(deadline=now() + delay):
                while not (self.unanswered or self.stopped or self.decided is not None):
                    self.wake = anyio.Event()
                    await self.wake.wait()
        while self.decided is None and not self.stopped and self.not_before > now():
            self.wake = anyio.Event()
            with anyio.CancelScope(deadline=self.not_before):
                await self.wake.wait()
        if self.decided is not None or self.stopped:
            return False
        if self.unanswered:
            self.unanswered -= 1
        return True


@dataclass(frozen=True, kw_only=True, eq=False)
class Hedging:
    """Start another attempt of the call when the attempts under way are slow or fail.

    .. warning::
       **Hedge idempotent operations only.** Several attempts of one call run at
       the same time, and the losers are cancelled, not undone: a request a loser
       already sent may still be processed by the downstream. Every attempt
       carries the call's idempotency key; a downstream that honours it makes
       hedged POSTs safe, nothing else does.

    The first attempt starts at once. The next one starts when *delay* seconds
    have passed since the last one started, or as soon as an attempt fails,
    whichever comes first, until *max_attempts* have started. So *delay* chooses
    the mode:

    - ``delay > 0``: latency mode, a hedge for calls slower than *delay* (set it
      near the downstream's 95th percentile latency);
    - ``delay=0``: parallel mode, all *max_attempts* start at once;
    - ``delay=math.inf``: failover mode, one attempt at a time, the next only
      after a failure (a `Retry` without waits).

    An attempt failed if it raised an exception that *on* matches, or returned a
    result for which *on_result* is true; any other result is acceptable. The
    first acceptable result wins: the other attempts are cancelled, and their
    cleanup has finished when the call returns. An exception *on* does not match
    is fatal: it cancels the other attempts and propagates as it was raised, except
    a `RejectedError` (a policy inside refused the attempt: a half-open breaker's
    probe slot is taken, a bulkhead is full) while other attempts are under way,
    which is a failure that starts no hedge at once. If every attempt fails, the
    caller gets the failure that came last, unchanged:
    the exception propagates as it was raised, or the result is returned. Errors
    never reach the caller wrapped in an ``ExceptionGroup``.

    Each attempt runs the rest of the pipeline with its own ``ctx.fork()``, whose
    ``attempt`` is 1, 2, ... in the order attempts start; all of them share the
    call's idempotency key and deadline. Cancelling the call (an enclosing
    `Timeout`, say) cancels every attempt and waits for them to finish.

    Every hedge (each attempt after the first) takes a token from *budget*, as
    retries do, and each call won by an acceptable result earns tokens back. When
    the budget refuses, the call starts no more hedges: the attempts under way
    carry on alone. A call whose classifier says it is not ``replayable`` (an HTTP
    request whose body is a one-shot stream) makes one attempt, unhedged; one whose
    classifier says it is not ``idempotent`` (a POST without an idempotency key) is
    hedged only after a failure, never on the clock; a failure's ``delay_hint``
    (``Retry-After``) holds the next hedge until then, and an infinite one starts
    no more hedges. A result
    the call drops (a loser's, or a failure the next hedge supersedes) goes to the
    classifier's ``release``, if it has one. In testing mode
    (`resilient.testing.set_testing`) a call makes at most the mode's *attempts*;
    the delay is kept. Per-call state lives in local variables, so one `Hedging`
    serves any number of concurrent calls.

    ================  ===========================================================
    Option            Default
    ================  ===========================================================
    ``delay``         none: required, a number >= 0 or ``math.inf``
    ``max_attempts``  2 (the first attempt and one hedge); from 2 to 10
    ``on``            `Retry`'s default: connection failures and timeouts
    ``on_result``     ``None``: every result is acceptable
    ``budget``        a new ``RetryBudget()`` per `Hedging` (ratio 0.2, 10 tokens)
    ================  ===========================================================

    Args:
        delay: Seconds to wait for an attempt before starting the next one:
            0 starts all attempts at once, ``math.inf`` starts the next one only
            when an attempt fails. There is no default: the right value depends
            on the downstream's latency, and a wrong guess multiplies its load.
        max_attempts: Attempts in all, the first included; an int from 2 to 10.
        on: Which exceptions are failures worth a hedge: an exception class, a
            tuple of them, or a predicate on the exception. The default is
            `Retry`'s (``resilient.policies._retry.DEFAULT_ON``).
        on_result: A predicate on a returned value: true means the attempt failed.
        budget: The `RetryBudget` hedges draw from; ``None`` turns budgeting off.
            Share one with a `Retry` to throttle retries and hedges together (a
            call that succeeds then earns *ratio* in each of them).

    Raises:
        TypeError: If an option has the wrong type.
        ValueError: If an option is out of range.

    """

    delay: float
    max_attempts: int = 2
    on: type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool] = (
        DEFAULT_ON
    )
    on_result: Callable[[Any], bool] | None = None
    budget: RetryBudget | None = field(default_factory=RetryBudget)
    _match: Callable[[BaseException], bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_delay(self.delay)
        check_count("Hedging", "max_attempts", self.max_attempts, minimum=2)
        if self.max_attempts > MAX_ATTEMPTS:
            msg = (
                f"Hedging: max_attempts must be an int <= {MAX_ATTEMPTS}, got {self.max_attempts!r}"
            )
            raise ValueError(msg)
        object.__setattr__(self, "_match", exception_matcher("Hedging", self.on))
        if self.on_result is not None and not callable(self.on_result):
            msg = f"Hedging: on_result must be callable or None, got {self.on_result!r}"
            raise TypeError(msg)
        if self.budget is not None and not isinstance(self.budget, RetryBudget):
            msg = f"Hedging: budget must be a RetryBudget or None, got {self.budget!r}"
            raise TypeError(msg)

    runs_attempts: ClassVar[bool] = True
    """Policies inside Hedging run once per attempt (Pipeline validation reads this)."""

    def describe(self) -> str:
        """E.g. ``Hedging(max_attempts=2, delay=0.1, budget=RetryBudget(...))``."""
        budget = self.budget.describe() if self.budget else None
        return f"Hedging(max_attempts={self.max_attempts}, delay={self.delay:g}, budget={budget})"

    async def execute(self, next_step: Step, ctx: Context) -> Any:
        """Run *next_step* in hedged attempts; return the first acceptable result."""
        attempts = self.max_attempts
        mode = testing_mode.get()
        if mode is not None and mode.attempts is not None:
            attempts = min(attempts, mode.attempts)
        classifier = ctx.classifier
        if not getattr(classifier, "replayable", True):
            attempts = 1  # a call that cannot be sent twice (a streamed HTTP body) is not hedged
        # A call that must not run twice at once (an HTTP POST without an idempotency
        # key) gets its next attempt only after a failure the classifier would retry
        # (one that shows the request never left), never on the clock.
        delay = self.delay if getattr(classifier, "idempotent", True) else math.inf
        try:
            async with anyio.create_task_group() as tg:
                race = _Race(tg.cancel_scope, waits=mode is None or mode.waits)
                attempt = 1
                while True:
                    twin = ctx.fork()
                    twin.attempt = attempt
                    race.running += 1
                    tg.start_soon(self._attempt, next_step, twin, race)
                    if attempt >= attempts or not await race.next_hedge_due(delay):
                        break
                    if self.budget is not None and not self.budget.try_retry():
                        break
                    attempt += 1
                    # The new attempt's outcome will supersede the last failure (or a
                    # decision will): let that one's result go now, not at the end.
                    await release(ctx.classifier, race.drop_failure())
        except BaseExceptionGroup as group:
            # Raised by a predicate, or a BaseException (not an Exception) of an
            # attempt: the caller gets that exception, not the group around it.
            fatal = _fatal_leaf(group)
            if fatal is None:  # pragma: no cover -- anyio raises lone cancellations bare
                raise
        else:
            fatal = None
        if fatal is not None:
            raise fatal
        return self._verdict(race)

    def _verdict(self, race: _Race) -> Any:
        """What the caller gets once every attempt has finished."""
        if race.decided is not None:
            if race.decided.exception is not None:
                raise race.decided.exception
            if self.budget is not None:
                self.budget.record_success()
            return race.decided.result
        outcome = race.last_failure
        if outcome is None:  # pragma: no cover -- every attempt finishes decided or failed
            msg = "Hedging: no attempt finished"
            raise RuntimeError(msg)
        if outcome.exception is not None:
            raise outcome.exception
        return outcome.result

    async def _attempt(self, next_step: Step, ctx: Context, race: _Race) -> None:
        """One attempt: run it, judge its outcome, and wake the task that starts hedges."""
        classifier = ctx.classifier
        try:
            try:
                result = await next_step(ctx)
            except Exception as exc:  # noqa: BLE001 -- judged here; execute() raises fatal ones
                race.running -= 1
                outcome: Outcome[Any] = Outcome(exception=exc)
                if classifier is not None and self.on is DEFAULT_ON:
                    failed = classifier.should_retry(outcome)
                else:
                    failed = self._match(exc)
                if not failed and race.running and isinstance(exc, RejectedError):
                    # Refused by a policy inside (a half-open breaker's probe slot is
                    # taken, a bulkhead is full): the attempts under way may still
                    # answer, so it is a failure, not the end of the call.
                    await release(classifier, race.failed(outcome, hedge=False))
                    return
            else:
                race.running -= 1
                outcome = Outcome(result)
                if self.on_result is not None:
                    failed = bool(self.on_result(result))
                else:
                    failed = classifier is not None and classifier.should_retry(outcome)
            if failed and classifier is not None:
                race.pause(classifier.delay_hint(outcome))  # Retry-After, for HTTP
            dropped = race.failed(outcome) if failed else race.decide(outcome)
            await release(classifier, dropped)
        finally:
            race.wake.set()
