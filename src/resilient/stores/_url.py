"""`open_store`: a store from a URL, as the CLI and configuration files name them."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ._memory import MemoryStore
from ._postgres import PostgresStore
from ._sqlite import SQLiteStore

if TYPE_CHECKING:
    from ._protocol import Store

__all__ = ["open_store"]


def open_store(url: str) -> Store:
    """The store a URL names (not yet opened).

    - ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (as in
      SQLAlchemy), or a bare file path: a `SQLiteStore`;
    - ``postgresql://user@host/db`` (also ``postgres://`` and SQLAlchemy's
      ``postgresql+psycopg://``): a `PostgresStore` (the ``postgres`` extra);
      ``?schema=name`` chooses its schema (default ``public``);
    - ``memory://``: a new, empty `MemoryStore`.

    Raises:
        ValueError: If the URL's scheme is not one of these, naming the ones that are.

    """
    candidate: object = url
    if not isinstance(candidate, str) or not candidate:
        msg = f"open_store: url must be a store URL such as 'sqlite:///resilient.db', got {url!r}"
        raise ValueError(msg)
    if "://" not in url:
        return SQLiteStore(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = unquote(url.split("://", 1)[1])
        path = path.removeprefix(
            "/"
        )  # sqlite:///x.db is "x.db"; sqlite:////tmp/x.db is "/tmp/x.db"
        return SQLiteStore(path)
    if scheme == "memory":
        return MemoryStore()
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        # SQLAlchemy-style "postgresql+psycopg://" names the driver; psycopg takes plain
        # URLs. "schema" is ours, not libpq's: it names the store's schema.
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = [value for name, value in query if name == "schema"]
        rest = urlencode([(name, value) for name, value in query if name != "schema"])
        plain = urlunsplit(("postgresql", parts.netloc, parts.path, rest, parts.fragment))
        return PostgresStore(plain, schema=schema[-1]) if schema else PostgresStore(plain)
    msg = (
        f"open_store: unsupported store URL scheme {parts.scheme!r}; "
        "use sqlite:///path, postgresql://... or memory://"
    )
    raise ValueError(msg)
