"""PostgresStore on a real server: schema, migrations, SKIP LOCKED claims, transactional enqueue.

The contract every store keeps is in test_store_contract.py; this file holds what only
PostgreSQL has. Tests skip when no server is reachable, and fail under CI=true.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import psycopg
import pytest

import resilient as rs
from backends import POSTGRES_URL, drop_schema, postgres_url
from resilient._clock import wall
from resilient.stores import NewMessage, PostgresStore, SchemaVersionError, open_store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> object:
    """psycopg's async connections run on asyncio only."""
    return "asyncio"


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    postgres_url()  # skip (or fail under CI) when the server is down
    name = f"store_{uuid.uuid4().hex[:12]}"
    yield name
    await drop_schema(name)


@pytest.fixture
async def store(schema: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(POSTGRES_URL, schema=schema)
    await opened.open()
    yield opened
    await opened.close()


def message(n: int, *, key: str | None = None, due: float = 0.0) -> NewMessage:
    return NewMessage(
        id=f"m{n}",
        data='{"v": 1}',
        destination="https://api.example.com/x",
        idempotency_key=f"key-{n}",
        ordering_key=key,
        created_at=0.0,
        next_attempt_at=due,
    )


async def connect(**kwargs: Any) -> Any:
    return await psycopg.AsyncConnection.connect(POSTGRES_URL, **kwargs)


async def test_open_creates_the_schema_and_records_its_version(store: PostgresStore) -> None:
    from resilient.stores._postgres import SCHEMA_VERSION

    assert await store.schema_version() == SCHEMA_VERSION
    async with await connect() as conn:
        cursor = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name",
            (store.schema,),
        )
        tables = [row[0] for row in await cursor.fetchall()]
    assert tables == ["resilient_dead_letters", "resilient_meta", "resilient_outbox"]


async def test_opening_is_idempotent_even_when_many_open_at_once(schema: str) -> None:
    stores = [PostgresStore(POSTGRES_URL, schema=schema) for _ in range(4)]
    async with anyio.create_task_group() as group:
        for each in stores:
            group.start_soon(each.open)
    await stores[0].enqueue([message(1)])
    for each in stores:
        await each.close()
    again = PostgresStore(POSTGRES_URL, schema=schema)
    await again.open()  # a fifth time, later: nothing to migrate, nothing lost
    assert (await again.stats(now=1.0)).pending == 1
    await again.close()


async def test_a_newer_schema_is_refused_and_left_alone(store: PostgresStore) -> None:
    async with await connect(autocommit=True) as conn:
        await conn.execute(
            f"UPDATE \"{store.schema}\".resilient_meta SET value = '99' "
            "WHERE key = 'schema_version'"
        )
    newer = PostgresStore(POSTGRES_URL, schema=store.schema)
    with pytest.raises(SchemaVersionError, match=r"version 99, newer than this release"):
        await newer.open()
    assert await store.schema_version() == 99


async def test_migrating_from_version_1_keeps_the_messages(schema: str) -> None:
    from resilient.stores._postgres import _MIGRATIONS, SCHEMA_VERSION

    async with await connect(autocommit=True) as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(
            f'CREATE TABLE "{schema}".resilient_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)'
        )
        for statement in _MIGRATIONS[0]:
            await conn.execute(statement.replace("{s}", f'"{schema}"'))
        await conn.execute(
            f"INSERT INTO \"{schema}\".resilient_meta VALUES ('schema_version', '1')"
        )
        await conn.execute(
            f'INSERT INTO "{schema}".resilient_outbox (id, data, destination, idempotency_key, '
            "created_at, next_attempt_at) VALUES ('old', '{}', 'd', 'k', 0, 0)"
        )
    migrated = PostgresStore(POSTGRES_URL, schema=schema)
    await migrated.open()
    assert await migrated.schema_version() == SCHEMA_VERSION
    (claimed,) = await migrated.claim("me", limit=5, lease=10.0, now=1.0)
    assert (claimed.id, claimed.idempotency_key) == ("old", "k")
    assert await migrated.bury(claimed, reason="rejected", failure=None, now=2.0)  # v2 table
    await migrated.close()


async def test_concurrent_claims_from_separate_pools_never_share_a_message(schema: str) -> None:
    stores = [PostgresStore(POSTGRES_URL, schema=schema, pool_size=4) for _ in range(3)]
    for each in stores:
        await each.open()
    await stores[0].enqueue([message(n) for n in range(600)])
    claimed: list[str] = []

    async def worker(each: PostgresStore) -> None:
        while True:
            batch = await each.claim(f"w{id(each)}", limit=7, lease=600.0, now=1.0)
            if not batch:
                return
            claimed.extend(m.id for m in batch)

    async with anyio.create_task_group() as group:
        for each in stores:
            for _ in range(4):
                group.start_soon(worker, each)
    assert len(claimed) == 600
    assert len(set(claimed)) == 600
    for each in stores:
        await each.close()


async def test_the_delivered_count_is_spread_over_rows_and_stays_exact(schema: str) -> None:
    """Completing transactions do not all lock one counter row (it made every worker of a
    fleet queue behind the others): the count lands on several rows, and stats() adds
    them up exactly, with the schema's own ``delivered`` row (earlier versions') in it."""
    stores = [PostgresStore(POSTGRES_URL, schema=schema, pool_size=4) for _ in range(2)]
    for each in stores:
        await each.open()
    async with await connect(autocommit=True) as conn:
        await conn.execute(
            f"UPDATE \"{schema}\".resilient_meta SET value = '5' WHERE key = 'delivered'"
        )
    await stores[0].enqueue([message(n) for n in range(300)])

    async def worker(each: PostgresStore, name: str) -> None:
        done: list[Any] = []
        while True:
            _, done = await each.complete_and_claim(done, name, limit=10, lease=600.0, now=1.0)
            if not done:
                return

    async with anyio.create_task_group() as group:
        for i, each in enumerate(stores):
            for j in range(4):
                group.start_soon(worker, each, f"w{i}.{j}")
    assert (await stores[0].stats(now=1.0)).delivered == 305
    assert (await stores[1].stats(now=1.0)).pending == 0
    async with await connect() as conn:
        cursor = await conn.execute(
            f"SELECT count(*) FROM \"{schema}\".resilient_meta WHERE key LIKE 'delivered:%%'"
        )
        (rows,) = await cursor.fetchone()  # type: ignore[misc]
    assert rows > 1  # 30 transactions on one of 16 rows each: all on one is (1/16)**29
    for each in stores:
        await each.close()


async def test_ordering_keys_hold_across_concurrent_claims(store: PostgresStore) -> None:
    await store.enqueue([message(n, key=f"k{n % 3}") for n in range(9)])
    first = await store.claim("a", limit=9, lease=60.0, now=1.0)
    second = await store.claim("b", limit=9, lease=60.0, now=1.0)
    assert sorted(m.id for m in first) == ["m0", "m1", "m2"]  # one head per key
    assert second == []


async def test_a_transactional_enqueue_with_psycopg_commits_or_rolls_back(
    store: PostgresStore,
) -> None:
    async with await connect() as conn:
        async with conn.transaction():
            await store.enqueue_within(conn, [message(1)])
        async with conn.transaction():
            await store.enqueue_within(conn, [message(2)])
            raise psycopg.Rollback  # the application changes its mind
    ids = [m.id for m in await store.claim("me", limit=10, lease=10.0, now=1.0)]
    assert ids == ["m1"]


async def test_a_transactional_enqueue_with_a_sync_psycopg_connection(
    store: PostgresStore,
) -> None:
    with psycopg.connect(POSTGRES_URL) as conn:
        await store.enqueue_within(conn, [message(1)])
        conn.rollback()
        await store.enqueue_within(conn, [message(2)])
        conn.commit()
    ids = [m.id for m in await store.claim("me", limit=10, lease=10.0, now=1.0)]
    assert ids == ["m2"]


async def test_a_transactional_enqueue_with_sqlalchemy_async_session(store: PostgresStore) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    engine = create_async_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    try:
        async with AsyncSession(engine) as session:
            async with session.begin():
                await store.enqueue_within(session, [message(1)])
            async with session.begin():
                await store.enqueue_within(session, [message(2)])
                await session.rollback()
        async with engine.connect() as conn:
            await store.enqueue_within(conn, [message(3)])
            await conn.commit()
    finally:
        await engine.dispose()
    ids = sorted(m.id for m in await store.claim("me", limit=10, lease=10.0, now=1.0))
    assert ids == ["m1", "m3"]


async def test_a_transactional_enqueue_with_asyncpg(store: PostgresStore) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        async with conn.transaction():
            await store.enqueue_within(conn, [message(1)])
        transaction = conn.transaction()
        await transaction.start()
        await store.enqueue_within(conn, [message(2)])
        await transaction.rollback()
    finally:
        await conn.close()
    ids = [m.id for m in await store.claim("me", limit=10, lease=10.0, now=1.0)]
    assert ids == ["m1"]


async def test_enqueue_within_refuses_what_it_cannot_use(schema: str) -> None:
    unopened = PostgresStore(POSTGRES_URL, schema=schema)
    with pytest.raises(RuntimeError, match="open the store"):
        await unopened.enqueue_within(object(), [message(1)])
    await unopened.open()
    with pytest.raises(TypeError, match="psycopg 3, SQLAlchemy 2 or asyncpg"):
        await unopened.enqueue_within(object(), [message(1)])
    await unopened.close()


async def test_the_outbox_sends_within_the_callers_transaction(store: PostgresStore) -> None:
    received: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        received.append(request.content.decode())
        return httpx.Response(200)

    outbox = rs.Outbox(store, client=httpx.AsyncClient(transport=httpx.MockTransport(api)))
    async with await connect() as conn:
        async with conn.transaction():
            await conn.execute("SELECT 1")  # the application's own write would be here
            await outbox.send(
                httpx.Request("POST", "https://api.example.com/x", content=b"kept"),
                connection=conn,
            )
        async with conn.transaction():
            await outbox.send(
                httpx.Request("POST", "https://api.example.com/x", content=b"dropped"),
                connection=conn,
            )
            raise psycopg.Rollback
    async with outbox.relay(workers=2) as relay:
        assert await relay.drain(timeout=30)
    assert received == ["kept"]


async def test_an_enqueue_elsewhere_wakes_the_relay_through_notify(store: PostgresStore) -> None:
    received: list[float] = []
    arrived = anyio.Event()

    def api(request: httpx.Request) -> httpx.Response:
        received.append(wall())
        arrived.set()
        return httpx.Response(200)

    options = rs.DeliveryOptions(poll_interval=60.0)
    outbox = rs.Outbox(
        store, client=httpx.AsyncClient(transport=httpx.MockTransport(api)), options=options
    )
    producer = PostgresStore(POSTGRES_URL, schema=store.schema)  # another process, in effect
    async with outbox.relay(workers=1):
        # The relay's LISTEN runs on a connection of its own, set up a moment after the
        # relay starts: a NOTIFY before that wakes nobody (the message waits for the
        # 60 s poll). So send until one is announced and delivered; each wake-up must
        # come well within the poll interval.
        with anyio.fail_after(10):
            while not arrived.is_set():
                sent_at = wall()
                await rs.Outbox(producer).send(httpx.Request("POST", "https://api.example.com/n"))
                with anyio.move_on_after(1.0):
                    await arrived.wait()
    await producer.close()
    assert received[0] - sent_at < 1.0  # woken by the NOTIFY, not the 60 s poll


def test_open_store_reads_postgres_urls() -> None:
    for url in (
        "postgresql://app@db/app",
        "postgres://app@db/app",
        "postgresql+psycopg://app@db/app",
    ):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        assert store.url == "postgresql://app@db/app"
        assert store.schema == "public"
    named = open_store("postgresql://app@db/app?sslmode=disable&schema=outbox")
    assert isinstance(named, PostgresStore)
    assert (named.url, named.schema) == ("postgresql://app@db/app?sslmode=disable", "outbox")


def test_the_repr_never_shows_the_url() -> None:
    store = PostgresStore("postgresql://app:hunter2@db/app")
    assert "hunter2" not in repr(store)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"schema": "Public"}, ValueError, "schema must be a lower-case identifier"),
        ({"schema": 'x"; DROP TABLE y; --'}, ValueError, "schema must be"),
        ({"pool_size": 0}, ValueError, "pool_size"),
        ({"connect_timeout": 0}, ValueError, "connect_timeout"),
    ],
)
def test_invalid_arguments_name_the_field(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        PostgresStore("postgresql://db/app", **kwargs)


def test_the_url_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="url must be a PostgreSQL URL"):
        PostgresStore(None)  # type: ignore[arg-type]


async def test_trio_gets_a_clear_error() -> None:
    def on_trio() -> None:
        async def main() -> None:
            await PostgresStore(POSTGRES_URL, schema="never").open()

        anyio.run(main, backend="trio")

    with pytest.raises(RuntimeError, match="runs on asyncio"):
        await anyio.to_thread.run_sync(on_trio)
