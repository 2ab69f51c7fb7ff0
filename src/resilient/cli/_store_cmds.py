"""``resilient store init``: create or migrate a store's schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..http._redact import Redaction
from ..stores import SQLiteStore
from ._exit import EXIT_CODES_HELP
from ._output import print_json
from ._store import resolve_store, run_with_store, store_option

if TYPE_CHECKING:
    from ..stores import Store

__all__ = ["store"]


@click.group(no_args_is_help=False, epilog=EXIT_CODES_HELP)
def store() -> None:
    """Manage a store's schema."""


@store.command("init", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@store_option
def init_command(*, store_url: str | None, as_json: bool) -> None:
    """Create the store's tables, or migrate them to this release's schema.

    Safe to run again, and from several hosts at once: migrations are versioned,
    applied in order, and each runs once.
    """
    target = resolve_store(store_url, must_exist=False)  # init is what creates a file
    created = isinstance(target, SQLiteStore) and not Path(target.path).is_file()

    async def init(opened: Store) -> int | None:
        # Opening created or migrated the schema; memory stores have none.
        version = getattr(opened, "schema_version", None)
        return None if version is None else int(await version())

    version = run_with_store(target, init)
    where = Redaction().redact_url(store_url or "")
    if as_json:
        print_json({"store": where, "schema_version": version, "created": created})
        return
    click.echo(f"store {where}: schema version {version}{' (created)' if created else ''}")
