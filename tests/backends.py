"""The real PostgreSQL and Redis servers that backend tests talk to.

Reachable servers are used; unreachable ones skip their tests with the reason,
except under ``CI=true``, where a missing server fails the run: CI must prove
the backends, never quietly skip them.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "RESILIENT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("RESILIENT_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _reachable(url: str, default_port: int) -> str | None:
    """``None`` if a TCP connection to *url*'s server opens, else why not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return None
    except OSError as exc:
        return f"{host}:{port} is not reachable ({exc})"


def require(name: str, url: str, default_port: int) -> str:
    """*url* if its server is up; otherwise skip (fail under CI=true) saying why."""
    problem = _reachable(url, default_port)
    if problem is None:
        return url
    reason = f"{name} tests need a server: {problem}; set RESILIENT_TEST_{name.upper()}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (mandatory under CI=true)")
    pytest.skip(reason)
    raise AssertionError  # pragma: no cover -- skip raises


def postgres_url() -> str:
    """The test PostgreSQL server's URL (skips or fails when it is down)."""
    return require("postgres", POSTGRES_URL, 5432)


def redis_url() -> str:
    """The test Redis server's URL (skips or fails when it is down)."""
    return require("redis", REDIS_URL, 6379)


def anyio_backend_name(backend: object) -> str:
    """``"asyncio"`` or ``"trio"``, from an ``anyio_backend`` fixture value."""
    return str(backend[0] if isinstance(backend, tuple) else backend)


async def drop_schema(schema: str) -> None:
    """Drop a test's PostgreSQL schema and everything in it."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
