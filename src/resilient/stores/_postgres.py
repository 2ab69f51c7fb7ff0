"""`PostgresStore`: the outbox and dead letters in PostgreSQL, for relays on many hosts.

Built on psycopg 3 (extra ``resilient-client[postgres]``): one driver for async
and sync code, so the transactional enqueue works inside the application's own
transaction whether that runs on psycopg's async or sync connections, or on
SQLAlchemy 2 sessions over either. Claims use ``FOR UPDATE SKIP LOCKED``, so
relays on any number of hosts take disjoint batches without waiting on each
other; enqueues ``NOTIFY`` a channel the relays ``LISTEN`` on, with polling as
the fallback.

Identifiers (the schema name) cannot be bound as parameters; the schema name is
checked against a strict pattern at construction and then quoted. Every value
is a bound parameter.
"""

# Queries are built from fixed text and the checked, quoted schema name; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import random
import re
import secrets
from asyncio import _get_running_loop
from typing import TYPE_CHECKING, Any, Final

from .._clock import hold
from ..policies._validate import check_count, check_seconds
from ._records import DeadLetter, DeadLetterFilter, Failure, NewMessage, OutboxStats, StoredMessage
from ._rows import claimed, dead, where_clause
from ._sqlite import SchemaVersionError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

__all__ = ["PostgresStore"]

_IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_CHANNEL: Final = "resilient_outbox"

_COUNTER_SHARDS: Final = 16
"""Rows the delivered count is spread over (``delivered:0`` to ``delivered:15``); the
schema's own ``delivered`` row, written by earlier versions, is added in too."""

_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE {s}.resilient_outbox (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            data TEXT NOT NULL,
            destination TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            ordering_key TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            lease_owner TEXT,
            lease_token TEXT,
            lease_until DOUBLE PRECISION,
            first_failure_at DOUBLE PRECISION,
            last_failure_at DOUBLE PRECISION,
            last_status INTEGER,
            last_error TEXT
        )""",
        "CREATE INDEX resilient_outbox_due ON {s}.resilient_outbox (next_attempt_at, seq)",
        """CREATE INDEX resilient_outbox_order ON {s}.resilient_outbox (ordering_key, seq)
            WHERE ordering_key IS NOT NULL""",
        "INSERT INTO {s}.resilient_meta (key, value) VALUES ('delivered', '0')",
    ),
    (
        """CREATE TABLE {s}.resilient_dead_letters (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            data TEXT NOT NULL,
            destination TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            ordering_key TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            reason TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            dead_at DOUBLE PRECISION NOT NULL,
            first_failure_at DOUBLE PRECISION,
            last_failure_at DOUBLE PRECISION,
            last_status INTEGER,
            last_error TEXT
        )""",
        "CREATE INDEX resilient_dead_letters_dead_at ON {s}.resilient_dead_letters (dead_at)",
    ),
)

SCHEMA_VERSION: Final = len(_MIGRATIONS)

_CLAIMABLE_AT: Final = "GREATEST(o.next_attempt_at, COALESCE(o.lease_until, 0))"
"""When a message may next be claimed: when it is due, and its lease (if any) has run out."""

_HEAD: Final = (
    "(o.ordering_key IS NULL OR o.seq = (SELECT min(p.seq) FROM {s}.resilient_outbox AS p "
    "WHERE p.ordering_key = o.ordering_key))"
)
"""Whether row ``o`` is claimable by its ordering key: no key, or the oldest of its key."""

_COLUMNS: Final = (
    "seq, id, data, destination, idempotency_key, ordering_key, created_at, attempts, "
    "first_failure_at, last_failure_at, last_status, last_error"
)
_RETURNING: Final = ", ".join("t." + column.strip() for column in _COLUMNS.split(","))
_DEAD_COLUMNS: Final = (
    "seq, id, data, destination, idempotency_key, ordering_key, created_at, reason, attempts, "
    "dead_at, first_failure_at, last_failure_at, last_status, last_error"
)


class PostgresStore:
    """An outbox and dead-letter store in PostgreSQL, shared by relays on many hosts.

    ::

        store = resilient.stores.PostgresStore("postgresql://app@db/app")

    Needs the ``postgres`` extra (psycopg 3 and its pool).

    Args:
        url: A libpq connection string or URL.
        schema: The schema that holds the store's tables (created if missing).
        pool_size: Most connections the store opens (relay workers share them).
        connect_timeout: Seconds to wait for a connection from the pool.
        notify: ``NOTIFY`` relays on each enqueue, so they claim at once
            rather than at their next poll.

    Raises:
        TypeError: If *url* is not a str.
        ValueError: If *schema* is not a plain lower-case identifier, or a
            number is out of range.

    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        pool_size: int = 10,
        connect_timeout: float = 10.0,
        notify: bool = True,
    ) -> None:
        given: Any = url
        if not isinstance(given, str) or not given:
            msg = f"PostgresStore: url must be a PostgreSQL URL or DSN, got {url!r}"
            raise TypeError(msg)
        name: Any = schema
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or name.startswith("pg_"):
            msg = (
                "PostgresStore: schema must be a lower-case identifier ([a-z_][a-z0-9_]*, "
                f"at most 63 characters, not starting with pg_), got {schema!r}"
            )
            raise ValueError(msg)
        check_count("PostgresStore", "pool_size", pool_size)
        check_seconds("PostgresStore", "connect_timeout", connect_timeout, positive=True)
        self.url = url
        self.schema = schema
        self.pool_size = pool_size
        self.connect_timeout = float(connect_timeout)
        self.notify = bool(notify)
        self._s = f'"{schema}"'
        self._pool: Any = None
        self._ready = False
        self._claim_sql = self._sql(
            "WITH due AS (SELECT seq, next_attempt_at AS due_at FROM {s}.resilient_outbox AS o "
            "WHERE next_attempt_at <= %(now)s AND (lease_until IS NULL OR lease_until <= %(now)s) "
            f"AND {_HEAD} "
            "ORDER BY next_attempt_at, seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
            "UPDATE {s}.resilient_outbox AS t SET attempts = t.attempts + 1, "
            "lease_owner = %(owner)s, lease_token = %(token)s, lease_until = %(until)s "
            "FROM due WHERE t.seq = due.seq "
            f"RETURNING {_RETURNING}, due.due_at"
        )

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"  # the URL may hold a password

    def _sql(self, text: str) -> str:
        return text.replace("{s}", self._s)

    # Connections and schema

    async def open(self) -> None:
        """Open the pool, and create or migrate the schema. Idempotent."""
        if self._pool is not None:
            return
        if _get_running_loop() is None:
            msg = "PostgresStore runs on asyncio: psycopg's async connections do not support trio"
            raise RuntimeError(msg)
        try:
            from psycopg_pool import AsyncConnectionPool  # noqa: PLC0415 -- an optional extra
        except ImportError:  # pragma: no cover -- depends on the installation
            msg = "PostgresStore needs psycopg 3: pip install 'resilient-client[postgres]'"
            raise ImportError(msg) from None
        pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            timeout=self.connect_timeout,
        )
        with hold():
            await pool.open(wait=True, timeout=self.connect_timeout)
            try:
                async with pool.connection() as conn:
                    await self._migrate(conn)
            except BaseException:
                await pool.close()
                raise
        self._pool = pool
        self._ready = True

    async def _migrate(self, conn: Any) -> None:
        async with conn.transaction():
            # One migrator at a time across every host; the others then find it done.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('resilient_migrate'))")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._s}")
            await conn.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {s}.resilient_meta "
                    "(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
            )
            version = await self._version(conn)
            if version > SCHEMA_VERSION:
                msg = (
                    f"the store's schema is version {version}, newer than this release of "
                    f"resilient knows (up to {SCHEMA_VERSION}); upgrade resilient"
                )
                raise SchemaVersionError(msg)
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    await conn.execute(self._sql(statement))
            if version < SCHEMA_VERSION:
                await conn.execute(
                    self._sql(
                        "INSERT INTO {s}.resilient_meta (key, value) VALUES ('schema_version', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                    ),
                    (str(SCHEMA_VERSION),),
                )

    async def _version(self, conn: Any) -> int:
        cursor = await conn.execute(
            self._sql("SELECT value FROM {s}.resilient_meta WHERE key = 'schema_version'")
        )
        row = await cursor.fetchone()
        return 0 if row is None else int(row[0])

    async def close(self) -> None:
        """Close the pool. Idempotent; the store reopens on next use."""
        pool, self._pool = self._pool, None
        if pool is not None:
            with hold():
                await pool.close()

    async def schema_version(self) -> int:
        """The schema version of the database."""
        return int(await self._run(self._version))

    async def _run(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run *work(connection)* in one transaction (committed when it returns)."""
        if self._pool is None:
            await self.open()
        with hold():
            async with self._pool.connection() as conn, conn.transaction():
                return await work(conn)

    # Outbox

    async def enqueue(self, messages: Sequence[NewMessage]) -> None:
        """Add *messages* in one transaction; returns once it is committed."""

        async def work(conn: Any) -> None:
            async with conn.cursor() as cursor:
                await cursor.executemany(self._sql(_INSERT), [_row(m) for m in messages])
            if self.notify:
                await conn.execute("SELECT pg_notify(%s, '')", (_CHANNEL,))

        await self._run(work)

    async def enqueue_within(self, connection: Any, messages: Sequence[NewMessage]) -> None:
        """Add *messages* inside the caller's open transaction on *connection*.

        *connection* may be a psycopg 3 ``AsyncConnection`` or ``Connection``,
        a SQLAlchemy 2 ``AsyncSession``, ``AsyncConnection``, ``Session`` or
        ``Connection``, or an asyncpg ``Connection``, connected to the store's
        database. Nothing is committed here. Open the store once at start-up
        first: the schema must exist.

        Raises:
            TypeError: If *connection* is none of those.
            RuntimeError: If the store was not opened in this process.

        """
        if not self._ready:
            msg = (
                "PostgresStore.enqueue_within: open the store (await store.open(), or "
                "`resilient store init`) when the application starts, before transactions use it"
            )
            raise RuntimeError(msg)
        write = _WRITERS.get(_connection_kind(connection) or "")
        if write is None:
            msg = (
                "PostgresStore.enqueue_within: connection must be a psycopg 3, SQLAlchemy 2 or "
                f"asyncpg connection or session, got {type(connection).__name__}"
            )
            raise TypeError(msg)
        await write(connection, self._s, [_row(m) for m in messages], self.notify)

    async def claim(
        self, owner: str, *, limit: int, lease: float, now: float
    ) -> list[StoredMessage]:
        """Lease up to *limit* due messages to *owner*; concurrent claims skip each other's."""

        async def work(conn: Any) -> list[StoredMessage]:
            return await self._claim(conn, owner, limit, lease, now)

        claimed: list[StoredMessage] = await self._run(work)
        return claimed

    async def complete(self, messages: Sequence[StoredMessage]) -> int:
        """Remove delivered *messages* whose lease is still held."""
        if not messages:
            return 0

        async def work(conn: Any) -> int:
            return await self._complete(conn, messages)

        return int(await self._run(work))

    async def complete_and_claim(
        self, done: Sequence[StoredMessage], owner: str, *, limit: int, lease: float, now: float
    ) -> tuple[int, list[StoredMessage]]:
        """`complete` *done*, then `claim`, in one transaction."""

        async def work(conn: Any) -> tuple[int, list[StoredMessage]]:
            completed = await self._complete(conn, done) if done else 0
            return completed, await self._claim(conn, owner, limit, lease, now)

        result: tuple[int, list[StoredMessage]] = await self._run(work)
        return result

    async def _claim(
        self, conn: Any, owner: str, limit: int, lease: float, now: float
    ) -> list[StoredMessage]:
        token = secrets.token_hex(8)
        until = now + lease
        params = {"now": now, "limit": limit, "owner": owner, "token": token, "until": until}
        cursor = await conn.execute(self._claim_sql, params)
        # RETURNING has no order: put back the claim's (oldest due first).
        rows = sorted(await cursor.fetchall(), key=lambda row: (row[-1], row[0]))
        return [claimed(row, token, until, counted=True) for row in rows]

    async def _complete(self, conn: Any, messages: Sequence[StoredMessage]) -> int:
        cursor = await conn.execute(
            self._sql(
                "DELETE FROM {s}.resilient_outbox AS t USING unnest(%s::text[], %s::text[]) "
                "AS x(id, token) WHERE t.id = x.id AND t.lease_token = x.token"
            ),
            ([m.id for m in messages], [m.lease_token for m in messages]),
        )
        done = int(cursor.rowcount)
        if not done:  # every lease was lost: nothing to count
            return 0
        # One counter row would be locked by every completing transaction until it
        # commits, queueing all workers of the fleet behind each other (benchmarks/
        # backends.py: the relay drained at 59-63 % of a hand-written loop's rate with
        # one row, 74-84 % with 16). A random one of _COUNTER_SHARDS rows takes the
        # count, made on first use; stats() adds them up.
        await conn.execute(
            self._sql(
                "INSERT INTO {s}.resilient_meta AS m (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = (m.value::bigint + %s)::text"
            ),
            (f"delivered:{random.randrange(_COUNTER_SHARDS)}", str(done), done),  # noqa: S311 -- spreading load, not a secret
        )
        return done

    async def reschedule(
        self,
        message: StoredMessage,
        *,
        next_attempt_at: float,
        failure: Failure,
        refund: bool = False,
    ) -> bool:
        """Record *failure* and make *message* due again at *next_attempt_at*."""
        query = self._sql(
            "UPDATE {s}.resilient_outbox SET next_attempt_at = %s, attempts = attempts - %s, "
            "lease_owner = NULL, lease_token = NULL, lease_until = NULL, "
            "first_failure_at = COALESCE(first_failure_at, %s), last_failure_at = %s, "
            "last_status = %s, last_error = %s WHERE id = %s AND lease_token = %s"
        )
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
        return bool(await self._rowcount(query, params) == 1)

    async def _rowcount(self, query: str, params: Any) -> int:
        async def work(conn: Any) -> int:
            cursor = await conn.execute(query, params)
            return int(cursor.rowcount)

        return int(await self._run(work))

    async def release(self, messages: Sequence[StoredMessage], *, now: float) -> int:
        """Give back claimed, unattempted *messages*, due at *now*."""
        if not messages:
            return 0
        query = self._sql(
            "UPDATE {s}.resilient_outbox AS t SET next_attempt_at = %s, "
            "attempts = t.attempts - 1, lease_owner = NULL, lease_token = NULL, "
            "lease_until = NULL FROM unnest(%s::text[], %s::text[]) AS x(id, token) "
            "WHERE t.id = x.id AND t.lease_token = x.token"
        )
        params = (now, [m.id for m in messages], [m.lease_token for m in messages])
        return await self._rowcount(query, params)

    async def bury(
        self, message: StoredMessage, *, reason: str, failure: Failure | None, now: float
    ) -> bool:
        """Move *message* to the dead letters, in one transaction."""

        async def work(conn: Any) -> bool:
            if failure is not None:
                cursor = await conn.execute(
                    self._sql(
                        "UPDATE {s}.resilient_outbox SET "
                        "first_failure_at = COALESCE(first_failure_at, %s), last_failure_at = %s, "
                        "last_status = %s, last_error = %s WHERE id = %s AND lease_token = %s"
                    ),
                    (
                        failure.at,
                        failure.at,
                        failure.status,
                        failure.error,
                        message.id,
                        message.lease_token,
                    ),
                )
                if cursor.rowcount != 1:
                    return False
            cursor = await conn.execute(
                self._sql(
                    "WITH gone AS (DELETE FROM {s}.resilient_outbox WHERE id = %s AND "
                    "lease_token = %s RETURNING *) "
                    "INSERT INTO {s}.resilient_dead_letters (id, data, destination, "
                    "idempotency_key, ordering_key, created_at, reason, attempts, dead_at, "
                    "first_failure_at, last_failure_at, last_status, last_error) "
                    "SELECT id, data, destination, idempotency_key, ordering_key, created_at, "
                    "%s, attempts, %s, first_failure_at, last_failure_at, last_status, "
                    "last_error FROM gone "
                    # A dead letter left by an earlier life of this id must not make every
                    # claim of the message fail.
                    "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, "
                    "reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, "
                    "dead_at = EXCLUDED.dead_at, last_status = EXCLUDED.last_status, "
                    "last_error = EXCLUDED.last_error"
                ),
                (message.id, message.lease_token, reason, now),
            )
            return bool(cursor.rowcount == 1)

        return bool(await self._run(work))

    async def stats(self, *, now: float) -> OutboxStats:
        """Counts of what the store holds at *now*."""
        query = self._sql(
            "SELECT "
            "(SELECT count(*) FROM {s}.resilient_outbox), "
            "(SELECT count(*) FROM {s}.resilient_outbox AS o WHERE next_attempt_at <= %(now)s "
            f" AND (lease_until IS NULL OR lease_until <= %(now)s) AND {_HEAD}), "
            "(SELECT count(*) FROM {s}.resilient_outbox WHERE lease_token IS NOT NULL "
            " AND lease_until > %(now)s), "
            "(SELECT count(*) FROM {s}.resilient_dead_letters), "
            "(SELECT sum(value::bigint) FROM {s}.resilient_meta "
            " WHERE key = 'delivered' OR key LIKE 'delivered:%%'), "
            "(SELECT min(created_at) FROM {s}.resilient_outbox), "
            f"(SELECT min({_CLAIMABLE_AT}) FROM {{s}}.resilient_outbox AS o "
            f" WHERE {_CLAIMABLE_AT} > %(now)s AND {_HEAD})"
        )

        async def work(conn: Any) -> OutboxStats:
            cursor = await conn.execute(query, {"now": now})
            pending, due, leased, dead, delivered, oldest, waiting = await cursor.fetchone()
            return OutboxStats(
                pending=int(pending),
                due=int(due),
                leased=int(leased),
                dead_letters=int(dead),
                delivered=int(delivered or 0),
                oldest_created_at=oldest,
                next_attempt_at=waiting,
            )

        result: OutboxStats = await self._run(work)
        return result

    async def next_due(self) -> float | None:
        """The earliest next attempt time of any pending message."""

        async def work(conn: Any) -> float | None:
            cursor = await conn.execute(
                self._sql(
                    f"SELECT min({_CLAIMABLE_AT}) FROM {{s}}.resilient_outbox AS o WHERE {_HEAD}"
                )
            )
            (value,) = await cursor.fetchone()
            return None if value is None else float(value)

        result: float | None = await self._run(work)
        return result

    async def notifications(self) -> AsyncIterator[None]:
        """Yield whenever a message is enqueued anywhere (``LISTEN``); for waking relays.

        Holds one connection of its own, outside the pool, until the iteration ends.
        """
        import psycopg  # noqa: PLC0415 -- an optional extra

        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(f"LISTEN {_CHANNEL}")
            async for _ in conn.notifies():
                yield

    # Dead letters

    async def dead_letters(
        self, where: DeadLetterFilter, *, limit: int, after: int | None = None
    ) -> list[DeadLetter]:
        """Up to *limit* dead letters matching *where*, oldest first, after seq *after*."""
        clause, params = where_clause(where, "postgres")
        if after is not None:
            clause += " AND seq > %s"
            params.append(after)
        params.append(limit)
        query = self._sql(
            f"SELECT {_DEAD_COLUMNS} FROM {{s}}.resilient_dead_letters WHERE {clause} "
            "ORDER BY seq LIMIT %s"
        )
        return await self._letters(query, params)

    async def _letters(self, query: str, params: Any) -> list[DeadLetter]:
        async def work(conn: Any) -> list[DeadLetter]:
            cursor = await conn.execute(query, params)
            return [dead(row) for row in await cursor.fetchall()]

        result: list[DeadLetter] = await self._run(work)
        return result

    async def dead_letter(self, message_id: str) -> DeadLetter | None:
        """The dead letter of *message_id*, if there is one."""
        query = self._sql(f"SELECT {_DEAD_COLUMNS} FROM {{s}}.resilient_dead_letters WHERE id = %s")
        letters = await self._letters(query, (message_id,))
        return letters[0] if letters else None

    async def count_dead_letters(self, where: DeadLetterFilter) -> int:
        """How many dead letters match *where*."""
        clause, params = where_clause(where, "postgres")
        query = self._sql(f"SELECT count(*) FROM {{s}}.resilient_dead_letters WHERE {clause}")

        async def work(conn: Any) -> int:
            cursor = await conn.execute(query, params)
            (count,) = await cursor.fetchone()
            return int(count)

        return int(await self._run(work))

    async def restore(
        self, ids: Sequence[str], *, now: float, keys: Mapping[str, str] | None = None
    ) -> list[str]:
        """Move the dead letters *ids* back into the outbox, due at *now*."""
        wanted = list(dict.fromkeys(ids))
        new_keys = [None if keys is None else keys.get(i) for i in wanted]
        query = self._sql(
            "WITH back AS (DELETE FROM {s}.resilient_dead_letters AS d "
            "USING unnest(%s::text[], %s::text[]) AS x(id, key) WHERE d.id = x.id "
            "RETURNING d.*, x.key AS new_key) "
            "INSERT INTO {s}.resilient_outbox (id, data, destination, idempotency_key, "
            "ordering_key, created_at, attempts, next_attempt_at) "
            "SELECT id, data, destination, COALESCE(new_key, idempotency_key), ordering_key, "
            "created_at, 0, %s FROM back ORDER BY seq RETURNING id"
        )

        async def work(conn: Any) -> list[str]:
            cursor = await conn.execute(query, (wanted, new_keys, now))
            moved = {row[0] for row in await cursor.fetchall()}
            if self.notify and moved:
                await conn.execute("SELECT pg_notify(%s, '')", (_CHANNEL,))
            return [i for i in wanted if i in moved]

        result: list[str] = await self._run(work)
        return result

    async def purge(self, where: DeadLetterFilter) -> int:
        """Delete the dead letters matching *where*; return how many."""
        clause, params = where_clause(where, "postgres")
        query = self._sql(f"DELETE FROM {{s}}.resilient_dead_letters WHERE {clause}")
        return await self._rowcount(query, params)

    async def trim(self, *, max_count: int | None = None, older_than: float | None = None) -> int:
        """Drop dead letters dead before *older_than* and the oldest beyond *max_count*."""

        async def work(conn: Any) -> int:
            dropped = 0
            if older_than is not None:
                cursor = await conn.execute(
                    self._sql("DELETE FROM {s}.resilient_dead_letters WHERE dead_at < %s"),
                    (older_than,),
                )
                dropped += cursor.rowcount
            if max_count is not None:
                cursor = await conn.execute(
                    self._sql(
                        "DELETE FROM {s}.resilient_dead_letters WHERE seq <= (SELECT seq FROM "
                        "{s}.resilient_dead_letters ORDER BY seq DESC LIMIT 1 OFFSET %s)"
                    ),
                    (max_count,),
                )
                dropped += cursor.rowcount
            return dropped

        return int(await self._run(work))


_NAMES: Final = (
    "id",
    "data",
    "destination",
    "idempotency_key",
    "ordering_key",
    "created_at",
    "next_attempt_at",
)
_INSERT: Final = (
    f"INSERT INTO {{s}}.resilient_outbox ({', '.join(_NAMES)}) "
    f"VALUES ({', '.join(['%s'] * len(_NAMES))})"
)
_INSERT_NAMED: Final = (
    f"INSERT INTO {{s}}.resilient_outbox ({', '.join(_NAMES)}) "
    f"VALUES ({', '.join(':' + n for n in _NAMES)})"
)
_INSERT_DOLLAR: Final = (
    f"INSERT INTO {{s}}.resilient_outbox ({', '.join(_NAMES)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_NAMES) + 1))})"
)


def _row(m: NewMessage) -> tuple[Any, ...]:
    return (
        m.id,
        m.data,
        m.destination,
        m.idempotency_key,
        m.ordering_key,
        m.created_at,
        m.next_attempt_at,
    )


_NOTIFY: Final = f"SELECT pg_notify('{_CHANNEL}', '')"


async def _write_psycopg_async(conn: Any, schema: str, rows: list[Any], notify: bool) -> None:  # noqa: FBT001
    async with conn.cursor() as cursor:
        await cursor.executemany(_INSERT.replace("{s}", schema), rows)
    if notify:
        await conn.execute(_NOTIFY)


async def _write_psycopg_sync(conn: Any, schema: str, rows: list[Any], notify: bool) -> None:  # noqa: FBT001
    with conn.cursor() as cursor:
        cursor.executemany(_INSERT.replace("{s}", schema), rows)
    if notify:
        conn.execute(_NOTIFY)


async def _write_sqlalchemy(conn: Any, schema: str, rows: list[Any], notify: bool) -> None:  # noqa: FBT001
    from sqlalchemy import text  # noqa: PLC0415 -- only for SQLAlchemy callers

    params = [dict(zip(_NAMES, row, strict=True)) for row in rows]
    statements: list[tuple[Any, Any]] = [(text(_INSERT_NAMED.replace("{s}", schema)), params)]
    if notify:
        statements.append((text(_NOTIFY), None))
    for statement, values in statements:
        result = conn.execute(statement, values)
        if hasattr(result, "__await__"):  # AsyncSession / AsyncConnection
            await result


async def _write_asyncpg(conn: Any, schema: str, rows: list[Any], notify: bool) -> None:  # noqa: FBT001
    await conn.executemany(_INSERT_DOLLAR.replace("{s}", schema), rows)
    if notify:
        await conn.execute(_NOTIFY)


_WRITERS: Final[dict[str, Callable[[Any, str, list[Any], bool], Awaitable[None]]]] = {
    "psycopg-async": _write_psycopg_async,
    "psycopg-sync": _write_psycopg_sync,
    "sqlalchemy-async": _write_sqlalchemy,
    "sqlalchemy-sync": _write_sqlalchemy,
    "asyncpg": _write_asyncpg,
}


def _connection_kind(connection: Any) -> str | None:
    """Which driver a caller's connection belongs to, without importing any of them."""
    for cls in type(connection).__mro__:
        module, name = cls.__module__, cls.__name__
        if module.startswith("psycopg"):
            if name == "AsyncConnection":
                return "psycopg-async"
            if name == "Connection":
                return "psycopg-sync"
        if module.startswith("sqlalchemy"):
            if name in ("AsyncSession", "AsyncConnection"):
                return "sqlalchemy-async"
            if name in ("Session", "Connection"):
                return "sqlalchemy-sync"
        if module.startswith("asyncpg") and name == "Connection":
            return "asyncpg"
    return None
