"""A plain ``httpx.AsyncClient`` whose requests go through `resilient.http.Transport`.

Run it against any httpbin-compatible server (the default is https://httpbin.org)::

    python examples/httpx_client.py
    EXAMPLE_BASE_URL=http://localhost:8080 python examples/httpx_client.py

The client is an ordinary ``httpx.AsyncClient``; only its transport changes. The
transport retries 408, 429 and 5xx answers and connection errors (honouring
``Retry-After``), keeps one circuit breaker per origin, and bounds each request and
each attempt, response body included. GET is retried as it is; the POST is retried
only because ``idempotency_keys=True`` gives it an ``Idempotency-Key`` that every
attempt repeats (your server must deduplicate on it for that to be safe).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx

import resilient as rs
from resilient.http import Transport

DEFAULT_BASE_URL = "https://httpbin.org"

policy = rs.Pipeline(
    rs.Timeout(30.0),  # the whole request: every attempt and every wait
    rs.Retry(attempts=4),  # HTTP-aware: statuses, method safety, Retry-After
    rs.CircuitBreaker(),  # one circuit per origin (scheme, host, port)
    rs.Timeout(10.0),  # each attempt, body included
    name="example.httpbin",  # the operation name in logs and spans
)


def make_client(base_url: str, next_transport: Any = None) -> httpx.AsyncClient:
    """An httpx client for *base_url* with the resilient transport.

    *next_transport* is what the transport sends through: None for the network
    (``httpx.AsyncHTTPTransport()``), or a mock in tests.
    """
    transport = Transport(policy, next_transport, idempotency_keys=True)
    return httpx.AsyncClient(base_url=base_url, transport=transport)


async def main(next_transport: Any = None) -> list[dict[str, Any]]:
    """Send a GET and a POST; print and return what each took."""
    base_url = os.environ.get("EXAMPLE_BASE_URL", DEFAULT_BASE_URL)
    report = []
    async with make_client(base_url, next_transport) as client:
        for response in [
            await client.get("/get", params={"hello": "world"}),
            await client.post("/post", json={"name": "Ada"}),
        ]:
            response.raise_for_status()  # a 503 that outlasted the retries arrives here
            info = response.extensions["resilient"]
            print(
                f"{response.request.method} {response.url} -> {response.status_code}"
                f" after {info['attempts']} attempt(s), waits {info['delays']},"
                f" idempotency key {info['idempotency_key']}"
            )
            report.append({"method": response.request.method, **info})
    return report


if __name__ == "__main__":
    asyncio.run(main())
