"""The state machine of one circuit and its sliding windows: synchronous, time passed in.

Kept apart from the policy so that it can be driven step by step (the stateful
property test does) and so that a keyed breaker holds one small object per key.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .._exceptions import CircuitOpenError

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    Hooks = tuple[Callable[["CircuitTransition"], None], ...]

__all__ = [
    "Circuit",
    "CircuitSettings",
    "CircuitState",
    "CircuitTransition",
    "ConsecutiveCounter",
    "CountRing",
    "TimeBuckets",
]


class CircuitState(enum.Enum):
    """The states of a circuit."""

    CLOSED = "closed"
    """Calls flow; outcomes are recorded and judged."""
    OPEN = "open"
    """Calls are rejected until the open duration has passed."""
    HALF_OPEN = "half_open"
    """A few probe calls test the downstream; the rest are rejected."""
    ISOLATED = "isolated"
    """Forced open by hand (`CircuitBreaker.isolate`) until reset."""
    DISABLED = "disabled"
    """Every call flows and nothing is recorded (`CircuitBreaker.disable`) until reset."""


_CLOSED = CircuitState.CLOSED  # a module global: an enum member costs more to look up


@dataclass(frozen=True, slots=True)
class CircuitTransition:
    """A circuit changed state.

    Attributes:
        name: The breaker's name.
        key: The key of a keyed breaker's circuit, else ``None``.
        old: The state it left.
        new: The state it entered.
        at: The event-loop time of the change.
        open_for: For a change to OPEN, how long it stays open; else ``None``.

    """

    name: str | None
    key: Hashable | None
    old: CircuitState
    new: CircuitState
    at: float
    open_for: float | None = None


class Window(Protocol):
    """Outcomes of recent calls, as running totals."""

    timed: bool
    """Whether the window needs the time (a count window does not)."""
    clean: bool
    """Whether a success would change nothing (the hot path then skips the window)."""

    def add(self, now: float, *, failure: bool, slow: bool) -> None:
        """Record one call's outcome."""

    def add_success(self, now: float) -> None:
        """Record a call that neither failed nor was slow (the hot path)."""

    def totals(self, now: float) -> tuple[int, int, int]:
        """Calls, failures and slow calls now in the window."""

    def clear(self) -> None:
        """Forget every outcome."""


class CountRing:
    """The last *size* outcomes, in a ring of bytes; O(1) per call."""

    __slots__ = ("_next", "_ring", "_size", "calls", "clean", "failures", "slow")
    timed = False

    def __init__(self, size: int) -> None:
        self._ring = bytearray(size)  # per slot: 1 recorded | 2 failure | 4 slow
        self._size = size
        self._next = 0
        self.calls = self.failures = self.slow = 0
        # Full of successes: another one replaces a success anywhere in the ring,
        # so neither the totals nor (in effect) the position change.
        self.clean = False

    def add(self, now: float, *, failure: bool, slow: bool) -> None:
        if not (failure or slow):
            self.add_success(now)
            return
        if not (self.failures or self.slow):
            self._materialize()
        ring, i = self._ring, self._next
        old = ring[i]
        if old:
            self.calls -= 1
            self.failures -= (old >> 1) & 1
            self.slow -= (old >> 2) & 1
        ring[i] = 1 | (failure << 1) | (slow << 2)
        self.calls += 1
        self.failures += failure
        self.slow += slow
        i += 1
        self._next = 0 if i == self._size else i
        self.clean = self.calls == self._size and not (self.failures or self.slow)

    def add_success(self, now: float) -> None:  # noqa: ARG002 -- Window
        if not (self.failures or self.slow):
            # Nothing but successes: the ring need not be written (nor read, which
            # for many idle keyed circuits is a cache miss); _materialize writes it
            # out when the first failure comes.
            calls = self.calls
            if calls < self._size:
                self.calls = calls = calls + 1
                self.clean = calls == self._size
            return
        ring, i = self._ring, self._next
        old = ring[i]
        if old == 1:  # a success replaces a success: the totals stay
            pass
        else:
            if old:
                self.failures -= (old >> 1) & 1
                self.slow -= (old >> 2) & 1
            else:
                self.calls += 1
            ring[i] = 1
        i += 1
        self._next = 0 if i == self._size else i
        self.clean = self.calls == self._size and not (self.failures or self.slow)

    def _materialize(self) -> None:
        # While the window held only successes they were counted, not written: a
        # ring filled from its start (after clear) holds them in [0, calls); a ring
        # that was full before its last failure left it holds 1 everywhere already.
        calls = self.calls
        self._ring[:calls] = b"\x01" * calls
        if calls < self._size:
            self._next = calls

    def totals(self, now: float) -> tuple[int, int, int]:  # noqa: ARG002 -- Window
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        self._ring = bytearray(self._size)
        self._next = 0
        self.calls = self.failures = self.slow = 0
        self.clean = False


class TimeBuckets:
    """Outcomes of the last *seconds*, in *buckets* buckets; O(1) amortised per call.

    The window slides a bucket at a time: it covers the current bucket and the
    ``buckets - 1`` before it, so between ``seconds - width`` and ``seconds``.
    """

    __slots__ = (
        "_calls",
        "_current",
        "_ends",
        "_failures",
        "_index",
        "_slow",
        "_width",
        "calls",
        "failures",
        "slow",
    )
    timed = True
    clean = False

    def __init__(self, seconds: float, buckets: int) -> None:
        self._width = seconds / buckets
        self._calls = [0] * buckets
        self._failures = [0] * buckets
        self._slow = [0] * buckets
        self._current: int | None = None  # absolute number of the newest bucket
        self._index = 0  # its place in the lists
        self._ends = -math.inf  # when the newest bucket ends
        self.calls = self.failures = self.slow = 0

    def _advance(self, now: float) -> int:
        current = self._current
        if now < self._ends and current is not None:
            return current  # still inside the newest bucket: the common case
        bucket = math.floor(now / self._width)
        if current is None or bucket - current >= len(self._calls):
            self.clear()
        elif bucket > current:
            n = len(self._calls)
            for b in range(current + 1, bucket + 1):
                i = b % n
                self.calls -= self._calls[i]
                self.failures -= self._failures[i]
                self.slow -= self._slow[i]
                self._calls[i] = self._failures[i] = self._slow[i] = 0
        if current is None or bucket > current:
            self._current = bucket
            self._index = bucket % len(self._calls)
            self._ends = (bucket + 1) * self._width
        return self._current  # type: ignore[return-value]

    def add(self, now: float, *, failure: bool, slow: bool) -> None:
        self._advance(now)
        i = self._index
        self._calls[i] += 1
        self._failures[i] += failure
        self._slow[i] += slow
        self.calls += 1
        self.failures += failure
        self.slow += slow

    def add_success(self, now: float) -> None:
        if now >= self._ends:  # _advance's own test, made here: most calls need no call
            self._advance(now)
        self._calls[self._index] += 1
        self.calls += 1

    def totals(self, now: float) -> tuple[int, int, int]:
        self._advance(now)
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        n = len(self._calls)
        self._calls = [0] * n
        self._failures = [0] * n
        self._slow = [0] * n
        self._current = None
        self._ends = -math.inf
        self.calls = self.failures = self.slow = 0


class ConsecutiveCounter:
    """Failures in a row; a success starts the count again."""

    __slots__ = ("calls", "clean", "failures", "slow")
    timed = False

    def __init__(self) -> None:
        self.calls = self.failures = self.slow = 0
        self.clean = True  # no failures in a row: a success changes nothing

    def add_success(self, now: float) -> None:  # noqa: ARG002 -- Window
        self.calls = self.failures = 0
        self.clean = True

    def add(self, now: float, *, failure: bool, slow: bool) -> None:  # noqa: ARG002 -- Window
        self.calls += 1
        if failure:
            self.failures += 1
        else:
            self.calls = self.failures = 0
        self.clean = not self.calls

    def totals(self, now: float) -> tuple[int, int, int]:  # noqa: ARG002 -- Window
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        self.calls = self.failures = self.slow = 0
        self.clean = True


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    """What every circuit of one breaker shares (built by `CircuitBreaker`)."""

    name: str | None
    new_window: Callable[[], Window]
    consecutive: int | None  # threshold in consecutive mode, else None
    failure_rate: float
    slow_call_rate: float
    min_calls: int
    open_for: Callable[[int], float]  # n-th opening in a row -> seconds
    half_open_calls: int
    half_open_max_wait: float | None
    notify: Callable[[CircuitTransition], None]


class Circuit:
    """One circuit: its state, its window and its probes.

    `acquire` admits or rejects a call and returns the epoch it was admitted in;
    `record` takes the call's outcome, and `release` gives back a probe slot of a
    call that ended without an outcome (cancelled). An outcome from an earlier
    epoch (the circuit changed state while the call ran) is ignored: a slow call
    admitted before the circuit opened does not count as a probe.
    """

    __slots__ = (
        "_half_open_since",
        "_opened_in_a_row",
        "_probe_failures",
        "_probe_slow",
        "_probes_done",
        "_probes_started",
        "_settings",
        "epoch",
        "key",
        "open_until",
        "rejected",
        "state",
        "window",
    )

    def __init__(
        self, settings: CircuitSettings, key: Hashable | None, state: CircuitState
    ) -> None:
        self._settings = settings
        self.key = key
        self.state = state
        self.window = settings.new_window()
        self.epoch = 0
        self.open_until = 0.0
        self._opened_in_a_row = 0
        self._half_open_since = 0.0
        self._probes_started = self._probes_done = self._probe_failures = self._probe_slow = 0
        self.rejected = 0

    def acquire(self, now: float, hooks: Hooks = ()) -> int:
        """Admit a call, returning its epoch, or raise `CircuitOpenError`."""
        state = self.state
        if state is CircuitState.CLOSED or state is CircuitState.DISABLED:
            return self.epoch
        if state is CircuitState.OPEN:
            if now < self.open_until:
                self.rejected += 1
                raise CircuitOpenError(self.open_until - now, self._label())
            self._move(CircuitState.HALF_OPEN, now, hooks)
        elif state is CircuitState.ISOLATED:
            self.rejected += 1
            raise CircuitOpenError(None, self._label(), "isolated")
        settings = self._settings
        wait = settings.half_open_max_wait
        if wait is not None and now - self._half_open_since >= wait:
            # Probes that never report back must not hold the circuit half-open.
            self._open(now, hooks)
            self.rejected += 1
            raise CircuitOpenError(self.open_until - now, self._label())
        if self._probes_started >= settings.half_open_calls:
            self.rejected += 1
            # When a probe will report is unknown: None lets a Retry use its backoff.
            raise CircuitOpenError(None, self._label(), "half_open")
        self._probes_started += 1
        return self.epoch

    def shown_state(self) -> CircuitState:
        """The state to report (`CircuitBreaker.state`): a shared circuit's may differ."""
        return self.state

    async def acquire_shared(self, now: float, hooks: Hooks = ()) -> int:
        """Admit a call by asking the processes it shares state with.

        Only a shared circuit (`resilient.state`) makes `acquire` answer -1, which
        sends the breaker here; a circuit of one process admits on its own.
        """
        return self.acquire(now, hooks)

    def record(
        self, epoch: int, now: float, *, failure: bool, slow: bool, hooks: Hooks = ()
    ) -> None:
        """Take the outcome of a call admitted in *epoch*."""
        if epoch != self.epoch:
            return
        state = self.state
        if state is CircuitState.CLOSED:
            window = self.window
            window.add(now, failure=failure, slow=slow)
            if failure or slow:
                self._judge(now, hooks)
        elif state is CircuitState.HALF_OPEN:
            self._probes_done += 1
            self._probe_failures += failure
            self._probe_slow += slow
            if self._probes_done >= self._settings.half_open_calls:
                self._decide(now, hooks)

    def record_success(self, epoch: int, now: float, hooks: Hooks = ()) -> None:
        """`record` of a call that neither failed nor was slow: the hot path."""
        if epoch != self.epoch:
            return
        if self.state is _CLOSED:
            self.window.add_success(now)  # a success never opens the circuit
        else:
            self.record(epoch, now, failure=False, slow=False, hooks=hooks)

    def release(self, epoch: int) -> None:
        """A call admitted in *epoch* ended without an outcome: free its probe slot."""
        if epoch == self.epoch and self.state is CircuitState.HALF_OPEN:
            self._probes_started -= 1

    def force(self, state: CircuitState, now: float) -> None:
        """Put the circuit in *state* by hand; CLOSED also forgets the window."""
        self._opened_in_a_row = 0
        if state is self.state:
            if state is CircuitState.CLOSED:
                self.window.clear()
            return
        self._move(state, now)

    def retry_after(self, now: float) -> float:
        """Seconds until a call would be admitted (0 unless open or isolated)."""
        if self.state is CircuitState.OPEN:
            return max(0.0, self.open_until - now)
        if self.state is CircuitState.ISOLATED:
            return math.inf
        return 0.0

    def _judge(self, now: float, hooks: Hooks) -> None:
        settings = self._settings
        calls, failures, slow = self.window.totals(now)
        if settings.consecutive is not None:
            if failures >= settings.consecutive:
                self._open(now, hooks)
            return
        if calls < settings.min_calls:
            return
        if failures >= settings.failure_rate * calls or slow >= settings.slow_call_rate * calls:
            self._open(now, hooks)

    def _decide(self, now: float, hooks: Hooks) -> None:
        settings = self._settings
        probes = self._probes_done
        if settings.consecutive is not None:
            reopen = self._probe_failures > 0
        else:
            reopen = (
                self._probe_failures >= settings.failure_rate * probes
                or self._probe_slow >= settings.slow_call_rate * probes
            )
        if reopen:
            self._open(now, hooks)
        else:
            self._opened_in_a_row = 0
            self._move(CircuitState.CLOSED, now, hooks)

    def _open(self, now: float, hooks: Hooks) -> None:
        self._opened_in_a_row += 1
        duration = self._settings.open_for(self._opened_in_a_row)
        self.open_until = now + duration
        self._move(CircuitState.OPEN, now, hooks, duration)

    def _move(
        self, new: CircuitState, now: float, hooks: Hooks = (), open_for: float | None = None
    ) -> None:
        old = self.state
        self.state = new
        self.epoch += 1
        self._probes_started = self._probes_done = self._probe_failures = self._probe_slow = 0
        if new is CircuitState.HALF_OPEN:
            self._half_open_since = now
        elif new is CircuitState.CLOSED:
            self.window.clear()
        transition = CircuitTransition(self._settings.name, self.key, old, new, now, open_for)
        self._settings.notify(transition)
        for hook in hooks:
            hook(transition)

    def _label(self) -> str | None:
        if self.key is None:
            return self._settings.name
        return f"{self._settings.name}[{self.key!r}]" if self._settings.name else repr(self.key)
