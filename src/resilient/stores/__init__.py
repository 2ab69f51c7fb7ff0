"""Where durable delivery keeps its messages: outbox and dead-letter stores.

::

    store = resilient.stores.SQLiteStore("resilient.db")   # the embedded default
    store = resilient.stores.PostgresStore("postgresql://app@db/app")   # many hosts
    store = resilient.stores.MemoryStore()                 # tests and demos
    store = resilient.stores.open_store("sqlite:///resilient.db")

Every store implements `OutboxStore` and `DeadLetterStore` (together, `Store`)
and passes the same contract test suite.
"""

from ._memory import MemoryStore as MemoryStore
from ._postgres import PostgresStore as PostgresStore
from ._protocol import (
    DeadLetterStore as DeadLetterStore,
    OutboxStore as OutboxStore,
    Store as Store,
)
from ._records import (
    DeadLetter as DeadLetter,
    DeadLetterFilter as DeadLetterFilter,
    Failure as Failure,
    NewMessage as NewMessage,
    OutboxStats as OutboxStats,
    StoredMessage as StoredMessage,
)
from ._sqlite import (
    SCHEMA_VERSION as SCHEMA_VERSION,
    SchemaVersionError as SchemaVersionError,
    SQLiteStore as SQLiteStore,
)
from ._url import open_store as open_store

__all__ = [
    "SCHEMA_VERSION",
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterStore",
    "Failure",
    "MemoryStore",
    "NewMessage",
    "OutboxStats",
    "OutboxStore",
    "PostgresStore",
    "SQLiteStore",
    "SchemaVersionError",
    "Store",
    "StoredMessage",
    "open_store",
]
