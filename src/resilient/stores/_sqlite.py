"""`SQLiteStore`: the embedded default, one file shared by the processes of one host.

The store uses the standard library's ``sqlite3`` from a worker thread, one
connection per store object and one statement batch at a time. Producers and
relays in other processes open the same file: WAL lets readers and one writer
work at once, the busy timeout makes writers queue instead of failing, and
every write runs in ``BEGIN IMMEDIATE`` so two claims can never both read the
same due messages before either writes its lease.

Times are seconds since the epoch, as REAL. The schema version is kept in the
store's own ``resilient_meta`` table, not in ``PRAGMA user_version``: the outbox
may live in the application's own database, whose version is the application's.
"""

from __future__ import annotations

import functools
import os
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import anyio.to_thread

from .._clock import hold
from ..policies._validate import check_seconds
from ._records import DeadLetter, DeadLetterFilter, Failure, NewMessage, OutboxStats, StoredMessage
from ._rows import as_int, as_real, claimed, dead, where_clause

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "SchemaVersionError"]

T = TypeVar("T")

_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: the outbox. A claim leaves `next_attempt_at` alone: a message whose lease
    # ran out (its relay died) keeps its place at the front of the queue.
    (
        """CREATE TABLE resilient_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            data TEXT NOT NULL,
            destination TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            ordering_key TEXT,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            lease_owner TEXT,
            lease_token TEXT,
            lease_until REAL,
            first_failure_at REAL,
            last_failure_at REAL,
            last_status INTEGER,
            last_error TEXT
        )""",
        "CREATE INDEX resilient_outbox_due ON resilient_outbox (next_attempt_at, seq)",
        """CREATE INDEX resilient_outbox_order ON resilient_outbox (ordering_key, seq)
            WHERE ordering_key IS NOT NULL""",
        "INSERT INTO resilient_meta (key, value) VALUES ('delivered', '0')",
    ),
    # 2: the dead letters.
    (
        """CREATE TABLE resilient_dead_letters (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            data TEXT NOT NULL,
            destination TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            ordering_key TEXT,
            created_at REAL NOT NULL,
            reason TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            dead_at REAL NOT NULL,
            first_failure_at REAL,
            last_failure_at REAL,
            last_status INTEGER,
            last_error TEXT
        )""",
        "CREATE INDEX resilient_dead_letters_dead_at ON resilient_dead_letters (dead_at)",
    ),
)

SCHEMA_VERSION: Final = len(_MIGRATIONS)
"""The schema version this release writes; `SQLiteStore.open` migrates older files to it."""

_CLAIM: Final = """
    SELECT seq, id, data, destination, idempotency_key, ordering_key, created_at, attempts,
           first_failure_at, last_failure_at, last_status, last_error
    FROM resilient_outbox AS o
    WHERE next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
      AND (ordering_key IS NULL
           OR seq = (SELECT MIN(seq) FROM resilient_outbox WHERE ordering_key = o.ordering_key))
    ORDER BY next_attempt_at, seq
    LIMIT ?
"""

# Messages that time alone can make claimable: those without an ordering key, and
# the oldest of each key (the others wait for it, whatever their own times say).
_CLAIMABLE_AT: Final = "max(next_attempt_at, COALESCE(lease_until, 0))"
"""When a message may next be claimed: when it is due, and its lease (if any) has run out."""

_HEAD: Final = (
    "(ordering_key IS NULL OR seq = (SELECT MIN(seq) FROM resilient_outbox "
    "WHERE ordering_key = o.ordering_key))"
)

_DEAD_COLUMNS: Final = (
    "seq, id, data, destination, idempotency_key, ordering_key, created_at, reason, attempts, "
    "dead_at, first_failure_at, last_failure_at, last_status, last_error"
)


class SchemaVersionError(RuntimeError):
    """The store's file was written by a newer release of `resilient` than this one."""


class SQLiteStore:
    """An outbox and dead-letter store in a SQLite file: the embedded default.

    ::

        store = resilient.stores.SQLiteStore("resilient.db")

    Safe when producers and relays are separate processes on one host (WAL, a
    busy timeout, writes in ``BEGIN IMMEDIATE`` transactions). Not for several
    hosts sharing a network file system: SQLite's locks do not hold there; use
    PostgreSQL.

    Args:
        path: The database file; created, with its schema, on first open. It may
            be the application's own database: the store's tables are named
            ``resilient_*``, and `enqueue_within` writes in the application's
            transaction.
        busy_timeout: Seconds a write waits for another process's write before
            failing with ``sqlite3.OperationalError``.
        synchronous: ``"FULL"`` (default): a committed message survives power
            loss. ``"NORMAL"``: it survives the process crashing but may be lost
            with the machine, for faster enqueues.

    Raises:
        TypeError: If *path* is not a path.
        ValueError: If *busy_timeout* or *synchronous* is out of range.

    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            msg = f"SQLiteStore: path must be a file path, got {path!r}"
            raise TypeError(msg)
        self.path = os.fspath(path)
        if not self.path or self.path == ":memory:" or self.path.startswith("file:"):
            msg = (
                f"SQLiteStore: path must name a file that other processes can open, "
                f"got {self.path!r}"
            )
            raise ValueError(msg)
        check_seconds("SQLiteStore", "busy_timeout", busy_timeout)
        if synchronous not in ("FULL", "NORMAL"):
            msg = f"SQLiteStore: synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}"
            raise ValueError(msg)
        self.busy_timeout = float(busy_timeout)
        self.synchronous = synchronous
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # Connection and schema

    async def open(self) -> None:
        """Open the file, and create or migrate the schema. Idempotent."""
        # Not a write (nor is a connect that finds the schema current): opening
        # need not wait for another connection's write, or fail when it is long.
        await self._run(lambda _conn: None, write=False)

    async def close(self) -> None:
        """Close the connection. Idempotent; the store reopens on next use."""
        with hold():
            await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def _run(self, work: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        with hold():
            return await anyio.to_thread.run_sync(functools.partial(self._in_thread, work, write))

    def _in_thread(self, work: Callable[[sqlite3.Connection], T], write: bool) -> T:  # noqa: FBT001
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            # A read transaction too, so multi-statement reads see one snapshot.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    async def schema_version(self) -> int:
        """The schema version of the file."""
        return await self._run(_version, write=False)

    async def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check``: ``["ok"]`` for a sound file."""
        return await self._run(
            lambda conn: [str(row[0]) for row in conn.execute("PRAGMA integrity_check")],
            write=False,
        )

    # Outbox

    async def enqueue(self, messages: Sequence[NewMessage]) -> None:
        """Add *messages* in one transaction; returns once it is committed."""
        rows = [_insert_row(m) for m in messages]
        await self._run(lambda conn: conn.executemany(_INSERT, rows))

    async def enqueue_within(self, connection: Any, messages: Sequence[NewMessage]) -> None:
        """Add *messages* inside the caller's transaction on *connection*.

        *connection* is the application's own connection to the same file: a
        ``sqlite3.Connection``, an ``aiosqlite.Connection``, or a SQLAlchemy 2
        ``Session``, ``Connection``, ``AsyncSession`` or ``AsyncConnection`` on
        SQLite. Nothing is committed here: the caller's commit makes the messages
        deliverable, its rollback means they never existed. The store must have
        been opened first (`open`, at the application's start), as its schema
        cannot be created while the caller's transaction holds the file.

        Raises:
            TypeError: If *connection* is none of those.
            ValueError: If it is connected to another database file.
            RuntimeError: If the file has no current outbox schema yet.

        """
        run = _caller(connection)
        files = [str(row[2]) for row in await run("PRAGMA database_list", ()) if row[1] == "main"]
        if not files or not _same_file(files[0], self.path):
            msg = (
                f"SQLiteStore.enqueue_within: the connection is to {files[0] if files else '?'!r}, "
                f"but the store is {self.path!r}; they must be the same file"
            )
            raise ValueError(msg)
        try:
            rows = await run("SELECT value FROM resilient_meta WHERE key = 'schema_version'", ())
        except Exception:  # noqa: BLE001 -- no resilient_meta table, whatever the driver says
            rows = []
        version = as_int(rows[0][0], 0) if rows else 0
        if version != SCHEMA_VERSION:
            msg = (
                f"SQLiteStore.enqueue_within: {self.path!r} has outbox schema version {version}, "
                f"not {SCHEMA_VERSION}; open the store (await store.open(), or `resilient store "
                "init`) when the application starts, before transactions use it"
            )
            raise RuntimeError(msg)
        for message in messages:
            await run(_INSERT, _insert_row(message))

    async def claim(
        self, owner: str, *, limit: int, lease: float, now: float
    ) -> list[StoredMessage]:
        """Lease up to *limit* due messages to *owner* for *lease* seconds."""
        return await self._run(functools.partial(_claim, owner, limit, lease, now))

    async def complete(self, messages: Sequence[StoredMessage]) -> int:
        """Remove delivered *messages* whose lease is still held."""
        if not messages:
            return 0
        return await self._run(functools.partial(_complete, messages))

    async def complete_and_claim(
        self, done: Sequence[StoredMessage], owner: str, *, limit: int, lease: float, now: float
    ) -> tuple[int, list[StoredMessage]]:
        """`complete` *done*, then `claim`, in one transaction (one commit, one thread hop)."""

        def work(conn: sqlite3.Connection) -> tuple[int, list[StoredMessage]]:
            return _complete(done, conn), _claim(owner, limit, lease, now, conn)

        return await self._run(work)

    async def reschedule(
        self,
        message: StoredMessage,
        *,
        next_attempt_at: float,
        failure: Failure,
        refund: bool = False,
    ) -> bool:
        """Record *failure* and make *message* due again at *next_attempt_at*."""
        params = (
            next_attempt_at,
            1 if refund else 0,
            failure.at,
            failure.at,
            failure.status,
            failure.error,
            message.id,
            message.lease_token,
        )
        return await self._run(
            lambda conn: (
                conn.execute(
                    "UPDATE resilient_outbox SET next_attempt_at = ?, attempts = attempts - ?, "
                    "lease_owner = NULL, lease_token = NULL, lease_until = NULL, "
                    "first_failure_at = COALESCE(first_failure_at, ?), last_failure_at = ?, "
                    "last_status = ?, last_error = ? WHERE id = ? AND lease_token = ?",
                    params,
                ).rowcount
                == 1
            )
        )

    async def release(self, messages: Sequence[StoredMessage], *, now: float) -> int:
        """Give back claimed, unattempted *messages*, due at *now*."""
        if not messages:
            return 0
        params = [(now, m.id, m.lease_token) for m in messages]
        return await self._run(
            lambda conn: (
                conn.executemany(
                    "UPDATE resilient_outbox SET next_attempt_at = ?, attempts = attempts - 1, "
                    "lease_owner = NULL, lease_token = NULL, lease_until = NULL "
                    "WHERE id = ? AND lease_token = ?",
                    params,
                ).rowcount
            )
        )

    async def bury(
        self, message: StoredMessage, *, reason: str, failure: Failure | None, now: float
    ) -> bool:
        """Move *message* to the dead letters, in one transaction."""

        def work(conn: sqlite3.Connection) -> bool:
            if failure is not None:
                updated = conn.execute(
                    "UPDATE resilient_outbox SET "
                    "first_failure_at = COALESCE(first_failure_at, ?), last_failure_at = ?, "
                    "last_status = ?, last_error = ? WHERE id = ? AND lease_token = ?",
                    (
                        failure.at,
                        failure.at,
                        failure.status,
                        failure.error,
                        message.id,
                        message.lease_token,
                    ),
                ).rowcount
                if updated != 1:
                    return False
            # OR REPLACE: a dead letter left by an earlier life of this id must not
            # make the relay fail on every claim of the message.
            moved = conn.execute(
                "INSERT OR REPLACE INTO resilient_dead_letters (id, data, destination, "
                "idempotency_key, ordering_key, created_at, reason, attempts, dead_at, "
                "first_failure_at, last_failure_at, last_status, last_error) "
                "SELECT id, data, destination, idempotency_key, ordering_key, created_at, ?, "
                "attempts, ?, first_failure_at, last_failure_at, last_status, last_error "
                "FROM resilient_outbox WHERE id = ? AND lease_token = ?",
                (reason, now, message.id, message.lease_token),
            ).rowcount
            if moved != 1:
                return False
            conn.execute("DELETE FROM resilient_outbox WHERE id = ?", (message.id,))
            return True

        return await self._run(work)

    async def stats(self, *, now: float) -> OutboxStats:
        """Counts of what the store holds at *now*."""

        def work(conn: sqlite3.Connection) -> OutboxStats:
            pending, oldest = conn.execute(
                "SELECT COUNT(*), MIN(created_at) FROM resilient_outbox"
            ).fetchone()
            (due,) = conn.execute(
                f"SELECT COUNT(*) FROM resilient_outbox AS o "  # noqa: S608 -- fixed text
                f"WHERE next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) "
                f"AND {_HEAD}",
                (now, now),
            ).fetchone()
            (leased,) = conn.execute(
                "SELECT COUNT(*) FROM resilient_outbox "
                "WHERE lease_token IS NOT NULL AND lease_until > ?",
                (now,),
            ).fetchone()
            (waiting,) = conn.execute(
                f"SELECT MIN({_CLAIMABLE_AT}) FROM resilient_outbox AS o "  # noqa: S608 -- fixed text
                f"WHERE {_CLAIMABLE_AT} > ? AND {_HEAD}",
                (now,),
            ).fetchone()
            (dead,) = conn.execute("SELECT COUNT(*) FROM resilient_dead_letters").fetchone()
            (delivered,) = conn.execute(
                "SELECT value FROM resilient_meta WHERE key = 'delivered'"
            ).fetchone()
            return OutboxStats(
                pending=int(pending),
                due=int(due),
                leased=int(leased),
                dead_letters=int(dead),
                delivered=as_int(delivered, 0),
                oldest_created_at=as_real(oldest),
                next_attempt_at=as_real(waiting),
            )

        return await self._run(work, write=False)

    async def next_due(self) -> float | None:
        """The earliest time any pending message becomes claimable."""
        query = f"SELECT MIN({_CLAIMABLE_AT}) FROM resilient_outbox AS o WHERE {_HEAD}"  # noqa: S608 -- fixed text
        return await self._run(
            lambda conn: as_real(conn.execute(query).fetchone()[0]),
            write=False,
        )

    # Dead letters

    async def dead_letters(
        self, where: DeadLetterFilter, *, limit: int, after: int | None = None
    ) -> list[DeadLetter]:
        """Up to *limit* dead letters matching *where*, oldest first, after seq *after*."""
        clause, params = where_clause(where, "sqlite")
        if after is not None:
            clause += " AND seq > ?"
            params.append(after)
        query = (
            f"SELECT {_DEAD_COLUMNS} FROM resilient_dead_letters WHERE {clause} "  # noqa: S608 -- clause is built from fixed text; values are parameters
            "ORDER BY seq LIMIT ?"
        )
        params.append(limit)
        return await self._run(
            lambda conn: [dead(row) for row in conn.execute(query, params)], write=False
        )

    async def dead_letter(self, message_id: str) -> DeadLetter | None:
        """The dead letter of *message_id*, if there is one."""
        query = f"SELECT {_DEAD_COLUMNS} FROM resilient_dead_letters WHERE id = ?"  # noqa: S608 -- fixed text

        def work(conn: sqlite3.Connection) -> DeadLetter | None:
            row = conn.execute(query, (message_id,)).fetchone()
            return None if row is None else dead(row)

        return await self._run(work, write=False)

    async def count_dead_letters(self, where: DeadLetterFilter) -> int:
        """How many dead letters match *where*."""
        clause, params = where_clause(where, "sqlite")
        query = f"SELECT COUNT(*) FROM resilient_dead_letters WHERE {clause}"  # noqa: S608 -- fixed text
        return await self._run(
            lambda conn: int(conn.execute(query, params).fetchone()[0]), write=False
        )

    async def restore(
        self, ids: Sequence[str], *, now: float, keys: Mapping[str, str] | None = None
    ) -> list[str]:
        """Move the dead letters *ids* back into the outbox, due at *now*."""
        wanted = list(dict.fromkeys(ids))

        def work(conn: sqlite3.Connection) -> list[str]:
            restored = []
            for message_id in wanted:
                key = None if keys is None else keys.get(message_id)
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO resilient_outbox (id, data, destination, "
                    "idempotency_key, ordering_key, created_at, attempts, next_attempt_at) "
                    "SELECT id, data, destination, COALESCE(?, idempotency_key), ordering_key, "
                    "created_at, 0, ? FROM resilient_dead_letters WHERE id = ?",
                    (key, now, message_id),
                ).rowcount
                if inserted == 1:
                    conn.execute("DELETE FROM resilient_dead_letters WHERE id = ?", (message_id,))
                    restored.append(message_id)
            return restored

        return await self._run(work)

    async def purge(self, where: DeadLetterFilter) -> int:
        """Delete the dead letters matching *where*; return how many."""
        clause, params = where_clause(where, "sqlite")
        query = f"DELETE FROM resilient_dead_letters WHERE {clause}"  # noqa: S608 -- fixed text
        return await self._run(lambda conn: conn.execute(query, params).rowcount)

    async def trim(self, *, max_count: int | None = None, older_than: float | None = None) -> int:
        """Drop dead letters dead before *older_than* and the oldest beyond *max_count*."""

        def work(conn: sqlite3.Connection) -> int:
            dropped = 0
            if older_than is not None:
                dropped += conn.execute(
                    "DELETE FROM resilient_dead_letters WHERE dead_at < ?", (older_than,)
                ).rowcount
            if max_count is not None:
                dropped += conn.execute(
                    "DELETE FROM resilient_dead_letters WHERE seq <= (SELECT seq FROM "
                    "resilient_dead_letters ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (max_count,),
                ).rowcount
            return dropped

        return await self._run(work)


def _claim(
    owner: str, limit: int, lease: float, now: float, conn: sqlite3.Connection
) -> list[StoredMessage]:
    rows = conn.execute(_CLAIM, (now, now, limit)).fetchall()
    if not rows:
        return []
    token = secrets.token_hex(8)
    until = now + lease
    conn.executemany(
        "UPDATE resilient_outbox SET attempts = attempts + 1, lease_owner = ?, "
        "lease_token = ?, lease_until = ? WHERE seq = ?",
        [(owner, token, until, row[0]) for row in rows],
    )
    return [claimed(row, token, until, counted=False) for row in rows]


def _complete(messages: Sequence[StoredMessage], conn: sqlite3.Connection) -> int:
    if not messages:
        return 0
    done = conn.executemany(
        "DELETE FROM resilient_outbox WHERE id = ? AND lease_token = ?",
        [(m.id, m.lease_token) for m in messages],
    ).rowcount
    conn.execute(
        "UPDATE resilient_meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'delivered'",
        (done,),
    )
    return done


_INSERT: Final = (
    "INSERT INTO resilient_outbox (id, data, destination, idempotency_key, ordering_key, "
    "created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _insert_row(m: NewMessage) -> tuple[Any, ...]:
    return (
        m.id,
        m.data,
        m.destination,
        m.idempotency_key,
        m.ordering_key,
        m.created_at,
        m.next_attempt_at,
    )


def _caller(connection: Any) -> Callable[[str, tuple[Any, ...]], Awaitable[list[Any]]]:
    """Run a statement (``?`` parameters) on the caller's connection, whatever its kind."""
    if isinstance(connection, sqlite3.Connection):

        async def run_sqlite3(sql: str, params: tuple[Any, ...]) -> list[Any]:
            return connection.execute(sql, params).fetchall()

        return run_sqlite3
    modules = {cls.__module__.split(".")[0] for cls in type(connection).__mro__}
    if "sqlalchemy" in modules:
        from sqlalchemy import text  # noqa: PLC0415 -- only for SQLAlchemy callers

        async def run_sqlalchemy(sql: str, params: tuple[Any, ...]) -> list[Any]:
            # SQLAlchemy's text() takes named parameters: ?1, ?2... become :p1, :p2...
            named = sql
            for n in range(len(params)):
                named = named.replace("?", f":p{n}", 1)
            result = connection.execute(text(named), {f"p{n}": v for n, v in enumerate(params)})
            if hasattr(result, "__await__"):  # AsyncSession / AsyncConnection
                result = await result
            return list(result.fetchall()) if result.returns_rows else []

        return run_sqlalchemy
    if "aiosqlite" in modules:

        async def run_aiosqlite(sql: str, params: tuple[Any, ...]) -> list[Any]:
            cursor = await connection.execute(sql, params)
            return list(await cursor.fetchall())

        return run_aiosqlite
    msg = (
        "SQLiteStore.enqueue_within: connection must be a sqlite3 or aiosqlite connection or "
        f"a SQLAlchemy session or connection, got {type(connection).__name__}"
    )
    raise TypeError(msg)


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM resilient_meta WHERE key = 'schema_version'").fetchone()
    return 0 if row is None else as_int(row[0], 0)


def _migrate(conn: sqlite3.Connection) -> None:
    # Check first with a read: a current schema needs no write lock, which another
    # connection (another process's, or the application's own) may be holding.
    if _is_current(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS resilient_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        version = _version(conn)
        if version > SCHEMA_VERSION:
            msg = (
                f"the store's schema is version {version}, newer than this release of "
                f"resilient knows (up to {SCHEMA_VERSION}); upgrade resilient"
            )
            raise SchemaVersionError(msg)  # noqa: TRY301 -- rolled back just below
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute(
                "INSERT OR REPLACE INTO resilient_meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _is_current(conn: sqlite3.Connection) -> bool:
    conn.execute("BEGIN")
    try:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'resilient_meta'"
        ).fetchone()
        return has_meta is not None and _version(conn) == SCHEMA_VERSION
    finally:
        conn.execute("COMMIT")


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).samefile(b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()
