"""How the commands print: rich tables for people, JSON for programs, progress on stderr.

Rich is imported here, inside the functions, so ``resilient --help`` does not
pay for it. Everything a store returns is printed as plain text (never as rich
markup): a destination or an error text may contain ``[brackets]``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

import click
import structlog

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from rich.console import Console

__all__ = [
    "NONE",
    "console",
    "format_duration",
    "format_time",
    "library_logs_to_stderr",
    "plural",
    "print_json",
    "progress",
    "truncate",
]

NONE: Final = "-"
"""What a table shows for a value that is not there."""

_DURATION_UNITS: Final = (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1))


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr) that prints data as it is: no markup guessing.

    Made per command, not at import: it must write to the streams in place when
    the command runs (a test runner swaps them).
    """
    from rich.console import Console  # noqa: PLC0415 -- rich only when printing

    return Console(stderr=stderr, highlight=False, emoji=False, markup=False)


def print_json(data: Any) -> None:
    """Print *data* as indented JSON on stdout (through click, so nothing is styled)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def format_time(epoch: float | None) -> str:
    """*epoch* as ISO 8601 in UTC, to the second: what ``--since`` and ``--until`` accept."""
    if epoch is None:
        return NONE
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(seconds: float | None) -> str:
    """*seconds* as its two largest units, such as ``"2h 5m"`` or ``"42s"``."""
    if seconds is None:
        return NONE
    sign = "-" if seconds < 0 else ""
    left = round(abs(seconds))
    parts: list[str] = []
    for unit, size in _DURATION_UNITS:
        if left >= size or (unit == "s" and not parts):
            amount, left = divmod(left, size)
            parts.append(f"{amount}{unit}")
        if len(parts) == 2:  # noqa: PLR2004 -- "2h 5m" says enough; seconds would be noise
            break
    return sign + " ".join(parts)


def truncate(text: str | None, width: int) -> str:
    """*text* on one line, cut to *width* characters with an ellipsis."""
    if not text:
        return NONE
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def plural(count: int, noun: str) -> str:
    """``"1 dead letter"``, ``"3 dead letters"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@contextlib.contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr, or ``None`` when stderr is not a terminal.

    Yields ``update(completed, total)``. Without a terminal there is nothing
    to animate, and the command's final line says how much was done.
    """
    err = console(stderr=True)
    if not err.is_terminal:
        yield None
        return
    from rich.progress import (  # noqa: PLC0415 -- rich only when printing
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def update(completed: int, new_total: int) -> None:
            bar.update(task, completed=completed, total=new_total)

        yield update


class _StderrNow:
    """Writes to whatever ``sys.stderr`` is at the time (rich's progress bar swaps it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def library_logs_to_stderr(level: int = logging.WARNING) -> Iterator[None]:
    """Send the library's logs to stderr, *level* and above, unless the app configured them.

    structlog prints to stdout by default, which would mix log lines into a
    command's output. An application loaded with ``--app`` that configured
    structlog keeps its own configuration.
    """
    if structlog.is_configured():
        yield
        return
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(_StderrNow()),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )
    try:
        yield
    finally:
        structlog.reset_defaults()
