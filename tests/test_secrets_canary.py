"""Canary secrets never come out: not in logs, spans, errors, CLI output or the stores' bytes.

Requests carry canary values in ``Authorization``, ``Cookie``, ``X-Api-Key``, a
configured body field (``card_number``) and a query parameter (``token``). They are
retried, traced (OpenTelemetry, in memory), logged (structlog, every level captured)
and, through an outbox whose relay's client adds the credentials, dead-lettered in
SQLite and PostgreSQL. Then each canary is searched for in every log event, every
span (name, attributes, events), the ``str`` and ``repr`` of every error raised
(with its causes and notes), the output of the CLI's dead-letter commands, and the
raw bytes of the SQLite files and the PostgreSQL tables: it must appear 0 times.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from click.testing import CliRunner
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import http_server
import resilient as rs
import resilient.instrumentation
from backends import drop_schema, postgres_url
from http_server import Behaviour, LocalServer
from resilient import http as rsh
from resilient.cli import cli
from resilient.delivery import DeliveryOptions, Outbox, SecretInMessageError
from resilient.http._redact import SENSITIVE_BODY_FIELDS, Redaction
from resilient.instrumentation import OpenTelemetryHook
from resilient.stores import SQLiteStore

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

real_asyncio = http_server.real_asyncio

CANARIES = {
    "authorization": "cnry-auth-5b1f0c9e77",
    "cookie": "cnry-cookie-9a7d2e41aa",
    "x-api-key": "cnry-apikey-3c8e6f1233",
    "body field": "cnry-card-4d2a7b90bb",
    "query parameter": "cnry-token-8e1f5a36cc",
}
REDACTION = Redaction(body_fields=SENSITIVE_BODY_FIELDS | {"card_number"})
QUICK = rs.Backoff.constant(0.01)


def credentials(request: httpx.Request, *, query: bool = True) -> None:
    """Put every header (and the query) canary on *request* (an event hook, or by hand)."""
    request.headers["Authorization"] = f"Bearer {CANARIES['authorization']}"
    request.headers["Cookie"] = f"session={CANARIES['cookie']}; theme=dark"
    request.headers["X-Api-Key"] = CANARIES["x-api-key"]
    if query:
        request.url = request.url.copy_merge_params({"token": CANARIES["query parameter"]})


async def add_credentials(request: httpx.Request) -> None:
    credentials(request)


def canary_request(url: str, *, body_secret: bool = True, query: bool = True) -> httpx.Request:
    body: dict[str, Any] = {"amount": 5}
    if body_secret:
        body["card_number"] = CANARIES["body field"]
    request = httpx.Request("POST", url, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    credentials(request, query=query)
    return request


class QuotingTransport(httpx.AsyncBaseTransport):
    """Fails as some transports do: an error message quoting the whole request."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        quoted = f"{request.method} {request.url} headers={dict(request.headers)!r}"
        raise httpx.ConnectError(f"cannot connect: {quoted}", request=request)


def found(text: str) -> dict[str, int]:
    """How many times each canary occurs in *text* (only those that do)."""
    counts = {name: text.count(value) for name, value in CANARIES.items()}
    return {name: n for name, n in counts.items() if n}


def error_text(exc: BaseException) -> str:
    """str and repr of *exc*, its notes, and of every cause and context it chains."""
    parts: list[str] = []
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        parts += [str(error), repr(error), *getattr(error, "__notes__", [])]
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


@pytest.fixture
def spans() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


def span_text(exporter: InMemorySpanExporter) -> str:
    return "\n".join(span.to_json() for span in exporter.get_finished_spans())


async def test_retried_traced_logged_and_failed_calls_never_show_a_canary(
    logs: list[dict[str, Any]], spans: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    exporter, provider = spans
    hooks = [*resilient.instrumentation.get_hooks(), OpenTelemetryHook(tracer_provider=provider)]
    pipeline = rs.Pipeline(rs.Retry(attempts=3, backoff=QUICK, budget=None), hooks=hooks)
    errors: list[BaseException] = []
    async with LocalServer() as server:
        server.script = [
            Behaviour(503),
            Behaviour(reset=True),
            Behaviour(200, body=b"ok"),  # retried twice, then delivered
            Behaviour(503, retry_after=99999),  # a Retry-After the call cannot honour
            *[Behaviour(reset=True)] * 3,  # every attempt reset
        ]
        transport = rsh.Transport(
            pipeline, redaction=REDACTION, tracer_provider=provider, idempotency_keys=True
        )
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.send(canary_request(f"{server.url}/pay"))
            assert response.extensions["resilient"]["attempts"] == 3
            for _ in range(2):
                try:
                    await client.send(canary_request(f"{server.url}/pay"))
                except Exception as exc:  # noqa: PERF203 -- each error is kept
                    errors.append(exc)
        # And a transport below whose errors quote the request's URL and headers.
        quoting = rsh.Transport(
            rs.Pipeline(rs.Retry(attempts=2, backoff=QUICK, budget=None), hooks=hooks),
            QuotingTransport(),
            redaction=REDACTION,
            tracer_provider=provider,
        )
        async with httpx.AsyncClient(transport=quoting) as client:
            try:
                await client.send(canary_request(f"{server.url}/pay"))
            except Exception as exc:
                errors.append(exc)
        # The server did receive every credential: the canaries were really sent.
        assert all(r.header("x-api-key") == CANARIES["x-api-key"] for r in server.requests)

    assert [type(e) for e in errors] == [
        rsh.RetryAfterTooLongError,
        httpx.ReadError,
        httpx.ConnectError,
    ], errors
    assert "[REDACTED]" in str(errors[2])  # the quoting error was scrubbed, not dropped
    assert len(exporter.get_finished_spans()) >= 9  # one per attempt, and per call
    assert any(event["event"] for event in logs)
    assert found(repr(logs)) == {}
    assert found(span_text(exporter)) == {}
    assert found("\n".join(error_text(e) for e in errors)) == {}


async def test_an_error_quoting_the_body_loses_the_body_field_canary() -> None:
    class QuotingBody(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError(f"cannot send {request.content.decode()}", request=request)

    transport = rsh.Transport(rs.Pipeline(hooks=[]), QuotingBody(), redaction=REDACTION)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.send(canary_request("http://127.0.0.1:9/pay"))
    assert found(error_text(caught.value)) == {}


async def dead_letter_canaries(
    store: Any, logs: list[dict[str, Any]]
) -> tuple[list[str], list[BaseException]]:
    """Refused and stripped enqueues, then deliveries that fail into dead letters.

    Returns the dead letters' ids and the errors raised at enqueue.
    """
    refused: list[BaseException] = []
    async with LocalServer(default=Behaviour(500)) as server:
        url = f"{server.url}/pay"
        strict = Outbox(store, redaction=REDACTION)
        for request in (canary_request(url), canary_request(url, body_secret=False)):
            try:
                await strict.send(request)
            except SecretInMessageError as exc:  # noqa: PERF203 -- each error is kept
                refused.append(exc)
        # Stripping drops credential headers; the URL's and the body's are refused.
        stripping = Outbox(store, redaction=REDACTION, options=DeliveryOptions(secrets="strip"))
        for request in (
            canary_request(url),
            canary_request(url, body_secret=False),
            canary_request(url, body_secret=False, query=False),  # stored, stripped
        ):
            try:
                await stripping.send(request)
            except SecretInMessageError as exc:  # noqa: PERF203 -- each error is kept
                refused.append(exc)
        plain = httpx.Request("POST", url, json={"amount": 5})
        await stripping.send(plain)

        options = DeliveryOptions(max_attempts=2, backoff=QUICK, poll_interval=0.02, lease=5)
        for next_transport in (None, QuotingTransport()):
            transport = rsh.Transport(
                rs.Pipeline(rs.Retry(attempts=2, backoff=QUICK, budget=None)),
                next_transport,
                redaction=REDACTION,
            )
            client = httpx.AsyncClient(
                transport=transport, event_hooks={"request": [add_credentials]}
            )
            async with client:
                outbox = Outbox(store, client=client, options=options, redaction=REDACTION)
                if next_transport is not None:
                    await outbox.send(httpx.Request("POST", url, json={"amount": 6}))
                async with outbox.relay(workers=2) as relay:
                    assert await relay.drain(timeout=10)
        assert any(r.header("authorization") for r in server.requests)  # really sent
    letters = (await strict.dead_letters.list()).letters
    assert len(refused) == 4, refused
    assert all(isinstance(e, SecretInMessageError) for e in refused)
    assert any("[REDACTED]" in (letter.last_error or "") for letter in letters)
    del logs
    return [letter.id for letter in letters], refused


async def test_dead_letters_in_sqlite_and_the_cli_never_show_a_canary(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    path = tmp_path / "outbox.db"
    store = SQLiteStore(path)
    ids, refused = await dead_letter_canaries(store, logs)
    await store.close()
    assert len(ids) == 3  # two stripped or plain messages, one with a quoted error

    runner = CliRunner()
    outputs = []
    for args in (["dlq", "list"], ["dlq", "count"], *(["dlq", "show", i] for i in ids)):
        # The CLI runs an event loop of its own: in a thread, as from a shell.
        command = [*args, "--store", f"sqlite:///{path}"]
        result = await anyio.to_thread.run_sync(runner.invoke, cli, command)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("outbox.db"))  # noqa: ASYNC240

    assert found("\n".join(outputs)) == {}
    assert found(raw.decode("latin-1")) == {}
    assert found(repr(logs)) == {}
    assert found("\n".join(error_text(e) for e in refused)) == {}


async def test_dead_letters_in_postgresql_never_show_a_canary(logs: list[dict[str, Any]]) -> None:
    url = postgres_url()
    pytest.importorskip("psycopg")
    import psycopg

    from resilient.stores import PostgresStore

    schema = f"canary_{uuid.uuid4().hex[:10]}"
    store = PostgresStore(url, schema=schema)
    try:
        ids, refused = await dead_letter_canaries(store, logs)
        await store.close()
        async with await psycopg.AsyncConnection.connect(url) as conn:
            tables = await conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
            dump = []
            for (table,) in await tables.fetchall():
                rows = await conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t')
                dump += [row[0] for row in await rows.fetchall()]
    finally:
        await store.close()
        await drop_schema(schema)
    assert len(ids) == 3
    assert any(ids[0] in row for row in dump)  # the dump holds the dead letters
    assert found("\n".join(dump)) == {}
    assert found(repr(logs)) == {}
    assert found("\n".join(error_text(e) for e in refused)) == {}
