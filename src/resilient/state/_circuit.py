"""`SharedCircuit`: a circuit whose state is the fleet's, kept in Redis, read locally."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import structlog

from .._clock import hold, now, wall
from .._exceptions import CircuitOpenError
from ..policies._circuit import Circuit, CircuitState, CircuitTransition

if TYPE_CHECKING:
    from collections.abc import Hashable

    from ..policies._circuit import CircuitSettings
    from ._redis import RedisState

__all__ = ["SharedCircuit"]

_log = structlog.get_logger("resilient.state")

_STATES = {
    b"closed": CircuitState.CLOSED,
    b"open": CircuitState.OPEN,
    b"half_open": CircuitState.HALF_OPEN,
    "closed": CircuitState.CLOSED,
    "open": CircuitState.OPEN,
    "half_open": CircuitState.HALF_OPEN,
}

_OPENINGS = 16
"""Open durations passed to Redis: the 1st to the 16th opening in a row (then the 16th)."""


class _Batch:
    """The window of a shared circuit: counts outcomes until the next sync.

    The breaker's hot path calls `add_success` on every success of a closed
    circuit (``clean`` is never set), which only counts.
    """

    __slots__ = ("calls", "failures", "seen", "slow")

    clean = False
    timed = False

    def __init__(self) -> None:
        self.calls = self.failures = self.slow = 0
        self.seen = (0, 0, 0)  # the fleet's window at the last sync

    def add(self, now: float, *, failure: bool, slow: bool) -> None:  # noqa: ARG002 -- Window
        self.calls += 1
        self.failures += failure
        self.slow += slow

    def add_success(self, now: float) -> None:  # noqa: ARG002 -- Window
        self.calls += 1

    def totals(self, now: float) -> tuple[int, int, int]:  # noqa: ARG002 -- Window
        calls, failures, slow = self.seen
        return calls + self.calls, failures + self.failures, slow + self.slow

    def take(self) -> tuple[int, int, int]:
        counts = self.calls, self.failures, self.slow
        self.calls = self.failures = self.slow = 0
        return counts

    def clear(self) -> None:
        self.calls = self.failures = self.slow = 0
        self.seen = (0, 0, 0)


class SharedCircuit(Circuit):
    """A `Circuit` whose state is decided in Redis and cached here.

    Closed: calls are admitted from the local view and their outcomes counted;
    the sync task pushes the counts, and Redis opens the circuit for everyone
    when the fleet's window trips. Open: calls are refused locally until the
    open period ends. Then each call asks Redis for a probe slot (at most
    ``half_open_calls`` fleet-wide); refused calls are refused locally for one
    sync interval before asking again. Probe outcomes go to Redis at once.
    """

    __slots__ = (
        "__weakref__",
        "_batch",
        "_fleet",
        "_keys",
        "_last_sync",
        "_refuse_until",
        "_reports",
        "_shape",
        "_state",
    )

    def __init__(
        self,
        settings: CircuitSettings,
        key: Hashable | None,
        state: CircuitState,
        shared: RedisState,
        *,
        seconds: float,
        buckets: int,
    ) -> None:
        # Until it has heard from Redis the circuit is "open, but expired": its
        # first call asks the fleet, so a process that starts while the fleet's
        # circuit is open never lets calls through on a stale "closed".
        forced = state in (CircuitState.ISOLATED, CircuitState.DISABLED)
        super().__init__(settings, key, state if forced else CircuitState.OPEN)
        self.open_until = -math.inf
        self._refuse_until = -math.inf
        self._fleet: CircuitState | None = None  # the fleet's state as last heard
        self._shape = (float(seconds), int(buckets))
        self._state = shared
        self._batch = _Batch()
        self.window = self._batch
        name = settings.name or "breaker"
        self._keys = [shared.key("breaker", name, key), shared.key("breaker", name, key) + ":w"]
        self._reports: list[tuple[str, list[Any]]] = []
        self._last_sync = -1e18  # never: the first call fetches the fleet's state

    # What the breaker calls

    def acquire(self, now: float, hooks: Any = ()) -> int:  # noqa: ARG002 -- Circuit's
        """Admit from the local view; -1 means: ask the fleet (`acquire_shared`)."""
        state = self.state
        if state is CircuitState.CLOSED or state is CircuitState.DISABLED:
            return self.epoch
        if state is CircuitState.ISOLATED:
            self.rejected += 1
            raise CircuitOpenError(None, self._label(), "isolated")
        if state is CircuitState.OPEN and now < self.open_until:
            self.rejected += 1
            raise CircuitOpenError(self.open_until - now, self._label())
        if state is CircuitState.HALF_OPEN and now < self._refuse_until:
            self.rejected += 1
            raise CircuitOpenError(None, self._label(), "half_open")
        return -1

    async def acquire_shared(self, at: float, hooks: Any = ()) -> int:  # noqa: ARG002
        """Ask Redis for a probe slot; return the epoch, or raise `CircuitOpenError`."""
        settings = self._settings
        # A probe whose process died never reports: without a limit of its own,
        # the fleet's circuit would stay half-open for good. One open period is it.
        wait = settings.half_open_max_wait
        wait = settings.open_for(1) if wait is None else wait
        args = [settings.half_open_calls, wait, self._state.ttl]
        try:
            with hold():
                reply = await self._state.scripts["BREAKER_PROBE"](
                    keys=self._keys, args=[wall(), *args, *self._openings()]
                )
        except Exception as exc:  # noqa: BLE001 -- Redis down must not take the calls down
            return self._without_redis(at, exc)
        self._apply(reply, now())
        if int(reply[3]) == 1 or self.state is CircuitState.CLOSED:
            return self.epoch
        self.rejected += 1
        if self.state is CircuitState.OPEN:
            raise CircuitOpenError(max(0.0, self.open_until - at), self._label())
        # Half-open with every probe slot taken: refuse locally for a sync interval.
        self._refuse_until = at + self._state.sync_interval
        raise CircuitOpenError(None, self._label(), "half_open")

    def _without_redis(self, at: float, exc: Exception) -> int:
        """Redis cannot be asked: decide on the fleet's state as last heard.

        A shared breaker must not turn a Redis outage into an outage of every
        call: last heard closed (or never heard), the call is admitted and the
        view trusted for two more sync intervals; last heard open or half-open,
        it is refused for one sync interval, after which Redis is asked again.
        """
        _log.warning(
            "state.unreachable", error=f"{type(exc).__name__}: {exc}", breaker=self._label()
        )
        heard = self._fleet
        if heard is None or heard is CircuitState.CLOSED:
            self.state = CircuitState.CLOSED
            self._last_sync = at
            return self.epoch
        self.rejected += 1
        self.state = CircuitState.OPEN
        self.open_until = at + self._state.sync_interval
        raise CircuitOpenError(self._state.sync_interval, self._label())

    def record(self, epoch: int, now: float, *, failure: bool, slow: bool, hooks: Any = ()) -> None:
        """Count a closed call's outcome; report a probe's to Redis."""
        if epoch != self.epoch:
            return
        if self.state is CircuitState.CLOSED:
            self._batch.add(now, failure=failure, slow=slow)
            if failure or slow:
                self._judge(now, hooks)
            if self._stale(now):
                self._state.wake()
            else:
                self._state.ensure()
        elif self.state is CircuitState.HALF_OPEN:
            self._report("BREAKER_RESULT", [epoch, int(failure), int(slow)])

    def record_success(self, epoch: int, now: float, hooks: Any = ()) -> None:
        """`record` of a plain success."""
        if epoch != self.epoch:
            return
        if self.state is CircuitState.CLOSED:
            self._batch.calls += 1
            if self._stale(now):
                self._state.wake()
            else:
                self._state.ensure()
        else:
            self.record(epoch, now, failure=False, slow=False, hooks=hooks)

    def release(self, epoch: int) -> None:
        """A probe ended without an outcome: give its slot back to the fleet."""
        if epoch == self.epoch and self.state is CircuitState.HALF_OPEN:
            self._report("BREAKER_RELEASE", [epoch])

    def _judge(self, now: float, hooks: Any) -> None:  # noqa: ARG002 -- Circuit's signature
        # Only Redis opens a shared circuit; when this process's own failures would
        # trip the fleet's window as last seen, it syncs at once instead of waiting.
        settings = self._settings
        calls, failures, slow = self._batch.totals(now)
        if calls >= settings.min_calls and (
            failures >= settings.failure_rate * calls or slow >= settings.slow_call_rate * calls
        ):
            self._state.wake()

    # The sync task's side

    def wants_sync(self, at: float) -> bool:
        """Whether there is something to push, or a half-open view to refresh.

        A closed circuit with no traffic has nothing to learn it needs now (its next
        outcomes sync); an open one learns the fleet's state when its own open
        period ends and a call asks for a probe.
        """
        return bool(self._reports or self._batch.calls) or (
            self.state is CircuitState.HALF_OPEN and self._stale(at)
        )

    def shown_state(self) -> CircuitState:
        """The fleet's state as last heard, not the "ask first" view of an idle process."""
        if self.state is CircuitState.OPEN and self.open_until == -math.inf:
            return self._fleet or CircuitState.CLOSED
        return self.state

    def idle(self, at: float) -> None:
        """No traffic to sync: once the closed view is two intervals old, stop trusting it.

        The next call then asks the fleet before it is admitted (one round trip),
        so no process admits calls on a view older than the staleness bound.
        """
        if (
            self.state is CircuitState.CLOSED
            and at - self._last_sync >= 2 * self._state.sync_interval
        ):
            self.state = CircuitState.OPEN
            self.open_until = -math.inf

    def _stale(self, at: float) -> bool:
        return at - self._last_sync >= self._state.sync_interval

    async def sync(self, shared: RedisState) -> None:
        """Send probe reports and batched outcomes; take the fleet's state."""
        settings = self._settings
        reports, self._reports = self._reports, []
        with hold():
            for script, args in reports:
                extra = (
                    [settings.half_open_calls, settings.failure_rate, settings.slow_call_rate]
                    if script == "BREAKER_RESULT"
                    else []
                )
                tail = [shared.ttl, *self._openings()] if script == "BREAKER_RESULT" else []
                stamp = [wall()] if script == "BREAKER_RESULT" else []
                reply = await shared.scripts[script](
                    keys=self._keys, args=stamp + args + extra + tail
                )
                if script == "BREAKER_RESULT":
                    self._apply(reply, now())
            epoch = self.epoch
            calls, failures, slow = self._batch.take()
            seconds, buckets = self._shape
            args = [
                wall(),
                epoch,
                calls,
                failures,
                slow,
                settings.failure_rate,
                settings.slow_call_rate,
                settings.min_calls,
                seconds,
                buckets,
                shared.ttl,
                *self._openings(),
            ]
            reply = await shared.scripts["BREAKER_SYNC"](keys=self._keys, args=args)
        self._last_sync = now()
        self._apply(reply, self._last_sync)
        if self.state is CircuitState.CLOSED:
            self._batch.seen = (int(reply[4]), int(reply[5]), int(reply[6]))

    # Helpers

    def _openings(self) -> list[float]:
        open_for = self._settings.open_for
        return [open_for(n) for n in range(1, _OPENINGS + 1)]

    def _report(self, script: str, args: list[Any]) -> None:
        self._reports.append((script, args))
        self._state.wake()

    def _apply(self, reply: Any, at: float) -> None:
        state = _STATES[reply[0]]
        epoch = int(reply[1])
        if self.state in (CircuitState.ISOLATED, CircuitState.DISABLED):
            return  # forced by hand in this process: it keeps its choice
        heard, self._fleet = self._fleet, state
        open_for = float(reply[2]) if state is CircuitState.OPEN else None
        if open_for is not None:
            self.open_until = at + open_for
        if epoch == self.epoch and state is self.state:
            return
        if epoch != self.epoch:
            self._batch.clear()
        self.state = state
        self.epoch = epoch
        if heard is not None and heard is not state:
            transition = CircuitTransition(
                self._settings.name, self.key, heard, state, at, open_for
            )
            self._settings.notify(transition)
