"""``resilient store init``: create or migrate a store's schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..http._redact import Redaction
from ..stores import SQLiteStore, open_store
from ._exit import EXIT_CODES_HELP
from ._output import print_json
from ._store import run_with_store, store_option

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
    if not store_url:
        msg = "no store given: pass --store URL (such as sqlite:///app.db) or set RESILIENT_STORE"
        raise click.UsageError(msg)
    try:
        target = open_store(store_url)
    except ValueError as exc:
        text = str(exc).replace(store_url, Redaction().redact_url(store_url))
        raise click.BadParameter(text, param_hint="'--store'") from None
    created = isinstance(target, SQLiteStore) and not Path(target.path).is_file()

    async def init(opened: Store) -> int | None:
        # Opening created or migrated the schema; memory stores have none.
        version = getattr(opened, "schema_version", None)
        return None if version is None else int(await version())

    version = run_with_store(target, init)
    where = Redaction().redact_url(store_url)
    if as_json:
        print_json({"store": where, "schema_version": version, "created": created})
        return
    click.echo(f"store {where}: schema version {version}{' (created)' if created else ''}")
