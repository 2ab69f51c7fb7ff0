"""Backoff: exact schedules, property bounds for every kind and jitter, validation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

import resilient as rs

delays = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
attempts = st.integers(min_value=1, max_value=100_000)
unit = st.floats(min_value=0, max_value=1, exclude_max=True)
jitters = st.sampled_from(["none", "full", "equal"])


@st.composite
def backoffs(draw: st.DrawFn) -> rs.Backoff:
    """Any valid Backoff of any kind and jitter."""
    base = draw(delays)
    cap = draw(st.floats(min_value=base, max_value=2e6, allow_nan=False, allow_infinity=False))
    kind = draw(st.sampled_from(["constant", "linear", "exponential"]))
    if kind == "constant":
        return rs.Backoff.constant(base, jitter=draw(jitters))
    if kind == "linear":
        return rs.Backoff.linear(base, draw(delays), cap=cap, jitter=draw(jitters))
    multiplier = draw(st.floats(min_value=1, max_value=100, allow_nan=False))
    jitter = draw(st.sampled_from(["none", "full", "equal", "decorrelated"]))
    if jitter == "decorrelated" and base == 0:
        base = 0.001
        cap = max(cap, base)
    return rs.Backoff.exponential(base, cap=cap, multiplier=multiplier, jitter=jitter)


@given(backoffs(), attempts, delays, unit)
def test_every_delay_is_finite_and_within_zero_and_cap(
    backoff: rs.Backoff, attempt: int, previous: float, r: float
) -> None:
    """Whatever the kind, jitter, attempt and previous wait: 0 <= delay <= cap."""
    delay = backoff.delay(attempt, previous, lambda: r)
    assert math.isfinite(delay)
    assert 0 <= delay <= backoff.cap


@given(
    base=st.floats(min_value=1e-3, max_value=100),
    extra=st.floats(min_value=0, max_value=1000),
    previous=st.floats(min_value=0, max_value=1e4),
    r=unit,
)
def test_decorrelated_jitter_follows_its_formula(
    base: float, extra: float, previous: float, r: float
) -> None:
    """delay = min(cap, uniform(base, 3 * previous)), previous = base at first, never below base."""
    cap = base + extra
    backoff = rs.Backoff.exponential(base, cap=cap, jitter="decorrelated")
    delay = backoff.delay(5, previous, lambda: r)
    high = min(cap, 3 * max(base, previous))
    assert base <= delay <= high
    assert delay == pytest.approx(base + r * (high - base))


@given(backoffs(), attempts, unit)
def test_full_jitter_never_exceeds_the_unjittered_wait(
    backoff: rs.Backoff, attempt: int, r: float
) -> None:
    """Full and equal jitter only ever shorten the wait; equal keeps at least half."""
    if backoff.jitter in ("none", "decorrelated"):
        return
    plain = rs.Backoff(
        backoff.kind,
        backoff.base,
        backoff.cap,
        step=backoff.step,
        multiplier=backoff.multiplier,
        jitter="none",
    ).delay(attempt)
    delay = backoff.delay(attempt, 0.0, lambda: r)
    assert delay <= plain
    if backoff.jitter == "equal":
        assert delay >= plain / 2


def test_schedules_without_jitter() -> None:
    """The formulas of each kind, capped."""
    expo = rs.Backoff.exponential(0.5, cap=3.0, jitter="none")
    assert [expo.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    linear = rs.Backoff.linear(1.0, 0.5, cap=2.0)
    assert [linear.delay(n) for n in range(1, 5)] == [1.0, 1.5, 2.0, 2.0]
    assert [rs.Backoff.constant(0.25).delay(n) for n in (1, 50)] == [0.25, 0.25]
    triple = rs.Backoff.exponential(1, cap=100, multiplier=3, jitter="none")
    assert [triple.delay(n) for n in (1, 2, 3)] == [1, 3, 9]


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    """No OverflowError however long a call has retried."""
    assert rs.Backoff.exponential(1, cap=60, jitter="none").delay(10**9) == 60


def test_decorrelated_jitter_spreads_even_the_first_retry() -> None:
    """The first wait is uniform in [base, 3 * base], not base for every client."""
    backoff = rs.Backoff.exponential(1.0, cap=100, jitter="decorrelated")
    assert [backoff.delay(1, 0.0, lambda r=r: r) for r in (0.0, 0.5, 0.999)] == [
        1.0,
        2.0,
        pytest.approx(2.998),
    ]


def test_jitter_scales_with_the_random_draw() -> None:
    full = rs.Backoff.exponential(1.0, cap=10, jitter="full")
    assert full.delay(3, 0, lambda: 0.5) == 2.0
    equal = rs.Backoff.exponential(1.0, cap=10, jitter="equal")
    assert equal.delay(3, 0, lambda: 0.5) == 3.0


def test_describe() -> None:
    assert rs.Backoff.exponential(0.2, cap=5).describe() == "exponential(0.2, cap=5, jitter=full)"
    assert rs.Backoff.constant(1).describe() == "constant(1)"
    assert rs.Backoff.linear(1, 2, cap=9).describe() == "linear(1, step=2, cap=9)"
    assert (
        rs.Backoff.exponential(1, cap=9, multiplier=3, jitter="none").describe()
        == "exponential(1, cap=9, multiplier=3)"
    )


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: rs.Backoff.constant(-1),
            ValueError,
            r"Backoff: base must be a finite number >= 0, got -1",
        ),
        (lambda: rs.Backoff.constant(math.nan), ValueError, r"Backoff: base must be .*, got nan"),
        (lambda: rs.Backoff.exponential(math.inf), ValueError, r"Backoff: base must be"),
        (lambda: rs.Backoff.exponential("1"), TypeError, r"Backoff: base must be a finite number"),
        (
            lambda: rs.Backoff.exponential(2, cap=1),
            ValueError,
            r"Backoff: cap must be >= base \(2\), got 1",
        ),
        (
            lambda: rs.Backoff.exponential(1, multiplier=0.5),
            ValueError,
            r"Backoff: multiplier must be >= 1, got 0.5",
        ),
        (
            lambda: rs.Backoff.exponential(1, jitter="half"),
            ValueError,
            r"Backoff: jitter must be one of 'none', 'full', 'equal', 'decorrelated'; got 'half'",
        ),
        (
            lambda: rs.Backoff.constant(1, jitter="decorrelated"),
            ValueError,
            r"jitter 'decorrelated' needs kind 'exponential'",
        ),
        (
            lambda: rs.Backoff.exponential(0, jitter="decorrelated"),
            ValueError,
            r"jitter 'decorrelated' needs base > 0",
        ),
        (
            lambda: rs.Backoff("cubic", 1, 2),
            ValueError,
            r"Backoff: kind must be one of constant, linear, exponential; got 'cubic'",
        ),
        (
            lambda: rs.Backoff.linear(1, -1),
            ValueError,
            r"Backoff: step must be a finite number >= 0",
        ),
    ],
)
def test_invalid_backoffs_are_refused(build, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build()
