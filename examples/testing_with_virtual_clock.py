"""Testing your own code that retries, times out and breaks circuits, in virtual time.

Run the tests with pytest, or the file as a script::

    pytest examples/testing_with_virtual_clock.py
    python examples/testing_with_virtual_clock.py

The first half is application code: a currency converter that calls a rates API
through a `resilient.Pipeline`. The second half is its tests. They run on event loops
whose clock is virtual (`resilient.testing.anyio_backends`: asyncio with a
`resilient.testing.VirtualEventLoop`, trio with its ``MockClock``): time moves only
when every task waits, straight to the next timer. A 30-second outage, two minutes of
hung requests and the backoff waits in between take milliseconds, and the tests can
assert how much (virtual) time passed.

Two habits make such code testable:

- the pipeline is built per client (`make_policy`), not at import: a circuit breaker or
  a retry budget is state, and a test must not inherit the one a previous test opened
  or spent;
- the downstream is passed in, so that a test can hand over a fake that fails on cue.
"""

# ruff: noqa: S101, PLR2004 -- the second half is tests: asserts and expected figures

from __future__ import annotations

import time
from typing import Protocol

import anyio
import pytest

import resilient as rs
import resilient.testing

# Application code.


class RatesAPI(Protocol):
    async def rate(self, currency: str) -> float: ...


def make_policy() -> rs.Pipeline:
    """The converter's policies (first is outermost)."""
    return rs.Pipeline(
        rs.Timeout(120.0),  # a conversion gives up after 2 minutes, waits included
        # Outside the Retry, the breaker judges whole calls: one outage that the
        # retries ride out does not open it; three calls in a row that fail do.
        rs.CircuitBreaker(window=rs.ConsecutiveFailures(3), open_for=60.0),
        rs.Retry(attempts=10, backoff=rs.Backoff.exponential(2.0, cap=10.0, jitter="equal")),
        rs.Timeout(5.0),  # each attempt
        name="rates",
    )


class Converter:
    def __init__(self, api: RatesAPI) -> None:
        self.api = api
        self.policy = make_policy()

    async def convert(self, amount: float, currency: str) -> float:
        rate = await self.policy.run(self.api.rate, currency)
        return round(amount * rate, 2)


# Tests.


@pytest.fixture(params=resilient.testing.anyio_backends(), ids=lambda backend: backend[0])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """Every ``@pytest.mark.anyio`` test here runs on asyncio and trio, in virtual time."""
    return request.param


class FakeRates:
    """A rates API that is down (or hangs) for *down_for* seconds from its creation."""

    def __init__(self, *, down_for: float = 0.0, hang: bool = False) -> None:
        self.back_at = anyio.current_time() + down_for
        self.hang = hang
        self.calls = 0

    async def rate(self, currency: str) -> float:
        self.calls += 1
        await anyio.sleep(0.05)  # the round trip
        if anyio.current_time() < self.back_at:
            if self.hang:
                await anyio.sleep_forever()
            raise ConnectionRefusedError("rates API restarting")
        return {"EUR": 0.9, "GBP": 0.8}[currency]


@pytest.mark.anyio
async def test_rides_out_a_30_second_outage() -> None:
    api = FakeRates(down_for=30.0)
    started = anyio.current_time()
    assert await Converter(api).convert(100.0, "EUR") == 90.0
    waited = anyio.current_time() - started
    assert 30.0 <= waited < 120.0  # the backoff waited out the outage, within the deadline
    assert 5 <= api.calls <= 10


@pytest.mark.anyio
async def test_a_hung_api_costs_at_most_the_deadline() -> None:
    api = FakeRates(down_for=3600.0, hang=True)
    started = anyio.current_time()
    with pytest.raises(rs.DeadlineExceededError):  # also a builtin TimeoutError
        await Converter(api).convert(100.0, "EUR")
    assert anyio.current_time() - started <= 120.0
    assert api.calls >= 2  # each attempt was cut off after 5 s, then retried


@pytest.mark.anyio
async def test_fails_fast_once_the_circuit_opens() -> None:
    api = FakeRates(down_for=3600.0)
    converter = Converter(api)
    for _ in range(3):  # three calls that fail, each after its retries
        with pytest.raises(ConnectionRefusedError):  # your own exception, unwrapped
            await converter.convert(100.0, "EUR")
    calls, started = api.calls, anyio.current_time()
    with pytest.raises(rs.CircuitOpenError) as raised:
        await converter.convert(100.0, "EUR")
    assert api.calls == calls  # the API was not called
    assert anyio.current_time() == started  # and nothing waited
    assert raised.value.retry_after == pytest.approx(60.0)  # when it lets a probe through


@pytest.mark.anyio
async def test_testing_mode_skips_the_retries() -> None:
    api = FakeRates(down_for=30.0)
    # set_testing(): one attempt, no waits, for tests of the failure path
    with resilient.testing.set_testing(), pytest.raises(ConnectionRefusedError):
        await Converter(api).convert(100.0, "EUR")
    assert api.calls == 1


TESTS = [
    test_rides_out_a_30_second_outage,
    test_a_hung_api_costs_at_most_the_deadline,
    test_fails_fast_once_the_circuit_opens,
    test_testing_mode_skips_the_retries,
]


async def main() -> list[tuple[str, float]]:
    """Run the tests (on a loop in virtual time); print and return each one's virtual time."""
    checked = []
    for test in TESTS:
        started = anyio.current_time()
        await test()
        took = anyio.current_time() - started
        print(f"ok  {test.__name__}: {took:.1f} s of virtual time")
        checked.append((test.__name__, took))
    return checked


if __name__ == "__main__":
    real_start = time.perf_counter()
    for backend in ("asyncio", "trio"):
        print(f"-- {backend}")
        resilient.testing.run(main, backend=backend)
    print(f"all in {time.perf_counter() - real_start:.2f} s of real time")
