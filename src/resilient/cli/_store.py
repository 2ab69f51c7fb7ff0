"""The ``--store`` option, and running a command's work against the store it names.

Every store failure ends the command with exit code 4 and one line saying
what went wrong: an operator needs to know the file is locked or too new, not
where in our code the exception was raised.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

import anyio
import click

from ..http._redact import Redaction
from ..stores import SchemaVersionError, SQLiteStore, open_store
from ._exit import StoreError

if sys.version_info < (3, 11):  # pragma: no cover -- a builtin from 3.11
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..stores import Store

__all__ = ["STORE_ENV", "resolve_store", "run_with_store", "store_option"]

T = TypeVar("T")
F = TypeVar("F", bound="Callable[..., object]")

STORE_ENV: Final = "RESILIENT_STORE"
"""The environment variable that names the store when ``--store`` is not given."""

_STORE_FAILURES: Final = (SchemaVersionError, sqlite3.Error, OSError)

_DRIVERS: Final = frozenset({"psycopg", "psycopg_pool"})
"""Packages whose exceptions are store failures wherever they are raised."""


def store_option(fn: F) -> F:
    """Add ``--store URL`` (default: ``$RESILIENT_STORE``) to a command."""
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        envvar=STORE_ENV,
        show_envvar=True,
        help="The store: sqlite:///relative.db, sqlite:////absolute.db, a file path, memory://.",
    )(fn)


def resolve_store(url: str | None, *, must_exist: bool = True) -> Store:
    """The store *url* names, checked before anything touches it.

    Raises:
        click.UsageError: If no store is given, or the URL is not a store URL (exit 2).
        StoreError: If a SQLite file does not exist (exit 4): opening it would
            create an empty store and report that it holds nothing.

    """
    if not url:
        msg = f"no store given: pass --store URL (such as sqlite:///app.db) or set {STORE_ENV}"
        raise click.UsageError(msg)
    try:
        store = open_store(url)
    except ValueError as exc:
        # The message quotes the URL, which may carry a database password.
        text = str(exc).replace(url, Redaction().redact_url(url))
        raise click.BadParameter(text, param_hint="'--store'") from None
    if must_exist and isinstance(store, SQLiteStore) and not Path(store.path).is_file():
        msg = f"cannot open store {url}: no such file {store.path!r}"
        raise StoreError(msg)
    return store


def run_with_store(store: Store, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open *store*, run ``work(store)`` on a new event loop, close the store.

    Raises:
        StoreError: If the store fails (cannot open, schema too new, SQLite errors).

    """

    async def session() -> T:
        try:
            try:
                await store.open()
            except Exception as exc:
                # Whatever the store's driver raises, the store cannot be used (a
                # missing PostgreSQL extra, a refused connection): exit 4, one line.
                raise _OpenError(exc) from exc
            return await work(store)
        finally:
            with anyio.CancelScope(shield=True):
                await store.close()

    try:
        return anyio.run(session)
    except BaseException as exc:
        failure = _store_failure(exc)
        if failure is None:
            raise
        text = " ".join(str(failure).split()) or type(failure).__name__
        msg = f"store {_name(store)}: {text}"
        raise StoreError(msg) from None


class _OpenError(Exception):
    """The store's ``open`` failed with the exception it carries."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(cause)
        self.cause = cause


def _store_failure(exc: BaseException) -> BaseException | None:
    """The store failure *exc* is, or holds (a task group wraps what its tasks raise)."""
    if isinstance(exc, _OpenError):
        return exc.cause
    if isinstance(exc, _STORE_FAILURES) or _from_driver(exc):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _store_failure(inner)
            if found is not None:
                return found
    return None


def _from_driver(exc: BaseException) -> bool:
    """Whether *exc* is an error of the PostgreSQL driver (not imported: it is optional)."""
    return any(cls.__module__.split(".")[0] in _DRIVERS for cls in type(exc).__mro__)


def _name(store: Store) -> str:
    path = getattr(store, "path", None)
    return repr(path) if isinstance(path, str) else type(store).__name__
