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

``per_origin_policies`` runs the same two ways (three local servers, one per API).
``fastapi_outbox`` runs on the real loop (SQLite works in threads), its app driven through
``httpx.ASGITransport`` and its lifespan, delivering to a local server.
``testing_with_virtual_clock`` runs on the virtual loops, and once as a script and once
under pytest, in subprocesses, as its docstring says to run it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
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
        "EXAMPLE_PAYMENTS_URL",
        "EXAMPLE_GEOCODING_URL",
        "EXAMPLE_INVENTORY_URL",
        "EXAMPLE_FULFILMENT_URL",
        "EXAMPLE_DATABASE",
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


# per_origin_policies.py


def origins_of(report: list[dict[str, Any]]) -> dict[str, tuple[int, int, list[float]]]:
    return {r["api"]: (r["status"], r["attempts"], r["delays"]) for r in report}


async def test_per_origin_policies_offline(env: pytest.MonkeyPatch, logs, capsys) -> None:
    """No URL configured: the example's own stand-ins answer, in virtual time."""
    started = anyio.current_time()
    report = await load("per_origin_policies").main()
    assert round(anyio.current_time() - started, 6) >= 2.0  # two Retry-After: 1 waits, for free
    assert origins_of(report) == {
        "inventory": (200, 1, []),
        "geocoding": (200, 2, [1.0]),
        "payments": (200, 2, [1.0]),
    }
    # Each origin went through its own pipeline: the retries are logged under its name.
    retried = [e["operation"] for e in logs if e["event"] == "resilient.retry_scheduled"]
    assert retried == ["geocoding", "payments"]
    assert "payments  POST /v1/charges -> 200 after 2 attempt(s)" in capsys.readouterr().out


async def test_per_origin_policies_route_each_origin_to_its_pipeline(
    env: pytest.MonkeyPatch, logs
) -> None:
    """Through a mock network: an inventory that hangs meets the inventory's own timeout."""
    seen: list[httpx.Request] = []

    async def network(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "inventory.internal.example" and len(seen) == 1:
            await anyio.sleep_forever()  # hangs: cut off by inventory's 0.3 s per-attempt Timeout
        if request.url.host == "payments.example" and len(seen) == 4:
            return httpx.Response(502)  # no Retry-After: payments' own backoff
        return httpx.Response(200)

    example = load("per_origin_policies")
    started = anyio.current_time()
    report = await example.main(httpx.MockTransport(network))
    assert anyio.current_time() - started < 5.0  # nothing waited for the hung request's minute
    assert [(r.method, r.url.host) for r in seen] == [
        ("GET", "inventory.internal.example"),
        ("GET", "inventory.internal.example"),
        ("GET", "geocoding.example"),
        ("POST", "payments.example"),
        ("POST", "payments.example"),
    ]
    assert [r.headers.get("Idempotency-Key") for r in seen[3:]] == ["charge-A-1001"] * 2
    status = origins_of(report)
    assert status["inventory"][:2] == (200, 2)
    assert status["geocoding"] == (200, 1, [])
    assert status["payments"][:2] == (200, 2)
    assert 0.0 <= status["payments"][2][0] <= 0.5  # Backoff.exponential(0.5), full jitter
    timed_out = [e["operation"] for e in logs if e["event"] == "resilient.timed_out"]
    assert timed_out == ["inventory"]


@http_server.real_loop
async def test_per_origin_policies_over_real_sockets(
    env: pytest.MonkeyPatch, local_server: LocalServer
) -> None:
    async with LocalServer() as geocoding, LocalServer() as inventory:
        payments = local_server
        env.setenv("EXAMPLE_PAYMENTS_URL", payments.url)
        env.setenv("EXAMPLE_GEOCODING_URL", geocoding.url)
        env.setenv("EXAMPLE_INVENTORY_URL", inventory.url)
        payments.script = [BUSY, ok({"id": "ch_1"})]
        geocoding.script = [Behaviour(429, retry_after=0), ok({"lat": 51.5, "lon": -0.13})]
        inventory.script = [ok({"sku": "SKU-42", "available": 7})]
        report = await load("per_origin_policies").main()
    assert origins_of(report) == {
        "inventory": (200, 1, []),
        "geocoding": (200, 2, [0.0]),
        "payments": (200, 2, [0.0]),
    }
    assert [(r.method, r.path) for r in inventory.requests] == [("GET", "/stock/SKU-42")]
    assert [r.path for r in geocoding.requests] == ["/v1/search?q=10+Downing+Street%2C+London"] * 2
    assert [(r.method, r.path) for r in payments.requests] == [("POST", "/v1/charges")] * 2
    assert [r.header("Idempotency-Key") for r in payments.requests] == ["charge-A-1001"] * 2


# fastapi_outbox.py


@http_server.real_loop
async def test_fastapi_outbox_commits_orders_and_messages_together(
    env: pytest.MonkeyPatch, local_server: LocalServer, tmp_path: Path
) -> None:
    """Committed orders are delivered once each, with their key; a rolled-back one is not."""
    example = load("fastapi_outbox")
    fulfilment = local_server
    fulfilment.default = Behaviour(202, body=b'{"accepted": true}')
    app = example.create_app(tmp_path / "shop.db", f"{fulfilment.url}/shipments")
    shop = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop")
    async with app.router.lifespan_context(app), shop:
        placed = [
            await shop.post("/orders", json={"sku": "SKU-1", "quantity": 2}),
            await shop.post("/orders", json={"sku": "SKU-2", "quantity": 3}),
        ]
        refused = await shop.post("/orders", json={"sku": "SKU-2", "quantity": 4})  # stock: 3
        invalid = await shop.post("/orders", json={"sku": "SKU-1", "quantity": 0})  # pydantic
        assert await app.state.relay.drain(timeout=10)
        stored = (await shop.get("/orders")).json()
        stats = await app.state.outbox.stats()
    assert [r.status_code for r in placed] == [201, 201]
    assert refused.status_code == 409
    assert refused.json() == {"detail": "only 3 of SKU-2 left"}
    assert invalid.status_code == 422
    orders = [r.json() for r in placed]
    assert sorted(stored, key=lambda o: o["id"]) == sorted(orders, key=lambda o: o["id"])
    # Delivered exactly once each, with the order's key; nothing of the refused order.
    delivered = sorted(
        (r.header("Idempotency-Key"), json.loads(r.body)) for r in fulfilment.requests
    )
    assert {(r.method, r.path) for r in fulfilment.requests} == {("POST", "/shipments")}
    assert delivered == sorted(
        (f"order-{o['id']}", {"order": o["id"], "sku": o["sku"], "quantity": o["quantity"]})
        for o in orders
    )
    assert (stats.pending, stats.dead_letters, stats.delivered) == (0, 0, 2)


@http_server.real_loop
async def test_fastapi_outbox_main_offline(env: pytest.MonkeyPatch, capsys) -> None:
    """``python examples/fastapi_outbox.py`` with nothing configured: the in-process stand-in."""
    result = await load("fastapi_outbox").main()
    assert result["refused"] == 409
    assert result["drained"] is True
    assert result["dead_letters"] == 0
    ids = sorted(order["id"] for order in result["placed"])
    assert sorted(order["id"] for order in result["orders"]) == ids
    out = capsys.readouterr().out
    assert (
        sorted(line.rsplit("key order-", 1)[1] for line in out.splitlines() if "key order-" in line)
        == ids
    )


@http_server.real_loop
async def test_fastapi_outbox_main_over_real_sockets(
    env: pytest.MonkeyPatch, local_server: LocalServer
) -> None:
    """A fulfilment API that is busy once: the transport retries it with the message's key."""
    env.setenv("EXAMPLE_FULFILMENT_URL", f"{local_server.url}/shipments")
    local_server.script = [BUSY]
    local_server.default = Behaviour(202)
    result = await load("fastapi_outbox").main()
    assert result["drained"] is True
    keys = [r.header("Idempotency-Key") for r in local_server.requests]
    assert len(keys) == 3  # two orders, one of them sent twice
    assert sorted(set(keys)) == sorted(f"order-{order['id']}" for order in result["placed"])


# testing_with_virtual_clock.py


async def test_testing_with_virtual_clock(capsys) -> None:
    started = anyio.current_time()
    checked = dict(await load("testing_with_virtual_clock").main())
    assert list(checked) == [
        "test_rides_out_a_30_second_outage",
        "test_a_hung_api_costs_at_most_the_deadline",
        "test_fails_fast_once_the_circuit_opens",
        "test_testing_mode_skips_the_retries",
    ]
    assert checked["test_rides_out_a_30_second_outage"] >= 30.0
    assert anyio.current_time() - started >= 30.0 + 60.0
    assert "ok  test_fails_fast_once_the_circuit_opens" in capsys.readouterr().out


def test_testing_with_virtual_clock_as_a_script_and_with_pytest() -> None:
    """Both ways its docstring says to run it; minutes of virtual time in moments."""
    path = str(EXAMPLES / "testing_with_virtual_clock.py")
    real_start = time.perf_counter()
    script = subprocess.run(  # noqa: S603 -- our own example, with our own interpreter
        [sys.executable, path], capture_output=True, text=True, check=True, timeout=60
    )
    assert script.stdout.count("ok  ") == 8  # four tests, on asyncio and on trio
    tests = subprocess.run(  # noqa: S603 -- our own example, with our own interpreter
        [sys.executable, "-m", "pytest", "-q", path],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=EXAMPLES.parent,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "8 passed" in tests.stdout
    assert time.perf_counter() - real_start < 20


def test_every_example_is_tested() -> None:
    tested = {
        "decorated_function",
        "httpx_client",
        "openai_sdk",
        "anthropic_sdk",
        "per_origin_policies",
        "fastapi_outbox",
        "testing_with_virtual_clock",
    }
    assert {path.stem for path in EXAMPLES.glob("*.py")} == tested
