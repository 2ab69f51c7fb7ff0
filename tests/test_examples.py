"""The scripts in ``examples/`` run: each one's ``main()`` against local mocks, offline.

Each example is loaded from its file afresh for each test (its module-level pipeline,
breakers and budget included). The HTTP examples read ``EXAMPLE_BASE_URL`` (and the
SDK examples ``EXAMPLE_API_KEY``), so every one of them is run twice:

- in virtual time, on asyncio and trio, with the network mocked: respx for the httpx
  example, an ``httpx2.MockTransport`` handed to ``main()`` for the SDK examples (respx
  patches httpx, not httpx2);
- over real sockets, against ``tests/http_server.py``'s `LocalServer` on the plain
  asyncio loop, with nothing injected: the path a user runs. Those servers answer
  ``Retry-After: 0``, so the retries cost no real time.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import httpx2
import pytest
import respx

import http_server
from http_server import Behaviour, LocalServer

if TYPE_CHECKING:
    from types import ModuleType

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# The real-socket tests ask for a started server by this name (see http_server.py).
local_server_fixture = http_server.local_server_fixture

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
        {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
    ],
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
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [{"type": "text", "text": "Hi!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 2},
}


def load(name: str) -> ModuleType:
    """A fresh module object of ``examples/<name>.py``."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: dataclasses and typing look here
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ambient configuration leaks in; a dummy key for the SDKs."""
    for name in (
        "EXAMPLE_BASE_URL",
        "EXAMPLE_MODEL",
        "OPENAI_BASE_URL",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EXAMPLE_API_KEY", "test-key")
    return monkeypatch


class Mock:
    """An httpx2 MockTransport handler: answers by method, in order, keeping the requests."""

    def __init__(self, **scripts: list[httpx2.Response]) -> None:
        self.scripts = scripts
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.scripts[request.method].pop(0)


def busy() -> httpx2.Response:
    return httpx2.Response(503, headers={"Retry-After": "0"}, json={"error": "busy"})


def ok(body: dict[str, Any]) -> Behaviour:
    return Behaviour(
        200, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


BUSY = Behaviour(503, retry_after=0, body=b'{"error": "busy"}')


# decorated_function.py


async def test_decorated_function(logs: list[dict[str, object]], capsys) -> None:
    example = load("decorated_function")
    assert await example.main() == {"symbol": "ACME", "price": 101.25}
    assert "after 3 attempts" in capsys.readouterr().out
    retries = [event for event in logs if event["event"] == "resilient.retry_scheduled"]
    assert [(e["operation"], e["attempt"], e["error"]) for e in retries] == [
        ("example.fetch_quote", 1, "ConnectionRefusedError"),
        ("example.fetch_quote", 2, "ConnectionRefusedError"),
    ]


# httpx_client.py


async def test_httpx_client_with_respx(env: pytest.MonkeyPatch, capsys) -> None:
    env.setenv("EXAMPLE_BASE_URL", "https://httpbin.test")
    example = load("httpx_client")
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        get = router.get("https://httpbin.test/get", params={"hello": "world"}).mock(
            side_effect=[httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(200)]
        )
        post = router.post("https://httpbin.test/post").mock(
            side_effect=[httpx.Response(502, headers={"Retry-After": "0"}), httpx.Response(200)]
        )
        report = await example.main()
    assert get.call_count == 2
    assert post.call_count == 2
    keys = [call.request.headers.get("Idempotency-Key") for call in post.calls]
    assert keys[0] is not None
    assert keys[0] == keys[1]
    assert report == [
        {"method": "GET", "attempts": 2, "delays": [0.0], "idempotency_key": None},
        {"method": "POST", "attempts": 2, "delays": [0.0], "idempotency_key": keys[0]},
    ]
    assert "POST https://httpbin.test/post -> 200 after 2 attempt(s)" in capsys.readouterr().out


@http_server.real_loop
async def test_httpx_client_over_real_sockets(
    env: pytest.MonkeyPatch, local_server: LocalServer
) -> None:
    env.setenv("EXAMPLE_BASE_URL", local_server.url)
    local_server.script = [BUSY, ok({}), BUSY, ok({})]
    example = load("httpx_client")
    report = await example.main()
    assert [(r.method, r.path) for r in local_server.requests] == [
        ("GET", "/get?hello=world"),
        ("GET", "/get?hello=world"),
        ("POST", "/post"),
        ("POST", "/post"),
    ]
    assert [r["attempts"] for r in report] == [2, 2]
    posts = local_server.requests[2:]
    assert posts[0].header("Idempotency-Key") == posts[1].header("Idempotency-Key") is not None


# openai_sdk.py


async def test_openai_sdk_with_a_mock_transport(env: pytest.MonkeyPatch) -> None:
    env.setenv("EXAMPLE_BASE_URL", "https://openai.test/v1")
    env.setenv("EXAMPLE_MODEL", "gpt-test")
    mock = Mock(
        GET=[busy(), httpx2.Response(200, json=MODELS)],
        POST=[busy(), busy(), httpx2.Response(200, json=CHAT)],
    )
    result = await load("openai_sdk").main(httpx2.MockTransport(mock))
    assert result["models"] == ["gpt-test"]
    assert result["reply"] == "Hi!"
    assert [(r.method, r.url.path) for r in mock.requests] == [
        ("GET", "/v1/models"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    assert {r.headers["Authorization"] for r in mock.requests} == {"Bearer test-key"}
    assert {r.headers["x-stainless-retry-count"] for r in mock.requests} == {"0"}  # SDK: no retries
    keys = {r.headers.get("Idempotency-Key") for r in mock.requests[2:]}
    assert len(keys) == 1
    assert result["resilient"] == {
        "attempts": 3,
        "delays": [0.0, 0.0],
        "idempotency_key": keys.pop(),
    }


@http_server.real_loop
async def test_openai_sdk_over_real_sockets(
    env: pytest.MonkeyPatch, local_server: LocalServer
) -> None:
    env.setenv("EXAMPLE_BASE_URL", f"{local_server.url}/v1")
    env.setenv("EXAMPLE_MODEL", "gpt-test")
    local_server.script = [BUSY, ok(MODELS), BUSY, ok(CHAT)]
    result = await load("openai_sdk").main()
    assert result["reply"] == "Hi!"
    assert [(r.method, r.path) for r in local_server.requests] == [
        ("GET", "/v1/models"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    posts = local_server.requests[2:]
    assert posts[0].header("Idempotency-Key") == posts[1].header("Idempotency-Key") is not None


# anthropic_sdk.py


async def test_anthropic_sdk_with_a_mock_transport(env: pytest.MonkeyPatch) -> None:
    env.setenv("EXAMPLE_BASE_URL", "https://anthropic.test")
    mock = Mock(
        GET=[busy(), httpx2.Response(200, json=CLAUDE_MODELS)],
        POST=[busy(), httpx2.Response(200, json=MESSAGE)],
    )
    result = await load("anthropic_sdk").main(httpx2.MockTransport(mock))
    assert result["models"] == ["claude-test"]
    assert result["reply"] == "Hi!"
    assert [(r.method, r.url.path) for r in mock.requests] == [
        ("GET", "/v1/models"),
        ("GET", "/v1/models"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages"),
    ]
    assert {r.headers["Authorization"] for r in mock.requests} == {"Bearer test-key"}
    assert {r.headers["x-stainless-retry-count"] for r in mock.requests} == {"0"}
    posted = [json.loads(r.content) for r in mock.requests[2:]]
    assert posted[0] == posted[1]
    assert posted[0]["model"] == "claude-test"  # the first model listed
    assert result["resilient"]["attempts"] == 2


@http_server.real_loop
async def test_anthropic_sdk_over_real_sockets(
    env: pytest.MonkeyPatch, local_server: LocalServer
) -> None:
    env.setenv("EXAMPLE_BASE_URL", local_server.url)
    local_server.script = [BUSY, ok(CLAUDE_MODELS), BUSY, ok(MESSAGE)]
    result = await load("anthropic_sdk").main()
    assert result["reply"] == "Hi!"
    assert [(r.method, r.path) for r in local_server.requests] == [
        ("GET", "/v1/models"),
        ("GET", "/v1/models"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages"),
    ]
    posts = local_server.requests[2:]
    assert posts[0].header("Idempotency-Key") == posts[1].header("Idempotency-Key") is not None


def test_every_example_is_tested() -> None:
    tested = {"decorated_function", "httpx_client", "openai_sdk", "anthropic_sdk"}
    assert {path.stem for path in EXAMPLES.glob("*.py")} == tested
