"""The OpenAI SDK with `resilient.http.Transport` underneath it.

Run it with your key, or against any OpenAI-compatible server::

    OPENAI_API_KEY=sk-... python examples/openai_sdk.py
    EXAMPLE_BASE_URL=http://localhost:8000/v1 EXAMPLE_API_KEY=dummy python examples/openai_sdk.py

``EXAMPLE_MODEL`` picks the chat model (default ``gpt-4o-mini``). The SDK (3.x) is
built on httpx2, so the transport goes on an ``httpx2.AsyncClient``, and
``max_retries=0`` switches the SDK's own retry loop off: the transport retries, and
two retry layers would multiply (4 attempts under the SDK's 3 make 12 requests).

Listing models is a GET and is retried as it is. Creating a chat completion is a
POST: the transport retries it only with an idempotency key, so
``idempotency_keys=True`` mints one per request that every attempt repeats. The
SDK's own retries would resend that POST too; whether the API deduplicates on the
key is the API's business, so a completion whose answer was lost (a read timeout)
may be generated, and billed, twice.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx2
import openai

import resilient as rs
from resilient.http import Transport

policy = rs.Pipeline(
    rs.Timeout(300.0),  # the whole call: completions can be slow, and waits add up
    rs.Retry(attempts=4),  # 408, 429, 5xx and connection errors; Retry-After honoured
    rs.CircuitBreaker(window=rs.TimeWindow(300.0)),  # per origin; window >= 2 x the attempt Timeout
    rs.Timeout(120.0),  # each attempt, response body included (not event streams)
    name="example.openai",
)


def make_client(next_transport: Any = None) -> openai.AsyncOpenAI:
    """An OpenAI client whose requests go through the resilient transport.

    *next_transport* is what the transport sends through: None for the network
    (``httpx2.AsyncHTTPTransport()``), or a mock in tests.
    """
    transport = Transport(policy, next_transport, idempotency_keys=True)
    return openai.AsyncOpenAI(
        base_url=os.environ.get("EXAMPLE_BASE_URL"),  # None: OPENAI_BASE_URL, or the default
        api_key=os.environ.get("EXAMPLE_API_KEY"),  # None: OPENAI_API_KEY
        http_client=httpx2.AsyncClient(transport=transport),
        max_retries=0,  # the transport retries; the SDK must not retry on top of it
    )


async def main(next_transport: Any = None) -> dict[str, Any]:
    """List the models, ask for one short completion; print and return both."""
    model = os.environ.get("EXAMPLE_MODEL", "gpt-4o-mini")
    async with make_client(next_transport) as client:
        models = [m.id async for m in client.models.list()]
        print(f"{len(models)} models, e.g. {models[:3]}")
        raw = await client.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": "Say hello in five words or fewer."}],
        )
        completion = raw.parse()
        info = raw.http_response.extensions["resilient"]
        reply = completion.choices[0].message.content
        print(f"{model}: {reply!r} after {info['attempts']} attempt(s), waits {info['delays']}")
    return {"models": models, "reply": reply, "resilient": info}


if __name__ == "__main__":
    asyncio.run(main())
