"""A flaky async function made reliable with a `resilient.Pipeline` used as a decorator.

Run it with::

    python examples/decorated_function.py

It needs no network: the "downstream" is an object that refuses the first two
connections and answers the third, the way a service that is restarting does. The
pipeline gives the whole call 10 s, retries connection errors and timeouts with
jittered exponential backoff (at most 4 attempts, within a retry budget), and gives
each attempt 2 s. Each retry is logged through structlog at warning level.
"""

from __future__ import annotations

import asyncio

import anyio

import resilient as rs

policy = rs.Pipeline(
    rs.Timeout(10.0),  # outermost: the whole call, retries and waits included
    rs.Retry(attempts=4, backoff=rs.Backoff.exponential(0.2, cap=5.0, jitter="full")),
    rs.Timeout(2.0),  # innermost: each attempt
    name="example.fetch_quote",  # the operation name in logs and spans
)


class Downstream:
    """Stands in for a network service: refuses the first *failures* calls."""

    def __init__(self, failures: int = 2) -> None:
        self.failures = failures
        self.calls = 0

    async def quote(self, symbol: str) -> dict[str, object]:
        self.calls += 1
        await anyio.sleep(0.05)  # the round trip
        if self.calls <= self.failures:
            raise ConnectionRefusedError("connection refused")
        return {"symbol": symbol, "price": 101.25}


@policy
async def fetch_quote(downstream: Downstream, symbol: str) -> dict[str, object]:
    """One logical call: the pipeline runs it again when it fails with a transient error."""
    return await downstream.quote(symbol)


async def main() -> dict[str, object]:
    """Fetch a quote from a downstream that fails twice; return the quote."""
    downstream = Downstream(failures=2)
    quote = await fetch_quote(downstream, "ACME")
    print(f"{quote} after {downstream.calls} attempts")
    return quote


if __name__ == "__main__":
    asyncio.run(main())
