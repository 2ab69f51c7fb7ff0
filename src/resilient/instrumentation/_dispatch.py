"""Hook base class, the frozen details hooks receive, and the global hook set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable
    from contextlib import AbstractContextManager

    from .._outcome import Outcome
    from ..policies._circuit import CircuitTransition

__all__ = [
    "AttemptInfo",
    "CallInfo",
    "Dispatch",
    "GiveUpDetails",
    "GiveUpReason",
    "Hook",
    "RetryDetails",
    "TimeoutDetails",
    "current",
    "get_hooks",
    "set_hooks",
]

GiveUpReason = Literal["attempts", "stop", "max_total_delay", "deadline", "budget", "delay_hint"]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """A logical call is starting.

    Attributes:
        operation: The call's name (the pipeline's *name*, else the callable's).
        pipeline: The pipeline's `describe()`.

    """

    operation: str
    pipeline: str


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """One attempt of a logical call is starting.

    Attributes:
        operation: The call's name.
        attempt: 1 for the first attempt, 2 for the first retry, and so on.

    """

    operation: str
    attempt: int


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """An attempt failed and `Retry` will try again after *delay*.

    Attributes:
        operation: The call's name.
        attempt: The number of the attempt that failed.
        delay: Seconds `Retry` waits before the next attempt.
        total_delay: Seconds waited between attempts of this call so far.
        outcome: What the failed attempt produced.

    """

    operation: str
    attempt: int
    delay: float
    total_delay: float
    outcome: Outcome[Any]


@dataclass(frozen=True, slots=True)
class GiveUpDetails:
    """`Retry` stopped retrying a failing call.

    Attributes:
        operation: The call's name.
        attempts: How many attempts were made.
        reason: Why it stopped: ``"attempts"`` (none left), ``"stop"`` (a tenacity
            stop condition), ``"max_total_delay"``, ``"deadline"`` (the next wait
            would cross the call's deadline), ``"budget"`` (the retry budget
            refused) or ``"delay_hint"`` (the downstream asked for a wait the
            caller's layer will not make).
        outcome: The last attempt's outcome, which the caller receives.

    """

    operation: str
    attempts: int
    reason: GiveUpReason
    outcome: Outcome[Any]


@dataclass(frozen=True, slots=True)
class TimeoutDetails:
    """A `Timeout` expired.

    Attributes:
        operation: The call's name.
        timeout: The `Timeout`'s duration in seconds.
        attempt: The context's attempt number when it expired (that of the
            innermost `Retry`; 1 outside any).

    """

    operation: str
    timeout: float
    attempt: int


class Hook:
    """Base class of instrumentation hooks.

    Override only what you need: a pipeline calls a hook's method only if the
    hook's class overrides it, so the rest cost nothing. Hooks run inline on
    the event loop and must not block.
    """

    def on_retry(self, details: RetryDetails) -> None:
        """An attempt failed and another one is scheduled."""

    def on_give_up(self, details: GiveUpDetails) -> None:
        """`Retry` gave up; the caller receives the last outcome."""

    def on_timeout(self, details: TimeoutDetails) -> None:
        """A `Timeout` expired."""

    def on_circuit_transition(self, transition: CircuitTransition) -> None:
        """A circuit breaker changed state while serving a call."""

    def trace_call(self, info: CallInfo) -> AbstractContextManager[object] | None:
        """Return a context manager to hold open for the whole logical call."""
        del info
        return None

    def trace_attempt(self, info: AttemptInfo) -> AbstractContextManager[object] | None:
        """Return a context manager to hold open for one attempt."""
        del info
        return None


def _overrides(hook: Hook, name: str) -> bool:
    return getattr(type(hook), name) is not getattr(Hook, name)


class Dispatch:
    """The bound methods of a set of hooks, grouped by event.

    Built once per hook set, so a call with no hook for an event pays one
    truthiness check for it. Always true, even with no hooks.
    """

    __slots__ = (
        "hooks",
        "on_circuit_transition",
        "on_give_up",
        "on_retry",
        "on_timeout",
        "trace_attempt",
        "trace_call",
    )

    def __init__(self, hooks: Iterable[Hook]) -> None:
        self.hooks = tuple(hooks)
        for i, hook in enumerate(self.hooks):
            if not isinstance(hook, Hook):
                msg = (
                    f"hooks[{i}] must be a resilient.instrumentation.Hook, "
                    f"got {type(hook).__name__}"
                )
                raise TypeError(msg)
        self.on_retry = tuple(h.on_retry for h in self.hooks if _overrides(h, "on_retry"))
        self.on_give_up = tuple(h.on_give_up for h in self.hooks if _overrides(h, "on_give_up"))
        self.on_timeout = tuple(h.on_timeout for h in self.hooks if _overrides(h, "on_timeout"))
        self.on_circuit_transition = tuple(
            h.on_circuit_transition for h in self.hooks if _overrides(h, "on_circuit_transition")
        )
        self.trace_call = tuple(h.trace_call for h in self.hooks if _overrides(h, "trace_call"))
        self.trace_attempt = tuple(
            h.trace_attempt for h in self.hooks if _overrides(h, "trace_attempt")
        )


installed: Dispatch | None = None
"""The dispatch of the hooks installed with `set_hooks`; None until first needed."""


def current() -> Dispatch:
    """The dispatch for the hooks installed with `set_hooks` (the default until then)."""
    global installed  # noqa: PLW0603 -- built lazily: the default needs _structlog
    if installed is None:
        from ._structlog import StructlogHook  # noqa: PLC0415 -- avoids an import cycle

        installed = Dispatch((StructlogHook(),))
    return installed


def set_hooks(hooks: Iterable[Hook]) -> None:
    """Install *hooks* for every pipeline that was not given hooks of its own.

    The default is ``[StructlogHook()]``. Pass ``[]`` to silence all of them.

    Raises:
        TypeError: If an item is not a `Hook`.

    """
    global installed  # noqa: PLW0603 -- the process-wide default, like logging's
    installed = Dispatch(hooks)


def get_hooks() -> tuple[Hook, ...]:
    """The hooks every pipeline without hooks of its own uses."""
    return current().hooks
