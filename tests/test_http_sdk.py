"""resilient.http.Transport under the OpenAI (3.x) and Anthropic (2.x) SDKs, built on httpx2.

Each SDK client gets ``http_client=httpx2.AsyncClient(transport=Transport(pipeline,
next_transport=httpx2.MockTransport(server)))`` and ``max_retries=0``: the transport
retries, the SDK does not. The scripted server answers 503 and then a body the SDK
parses, so the tests see the retries from both sides: the requests the server got,
the SDK's own retry counter (``x-stainless-retry-count``), ``response.extensions``
and the pipeline's hooks. Runs in virtual time on asyncio and trio.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2
import openai
import pytest

import resilient as rs
from resilient import http as rsh
from resilient.instrumentation import Hook, RetryDetails
from resilient.testing import anyio_backends

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio

FAST = rs.Backoff.constant(0.5)

OPENAI_URL = "https://openai.test/v1"
ANTHROPIC_URL = "https://anthropic.test"

MODELS = {
    "object": "list",
    "data": [{"id": "gpt-test", "object": "model", "created": 1700000000, "owned_by": "tests"}],
}
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-test",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}
CLAUDE_MODELS = {
    "data": [
        {
            "id": "claude-test",
            "type": "model",
            "display_name": "Claude Test",
            "created_at": "2025-01-01T00:00:00Z",
            "lifecycle": "active",
        }
    ],
    "has_more": False,
    "first_id": "claude-test",
    "last_id": "claude-test",
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 2},
}
USER = [{"role": "user", "content": "Hi"}]


class Server:
    """An httpx2 MockTransport handler: each item is a status, (status, headers), a dict
    (a 200 JSON body) or a response; the headers each request carried are kept."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.requests: list[httpx2.Request] = []
        self.headers: list[dict[str, str]] = []  # as sent: a request is reused per attempt

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        self.headers.append(dict(request.headers))
        item = self.script.pop(0)
        if isinstance(item, httpx2.Response):
            return item
        if isinstance(item, dict):
            return httpx2.Response(200, json=item)
        status, headers = item if isinstance(item, tuple) else (item, {})
        return httpx2.Response(status, headers=headers, json={"error": {"message": "busy"}})

    def sent(self, name: str) -> list[str | None]:
        return [headers.get(name.lower()) for headers in self.headers]


class Retries(Hook):
    """Records the retries the pipeline scheduled."""

    def __init__(self) -> None:
        self.retries: list[tuple[str | None, int, float]] = []

    def on_retry(self, details: RetryDetails) -> None:
        self.retries.append((details.operation, details.attempt, details.delay))


def transport(server: Server, hook: Hook | None = None, **options: Any) -> rsh.Transport:
    policy = rs.Pipeline(
        rs.Retry(backoff=FAST, budget=None), name="llm", hooks=[hook] if hook else []
    )
    return rsh.Transport(policy, next_transport=httpx2.MockTransport(server), **options)


def openai_client(server: Server, hook: Hook | None = None, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=OPENAI_URL,
        api_key="test",
        http_client=httpx2.AsyncClient(transport=transport(server, hook, **options)),
        max_retries=0,
    )


def anthropic_client(
    server: Server, hook: Hook | None = None, **options: Any
) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=ANTHROPIC_URL,
        api_key="test",
        http_client=httpx2.AsyncClient(transport=transport(server, hook, **options)),
        max_retries=0,
    )


# GET: retried as it is


async def test_openai_models_list_is_retried_by_the_transport_not_the_sdk() -> None:
    server = Server((503, {"Retry-After": "0"}), 503, MODELS)
    hook = Retries()
    async with openai_client(server, hook) as client:
        page = await client.models.list()
    assert [model.id for model in page.data] == ["gpt-test"]
    assert len(server.requests) == 3
    assert all(request.method == "GET" for request in server.requests)
    assert server.sent("x-stainless-retry-count") == ["0", "0", "0"]  # the SDK sent it once
    # Retry-After: 0 is honoured as no wait; no header: the backoff.
    assert hook.retries == [("llm", 1, 0.0), ("llm", 2, 0.5)]


async def test_openai_raw_response_carries_the_transport_record() -> None:
    server = Server(503, 503, MODELS)
    async with openai_client(server) as client:
        raw = await client.models.with_raw_response.list()
    assert raw.parse().data[0].id == "gpt-test"
    assert raw.http_response.extensions["resilient"] == {
        "attempts": 3,
        "delays": [0.5, 0.5],
        "idempotency_key": None,
    }


async def test_anthropic_models_list_is_retried_by_the_transport_not_the_sdk() -> None:
    server = Server((503, {"Retry-After": "0"}), 503, CLAUDE_MODELS)
    hook = Retries()
    async with anthropic_client(server, hook) as client:
        raw = await client.models.with_raw_response.list()
    page = await raw.parse()
    assert [model.id for model in page.data] == ["claude-test"]
    assert page.data[0].display_name == "Claude Test"
    assert len(server.requests) == 3
    assert server.sent("x-stainless-retry-count") == ["0", "0", "0"]
    assert hook.retries == [("llm", 1, 0.0), ("llm", 2, 0.5)]
    assert raw.http_response.extensions["resilient"]["attempts"] == 3


async def test_when_the_retries_run_out_the_sdk_raises_its_own_status_error() -> None:
    server = Server(503, 503, 503, 503)
    async with openai_client(server) as client:
        with pytest.raises(openai.InternalServerError) as info:
            await client.models.list()
    assert info.value.status_code == 503
    assert len(server.requests) == 4  # the transport's 4 attempts, no more
    assert info.value.response.extensions["resilient"]["attempts"] == 4


async def test_the_sdks_own_retries_multiply_ours() -> None:
    """Why max_retries=0: left at its default (2), the SDK retries what we gave up on."""
    server = Server(*[503] * 12)
    client = openai.AsyncOpenAI(
        base_url=OPENAI_URL,
        api_key="test",
        http_client=httpx2.AsyncClient(transport=transport(server)),
    )
    async with client:
        with pytest.raises(openai.InternalServerError):
            await client.models.list()
    assert len(server.requests) == 12  # 3 SDK attempts x 4 transport attempts
    assert server.sent("x-stainless-retry-count") == ["0"] * 4 + ["1"] * 4 + ["2"] * 4


# POST: retried only with an idempotency key


async def test_openai_chat_completion_post_is_not_retried_without_a_key() -> None:
    server = Server(503, CHAT)
    async with openai_client(server) as client:
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="gpt-test", messages=USER)
    assert len(server.requests) == 1
    assert server.requests[0].method == "POST"
    # The SDK sends no idempotency key of its own (its _idempotency_header is None).
    assert server.sent("Idempotency-Key") == [None]


async def test_openai_chat_completion_post_is_retried_with_minted_keys() -> None:
    server = Server(503, (429, {"retry-after-ms": "250"}), CHAT)
    async with openai_client(server, idempotency_keys=True) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=USER
        )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello!"
    keys = server.sent("Idempotency-Key")
    assert len(keys) == 3
    assert keys[0] is not None
    assert len(set(keys)) == 1  # one key for every attempt of the one request
    assert [json.loads(r.content) for r in server.requests] == [
        {"model": "gpt-test", "messages": USER}
    ] * 3
    info = raw.http_response.extensions["resilient"]
    assert info == {"attempts": 3, "delays": [0.5, 0.25], "idempotency_key": keys[0]}


async def test_a_key_the_caller_passes_to_the_sdk_is_used_and_kept() -> None:
    server = Server(503, CHAT)
    async with openai_client(server, idempotency_keys=True) as client:
        await client.chat.completions.create(
            model="gpt-test", messages=USER, extra_headers={"Idempotency-Key": "order-42"}
        )
    assert server.sent("Idempotency-Key") == ["order-42", "order-42"]


async def test_anthropic_messages_post_is_retried_only_with_a_key() -> None:
    server = Server(503, MESSAGE)
    async with anthropic_client(server) as client:
        with pytest.raises(anthropic.InternalServerError):
            await client.messages.create(model="claude-test", max_tokens=10, messages=USER)
    assert len(server.requests) == 1
    assert server.sent("Idempotency-Key") == [None]

    server = Server(503, 529, MESSAGE)  # 529: Anthropic's "overloaded"
    async with anthropic_client(server, classification=overloaded()) as client:
        message = await client.messages.create(
            model="claude-test",
            max_tokens=10,
            messages=USER,
            extra_headers={"Idempotency-Key": "msg-7"},
        )
    assert message.content[0].text == "Hello!"
    assert server.sent("Idempotency-Key") == ["msg-7"] * 3

    server = Server(503, MESSAGE)
    async with anthropic_client(server, idempotency_keys=True) as client:
        message = await client.messages.create(model="claude-test", max_tokens=10, messages=USER)
    assert message.content[0].text == "Hello!"
    keys = server.sent("Idempotency-Key")
    assert len(keys) == 2
    assert keys[0] is not None
    assert keys[0] == keys[1]


def overloaded() -> rsh.HttpClassification:
    return rsh.HttpClassification(retry_statuses=rsh.RETRY_STATUSES | {529})


async def test_529_is_not_retried_by_default() -> None:
    server = Server(529, CLAUDE_MODELS)
    async with anthropic_client(server) as client:
        with pytest.raises(anthropic.APIStatusError) as info:
            await client.models.list()
    assert info.value.status_code == 529
    assert len(server.requests) == 1


# Streams and resilient's own errors through the SDK


# asyncio only: the SDK leaves its SSE decoder's async generators to the garbage
# collector, which trio reports as a ResourceWarning (an error here).
@pytest.mark.parametrize(
    "anyio_backend", anyio_backends(trio=False), ids=lambda backend: backend[0]
)
async def test_an_event_stream_is_retried_until_its_headers_then_handed_to_the_sdk() -> None:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
    }
    order: list[str] = []

    async def events() -> AsyncIterator[bytes]:
        yield f"data: {json.dumps(chunk)}\n\n".encode()
        order.append("rest of the stream read")
        yield b"data: [DONE]\n\n"

    stream_response = httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=events()
    )
    server = Server(503, stream_response)
    client = openai_client(server, idempotency_keys=True)
    async with client:
        stream = await client.chat.completions.create(model="gpt-test", messages=USER, stream=True)
        order.append("the SDK has the stream")
        pieces = [event.choices[0].delta.content async for event in stream]
    assert pieces == ["Hel"]
    # Handed over at its headers, not read whole inside the pipeline first.
    assert order == ["the SDK has the stream", "rest of the stream read"]
    assert len(server.requests) == 2
    assert stream.response.extensions["resilient"]["attempts"] == 2


async def test_resilient_errors_pass_through_openai_unwrapped() -> None:
    server = Server((429, {"Retry-After": "3600"}))
    async with openai_client(server) as client:
        with pytest.raises(rsh.RetryAfterTooLongError) as info:
            await client.models.list()
    assert info.value.retry_after == 3600
    assert len(server.requests) == 1


async def test_anthropic_wraps_resilient_errors_with_them_as_the_cause() -> None:
    """As docs/http.md says: anthropic 2.x wraps any error from the transport."""
    server = Server((429, {"Retry-After": "3600"}))
    async with anthropic_client(server) as client:
        with pytest.raises(anthropic.APIConnectionError) as info:
            await client.models.list()
    assert isinstance(info.value.__cause__, rsh.RetryAfterTooLongError)
    assert info.value.__cause__.retry_after == 3600
    assert len(server.requests) == 1
