"""The Anthropic SDK with `resilient.http.Transport` underneath it.

Run it with your key, or against any Anthropic-compatible server::

    ANTHROPIC_API_KEY=sk-ant-... python examples/anthropic_sdk.py
    EXAMPLE_BASE_URL=http://localhost:8000 EXAMPLE_API_KEY=dummy python examples/anthropic_sdk.py

``EXAMPLE_MODEL`` picks the model (default: the first one the API lists). The SDK
(2.x) is built on httpx2, so the transport goes on an ``httpx2.AsyncClient``, and
``max_retries=0`` switches the SDK's own retry loop off: the transport retries, and
two retry layers would multiply (4 attempts under the SDK's 3 make 12 requests).

Listing models is a GET and is retried as it is. Creating a message is a POST: the
transport retries it only with an idempotency key, so ``idempotency_keys=True``
mints one per request that every attempt repeats. The SDK's own retries would
resend that POST too; whether the API deduplicates on the key is the API's
business, so a message whose answer was lost (a read timeout) may be generated,
and billed, twice.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import anthropic
import httpx2

import resilient as rs
from resilient.http import Transport

policy = rs.Pipeline(
    rs.Timeout(300.0),  # the whole call: messages can be slow, and waits add up
    rs.Retry(attempts=4),  # 408, 429, 5xx and connection errors; Retry-After honoured
    rs.CircuitBreaker(window=rs.TimeWindow(300.0)),  # per origin; window >= 2 x the attempt Timeout
    rs.Timeout(120.0),  # each attempt, response body included (not event streams)
    name="example.anthropic",
)


def make_client(next_transport: Any = None) -> anthropic.AsyncAnthropic:
    """An Anthropic client whose requests go through the resilient transport.

    *next_transport* is what the transport sends through: None for the network
    (``httpx2.AsyncHTTPTransport()``), or a mock in tests.
    """
    transport = Transport(policy, next_transport, idempotency_keys=True)
    return anthropic.AsyncAnthropic(
        base_url=os.environ.get("EXAMPLE_BASE_URL"),  # None: ANTHROPIC_BASE_URL, or the default
        api_key=os.environ.get("EXAMPLE_API_KEY"),  # None: ANTHROPIC_API_KEY
        http_client=httpx2.AsyncClient(transport=transport),
        max_retries=0,  # the transport retries; the SDK must not retry on top of it
    )


async def main(next_transport: Any = None) -> dict[str, Any]:
    """List the models, ask for one short message; print and return both."""
    async with make_client(next_transport) as client:
        models = [m.id async for m in client.models.list()]
        print(f"{len(models)} models, e.g. {models[:3]}")
        model = os.environ.get("EXAMPLE_MODEL") or models[0]
        raw = await client.messages.with_raw_response.create(
            model=model,
            max_tokens=20,
            messages=[{"role": "user", "content": "Say hello in five words or fewer."}],
        )
        message = await raw.parse()
        info = raw.http_response.extensions["resilient"]
        reply = "".join(block.text for block in message.content if block.type == "text")
        print(f"{model}: {reply!r} after {info['attempts']} attempt(s), waits {info['delays']}")
    return {"models": models, "reply": reply, "resilient": info}


if __name__ == "__main__":
    asyncio.run(main())
