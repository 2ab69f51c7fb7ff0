"""Several APIs, each with its own policies, behind one ``httpx.AsyncClient``.

Run it offline (stand-ins for the three APIs answer in-process), or against your own
servers::

    python examples/per_origin_policies.py
    EXAMPLE_PAYMENTS_URL=http://localhost:8001 EXAMPLE_GEOCODING_URL=http://localhost:8002 \\
        EXAMPLE_INVENTORY_URL=http://localhost:8003 python examples/per_origin_policies.py

APIs differ, so their policies do too:

- **payments** (a third party, charges money): a generous deadline, few retries, and a
  ``POST`` retried only because it carries an ``Idempotency-Key`` of our own (the order
  number: a retry, or a crash and a rerun, can never charge twice); its breaker opens
  after 5 failures in a row.
- **geocoding** (a third party with a quota of 10 requests per second): a
  `RateLimiter` inside the `Retry`, so that every attempt, retries included, stays
  within the quota; a 429's ``Retry-After`` is honoured.
- **inventory** (an internal service on the same network): tight timeouts, quick
  retries, and a `Bulkhead` so that a slow inventory cannot hold every task of ours.

``httpx.AsyncClient(mounts=...)`` routes each origin (scheme, host, port) to its own
`resilient.http.Transport`; any other URL goes through ``Transport()`` with the default
pipeline. Build the pipelines, transports and client once and share them: breakers,
budgets and limiters are state that only works when shared.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx

import resilient as rs
from resilient.http import Transport

PAYMENTS = rs.Pipeline(
    rs.Timeout(30.0),  # the whole call, retries and waits included
    rs.Retry(attempts=3, backoff=rs.Backoff.exponential(0.5, cap=4.0)),
    rs.CircuitBreaker(window=rs.ConsecutiveFailures(5), open_for=30.0),
    rs.Timeout(10.0),  # each attempt
    name="payments",
)

GEOCODING = rs.Pipeline(
    rs.Timeout(5.0),
    rs.Retry(attempts=3),  # 408, 429, 5xx, connection errors; Retry-After honoured
    rs.CircuitBreaker(),  # 50 % failures of at least 20 calls in 30 s
    rs.RateLimiter(10.0, burst=10, max_wait=1.0),  # their quota: 10 requests per second
    rs.Timeout(2.0),
    name="geocoding",
)

INVENTORY = rs.Pipeline(
    rs.Timeout(1.0),  # an internal call: fail fast
    rs.Retry(attempts=3, backoff=rs.Backoff.exponential(0.05, cap=0.2)),
    rs.CircuitBreaker(window=rs.CountWindow(20), min_calls=10, open_for=5.0),
    rs.Bulkhead(20, queue=50, max_wait=0.5),  # at most 20 requests in flight, 50 queued
    rs.Timeout(0.3),
    name="inventory",
)

#: Where each API lives: the environment, or the stand-ins of `offline_apis`.
DEFAULT_URLS = {
    "payments": "https://payments.example",
    "geocoding": "https://geocoding.example",
    "inventory": "http://inventory.internal.example",
}


def origin(url: str) -> str:
    """The mount key for *url*: ``scheme://host[:port]``, without its path."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def make_client(urls: dict[str, str], next_transport: Any = None) -> httpx.AsyncClient:
    """One client; each API's origin mounted on a Transport with that API's pipeline.

    *next_transport* is what every Transport sends through: None for the network,
    or a mock.
    """
    policies = {"payments": PAYMENTS, "geocoding": GEOCODING, "inventory": INVENTORY}
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        origin(urls[api]): Transport(policy, next_transport) for api, policy in policies.items()
    }
    return httpx.AsyncClient(
        mounts=mounts,
        transport=Transport(next_transport=next_transport),  # any other origin
    )


async def main(next_transport: Any = None) -> list[dict[str, Any]]:
    """Check stock, geocode the address, charge the card; print and return each call."""
    urls = {
        api: os.environ.get(f"EXAMPLE_{api.upper()}_URL", url) for api, url in DEFAULT_URLS.items()
    }
    if next_transport is None and urls == DEFAULT_URLS:
        next_transport = httpx.MockTransport(offline_apis)  # nothing configured: stand-ins
    report = []
    async with make_client(urls, next_transport) as client:
        responses = {
            "inventory": await client.get(f"{urls['inventory']}/stock/SKU-42"),
            "geocoding": await client.get(
                f"{urls['geocoding']}/v1/search", params={"q": "10 Downing Street, London"}
            ),
            "payments": await client.post(
                f"{urls['payments']}/v1/charges",
                json={"order": "A-1001", "amount": 1299, "currency": "eur"},
                headers={"Idempotency-Key": "charge-A-1001"},  # ours: the order's number
            ),
        }
        for api, response in responses.items():
            response.raise_for_status()  # what outlasted the retries arrives here
            info = response.extensions["resilient"]
            print(
                f"{api:9} {response.request.method:4} {response.url.path} -> "
                f"{response.status_code} after {info['attempts']} attempt(s), "
                f"waits {info['delays']}"
            )
            report.append({"api": api, "status": response.status_code, **info})
    return report


# Offline stand-ins for the three APIs, used when no URL is configured.

_offline_failures = {"geocoding.example": [429], "payments.example": [503]}


def offline_apis(request: httpx.Request) -> httpx.Response:
    """Geocoding is over its quota once, payments busy once; inventory is fine."""
    failures = _offline_failures.get(request.url.host, [])
    if failures:
        return httpx.Response(failures.pop(0), headers={"Retry-After": "1"})
    return httpx.Response(200, json={"ok": True})


if __name__ == "__main__":
    asyncio.run(main())
