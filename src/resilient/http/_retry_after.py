"""Read the wait a server asks for: ``Retry-After`` and its cousins, never raising.

`parse_server_delay` looks at a response's headers in this order and returns the
first value it can use, as a `ServerDelay`:

=========================  ===================================================
``retry-after-ms``         milliseconds (OpenAI, Azure OpenAI)
``Retry-After``            delta-seconds, or an HTTP-date (RFC 9110 §10.2.3)
``RateLimit-Reset``        delta-seconds (the IETF ``RateLimit`` header draft), or a
                           UNIX time (as some servers send it)
``X-RateLimit-Reset``      delta-seconds, or a UNIX time (GitHub and many more)
=========================  ===================================================

What counts as usable, and why:

- Numbers are ASCII digits with an optional fraction (``"120"``, ``"1.5"``);
  RFC 9110 only allows whole seconds, but servers send fractions and they mean
  what they say. Signs, exponents, ``inf``, ``nan``, underscores, non-ASCII
  digits, other junk and empty values are ignored.
- A well-formed number too big for a float (``"1" + "0" * 1000``) is not junk:
  it is a server saying "not any time soon". Every delay is clamped at
  ``MAX_REQUESTED`` (2**31 s, the bound RFC 9111 §1.2.2 sets for delta-seconds),
  so ``requested`` is always finite and ``now + requested`` never overflows.
- HTTP-dates are accepted in the three formats RFC 9110 §5.6.7 requires a
  recipient to accept: IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), RFC 850
  (``Sunday, 06-Nov-94 08:49:37 GMT``, two-digit years read within 50 years of
  *now*) and asctime (``Sun Nov  6 08:49:37 1994``). Names are matched without
  regard to case and the weekday is not checked against the date; runs of
  spaces or tabs may separate the parts.
- A date (or an ``X-RateLimit-Reset`` UNIX time) in the past is ignored like
  junk: usually it means the clocks disagree, and then the next header (or the
  caller's normal backoff) is a better guide than "retry now".
- ``RateLimit-Reset`` and ``X-RateLimit-Reset`` above ``10**9`` (2001-09-09 as
  a UNIX time, 31 years as a delay) are a UNIX time in seconds; above ``10**12``
  (year 33658 in seconds) a UNIX time in milliseconds, as some APIs send. The
  draft says delta-seconds, but servers (GitLab's, for one) send a UNIX time,
  and no server means a wait of 31 years.
- Duplicates: each header may come as several field lines, or as one line that
  a proxy joined with commas. The values are tried in order and the first
  usable one wins; a later header is read only if no value of an earlier one is
  usable. (An HTTP-date has a comma after its weekday: a weekday is read
  together with the part after it.)
- Surrounding whitespace is ignored.

The parser never raises for anything in the headers. It does not look at the
status code: call it for the responses you would retry (429, 503, ...).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, Literal

from ..policies._validate import check_seconds

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "DELAY_HEADERS",
    "MAX_REQUESTED",
    "DelayHeader",
    "ServerDelay",
    "parse_server_delay",
]

DelayHeader = Literal["retry-after-ms", "retry-after", "ratelimit-reset", "x-ratelimit-reset"]
"""The headers a `ServerDelay` can come from, as lower-case names."""

DELAY_HEADERS: Final[tuple[DelayHeader, ...]] = (
    "retry-after-ms",
    "retry-after",
    "ratelimit-reset",
    "x-ratelimit-reset",
)
"""The headers `parse_server_delay` reads, first to last: the first usable one wins."""

MAX_REQUESTED: Final = float(2**31)
"""The largest delay reported, in seconds (about 68 years): larger requests are clamped."""

_EPOCH_SECONDS: Final = 10**9
"""``X-RateLimit-Reset`` above this is a UNIX time in seconds."""

_EPOCH_MILLISECONDS: Final = 10**12
"""``X-RateLimit-Reset`` above this is a UNIX time in milliseconds."""

_SECONDS_PER_YEAR: Final = 31_556_952
"""The mean Gregorian year: enough to place a two-digit year within 50 years."""

_LONGEST_DATE: Final = 64
"""No HTTP-date is longer; longer candidates skip the date patterns."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerDelay:
    """The wait a server asked for, and which header asked.

    *requested* is the server's own figure: finite, >= 0, and not capped (but
    clamped at 2**31 s). Compare it with *cap* to decide whether waiting
    is worth it; `delay` is the wait to use if it is.
    """

    requested: float
    """Seconds from *now* that the server asked the client to wait."""
    header: DelayHeader
    """The header the delay came from, lower-case."""
    cap: float
    """The longest wait the caller accepts, as passed to `parse_server_delay`."""

    @property
    def delay(self) -> float:
        """The wait to use: *requested*, cut down to *cap*; within ``[0, cap]``."""
        return min(self.requested, self.cap)

    @property
    def exceeds_cap(self) -> bool:
        """True if the server asked for longer than *cap*."""
        return self.requested > self.cap


def parse_server_delay(headers: Any, *, now: float, cap: float) -> ServerDelay | None:
    """Read the delay a response's *headers* ask for, or None if they ask for none.

    The headers, their precedence and what counts as usable are described in
    this module's docstring. None means no header held a usable value (absent,
    junk, or a time in the past): fall back to the normal backoff.

    Args:
        headers: The response's headers: ``httpx.Headers`` or any object with a
            case-insensitive ``get_list(name)``, a mapping, or ``(name, value)``
            pairs. Values may be ``str`` or ``bytes``.
        now: The current UNIX time in seconds, to turn HTTP-dates and UNIX
            times into delays (and to place RFC 850 two-digit years).
        cap: The longest wait, in seconds, the caller accepts; kept on the
            result for `ServerDelay.delay`. It does not filter anything.

    Returns:
        A `ServerDelay`, or None.

    Raises:
        TypeError: If *now* or *cap* is not a number. Header content never
            raises.
        ValueError: If *now* or *cap* is negative, NaN or infinite.

    """
    check_seconds("parse_server_delay", "now", now)
    check_seconds("parse_server_delay", "cap", cap)
    if headers is None:
        return None
    for header, read in _READERS:
        for candidate in _candidates(_field_lines(headers, header)):
            seconds = read(candidate, now)
            if seconds is not None:
                return ServerDelay(requested=min(seconds, MAX_REQUESTED), header=header, cap=cap)
    return None


# Values


_NUMBER: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _number(text: str) -> float | None:
    """A non-negative decimal (maybe inf if enormous), or None if *text* is not one."""
    if _NUMBER.fullmatch(text) is None:
        return None
    return float(text)  # ASCII digits only: never raises, overflows to inf


def _until(at: float, now: float) -> float | None:
    """Seconds from *now* to *at*, or None if *at* is in the past."""
    seconds = at - now
    return seconds if seconds >= 0 else None


def _read_milliseconds(text: str, now: float) -> float | None:  # noqa: ARG001
    value = _number(text)
    return None if value is None else value / 1000


def _read_retry_after(text: str, now: float) -> float | None:
    value = _number(text)
    if value is not None:
        return value
    at = _http_date(text, now)
    return None if at is None else _until(at, now)


def _read_reset(text: str, now: float) -> float | None:
    value = _number(text)
    if value is None or value <= _EPOCH_SECONDS:
        return value
    if value > _EPOCH_MILLISECONDS:
        return _until(value / 1000, now)
    return _until(value, now)


_READERS: Final[tuple[tuple[DelayHeader, Callable[[str, float], float | None]], ...]] = (
    ("retry-after-ms", _read_milliseconds),
    ("retry-after", _read_retry_after),
    ("ratelimit-reset", _read_reset),
    ("x-ratelimit-reset", _read_reset),
)


# HTTP-dates (RFC 9110 §5.6.7)

_MONTHS: Final = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_MONTH: Final = f"({'|'.join(_MONTHS)})"
_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES: Final = frozenset(_DAYS + _WEEKDAYS)
_DAY: Final = f"(?:{'|'.join(_DAYS)})"
_WEEKDAY: Final = f"(?:{'|'.join(_WEEKDAYS)})"
_TIME: Final = "([0-9]{2}):([0-9]{2}):([0-9]{2})"
_SP: Final = "[ \t]+"
_COMMA: Final = "[ \t]*,[ \t]*"
_FLAGS: Final = re.ASCII | re.IGNORECASE

# Each captures (day, month, year, hour, minute, second), in some order.
_IMF_FIXDATE: Final = re.compile(
    f"{_DAY}{_COMMA}([0-9]{{1,2}}){_SP}{_MONTH}{_SP}([0-9]{{4}}){_SP}{_TIME}{_SP}GMT", _FLAGS
)
_RFC850_DATE: Final = re.compile(
    f"(?:{_WEEKDAY}|{_DAY}){_COMMA}([0-9]{{1,2}})-{_MONTH}-([0-9]{{2}}){_SP}{_TIME}{_SP}GMT", _FLAGS
)
_ASCTIME_DATE: Final = re.compile(
    f"{_DAY}{_SP}{_MONTH}{_SP}([0-9]{{1,2}}){_SP}{_TIME}{_SP}([0-9]{{4}})", _FLAGS
)


def _http_date(text: str, now: float) -> float | None:
    """The UNIX time of an HTTP-date in any of the three formats, or None."""
    if len(text) > _LONGEST_DATE:
        return None
    if match := _IMF_FIXDATE.fullmatch(text):
        day, month, year, *clock = match.groups()
        return _timestamp(int(year), month, day, clock)
    if match := _RFC850_DATE.fullmatch(text):
        day, month, year, *clock = match.groups()
        return _timestamp(_full_year(int(year), now), month, day, clock)
    if match := _ASCTIME_DATE.fullmatch(text):
        month, day, *clock, year = match.groups()
        return _timestamp(int(year), month, day, clock)
    return None


def _full_year(two_digits: int, now: float) -> int:
    """The year ending in *two_digits* that is at most 50 years after *now* (RFC 9110 §5.6.7)."""
    this_year = 1970 + math.floor(now / _SECONDS_PER_YEAR)
    year = this_year - this_year % 100 + two_digits
    if year > this_year + 50:
        year -= 100
    elif year <= this_year - 50:
        year += 100
    return year


def _timestamp(year: int, month: str, day: str, clock: list[str]) -> float | None:
    """The UNIX time of a UTC calendar time (*clock* is hour, minute, second), or None."""
    hour, minute, second = map(int, clock)
    leap = second == 60  # noqa: PLR2004  (RFC 9110 allows a leap second)
    try:
        moment = datetime(
            year,
            _MONTHS.index(month.lower()) + 1,
            int(day),
            hour,
            minute,
            59 if leap else second,
            tzinfo=timezone.utc,
        )
    except (ValueError, OverflowError):  # day 31 of a 30-day month, hour 24, year 0, 10**20, ...
        return None
    return moment.timestamp() + leap


# Reading the headers


def _candidates(lines: list[str]) -> Iterator[str]:
    """Each value of each field line, in order, for lines that may be comma-joined.

    Each comma-separated part is a value, except that a weekday is joined to
    the part after it, so an HTTP-date (which has a comma after the weekday) is
    found whole. Empty parts are skipped.
    """
    for line in lines:
        parts = line.split(",")
        for i, part in enumerate(parts):
            value = part.strip()
            if value.lower() in _DAY_NAMES and i + 1 < len(parts):
                yield f"{value},{parts[i + 1]}".strip()
            elif value:
                yield value


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")  # any byte decodes; digits and dates are ASCII
    return None


def _field_lines(headers: Any, name: str) -> list[str]:
    """The values of every field line named *name* (case-insensitively), in order."""
    get_list = getattr(headers, "get_list", None)
    if callable(get_list):  # httpx.Headers and look-alikes: case-insensitive already
        values = get_list(name)
    else:
        items = getattr(headers, "items", None)
        pairs = items() if callable(items) else headers
        values = []
        for pair in pairs:
            if isinstance(pair, tuple) and len(pair) == 2:  # noqa: PLR2004
                key = _text(pair[0])
                if key is not None and key.lower() == name:
                    values.append(pair[1])
    return [text for value in values if (text := _text(value)) is not None]
