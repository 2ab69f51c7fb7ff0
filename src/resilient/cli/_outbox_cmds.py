"""``resilient outbox``: what the outbox holds, and delivering all of it now."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio
import click

from ..delivery import Outbox, RelayStatistics
from ._exit import EXIT_CODES_HELP, FAILURE
from ._output import (
    console,
    format_duration,
    format_time,
    library_logs_to_stderr,
    plural,
    print_json,
    progress,
)
from ._store import resolve_store, run_with_store, store_option
from ._userapp import load_outbox

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..delivery import Relay
    from ..stores import OutboxStats, Store

__all__ = ["outbox"]

_POLL: Final = 0.25
"""Seconds between progress updates while draining."""


@click.group(no_args_is_help=False, epilog=EXIT_CODES_HELP)
def outbox() -> None:
    """See what the outbox holds, and deliver it."""


@outbox.command("stats", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@store_option
def stats_command(*, store_url: str | None, as_json: bool) -> None:
    """Show pending, due, leased, dead-lettered and delivered messages."""
    store = resolve_store(store_url)
    stats = run_with_store(store, lambda s: Outbox(s).stats())
    now = time.time()
    age = None if stats.oldest_created_at is None else now - stats.oldest_created_at
    wait = None if stats.next_attempt_at is None else stats.next_attempt_at - now
    if as_json:
        print_json(
            {
                "pending": stats.pending,
                "due": stats.due,
                "leased": stats.leased,
                "dead_letters": stats.dead_letters,
                "delivered": stats.delivered,
                "oldest_created_at": stats.oldest_created_at,
                "oldest_pending_age": age,
                "next_attempt_at": stats.next_attempt_at,
                "next_attempt_in": wait,
            }
        )
        return
    from rich.table import Table  # noqa: PLC0415 -- rich only when printing

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right")
    table.add_column()
    table.add_row("pending", str(stats.pending), "in the outbox: due, waiting or being delivered")
    table.add_row("due", str(stats.due), "may be delivered now")
    table.add_row("leased", str(stats.leased), "being delivered by a relay")
    table.add_row("dead letters", str(stats.dead_letters), "see: resilient dlq list")
    table.add_row("delivered", str(stats.delivered), "since the store was created")
    table.add_row(
        "oldest pending",
        format_duration(age),
        "" if age is None else f"enqueued {format_time(stats.oldest_created_at)}",
    )
    table.add_row(
        "next attempt",
        format_duration(wait),
        "" if wait is None else f"at {format_time(stats.next_attempt_at)}",
    )
    console().print(table)


@dataclass(frozen=True)
class _Drained:
    empty: bool
    before: OutboxStats
    after: OutboxStats
    relay: RelayStatistics


@outbox.command("drain", epilog=EXIT_CODES_HELP)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Give up (exit 1) if the outbox is not empty by then (default: no limit).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    metavar="N",
    help="Concurrent delivery loops.",
)
@click.option(
    "--app",
    metavar="MODULE:ATTR",
    help="Your Outbox object (such as myapp.tasks:outbox): its store, handlers and client.",
)
@store_option
@click.pass_context
def drain_command(
    ctx: click.Context,
    *,
    store_url: str | None,
    timeout: float | None,
    workers: int,
    app: str | None,
) -> None:
    """Deliver until the outbox is empty: every message delivered or dead-lettered.

    Runs a relay in this process. HTTP messages go through an httpx client
    with resilient.http.Transport(); with --app, through your outbox's client,
    and handler messages to its handlers. Without --app, messages for handlers
    have no handler here and become dead letters (reason unknown-handler).
    Messages waiting to be redelivered are waited for.
    """
    if app is not None:
        if ctx.get_parameter_source("store_url") is click.core.ParameterSource.COMMANDLINE:
            msg = "give --store or --app, not both: the app's outbox names its store"
            raise click.UsageError(msg)
        box = load_outbox(app)
    else:
        box = Outbox(resolve_store(store_url))

    async def work(_store: Store) -> _Drained:
        before = await box.stats()
        if before.pending == 0:
            return _Drained(empty=True, before=before, after=before, relay=RelayStatistics())
        async with box.relay(workers=workers) as relay:
            with progress("delivering", before.pending) as update:
                empty = await _drain(relay, box, before.pending, timeout, update)
            statistics = relay.statistics
        return _Drained(empty=empty, before=before, after=await box.stats(), relay=statistics)

    with library_logs_to_stderr():
        result = run_with_store(box.store, work)
    counts = result.relay
    click.echo(
        f"delivered {plural(counts.delivered, 'message')}, "
        f"dead-lettered {counts.dead_lettered}, redeliveries scheduled {counts.rescheduled}"
    )
    if result.empty:
        click.echo("the outbox is empty")
        return
    waiting = plural(result.after.pending, "message")
    click.echo(f"timed out after {timeout:g} s; {waiting} still pending", err=True)
    ctx.exit(FAILURE)


async def _drain(
    relay: Relay,
    box: Outbox,
    total: int,
    timeout: float | None,  # noqa: ASYNC109 -- a bound on the whole drain, passed on
    update: Callable[[int, int], None] | None,
) -> bool:
    """Wait for *relay* to empty the outbox, moving the progress bar while it does."""
    if update is None:
        return await relay.drain(timeout=timeout)
    empty = False
    async with anyio.create_task_group() as group:

        async def drain_then_stop() -> None:
            nonlocal empty
            empty = await relay.drain(timeout=timeout)
            group.cancel_scope.cancel()

        group.start_soon(drain_then_stop)
        while True:
            pending = (await box.stats()).pending
            # Producers may add messages meanwhile: the bar grows rather than overflow.
            total = max(total, pending)
            update(total - pending, total)
            await anyio.sleep(_POLL)
    return empty
