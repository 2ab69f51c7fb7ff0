"""SQLiteStore beyond the contract: the file, its schema, other processes, odd rows, URLs.

Every test's database passes ``PRAGMA integrity_check`` when it ends (fixture
teardown). Stores take the time as ``now=`` arguments; the only real waits are
where a real lock held by another connection is the point of the test.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest

from resilient.stores import (
    SCHEMA_VERSION,
    MemoryStore,
    NewMessage,
    SchemaVersionError,
    SQLiteStore,
    open_store,
)
from resilient.stores._sqlite import _MIGRATIONS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence
    from pathlib import Path

pytestmark = pytest.mark.anyio

T0 = 1000.0
FOREVER = 1e9  # a lease that outlives the test


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """The database file; whatever the test did to it, it must be sound afterwards."""
    path = tmp_path / "outbox.db"
    yield path
    if path.exists():
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()


@pytest.fixture
async def store(db: Path, anyio_backend: object) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(db)
    await opened.open()
    yield opened
    assert await opened.integrity_check() == ["ok"]
    await opened.close()


def new(message_id: str, *, due: float = T0, data: str | None = None) -> NewMessage:
    return NewMessage(
        id=message_id,
        data=f'{{"v": 1, "id": "{message_id}"}}' if data is None else data,
        destination="https://api.example.com/orders",
        idempotency_key=f"key-{message_id}",
        ordering_key=None,
        created_at=T0 - 100,
        next_attempt_at=due,
    )


def ids(messages: Sequence[Any]) -> list[str]:
    return [m.id for m in messages]


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection of our own, in autocommit mode."""
    return sqlite3.connect(path, isolation_level=None)


def query(path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = raw(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def tables(path: Path) -> set[str]:
    return {row[0] for row in query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


# The file and its schema


async def test_the_file_is_in_wal_mode(store: SQLiteStore, db: Path) -> None:
    assert query(db, "PRAGMA journal_mode") == [("wal",)]


async def test_the_schema_version_is_recorded_in_resilient_meta(
    store: SQLiteStore, db: Path
) -> None:
    assert query(db, "SELECT value FROM resilient_meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]
    assert await store.schema_version() == SCHEMA_VERSION
    assert {"resilient_outbox", "resilient_dead_letters"} <= tables(db)


async def test_the_store_leaves_an_application_databases_own_version_alone(
    db: Path, anyio_backend: object
) -> None:
    app = raw(db)
    app.execute("PRAGMA user_version = 7")
    app.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    app.execute("INSERT INTO orders VALUES ('o1')")
    app.close()

    store = SQLiteStore(db)
    await store.open()
    await store.enqueue([new("m1")])
    assert await store.integrity_check() == ["ok"]
    await store.close()

    assert query(db, "PRAGMA user_version") == [(7,)]
    assert query(db, "SELECT id FROM orders") == [("o1",)]


async def test_enqueue_is_committed_when_it_returns(store: SQLiteStore, db: Path) -> None:
    await store.enqueue([new("m1"), new("m2")])
    # Another connection sees both at once: the store holds no transaction open.
    assert query(db, "SELECT id FROM resilient_outbox ORDER BY seq") == [("m1",), ("m2",)]


async def test_a_version_1_file_is_migrated_with_its_messages(
    db: Path, anyio_backend: object
) -> None:
    assert SCHEMA_VERSION > 1  # otherwise there would be nothing to migrate
    conn = raw(db)
    conn.execute("CREATE TABLE resilient_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for statement in _MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO resilient_meta (key, value) VALUES ('schema_version', '1')")
    conn.execute(
        "INSERT INTO resilient_outbox (id, data, destination, idempotency_key, ordering_key, "
        "created_at, next_attempt_at) VALUES ('old', '{\"v\": 1}', 'https://x.example', "
        "'key-old', 'k', 900.0, 1000.0)"
    )
    conn.close()
    assert "resilient_dead_letters" not in tables(db)

    store = SQLiteStore(db)
    await store.open()

    assert await store.schema_version() == SCHEMA_VERSION
    assert query(db, "SELECT value FROM resilient_meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]
    [message] = await store.claim("w", limit=10, lease=60.0, now=T0)
    assert (message.id, message.data, message.destination) == (
        "old",
        '{"v": 1}',
        "https://x.example",
    )
    assert (message.idempotency_key, message.ordering_key, message.created_at) == (
        "key-old",
        "k",
        900.0,
    )
    assert message.attempts == 1
    # The later migrations ran: the dead letters exist.
    assert await store.bury(message, reason="rejected", failure=None, now=T0)
    assert await store.dead_letter("old") is not None
    assert await store.integrity_check() == ["ok"]
    await store.close()


async def test_a_file_from_a_newer_release_is_refused(db: Path, anyio_backend: object) -> None:
    newer = SCHEMA_VERSION + 1
    conn = raw(db)
    conn.execute("CREATE TABLE resilient_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO resilient_meta VALUES ('schema_version', ?)", (str(newer),))
    conn.close()

    store = SQLiteStore(db)
    with pytest.raises(SchemaVersionError) as info:
        await store.open()
    message = str(info.value)
    assert re.search(rf"\b{newer}\b", message), message
    assert re.search(rf"\b{SCHEMA_VERSION}\b", message), message
    # Nothing was half-done: every use refuses, and the file is as it was.
    with pytest.raises(SchemaVersionError):
        await store.claim("w", limit=1, lease=1.0, now=T0)
    assert tables(db) == {"resilient_meta"}
    assert query(db, "SELECT value FROM resilient_meta WHERE key = 'schema_version'") == [
        (str(newer),)
    ]
    await store.close()


async def test_opening_again_is_idempotent(store: SQLiteStore, db: Path) -> None:
    await store.enqueue([new("m1"), new("m2")])
    assert await store.complete(await store.claim("w", limit=1, lease=60.0, now=T0)) == 1
    await store.open()
    await store.close()
    await store.close()
    await store.open()
    other = SQLiteStore(db)
    await other.open()
    await other.open()

    assert await other.schema_version() == SCHEMA_VERSION
    assert query(db, "SELECT key, value FROM resilient_meta ORDER BY key") == [
        ("delivered", "1"),
        ("schema_version", str(SCHEMA_VERSION)),
    ]
    stats = await other.stats(now=T0)
    assert (stats.pending, stats.delivered) == (1, 1)
    assert ids(await other.claim("w", limit=10, lease=60.0, now=T0)) == ["m2"]
    await other.close()


# Several store objects and processes on one file


async def test_two_stores_on_one_file_respect_each_others_leases(
    store: SQLiteStore, db: Path
) -> None:
    other = SQLiteStore(db)
    await store.enqueue([new("m1")])
    [mine] = await store.claim("a", limit=10, lease=30.0, now=T0)
    assert await other.claim("b", limit=10, lease=30.0, now=T0 + 29.9) == []
    [theirs] = await other.claim("b", limit=10, lease=30.0, now=T0 + 30)
    assert theirs.id == "m1"
    assert theirs.attempts == 2
    assert await store.complete([mine]) == 0
    assert await other.complete([theirs]) == 1
    assert (await store.stats(now=T0 + 30)).delivered == 1
    await other.close()


async def test_two_stores_claiming_at_once_never_share_a_message(
    store: SQLiteStore, db: Path
) -> None:
    expected = [f"m{i:03d}" for i in range(200)]
    await store.enqueue([new(i) for i in expected])
    other = SQLiteStore(db)
    claimed: list[str] = []

    async def drain(source: SQLiteStore, owner: str) -> None:
        while batch := await source.claim(owner, limit=4, lease=FOREVER, now=T0):
            claimed.extend(ids(batch))

    async with anyio.create_task_group() as tg:
        tg.start_soon(drain, store, "a")
        tg.start_soon(drain, other, "b")

    assert len(claimed) == len(set(claimed))
    assert sorted(claimed) == expected
    await other.close()


# Each worker process opens the store, says it is ready, waits for the word, then
# claims batches of 1 to 3 under a long lease until nothing is left, writing the
# ids it got. (Small batches: more transactions, so the workers interleave.)
CLAIMER = """
import asyncio, sys
from resilient.stores import SQLiteStore

async def main(path, out, owner):
    store = SQLiteStore(path)
    await store.open()
    print("ready", flush=True)
    sys.stdin.readline()
    with open(out, "w") as claimed:
        for n in range(1000):  # bounded: a broken store must not loop forever
            batch = await store.claim(owner, limit=1 + n % 3, lease=1e9, now=1000.0)
            if not batch:
                break
            claimed.write("".join(m.id + "\\n" for m in batch))
    await store.close()

asyncio.run(main(*sys.argv[1:]))
"""


def test_processes_claiming_at_once_never_share_a_message(db: Path, tmp_path: Path) -> None:
    expected = [f"m{i:03d}" for i in range(500)]

    async def fill() -> None:
        store = SQLiteStore(db)
        await store.enqueue([new(i) for i in expected])
        await store.close()

    anyio.run(fill)
    outputs = [tmp_path / f"claimed-{n}.txt" for n in range(3)]
    workers = [
        subprocess.Popen(  # noqa: S603 -- our own interpreter and script
            [sys.executable, "-c", CLAIMER, str(db), str(out), f"worker-{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n, out in enumerate(outputs)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline() == "ready\n"
        for worker in workers:  # all start claiming together
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.close()
        for worker in workers:
            assert worker.wait(timeout=60) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()

    per_worker = [out.read_text().split() for out in outputs]
    claimed = [message_id for got in per_worker for message_id in got]
    assert len(claimed) == len(set(claimed)), "a message was claimed twice"
    assert sorted(claimed) == expected
    assert sum(1 for got in per_worker if got) >= 2, [len(got) for got in per_worker]
    assert query(db, "SELECT COUNT(*) FROM resilient_outbox WHERE attempts = 1") == [(500,)]


# Locks held by other connections


async def test_a_writer_waits_for_another_connections_write_lock(
    store: SQLiteStore, db: Path
) -> None:
    assert store._conn is not None
    trying = threading.Event()
    store._conn.set_trace_callback(lambda sql: trying.set() if sql == "BEGIN IMMEDIATE" else None)
    blocker = raw(db)
    blocker.execute("BEGIN IMMEDIATE")
    done = False

    async def enqueue() -> None:
        nonlocal done
        await store.enqueue([new("m1")])
        done = True

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(enqueue)
            # Real time: the lock is real. Once the store is trying to write, give it
            # a moment in SQLite's busy handler, well inside its 5 s busy timeout.
            assert await anyio.to_thread.run_sync(trying.wait, 5.0)
            await anyio.to_thread.run_sync(time.sleep, 0.1)
            assert not done
            blocker.execute("COMMIT")
    finally:
        store._conn.set_trace_callback(None)
        blocker.close()
    assert done
    assert ids(await store.claim("w", limit=10, lease=60.0, now=T0)) == ["m1"]


async def test_a_writer_with_a_short_busy_timeout_fails_while_the_lock_is_held(
    store: SQLiteStore, db: Path
) -> None:
    impatient = SQLiteStore(db, busy_timeout=0.05)
    await impatient.open()
    blocker = raw(db)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await impatient.enqueue([new("m1")])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # The failed write left nothing behind, not even an open transaction.
    assert (await store.stats(now=T0)).pending == 0
    await impatient.enqueue([new("m2")])
    assert ids(await store.claim("w", limit=10, lease=60.0, now=T0)) == ["m2"]
    await impatient.close()


# Rows edited by hand


async def test_malformed_rows_are_claimed_not_raised(store: SQLiteStore, db: Path) -> None:
    await store.enqueue([new("good")])
    conn = raw(db)
    conn.execute(
        "INSERT INTO resilient_outbox (id, data, destination, idempotency_key, ordering_key, "
        "created_at, attempts, next_attempt_at, first_failure_at, last_failure_at, "
        "last_status, last_error) VALUES ('bad', '{\"v\": 1, truncated', 'https://x', 'k-bad', "
        "NULL, 'yesterday', 'many', 1000.0, 'soon', X'00', 'teapot', 42)"
    )
    conn.execute(
        "INSERT INTO resilient_outbox (id, data, destination, idempotency_key, ordering_key, "
        "created_at, next_attempt_at) VALUES ('worse', 'plain text, not JSON', 'https://x', "
        "'k-worse', 7, 'n/a', 1000.0)"
    )
    conn.close()

    claimed = {m.id: m for m in await store.claim("w", limit=10, lease=60.0, now=T0)}

    assert sorted(claimed) == ["bad", "good", "worse"]
    bad = claimed["bad"]
    assert bad.data == '{"v": 1, truncated'
    assert bad.created_at == 0.0
    assert bad.attempts == 1
    assert (bad.first_failure_at, bad.last_failure_at, bad.last_status) == (None, None, None)
    worse = claimed["worse"]
    assert worse.data == "plain text, not JSON"
    assert worse.ordering_key == "7"
    assert worse.created_at == 0.0
    # The relay dead-letters such rows; their data goes along untouched.
    for message in (bad, worse):
        assert await store.bury(message, reason="malformed", failure=None, now=T0)
    letter = await store.dead_letter("bad")
    assert letter is not None
    assert (letter.data, letter.reason, letter.attempts) == ('{"v": 1, truncated', "malformed", 1)


# enqueue_within: the application's own transaction


@pytest.fixture
def app(db: Path) -> Iterator[sqlite3.Connection]:
    """The application's connection to the store's file, with a table of its own."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")
    conn.commit()
    yield conn
    conn.close()


async def test_enqueue_within_a_committed_transaction_makes_messages_claimable(
    store: SQLiteStore, db: Path, app: sqlite3.Connection
) -> None:
    # A second store object, never opened: it writes through the application's
    # connection, and must not wait for the write lock that connection holds.
    producer = SQLiteStore(db, busy_timeout=0.5)
    app.execute("INSERT INTO orders VALUES ('o1')")
    await producer.enqueue_within(app, [new("m1"), new("m2")])
    assert (await store.stats(now=T0)).pending == 0  # not before the commit
    app.commit()
    assert ids(await store.claim("w", limit=10, lease=60.0, now=T0)) == ["m1", "m2"]
    assert query(db, "SELECT id FROM orders") == [("o1",)]
    await producer.close()


async def test_enqueue_within_a_rolled_back_transaction_leaves_nothing(
    store: SQLiteStore, db: Path, app: sqlite3.Connection
) -> None:
    app.execute("INSERT INTO orders VALUES ('o1')")
    await store.enqueue_within(app, [new("m1")])
    app.rollback()
    assert await store.claim("w", limit=10, lease=60.0, now=T0) == []
    assert (await store.stats(now=T0)).pending == 0
    assert query(db, "SELECT id FROM orders") == []


async def test_enqueue_within_a_file_without_the_schema_is_refused(
    db: Path, app: sqlite3.Connection, anyio_backend: object
) -> None:
    store = SQLiteStore(db, busy_timeout=0.5)
    app.execute("INSERT INTO orders VALUES ('o1')")
    with pytest.raises(RuntimeError, match="open"):
        await store.enqueue_within(app, [new("m1")])
    # The application's transaction is untouched and still its own to commit.
    app.commit()
    assert query(db, "SELECT id FROM orders") == [("o1",)]
    assert "resilient_outbox" not in tables(db)


async def test_enqueue_within_a_connection_to_another_file_is_refused(
    store: SQLiteStore, db: Path, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "other.db")
    try:
        with pytest.raises(ValueError, match="same file") as info:
            await store.enqueue_within(other, [new("m1")])
    finally:
        other.close()
    assert "other.db" in str(info.value)
    assert str(db) in str(info.value)
    assert (await store.stats(now=T0)).pending == 0


@pytest.mark.parametrize("connection", [object(), "outbox.db", None], ids=type)
async def test_enqueue_within_something_not_a_sqlite3_connection_is_a_type_error(
    store: SQLiteStore, connection: object
) -> None:
    with pytest.raises(TypeError, match=r"sqlite3 or aiosqlite connection or a SQLAlchemy"):
        await store.enqueue_within(connection, [new("m1")])


# open_store and the constructor


def test_open_store_reads_a_relative_sqlite_url() -> None:
    store = open_store("sqlite:///data/outbox.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == "data/outbox.db"


def test_open_store_reads_an_absolute_sqlite_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/outbox.db")  # four slashes: tmp_path is absolute
    assert isinstance(store, SQLiteStore)
    assert store.path == f"{tmp_path}/outbox.db"


def test_open_store_takes_a_bare_path_as_a_sqlite_file() -> None:
    store = open_store("var/outbox.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == "var/outbox.db"


def test_open_store_memory_url_gives_a_new_memory_store() -> None:
    first = open_store("memory://")
    assert isinstance(first, MemoryStore)
    assert open_store("memory://") is not first


@pytest.mark.parametrize("url", ["redis://localhost/0", "mysql://db/outbox"])
def test_open_store_names_an_unknown_scheme(url: str) -> None:
    scheme = url.split("://", 1)[0]
    with pytest.raises(ValueError, match=f"'{scheme}'"):
        open_store(url)


async def test_a_store_from_a_relative_url_lives_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anyio_backend: object
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///relative.db")
    await store.enqueue([new("m1")])
    await store.close()
    assert query(tmp_path / "relative.db", "SELECT id FROM resilient_outbox") == [("m1",)]
    assert query(tmp_path / "relative.db", "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        pytest.param({"path": ":memory:"}, ValueError, "path", id="memory-path"),
        pytest.param({"path": ""}, ValueError, "path", id="empty-path"),
        pytest.param({"path": "file:x.db?mode=memory"}, ValueError, "path", id="uri-path"),
        pytest.param({"path": 42}, TypeError, "path", id="int-path"),
        pytest.param({"busy_timeout": -1}, ValueError, "busy_timeout", id="negative-timeout"),
        pytest.param({"busy_timeout": float("nan")}, ValueError, "busy_timeout", id="nan-timeout"),
        pytest.param({"busy_timeout": "5"}, TypeError, "busy_timeout", id="str-timeout"),
        pytest.param({"synchronous": "OFF"}, ValueError, "synchronous", id="synchronous-off"),
    ],
)
def test_invalid_constructor_arguments_are_refused_naming_the_field(
    kwargs: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error, match=rf"SQLiteStore: {field}\b"):
        SQLiteStore(**{"path": "outbox.db", **kwargs})


# Transactional enqueue through the application's own drivers


async def test_enqueue_within_a_sqlalchemy_session_commits_or_rolls_back(
    store: SQLiteStore, db: Path
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    engine = create_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as session:
            with session.begin():
                session.execute(text("CREATE TABLE IF NOT EXISTS orders (id INTEGER)"))
                await store.enqueue_within(session, [new("kept")])
            session.begin()
            await store.enqueue_within(session, [new("dropped")])
            session.rollback()
    finally:
        engine.dispose()
    assert ids(await store.claim("me", limit=10, lease=60.0, now=T0)) == ["kept"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_enqueue_within_an_async_sqlalchemy_session_on_aiosqlite(
    store: SQLiteStore, db: Path
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
    try:
        async with AsyncSession(engine) as session:
            async with session.begin():
                await store.enqueue_within(session, [new("kept")])
            async with session.begin():
                await store.enqueue_within(session, [new("dropped")])
                await session.rollback()
        async with engine.connect() as conn:
            await store.enqueue_within(conn, [new("also-kept")])
            await conn.commit()
    finally:
        await engine.dispose()
    assert sorted(ids(await store.claim("me", limit=10, lease=60.0, now=T0))) == [
        "also-kept",
        "kept",
    ]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_enqueue_within_an_aiosqlite_connection(store: SQLiteStore, db: Path) -> None:
    import aiosqlite

    async with aiosqlite.connect(db) as conn:
        await store.enqueue_within(conn, [new("kept")])
        await conn.commit()
        await store.enqueue_within(conn, [new("dropped")])
        await conn.rollback()
    assert ids(await store.claim("me", limit=10, lease=60.0, now=T0)) == ["kept"]
