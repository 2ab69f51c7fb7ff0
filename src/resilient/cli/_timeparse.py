"""Times on the command line: ISO 8601 instants, or durations meaning "that long ago".

``--since 2h`` reads better than an epoch, and ``--since 2026-11-20T10:00:00Z``
is what the listings print, so either form goes wherever a TIME does.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Final, TypeVar

import click

if TYPE_CHECKING:
    from collections.abc import Callable

F = TypeVar("F", bound="Callable[..., object]")

__all__ = ["parse_time", "time_option"]

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DURATION: Final = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")


def parse_time(text: str, *, now: float) -> float:
    """The instant *text* names, in seconds since the epoch.

    - a duration such as ``"90s"``, ``"30m"``, ``"2h"``, ``"7d"``, ``"1w"`` or
      ``"1h30m"`` (optionally followed by ``"ago"``): that long before *now*;
    - ``"now"``: *now*;
    - an ISO 8601 date or date and time, such as ``"2026-11-20"`` or
      ``"2026-11-20T10:00:00Z"``; without an offset it is local time.

    Raises:
        ValueError: If *text* is none of these; the message shows the forms.

    """
    cleaned = text.strip().lower().removesuffix("ago").strip()
    if cleaned == "now":
        return now
    if _DURATION.fullmatch(cleaned):
        return now - sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(cleaned))
    iso = text.strip()
    # Python before 3.11 does not read a "Z" offset; it is UTC.
    if iso[-1:] in ("Z", "z"):
        iso = iso[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        msg = (
            f"{text!r} is not a time: use ISO 8601 (2026-11-20T10:00:00Z, 2026-11-20) "
            "or a duration ago (90s, 30m, 2h, 7d, 1w)"
        )
        raise ValueError(msg) from None


def time_option(*names: str, help: str) -> Callable[[F], F]:  # noqa: A002 -- click's name
    """A click option that takes a TIME and gives the command epoch seconds (or ``None``)."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
        if value is None:
            return None
        try:
            return parse_time(value, now=time.time())
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return click.option(*names, metavar="TIME", callback=convert, help=help)
