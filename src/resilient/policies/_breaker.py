"""`CircuitBreaker`: stop calling a failing downstream; probe it before trusting it again."""

from __future__ import annotations

import math
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._clock import now
from .._exceptions import PipelineWarning
from .._outcome import Outcome
from ._backoff import Backoff
from ._circuit import (
    Circuit,
    CircuitSettings,
    CircuitState,
    CircuitTransition,
    ConsecutiveCounter,
    CountRing,
    TimeBuckets,
)
from ._predicates import exception_matcher
from ._retry import DEFAULT_ON
from ._shared import SharedState
from ._timeout import Timeout
from ._validate import check_count, check_seconds

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    from .._context import Context
    from .._pipeline import Step
    from ._circuit import Window

_CLOSED = CircuitState.CLOSED  # a module global: an enum member costs more to look up

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerStatistics",
    "ConsecutiveFailures",
    "CountWindow",
    "TimeWindow",
]


@dataclass(frozen=True)
class CountWindow:
    """Judge the last *size* calls (resilience4j's count-based sliding window).

    Args:
        size: How many of the most recent calls to judge, >= 1. Default 100.

    """

    size: int = 100

    def __post_init__(self) -> None:
        check_count("CountWindow", "size", self.size)


@dataclass(frozen=True)
class TimeWindow:
    """Judge the calls of the last *seconds*, kept in *buckets* buckets.

    The window slides one bucket at a time, so it spans between
    ``seconds - seconds / buckets`` and ``seconds``; each call costs O(1).

    Args:
        seconds: The window's length, > 0. Default 30.
        buckets: How finely it slides, >= 1. Default 10.

    """

    seconds: float = 30.0
    buckets: int = 10

    def __post_init__(self) -> None:
        check_seconds("TimeWindow", "seconds", self.seconds, positive=True)
        check_count("TimeWindow", "buckets", self.buckets)


@dataclass(frozen=True)
class ConsecutiveFailures:
    """Open after *threshold* failures in a row (what pybreaker and most Python breakers do).

    *failure_rate*, *min_calls* and the slow-call options do not apply; in
    half-open, any failed probe opens the circuit again.

    Args:
        threshold: Failures in a row that open the circuit, >= 1. Default 5.

    """

    threshold: int = 5

    def __post_init__(self) -> None:
        check_count("ConsecutiveFailures", "threshold", self.threshold)


@dataclass(frozen=True, slots=True)
class CircuitBreakerStatistics:
    """A snapshot of one circuit.

    Attributes:
        state: Its state.
        calls: Calls in the window (in a row, for `ConsecutiveFailures`).
        failures: Failed calls in the window.
        slow_calls: Slow calls in the window.
        rejected: Calls it rejected since it was created.
        retry_after: Seconds until it admits a call: 0 unless open, ``math.inf``
            when isolated.
        keys: For a keyed breaker, how many circuits it holds; else 1.

    """

    state: CircuitState
    calls: int
    failures: int
    slow_calls: int
    rejected: int
    retry_after: float
    keys: int


def _fixed(seconds: float) -> Callable[[int], float]:
    return lambda _: seconds


@dataclass(frozen=True, kw_only=True, eq=False)
class CircuitBreaker:
    """Reject calls while a downstream is failing, then let probes decide when it is back.

    **Closed**: calls flow and their outcomes fill a sliding window. Once the window
    holds at least *min_calls* calls and the share of failures reaches
    *failure_rate* (or the share of calls slower than *slow_call_duration* reaches
    *slow_call_rate*), the circuit **opens**: calls fail at once with
    `CircuitOpenError`, whose ``retry_after`` says how long the circuit stays open,
    so an outer `Retry` that retries it waits exactly that long, or gives up when
    the wait would pass the call's deadline. After *open_for*, the circuit is
    **half-open**: *half_open_calls* probe calls go through, others are rejected;
    when every probe has reported, the circuit closes if their failure (and slow)
    share is below the thresholds and opens again otherwise. A circuit left
    half-open longer than *half_open_max_wait* (probes that never report) opens again.
    The move to half-open happens when the first call arrives after *open_for*:
    until then `state` reads OPEN.

    What counts as a failure is decided by *on* and *on_result*, independently of
    any `Retry`; other outcomes count as successes, and cancelled calls are not
    counted at all.

    With *key*, the breaker keeps one circuit per key (per downstream host, say),
    at most *max_keys* of them: the least recently used circuit is dropped first,
    and a dropped key starts closed again. Without *key*, a call whose context
    carries a ``partition`` (`resilient.http.Transport` sets the origin) gets the
    circuit of that partition, so one failing host never opens the circuit for
    another; other calls share one circuit. Left at their defaults, *on* and
    *on_result* yield to the context's classifier when it has one (HTTP statuses).

    ========================  =====================================================
    Option                    Default
    ========================  =====================================================
    ``window``                ``TimeWindow(30.0, buckets=10)``
    ``failure_rate``          0.5, in (0, 1]
    ``min_calls``             20, >= 1
    ``slow_call_duration``    ``None`` (slow calls are not judged), else > 0
    ``slow_call_rate``        1.0, in (0, 1]
    ``open_for``              15.0 seconds, or a `Backoff` for the n-th opening in a row
    ``half_open_calls``       1, >= 1
    ``half_open_max_wait``    ``None``, else > 0
    ``on``                    ``DEFAULT_ON``, as for `Retry`
    ``on_result``             ``None``
    ``key``                   ``None``: one circuit
    ``max_keys``              1024, >= 1
    ``name``                  ``None``
    ``listeners``             ``()``
    ``shared``                ``None``: state kept in this process
    ========================  =====================================================

    Args:
        window: `CountWindow`, `TimeWindow` or `ConsecutiveFailures`.
        failure_rate: The share of failed calls that opens the circuit.
        min_calls: Calls the window must hold before it is judged.
        slow_call_duration: Seconds after which a call counts as slow.
        slow_call_rate: The share of slow calls that opens the circuit.
        open_for: How long the circuit stays open: seconds, or a `Backoff` whose
            ``delay(n)`` is the duration of the n-th opening in a row (its cap is
            the maximum); the count restarts when the circuit closes.
        half_open_calls: Probe calls admitted in half-open.
        half_open_max_wait: The longest the circuit stays half-open.
        on: Which exceptions are failures (class, tuple of classes, or predicate).
        on_result: A predicate on returned values: true means failure.
        key: Maps a call's `Context` to the key of its circuit.
        max_keys: The most circuits a keyed breaker keeps.
        name: A name for errors, logs and listeners.
        listeners: Called with a `CircuitTransition` on every change of state,
            including changes made by hand. Pipeline hooks hear of changes made
            by calls through ``Hook.on_circuit_transition``. A listener runs
            inline and must not raise: its error would replace the call's outcome.
        shared: Where the circuits' state lives when processes share it
            (`resilient.state.RedisState`): every process with a breaker of the
            same *name* sees one state. Needs a `TimeWindow` and a *name*.

    Raises:
        TypeError: If an option has the wrong type.
        ValueError: If an option is out of range.

    """

    window: CountWindow | TimeWindow | ConsecutiveFailures = field(default_factory=TimeWindow)
    failure_rate: float = 0.5
    min_calls: int = 20
    slow_call_duration: float | None = None
    slow_call_rate: float = 1.0
    open_for: float | Backoff = 15.0
    half_open_calls: int = 1
    half_open_max_wait: float | None = None
    on: type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool] = (
        DEFAULT_ON
    )
    on_result: Callable[[Any], bool] | None = None
    key: Callable[[Context], Hashable] | None = None
    max_keys: int = 1024
    name: str | None = None
    listeners: Sequence[Callable[[CircuitTransition], None]] = ()
    shared: SharedState | None = None
    _match: Callable[[BaseException], bool] = field(init=False, repr=False)
    _settings: CircuitSettings = field(init=False, repr=False)
    _circuits: OrderedDict[Hashable, Circuit] = field(init=False, repr=False)
    _forced: list[CircuitState] = field(init=False, repr=False)
    _plain: bool = field(init=False, repr=False)
    _default_on: bool = field(init=False, repr=False)
    _single: Circuit | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._validate()
        object.__setattr__(self, "_match", exception_matcher("CircuitBreaker", self.on))
        object.__setattr__(self, "_default_on", self.on is DEFAULT_ON)
        window = self.window
        if isinstance(window, CountWindow):
            size = window.size
            new_window: Callable[[], Window] = lambda: CountRing(size)  # noqa: E731
        elif isinstance(window, TimeWindow):
            seconds, buckets = window.seconds, window.buckets
            new_window = lambda: TimeBuckets(seconds, buckets)  # noqa: E731
        else:
            new_window = ConsecutiveCounter
        open_for = self.open_for
        settings = CircuitSettings(
            name=self.name,
            new_window=new_window,
            consecutive=window.threshold if isinstance(window, ConsecutiveFailures) else None,
            failure_rate=self.failure_rate,
            slow_call_rate=self.slow_call_rate,
            min_calls=self.min_calls,
            open_for=open_for.delay if isinstance(open_for, Backoff) else _fixed(open_for),
            half_open_calls=self.half_open_calls,
            half_open_max_wait=self.half_open_max_wait,
            notify=self._notify,
        )
        object.__setattr__(self, "_settings", settings)
        object.__setattr__(self, "_circuits", OrderedDict())
        object.__setattr__(self, "_forced", [CircuitState.CLOSED])
        # Whether a success can be recorded without the clock or a judgement.
        plain = (
            not isinstance(window, TimeWindow)
            and self.slow_call_duration is None
            and self.on_result is None
        )
        object.__setattr__(self, "_plain", plain)
        object.__setattr__(self, "_single", None if self.key is not None else self._circuit(None))

    def _validate(self) -> None:
        if not isinstance(self.window, (CountWindow, TimeWindow, ConsecutiveFailures)):
            msg = (
                "CircuitBreaker: window must be a CountWindow, TimeWindow or "
                f"ConsecutiveFailures, got {self.window!r}"
            )
            raise TypeError(msg)
        for name in ("failure_rate", "slow_call_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                msg = f"CircuitBreaker: {name} must be a number in (0, 1], got {value!r}"
                raise TypeError(msg)
            if not 0 < value <= 1:
                msg = f"CircuitBreaker: {name} must be in (0, 1], got {value!r}"
                raise ValueError(msg)
        self._validate_numbers()
        for name in ("on_result", "key"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                msg = f"CircuitBreaker: {name} must be callable or None, got {value!r}"
                raise TypeError(msg)
        if self.name is not None and not isinstance(self.name, str):
            msg = f"CircuitBreaker: name must be a str or None, got {self.name!r}"
            raise TypeError(msg)
        self._validate_listeners()
        self._validate_shared()

    def _validate_listeners(self) -> None:
        if callable(self.listeners) or isinstance(self.listeners, (str, bytes)):
            msg = (
                f"CircuitBreaker: listeners must be a sequence of callables, got {self.listeners!r}"
            )
            raise TypeError(msg)
        # A tuple: a generator would be used up by this check.
        object.__setattr__(self, "listeners", tuple(self.listeners))
        for i, listener in enumerate(self.listeners):
            if not callable(listener):
                msg = f"CircuitBreaker: listeners[{i}] must be callable, got {listener!r}"
                raise TypeError(msg)

    def _validate_shared(self) -> None:
        if self.shared is None:
            return
        if not isinstance(self.shared, SharedState):
            msg = (
                "CircuitBreaker: shared must be a shared state such as "
                f"resilient.state.RedisState, or None; got {self.shared!r}"
            )
            raise TypeError(msg)
        if not isinstance(self.window, TimeWindow):
            msg = (
                "CircuitBreaker: a shared breaker needs a TimeWindow (a count or consecutive "
                f"window has no fleet-wide order), got {type(self.window).__name__}"
            )
            raise TypeError(msg)
        if not self.name:
            msg = "CircuitBreaker: a shared breaker needs a name: processes share it by name"
            raise ValueError(msg)

    def _validate_numbers(self) -> None:
        check_count("CircuitBreaker", "min_calls", self.min_calls)
        check_count("CircuitBreaker", "half_open_calls", self.half_open_calls)
        check_count("CircuitBreaker", "max_keys", self.max_keys)
        check_seconds(
            "CircuitBreaker",
            "slow_call_duration",
            self.slow_call_duration,
            positive=True,
            allow_none=True,
        )
        check_seconds(
            "CircuitBreaker",
            "half_open_max_wait",
            self.half_open_max_wait,
            positive=True,
            allow_none=True,
        )
        if not isinstance(self.open_for, Backoff):
            check_seconds("CircuitBreaker", "open_for", self.open_for, positive=True)
        elif self.open_for.base <= 0 or self.open_for.jitter == "decorrelated":
            msg = (
                "CircuitBreaker: open_for as a Backoff needs base > 0 and a jitter other "
                f"than 'decorrelated', got {self.open_for.describe()}"
            )
            raise ValueError(msg)
        if isinstance(self.window, CountWindow) and self.min_calls > self.window.size:
            msg = (
                f"CircuitBreaker: min_calls must be <= the CountWindow size "
                f"({self.window.size}), got {self.min_calls}: the circuit could never open"
            )
            raise ValueError(msg)

    def check_composition(self, outer: Sequence[object], inner: Sequence[object]) -> None:
        """Warn when the time window cannot see enough timed-out calls."""
        del outer
        if not isinstance(self.window, TimeWindow):
            return
        timeouts = [p.seconds for p in inner if isinstance(p, Timeout)]
        if timeouts and self.window.seconds < 2 * max(timeouts):
            msg = (
                f"CircuitBreaker window TimeWindow({self.window.seconds:g}) is shorter than "
                f"twice the Timeout({max(timeouts):g}) inside it: a hanging downstream times "
                "out too few calls per window to open the circuit"
            )
            warnings.warn(msg, PipelineWarning, stacklevel=4)

    def describe(self) -> str:
        """E.g. ``CircuitBreaker(TimeWindow(seconds=30, buckets=10), failure_rate=0.5, ...)``."""
        window = self.window
        if isinstance(window, CountWindow):
            text = f"CountWindow({window.size})"
        elif isinstance(window, TimeWindow):
            text = f"TimeWindow({window.seconds:g}, buckets={window.buckets})"
        else:
            text = f"ConsecutiveFailures({window.threshold})"
        parts = [text]
        if not isinstance(window, ConsecutiveFailures):
            parts += [f"failure_rate={self.failure_rate:g}", f"min_calls={self.min_calls}"]
        if self.slow_call_duration is not None and not isinstance(window, ConsecutiveFailures):
            parts.append(
                f"slow_call_duration={self.slow_call_duration:g}, "
                f"slow_call_rate={self.slow_call_rate:g}"
            )
        open_for = self.open_for
        parts.append(
            f"open_for={open_for.describe() if isinstance(open_for, Backoff) else f'{open_for:g}'}"
        )
        if self.key is not None:
            parts.append(f"keyed, max_keys={self.max_keys}")
        if self.shared is not None:
            parts.append(f"shared={self.shared!r}")
        label = f"{self.name!r}, " if self.name else ""
        return f"CircuitBreaker({label}{', '.join(parts)})"

    # -- calls ---------------------------------------------------------------------

    def _circuit(self, key: Hashable | None) -> Circuit:
        circuits = self._circuits
        circuit = circuits.get(key)
        if circuit is None:
            shared = self.shared
            if shared is None:
                circuit = Circuit(self._settings, key, self._forced[0])
            else:
                circuit = shared.circuit(self._settings, key, self._forced[0], self.window)
            circuits[key] = circuit
            if len(circuits) > self.max_keys:
                circuits.popitem(last=False)
        else:
            circuits.move_to_end(key)
        return circuit

    async def execute(self, next_step: Step, ctx: Context) -> Any:  # noqa: C901, PLR0912 -- the hot path, inlined on purpose
        """Run *next_step* if the circuit admits it, and record its outcome."""
        key, partition = self.key, ctx.partition
        if key is not None:
            circuit = self._circuit(key(ctx))
        elif partition is None:
            circuit = self._single  # type: ignore[assignment]
        else:
            # One circuit per origin, say: the least recently used one is forgotten
            # first, so a busy origin's open circuit outlives a crowd of new origins.
            circuits = self._circuits
            known = circuits.get(partition)
            if known is None:
                circuit = self._circuit(partition)
            else:
                circuit = known
                circuits.move_to_end(partition)
        # A closed circuit admits without reading the clock or the hooks.
        if circuit.state is _CLOSED:
            epoch = circuit.epoch
        else:
            epoch = circuit.acquire(now(), ctx.dispatch.on_circuit_transition)
            if epoch < 0:  # a shared circuit asks the fleet for a probe slot
                epoch = await circuit.acquire_shared(now(), ctx.dispatch.on_circuit_transition)
        start = now() if self.slow_call_duration is not None else 0.0
        try:
            result = await next_step(ctx)
        except Exception as exc:
            self._record(ctx, circuit, epoch, start, failure=self._fails(ctx, exc))
            raise
        except BaseException:
            circuit.release(epoch)
            raise
        classifier = ctx.classifier
        if self._plain and classifier is None:
            # The hot path: a success in a closed count window needs neither the
            # clock nor a judgement (a success never opens a circuit).
            if epoch == circuit.epoch and circuit.state is _CLOSED:
                window = circuit.window
                if not window.clean:
                    window.add_success(0.0)
            else:
                circuit.record_success(epoch, now(), ctx.dispatch.on_circuit_transition)
        elif self.slow_call_duration is not None or not (
            # An ordinary success by the classifier's cheap test, or by default.
            (classifier is None or classifier.accepts(result)) and self.on_result is None
        ):
            self._record(ctx, circuit, epoch, start, failure=self._fails_result(ctx, result))
        else:
            window = circuit.window
            stamp = now() if window.timed or circuit.state is not _CLOSED else 0.0
            circuit.record_success(epoch, stamp, ctx.dispatch.on_circuit_transition)
        return result

    def _fails(self, ctx: Context, exc: Exception) -> bool:
        """Whether *exc* is a failure: *on*, or the context's classifier."""
        classifier = ctx.classifier
        if classifier is not None and self._default_on:
            return classifier.is_failure(Outcome(exception=exc))
        return self._match(exc)

    def _fails_result(self, ctx: Context, result: Any) -> bool:
        """Whether *result* is a failure: *on_result*, or the context's classifier."""
        if self.on_result is not None:
            return bool(self.on_result(result))
        classifier = ctx.classifier
        return (
            classifier is not None
            and not classifier.accepts(result)
            and classifier.is_failure(Outcome(result))
        )

    def _record(
        self, ctx: Context, circuit: Circuit, epoch: int, start: float, *, failure: bool
    ) -> None:
        end = now()
        limit = self.slow_call_duration
        slow = limit is not None and end - start >= limit
        hooks = ctx.dispatch.on_circuit_transition
        circuit.record(epoch, end, failure=failure, slow=slow, hooks=hooks)

    def _notify(self, transition: CircuitTransition) -> None:
        for listener in self.listeners:
            listener(transition)

    # -- control and inspection ----------------------------------------------------

    def isolate(self) -> None:
        """Force every circuit open until `reset`: calls fail with `CircuitOpenError`."""
        self._force(CircuitState.ISOLATED)

    def disable(self) -> None:
        """Let every call through and record nothing until `reset`."""
        self._force(CircuitState.DISABLED)

    def reset(self) -> None:
        """Close every circuit and forget its window; undoes `isolate` and `disable`."""
        self._force(CircuitState.CLOSED)

    def _force(self, state: CircuitState) -> None:
        self._forced[0] = state
        try:
            at = now()
        except RuntimeError:  # called from outside any event loop (anyio's error is one)
            at = time.monotonic()
        for circuit in self._circuits.values():
            circuit.force(state, at)

    def state(self, key: Hashable | None = None) -> CircuitState:
        """The state of the circuit for *key* (of the only circuit when not keyed)."""
        circuit = self._circuits.get(key)
        return self._forced[0] if circuit is None else circuit.shown_state()

    def statistics(self, key: Hashable | None = None) -> CircuitBreakerStatistics:
        """A snapshot of the circuit for *key* (of the only circuit when not keyed)."""
        circuit = self._circuits.get(key)
        if circuit is None:
            forced = self._forced[0]
            after = math.inf if forced is CircuitState.ISOLATED else 0.0
            return CircuitBreakerStatistics(forced, 0, 0, 0, 0, after, len(self._circuits))
        at = now()
        calls, failures, slow = circuit.window.totals(at)
        return CircuitBreakerStatistics(
            state=circuit.shown_state(),
            calls=calls,
            failures=failures,
            slow_calls=slow,
            rejected=circuit.rejected,
            retry_after=circuit.retry_after(at),
            keys=len(self._circuits),
        )
