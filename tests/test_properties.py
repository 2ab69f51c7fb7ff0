"""Properties of a whole call in virtual time."""

from __future__ import annotations

import contextlib

import anyio
from hypothesis import given, settings, strategies as st

import resilient as rs
from resilient._clock import now
from resilient.testing import run


@settings(max_examples=60, deadline=None)
@given(
    deadline=st.floats(min_value=0.01, max_value=100),
    attempts=st.integers(min_value=1, max_value=20),
    work=st.lists(st.floats(min_value=0, max_value=50), min_size=1, max_size=20),
    base=st.floats(min_value=0, max_value=20),
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    per_attempt=st.none() | st.floats(min_value=0.01, max_value=0.99),
)
def test_a_call_never_outlives_its_total_deadline(
    deadline: float,
    attempts: int,
    work: list[float],
    base: float,
    jitter: str,
    per_attempt: float | None,
) -> None:
    """However the attempts, waits and per-attempt timeouts fall, the call ends by its deadline."""
    base = max(base, 0.001)
    policies: list[rs.Policy] = [
        rs.Timeout(deadline),
        rs.Retry(
            attempts=attempts,
            backoff=rs.Backoff.exponential(base, cap=base * 8, jitter=jitter),  # type: ignore[arg-type]
            budget=None,
        ),
    ]
    if per_attempt is not None:  # a share of the total: a longer one is refused
        policies.append(rs.Timeout(per_attempt * deadline))
    pipeline = rs.Pipeline(*policies, hooks=[])
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        duration = work[calls % len(work)]
        calls += 1
        await anyio.sleep(duration)
        raise ConnectionError

    async def main() -> float:
        start = now()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await pipeline.run(attempt)
        return now() - start

    elapsed = run(main)
    assert elapsed <= deadline + 1e-9
    assert calls <= attempts
