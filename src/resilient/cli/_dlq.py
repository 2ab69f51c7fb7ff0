"""``resilient dlq``: list, show, count, replay and purge dead letters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import click

from ..delivery import DeadLetters, DeliveryOptions, describe_letter
from ..stores import DeadLetterFilter
from ..stores._records import REASONS
from ._exit import EXIT_CODES_HELP, FAILURE, NotFoundError
from ._output import (
    NONE,
    console,
    format_time,
    plural,
    print_json,
    progress,
    truncate,
)
from ._store import resolve_store, run_with_store, store_option
from ._timeparse import time_option

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..stores import DeadLetter, Store

__all__ = ["dlq"]

F = TypeVar("F", bound="Callable[..., object]")

_ID_CHUNK: Final = 500
"""Ids per purge statement (SQLite caps the parameters of one statement)."""

_PAGE: Final = 1000
"""Dead letters read per page while collecting what a purge will delete."""

_POLL: Final = 0.25
"""Seconds between progress updates."""

_GAP: Final = 2
"""Spaces between the columns of a listing."""

_MIN_CUT: Final = 12
"""The narrowest a cut column gets: enough to recognise a host or an HTTP status."""


@click.group(no_args_is_help=False, epilog=EXIT_CODES_HELP)
def dlq() -> None:
    """Inspect, replay and purge dead letters: messages the outbox gave up on."""


def _filter_options(fn: F) -> F:
    """The options that select dead letters, shared by list, count, replay and purge."""
    options = (
        click.option(
            "--destination",
            metavar="PREFIX",
            help="Only destinations starting with PREFIX (an origin, a URL, a handler name).",
        ),
        click.option(
            "--reason", type=click.Choice(REASONS), help="Only dead letters with this reason."
        ),
        time_option("--since", help="Only those that died at or after TIME (ISO 8601, or 2h)."),
        time_option("--until", help="Only those that died before TIME."),
    )
    for option in reversed(options):
        fn = option(fn)
    return fn


_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")


@dataclass(frozen=True)
class _Filters:
    """The filter options as given; checked when made."""

    destination: str | None
    reason: str | None
    since: float | None
    until: float | None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            msg = "--since must be before --until"
            raise click.UsageError(msg)

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.destination, self.reason, self.since, self.until))

    def where(self, ids: tuple[str, ...] | None = None) -> DeadLetterFilter:
        return DeadLetterFilter(
            ids=ids,
            destination=self.destination,
            reason=self.reason,
            since=self.since,
            until=self.until,
        )

    def kwargs(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "reason": self.reason,
            "since": self.since,
            "until": self.until,
        }


def _dead_letters(store: Store) -> DeadLetters:
    return DeadLetters(store, DeliveryOptions())


# list


@dlq.command("list", epilog=EXIT_CODES_HELP)
@_filter_options
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    metavar="N",
    help="Dead letters per page.",
)
@click.option(
    "--after",
    type=click.IntRange(min=0),
    metavar="CURSOR",
    help="Start after this cursor (printed under the previous page).",
)
@_json_option
@store_option
def list_command(
    *,
    store_url: str | None,
    destination: str | None,
    reason: str | None,
    since: float | None,
    until: float | None,
    limit: int,
    after: int | None,
    as_json: bool,
) -> None:
    """List dead letters, oldest first, a page at a time."""
    filters = _Filters(destination, reason, since, until)
    store = resolve_store(store_url)

    async def work(store: Store) -> tuple[list[DeadLetter], int | None]:
        page = await _dead_letters(store).list(**filters.kwargs(), limit=limit, after=after)
        return page.letters, page.next_cursor

    letters, cursor = run_with_store(store, work)
    views = [describe_letter(letter) for letter in letters]
    if as_json:
        print_json({"letters": views, "next_cursor": cursor})
        return
    if not views:
        click.echo("no dead letters match")
        return
    _print_list(views, cursor)


def _print_list(views: list[dict[str, Any]], cursor: int | None) -> None:
    from rich.table import Table  # noqa: PLC0415 -- rich only when printing

    rows = [
        (
            view["id"],
            format_time(view["dead_at"]),
            view["reason"],
            str(view["attempts"]),
            view["destination"],
            " ".join(str(p) for p in (view["last_status"], view["last_error"]) if p) or NONE,
        )
        for view in views
    ]
    headings = ("ID", "DEAD AT", "REASON", "ATTEMPTS", "DESTINATION", "LAST FAILURE")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headings)]
    out = console()
    if out.is_terminal:
        # The id, time, reason and attempts are never cut: `show`, `replay` and
        # `purge` take the id. The destination and the failure share what is left.
        room = out.width - sum(widths[:4]) - _GAP * (len(headings) - 1)
        widths[4], widths[5] = _share(room, widths[4], widths[5])
    table = Table(
        box=None, show_edge=False, pad_edge=False, padding=(0, _GAP, 0, 0), header_style="bold"
    )
    for heading, width in zip(headings, widths, strict=True):
        table.add_column(
            heading,
            width=width,
            no_wrap=True,
            overflow="ellipsis",
            justify="right" if heading == "ATTEMPTS" else "left",
        )
    for row in rows:
        table.add_row(*row[:4], truncate(row[4], widths[4]), truncate(row[5], widths[5]))
    # As wide as the rows need: a narrow terminal wraps the line rather than lose the id.
    out.width = max(out.width, sum(widths) + _GAP * len(headings))
    out.print(table)
    if cursor is None:
        out.print(f"{plural(len(views), 'dead letter')}; last page")
    else:
        out.print(f"{plural(len(views), 'dead letter')}; next page: --after {cursor}")


def _share(room: int, first: int, second: int) -> tuple[int, int]:
    """Widths for two columns needing *first* and *second* characters in *room* of them."""
    if first + second <= room:
        return first, second
    half = max(_MIN_CUT, room // 2)
    if first <= half:
        return first, max(_MIN_CUT, room - first)
    if second <= half:
        return max(_MIN_CUT, room - second), second
    return half, max(_MIN_CUT, room - half)


# show


@dlq.command("show", epilog=EXIT_CODES_HELP)
@click.argument("message_id", metavar="ID")
@_json_option
@store_option
def show_command(*, store_url: str | None, message_id: str, as_json: bool) -> None:
    """Show every field of one dead letter, its request redacted."""
    store = resolve_store(store_url)
    letter = run_with_store(store, lambda s: _dead_letters(s).get(message_id))
    if letter is None:
        msg = f"no dead letter has id {message_id!r}"
        raise NotFoundError(msg)
    view = describe_letter(letter)
    if as_json:
        print_json(view)
        return
    _print_letter(view)


def _print_letter(view: dict[str, Any]) -> None:
    from rich.table import Table  # noqa: PLC0415 -- rich only when printing

    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    rows = (
        ("id", view["id"]),
        ("cursor", str(view["seq"])),
        ("reason", view["reason"]),
        ("attempts", str(view["attempts"])),
        ("destination", view["destination"]),
        ("idempotency key", view["idempotency_key"]),
        ("ordering key", view["ordering_key"] or NONE),
        ("created at", format_time(view["created_at"])),
        ("first failure at", format_time(view["first_failure_at"])),
        ("last failure at", format_time(view["last_failure_at"])),
        ("dead at", format_time(view["dead_at"])),
        ("last status", str(view["last_status"] or NONE)),
        ("last error", view["last_error"] or NONE),
    )
    for name, value in rows:
        fields.add_row(name, value)
    out = console()
    out.print(fields)
    out.print()
    if "request" in view:
        request = view["request"]
        out.print("request")
        out.print(f"  {request['method']} {request['url']}")
        for name, value in request["headers"]:
            out.print(f"  {name}: {value}")
        out.print()
        out.print(_body_text(request["body"]))
    elif "handler" in view:
        out.print(f"handler  {view['handler']}")
        out.print("payload")
        out.print(json.dumps(view["payload"], indent=2, ensure_ascii=False))
    else:
        out.print(f"malformed  {view['malformed']}")
        out.print("raw document")
        out.print(view["raw"])


def _body_text(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and set(body) == {"base64"}:
        return f"(binary body, base64) {body['base64']}"
    return json.dumps(body, indent=2, ensure_ascii=False)


# count


@dlq.command("count", epilog=EXIT_CODES_HELP)
@_filter_options
@_json_option
@store_option
def count_command(
    *,
    store_url: str | None,
    destination: str | None,
    reason: str | None,
    since: float | None,
    until: float | None,
    as_json: bool,
) -> None:
    """Count the dead letters that match the filters (all of them without filters)."""
    filters = _Filters(destination, reason, since, until)
    store = resolve_store(store_url)
    count = run_with_store(store, lambda s: _dead_letters(s).count(**filters.kwargs()))
    if as_json:
        print_json({"count": count})
    else:
        click.echo(count)


# replay and purge


def _selection(ids: tuple[str, ...], filters: _Filters, *, everything: bool) -> None:
    """Check that a replay or purge names its dead letters, once."""
    if everything and (ids or filters.given):
        msg = "--all selects every dead letter: leave out IDs and filters"
        raise click.UsageError(msg)
    if not (ids or filters.given or everything):
        msg = (
            "name the dead letters: IDs, a filter (--destination, --reason, --since, "
            "--until), or --all"
        )
        raise click.UsageError(msg)


async def _check_ids(store: Store, ids: tuple[str, ...]) -> None:
    """Refuse to act on ids that are not dead letters, before acting on any (exit 3)."""
    dead = _dead_letters(store)
    missing = [i for i in dict.fromkeys(ids) if await dead.get(i) is None]
    if missing:
        msg = f"no dead letter has id {', '.join(map(repr, missing))}"
        raise NotFoundError(msg)


def _confirm(question: str, *, yes: bool) -> None:
    if not yes and not click.confirm(question, default=False, err=True):
        click.echo("aborted", err=True)
        raise click.exceptions.Exit(FAILURE)


def _selection_options(fn: F) -> F:
    options = (
        click.argument("ids", nargs=-1, metavar="[ID]..."),
        _filter_options,
        click.option("--all", "everything", is_flag=True, help="Every dead letter."),
    )
    for option in reversed(options):
        fn = option(fn)
    return fn


_yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


@dlq.command("replay", epilog=EXIT_CODES_HELP)
@_selection_options
@click.option(
    "--new-keys",
    is_flag=True,
    help="Give the replayed messages new idempotency keys (default: keep theirs).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    metavar="N",
    help="Replay at most N dead letters a second (default: 100).",
)
@_yes_option
@store_option
def replay_command(
    *,
    store_url: str | None,
    ids: tuple[str, ...],
    destination: str | None,
    reason: str | None,
    since: float | None,
    until: float | None,
    everything: bool,
    new_keys: bool,
    rate: float | None,
    yes: bool,
) -> None:
    """Put dead letters back in the outbox, due now, with fresh attempts.

    Name them by ID, by filters, or with --all. Asks first unless --yes.
    """
    filters = _Filters(destination, reason, since, until)
    _selection(ids, filters, everything=everything)
    where = filters.where(ids or None)
    store = resolve_store(store_url)

    async def count(store: Store) -> int:
        await _check_ids(store, ids)
        return await store.count_dead_letters(where)

    total = run_with_store(store, count)
    if total == 0:
        click.echo("no dead letters match; nothing to replay")
        return
    _confirm(f"Replay {plural(total, 'dead letter')}?", yes=yes)

    async def replay(store: Store) -> list[str]:
        dead = _dead_letters(store)
        replayed: list[str] = []

        async def run() -> None:
            replayed.extend(
                await dead.replay(
                    list(ids) or None,
                    **filters.kwargs(),
                    everything=everything,
                    new_keys=new_keys,
                    rate=rate,
                )
            )

        with progress("replaying", total) as update:
            if update is None:
                await run()
                return replayed
            async with anyio.create_task_group() as group:

                async def run_then_stop() -> None:
                    await run()
                    group.cancel_scope.cancel()

                group.start_soon(run_then_stop)
                # The replay moves letters out of the table: what is left says how far it got.
                while True:
                    left = await store.count_dead_letters(where)
                    update(max(0, total - left), total)
                    await anyio.sleep(_POLL)
        return replayed

    replayed = run_with_store(store, replay)
    click.echo(f"replayed {plural(len(replayed), 'dead letter')}")


@dlq.command("purge", epilog=EXIT_CODES_HELP)
@_selection_options
@_yes_option
@store_option
def purge_command(
    *,
    store_url: str | None,
    ids: tuple[str, ...],
    destination: str | None,
    reason: str | None,
    since: float | None,
    until: float | None,
    everything: bool,
    yes: bool,
) -> None:
    """Delete dead letters for good.

    Name them by ID, by filters, or with --all. Shows how many and asks first
    unless --yes. Only the dead letters counted then are deleted, never ones
    that died while the question was on the screen.
    """
    filters = _Filters(destination, reason, since, until)
    _selection(ids, filters, everything=everything)
    store = resolve_store(store_url)

    async def select(store: Store) -> list[str]:
        if ids:
            await _check_ids(store, ids)
            return list(dict.fromkeys(ids))
        dead = _dead_letters(store)
        chosen: list[str] = []
        cursor: int | None = None
        while True:
            page = await dead.list(**filters.kwargs(), limit=_PAGE, after=cursor)
            chosen += [letter.id for letter in page.letters]
            cursor = page.next_cursor
            if cursor is None:
                return chosen

    chosen = run_with_store(store, select)
    if not chosen:
        click.echo("no dead letters match; nothing to purge")
        return
    _confirm(f"Delete {plural(len(chosen), 'dead letter')} for good?", yes=yes)

    async def purge(store: Store) -> int:
        dead = _dead_letters(store)
        purged = 0
        with progress("purging", len(chosen)) as update:
            for start in range(0, len(chosen), _ID_CHUNK):
                purged += await dead.purge(chosen[start : start + _ID_CHUNK])
                if update is not None:
                    update(min(len(chosen), start + _ID_CHUNK), len(chosen))
        return purged

    purged = run_with_store(store, purge)
    click.echo(f"purged {plural(purged, 'dead letter')}")
