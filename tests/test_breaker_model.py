"""The circuit state machine checked against a small reference model, step by step.

Hypothesis drives the real `Circuit` and a naive model (which recomputes everything
from a log of every recorded call) through random outcomes, clock advances,
concurrent calls, cancellations and manual overrides, and compares them after
each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import Phase, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import resilient as rs
from resilient.policies._circuit import (
    Circuit,
    CircuitSettings,
    CircuitState,
    ConsecutiveCounter,
    CountRing,
    TimeBuckets,
)

CLOSED, OPEN, HALF = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


@dataclass
class Model:
    """What the circuit should do, written for clarity rather than speed."""

    kind: str  # "count", "time" or "consecutive"
    size: int  # window size, bucket count, or consecutive threshold
    seconds: float
    failure_rate: float
    min_calls: int
    half_open_calls: int
    half_open_max_wait: float | None
    open_for: list[float]  # the n-th opening in a row lasts open_for[min(n, len) - 1]
    state: CircuitState = CLOSED
    epoch: int = 0
    open_until: float = 0.0
    in_a_row: int = 0
    half_since: float = 0.0
    probes: list[bool] = field(default_factory=list)  # failures of finished probes
    started: int = 0
    log: list[tuple[float, bool]] = field(default_factory=list)  # (time, failure) while closed
    transitions: list[tuple[CircuitState, CircuitState]] = field(default_factory=list)

    def window(self, now: float) -> list[bool]:
        if self.kind == "count":
            return [f for _, f in self.log[-self.size :]]
        if self.kind == "time":
            width = self.seconds / self.size
            newest = math.floor(now / width)
            return [f for t, f in self.log if math.floor(t / width) > newest - self.size]
        run: list[bool] = []
        for _, failure in self.log:
            run = [*run, True] if failure else []
        return run

    def move(self, new: CircuitState, now: float) -> None:
        self.transitions.append((self.state, new))
        self.state = new
        self.epoch += 1
        self.probes = []
        self.started = 0
        if new is HALF:
            self.half_since = now
        if new is CLOSED:
            self.log = []

    def open(self, now: float) -> None:
        self.in_a_row += 1
        self.open_until = now + self.open_for[min(self.in_a_row, len(self.open_for)) - 1]
        self.move(OPEN, now)

    def acquire(self, now: float) -> int | float | None:
        """The epoch of an admitted call, or the retry_after of a rejection (a float or None)."""
        if self.state in (CLOSED, CircuitState.DISABLED):
            return self.epoch
        if self.state is CircuitState.ISOLATED:
            return None
        if self.state is OPEN:
            if now < self.open_until:
                return float(self.open_until - now)
            self.move(HALF, now)
        if self.half_open_max_wait is not None and now - self.half_since >= self.half_open_max_wait:
            self.open(now)
            return float(self.open_until - now)
        if self.started >= self.half_open_calls:
            return None
        self.started += 1
        return self.epoch

    def record(self, epoch: int, now: float, failure: bool) -> None:
        if epoch != self.epoch:
            return
        if self.state is CLOSED:
            self.log.append((now, failure))
            window = self.window(now)
            if not failure:
                return
            if self.kind == "consecutive":
                if len(window) >= self.size:
                    self.open(now)
            elif len(window) >= self.min_calls and sum(window) >= self.failure_rate * len(window):
                self.open(now)
        elif self.state is HALF:
            self.probes.append(failure)
            if len(self.probes) >= self.half_open_calls:
                if self.kind == "consecutive":
                    reopen = any(self.probes)
                else:
                    reopen = sum(self.probes) >= self.failure_rate * len(self.probes)
                if reopen:
                    self.open(now)
                else:
                    self.in_a_row = 0
                    self.move(CLOSED, now)

    def release(self, epoch: int) -> None:
        if epoch == self.epoch and self.state is HALF:
            self.started -= 1

    def force(self, state: CircuitState, now: float) -> None:
        self.in_a_row = 0
        if state is self.state:  # nothing changes, nothing is reported
            if state is CLOSED:
                self.log = []
            return
        self.move(state, now)


class CircuitMachine(RuleBasedStateMachine):
    """Real circuit and model side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.calls: list[tuple[int, int]] = []  # in-flight: (real epoch, model epoch)

    @initialize(
        kind=st.sampled_from(["count", "time", "consecutive"]),
        size=st.integers(1, 6),
        seconds=st.sampled_from([1.0, 4.0, 10.0]),
        failure_rate=st.sampled_from([0.2, 0.5, 1.0]),
        min_calls=st.integers(1, 5),
        half_open_calls=st.integers(1, 3),
        half_open_max_wait=st.none() | st.sampled_from([0.5, 3.0]),
        growing=st.booleans(),
    )
    def build(
        self,
        kind: str,
        size: int,
        seconds: float,
        failure_rate: float,
        min_calls: int,
        half_open_calls: int,
        half_open_max_wait: float | None,
        growing: bool,
    ) -> None:
        durations = [1.0, 2.0, 4.0] if growing else [2.0]
        backoff = rs.Backoff.exponential(1.0, cap=4.0, jitter="none")
        if kind == "count":
            new_window = lambda: CountRing(size)  # noqa: E731
        elif kind == "time":
            new_window = lambda: TimeBuckets(seconds, size)  # noqa: E731
        else:
            new_window = ConsecutiveCounter
        self.real_transitions: list[tuple[CircuitState, CircuitState]] = []
        self.circuit = Circuit(
            CircuitSettings(
                name="m",
                new_window=new_window,
                consecutive=size if kind == "consecutive" else None,
                failure_rate=failure_rate,
                slow_call_rate=1.0,
                min_calls=min_calls,
                open_for=backoff.delay if growing else (lambda _: 2.0),
                half_open_calls=half_open_calls,
                half_open_max_wait=half_open_max_wait,
                notify=lambda t: self.real_transitions.append((t.old, t.new)),
            ),
            None,
            CLOSED,
        )
        self.model = Model(
            kind, size, seconds, failure_rate, min_calls, half_open_calls,
            half_open_max_wait, durations,
        )  # fmt: skip

    @rule(dt=st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5, 7.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def start_call(self) -> None:
        expected = self.model.acquire(self.now)
        if not isinstance(expected, int):
            with pytest.raises(rs.CircuitOpenError) as info:
                self.circuit.acquire(self.now)
            assert info.value.retry_after == expected
        else:
            self.calls.append((self.circuit.acquire(self.now), expected))

    @precondition(lambda self: self.calls)
    @rule(index=st.integers(0, 7), failure=st.booleans())
    def finish_call(self, index: int, failure: bool) -> None:
        real, model = self.calls.pop(index % len(self.calls))
        self.circuit.record(real, self.now, failure=failure, slow=False)
        self.model.record(model, self.now, failure)

    @precondition(lambda self: self.calls)
    @rule(index=st.integers(0, 7))
    def cancel_call(self, index: int) -> None:
        real, model = self.calls.pop(index % len(self.calls))
        self.circuit.release(real)
        self.model.release(model)

    @rule(state=st.sampled_from([CLOSED, CircuitState.ISOLATED, CircuitState.DISABLED]))
    def force(self, state: CircuitState) -> None:
        self.circuit.force(state, self.now)
        self.model.force(state, self.now)

    @invariant()
    def agree(self) -> None:
        if not hasattr(self, "circuit"):
            return
        assert self.circuit.state is self.model.state
        assert self.real_transitions == self.model.transitions
        if self.model.state is CLOSED:
            calls, failures, _ = self.circuit.window.totals(self.now)
            window = self.model.window(self.now)
            assert (calls, failures) == (len(window), sum(window))
        expected_after = {OPEN: max(0.0, self.model.open_until - self.now)}
        assert self.circuit.retry_after(self.now) == expected_after.get(
            self.model.state, math.inf if self.model.state is CircuitState.ISOLATED else 0.0
        )


CircuitMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=50, deadline=None, phases=[Phase.generate, Phase.shrink]
)
test_circuit_matches_the_model = CircuitMachine.TestCase


_OUTCOMES = st.sampled_from(["success", "success_fast_path", "failure", "slow", "both", "clear"])


@settings(max_examples=400, deadline=None)
@given(size=st.integers(1, 8), steps=st.lists(_OUTCOMES, max_size=60))
def test_count_ring_matches_the_last_outcomes(size: int, steps: list[str]) -> None:
    """CountRing's totals and `clean` flag equal those of a list of the last *size* outcomes.

    Successes are counted without writing the ring while there is no failure or slow
    call in it, so the interesting sequences switch between pure and mixed windows.
    """
    ring, log = CountRing(size), []
    for step in steps:
        if step == "clear":
            ring.clear()
            log.clear()
            continue
        failure, slow = step in ("failure", "both"), step in ("slow", "both")
        if step == "success_fast_path":
            ring.add_success(0.0)
        else:
            ring.add(0.0, failure=failure, slow=slow)
        log.append((failure, slow))
        window = log[-size:]
        expected = (len(window), sum(f for f, _ in window), sum(s for _, s in window))
        assert ring.totals(0.0) == expected, (step, log)
        assert ring.clean == (len(window) == size and not any(f or s for f, s in window))
