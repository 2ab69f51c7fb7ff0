"""Type-checked by mypy (never executed): the public API keeps the types of what it wraps."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

import resilient as rs

policy = rs.Pipeline(rs.Timeout(10.0), rs.Retry(attempts=4), rs.Timeout(2.0))


@policy
async def get_user(uid: str, *, verbose: bool = False) -> dict[str, str]:
    return {"uid": uid}


async def check() -> None:
    coroutine = get_user("u1")
    _ = assert_type(coroutine, Coroutine[Any, Any, dict[str, str]])
    coroutine.close()
    assert_type(await get_user("u1", verbose=True), dict[str, str])
    assert_type(await policy.run(get_user, "u1"), dict[str, str])
    _ = get_user(1)  # type: ignore[arg-type]
    _ = get_user("u1", loud=True)  # type: ignore[call-arg]
    await policy.run(get_user, 1)  # type: ignore[arg-type]


retry = rs.Retry(
    attempts=3,
    on=(ConnectionError, TimeoutError),
    on_result=lambda status: status >= 500,
    backoff=rs.Backoff.exponential(0.1, cap=2.0, jitter="decorrelated"),
    budget=rs.RetryBudget(ratio=0.1),
    delay_hint=lambda _: None,
)
rs.Backoff.exponential(0.1, jitter="half")  # type: ignore[arg-type]


# The HTTP transport serves httpx and httpx2 clients alike, and its options take any
# collection (the docs' examples, as written).
def http_clients() -> None:
    import httpx
    import httpx2

    import resilient.http as rsh

    transport = rsh.Transport(
        classification=rsh.HttpClassification(
            retry_statuses=rsh.RETRY_STATUSES | {529}, idempotent_methods=["get", "put"]
        ),
        redaction=rsh.Redaction(headers=rsh.SENSITIVE_HEADERS | {"x-tenant-key"}),
    )
    httpx.AsyncClient(transport=transport)
    httpx2.AsyncClient(transport=transport)
