"""parse_server_delay: each header and format, precedence, dates, duplicates, junk, properties."""

from __future__ import annotations

import math
import time
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from hypothesis import given, strategies as st

from resilient.http._retry_after import (
    DELAY_HEADERS,
    MAX_REQUESTED,
    ServerDelay,
    _full_year,
    parse_server_delay,
)

NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
CAP = 60.0


def parse(*pairs: tuple[str, str], now: float = NOW, cap: float = CAP) -> ServerDelay | None:
    """Parse headers built by httpx from UTF-8 bytes (so non-ASCII values are allowed)."""
    headers = httpx.Headers([(name.encode(), value.encode()) for name, value in pairs])
    return parse_server_delay(headers, now=now, cap=cap)


def imf(at: float) -> str:
    """*at* as an IMF-fixdate."""
    return formatdate(at, usegmt=True)


# Formats

DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


@pytest.mark.parametrize(
    ("name", "value", "requested"),
    [
        ("retry-after-ms", "1500", 1.5),
        ("retry-after-ms", "0", 0.0),
        ("retry-after-ms", "250.5", 0.2505),
        ("Retry-After", "120", 120.0),
        ("Retry-After", "0", 0.0),
        ("Retry-After", "1.5", 1.5),
        ("Retry-After", "  7\t", 7.0),
        ("Retry-After", "007", 7.0),
        ("RateLimit-Reset", "30", 30.0),
        ("X-RateLimit-Reset", "30", 30.0),
        ("X-RateLimit-Reset", "1000000000", 1e9),  # the threshold itself is still a delay
    ],
)
def test_delays_in_each_header(name: str, value: str, requested: float) -> None:
    result = parse((name, value))
    assert result is not None
    assert result.requested == pytest.approx(requested)
    assert result.header == name.lower()
    assert result.cap == CAP


@pytest.mark.parametrize(
    "value",
    [
        "Tue, 14 Nov 2023 22:13:50 GMT",  # IMF-fixdate
        "Tuesday, 14-Nov-23 22:13:50 GMT",  # RFC 850
        "Tue Nov 14 22:13:50 2023",  # asctime
        "tue, 14 nov 2023 22:13:50 gmt",  # names in any case
        "Tue,  14  Nov  2023  22:13:50   GMT",  # runs of spaces
        "Tue, 14 Nov 2023 22:13:50 GMT ",  # trailing whitespace
        "Wed, 14 Nov 2023 22:13:50 GMT",  # a wrong weekday is not checked
    ],
)
def test_the_three_http_date_formats(value: str) -> None:
    result = parse(("Retry-After", value))
    assert result == ServerDelay(requested=30.0, header="retry-after", cap=CAP)


def test_asctime_pads_single_digit_days_with_a_space() -> None:
    now = 1_699_228_000.0  # Sun, 05 Nov 2023 23:46:40 GMT
    result = parse(("Retry-After", "Mon Nov  6 00:00:00 2023"), now=now)
    assert result is not None
    assert result.requested == 1_699_228_800 - now


def test_imf_fixdate_round_trips() -> None:
    result = parse(("Retry-After", imf(NOW + 3600)))
    assert result is not None
    assert result.requested == 3600


def test_a_leap_second_is_the_next_second() -> None:
    result = parse(("Retry-After", "Tue, 14 Nov 2023 23:59:60 GMT"))
    assert result is not None
    assert result.requested == 1_700_006_400 - NOW  # Wed, 15 Nov 2023 00:00:00 GMT


def test_a_date_right_now_is_zero() -> None:
    result = parse(("Retry-After", imf(NOW)))
    assert result is not None
    assert result.requested == 0


@pytest.mark.parametrize(
    "value",
    [
        imf(NOW - 1),
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ],
)
def test_a_date_in_the_past_is_ignored(value: str) -> None:
    """The clocks disagree: fall back to the normal backoff rather than retry at once."""
    assert parse(("Retry-After", value)) is None


@pytest.mark.parametrize(
    "value",
    [
        "Thu, 30 Feb 2023 22:13:50 GMT",  # no such day
        "Tue, 14 Nov 2023 24:00:00 GMT",  # no such hour
        "Tue, 14 Nov 2023 22:61:00 GMT",
        "Tue, 14 Nov 2023 22:13:50 UTC",  # HTTP-dates are GMT
        "Tue, 14 Nov 2023 22:13:50 +0000",
        "Tue, 14 Nov 2023 22:13:50",
        "14 Nov 2023 22:13:50 GMT",  # no weekday
        "Tue, 14 Foo 2023 22:13:50 GMT",
        "Tue, 14 Nov 23 22:13:50 GMT",  # a two-digit year in IMF-fixdate
        "Tuesday, 14-Nov-2023 22:13:50 GMT",  # a four-digit year in RFC 850
        "Tue, 14 Nov 0000 22:13:50 GMT",  # year 0 does not exist
        "2023-11-14T22:13:50Z",  # ISO 8601 is not an HTTP-date
    ],
)
def test_malformed_dates_are_ignored(value: str) -> None:
    assert parse(("Retry-After", value)) is None


@pytest.mark.parametrize(
    ("two_digits", "year"),
    [(23, 2023), (24, 2024), (73, 2073), (74, 1974), (94, 1994), (0, 2000)],
)
def test_rfc850_years_lie_within_50_years_of_now(two_digits: int, year: int) -> None:
    """RFC 9110 §5.6.7: more than 50 years ahead means the most recent such year past."""
    assert _full_year(two_digits, NOW) == year


def test_rfc850_two_digit_year_in_the_near_future() -> None:
    result = parse(("Retry-After", "Thursday, 14-Nov-24 22:13:20 GMT"))
    assert result is not None
    assert result.requested == 366 * 86400  # 2024 is a leap year


# RateLimit-Reset, X-RateLimit-Reset and UNIX times

RESET_HEADERS = ["X-RateLimit-Reset", "RateLimit-Reset"]


@pytest.mark.parametrize("name", RESET_HEADERS)
@pytest.mark.parametrize(
    ("value", "requested"),
    [
        (str(int(NOW) + 45), 45.0),  # a UNIX time in seconds
        (f"{NOW + 45.25:.3f}", 45.25),  # ... with a fraction, as Discord sends
        (str(int(NOW + 45) * 1000), 45.0),  # a UNIX time in milliseconds
        ("45", 45.0),  # a delay
    ],
)
def test_reset_headers_read_unix_times(name: str, value: str, requested: float) -> None:
    # The draft says RateLimit-Reset is delta-seconds; GitLab, for one, sends a UNIX
    # time there, and no server means a wait of 31 years or more.
    result = parse((name, value))
    assert result is not None
    assert result.requested == pytest.approx(requested)
    assert result.header == name.lower()


@pytest.mark.parametrize("name", RESET_HEADERS)
@pytest.mark.parametrize("value", [str(int(NOW) - 1), str(int(NOW - 1) * 1000)])
def test_reset_headers_in_the_past_are_ignored(name: str, value: str) -> None:
    assert parse((name, value)) is None


def test_a_huge_now_does_not_make_a_two_digit_year_overflow() -> None:
    # RFC 850 years are read within 50 years of now; a now in nanoseconds (a caller's
    # slip) puts that past any calendar: no date, not an OverflowError.
    result = parse_server_delay(
        {"Retry-After": "Sunday, 06-Nov-94 08:49:37 GMT"}, now=float(time.time_ns()), cap=CAP
    )
    assert result is None


# Precedence

ALL = [
    ("X-RateLimit-Reset", "40"),
    ("RateLimit-Reset", "30"),
    ("Retry-After", "20"),
    ("retry-after-ms", "10000"),
]


@pytest.mark.parametrize(
    ("present", "header", "requested"),
    [
        (ALL, "retry-after-ms", 10.0),
        (ALL[:3], "retry-after", 20.0),
        (ALL[:2], "ratelimit-reset", 30.0),
        (ALL[:1], "x-ratelimit-reset", 40.0),
    ],
)
def test_headers_are_read_in_order_of_precedence(
    present: list[tuple[str, str]], header: str, requested: float
) -> None:
    result = parse(*present)
    assert result is not None
    assert (result.header, result.requested) == (header, requested)


@pytest.mark.parametrize(
    "unusable", ["junk", "-5", "", imf(NOW - 60), "Sun, 06 Nov 1994 08:49:37 GMT"]
)
def test_an_unusable_value_falls_through_to_the_next_header(unusable: str) -> None:
    result = parse(("retry-after-ms", "nan"), ("Retry-After", unusable), ("RateLimit-Reset", "30"))
    assert result is not None
    assert (result.header, result.requested) == ("ratelimit-reset", 30.0)


def test_nothing_usable_is_none() -> None:
    assert parse() is None
    assert parse(("Content-Type", "text/plain")) is None
    assert parse(*[(name, "junk") for name in DELAY_HEADERS]) is None


# Duplicates


@pytest.mark.parametrize(
    "lines",
    [
        ["5", "10"],
        ["junk", "5", "10"],
        ["", "5"],
        ["junk, 5, 10"],
        ["5,10"],
        ["-1, 5"],
        [imf(NOW - 60), "5"],
        [f"{imf(NOW - 60)}, 5, 10"],
        ["Sun, 5"],  # a weekday that starts no date does not swallow the next value
    ],
)
def test_the_first_usable_of_several_values_wins(lines: list[str]) -> None:
    result = parse(*[("Retry-After", line) for line in lines])
    assert result is not None
    assert result.requested == 5


def test_a_comma_joined_date_is_found_whole() -> None:
    result = parse(("Retry-After", f"junk, {imf(NOW + 30)}, 5"))
    assert result is not None
    assert result.requested == 30


# Junk and huge numbers

JUNK = [
    "",
    "   ",
    "-1",
    "-0",
    "+5",
    "1e3",
    "1E3",
    "inf",
    "Infinity",
    "nan",
    "NaN",
    "0x10",
    "1_000",
    "1.",
    ".5",
    "1.5.2",
    "5 seconds",
    "five",
    "1e400",
    "\x00",
    "None",
]


@pytest.mark.parametrize("name", DELAY_HEADERS)
@pytest.mark.parametrize("value", JUNK)
def test_junk_is_ignored(name: str, value: str) -> None:
    assert parse((name, value)) is None


@pytest.mark.parametrize("name", DELAY_HEADERS)
def test_non_ascii_digits_are_junk(name: str) -> None:
    """``int("\u0661\u0662")`` is 12 in Python; it is not a number in HTTP."""
    assert parse((name, "\u0661\u0662")) is None  # Arabic-Indic digits
    assert parse((name, "\uff11\uff12")) is None  # fullwidth digits


@pytest.mark.parametrize("name", DELAY_HEADERS)
@pytest.mark.parametrize("value", ["1" + "0" * 1000, "9" * 400, "9" * 400 + ".5", str(10**300)])
def test_huge_numbers_are_clamped_not_raised(name: str, value: str) -> None:
    """A number too big for a float is a server saying "not any time soon"."""
    result = parse((name, value))
    assert result is not None
    assert result.requested == MAX_REQUESTED
    assert result.delay == CAP
    assert result.exceeds_cap


def test_a_huge_but_finite_delay_is_clamped() -> None:
    result = parse(("Retry-After", str(2**40)))
    assert result is not None
    assert result.requested == MAX_REQUESTED


# The result and the cap


@pytest.mark.parametrize(
    ("value", "cap", "delay", "exceeds"),
    [("30", 60.0, 30.0, False), ("60", 60.0, 60.0, False), ("90", 60.0, 60.0, True)],
)
def test_delay_is_capped_and_requested_is_not(
    value: str, cap: float, delay: float, exceeds: bool
) -> None:
    result = parse(("Retry-After", value), cap=cap)
    assert result is not None
    assert result.requested == float(value)
    assert result.delay == delay
    assert result.exceeds_cap is exceeds


def test_a_zero_cap_caps_everything_to_zero() -> None:
    result = parse(("Retry-After", "5"), cap=0.0)
    assert result is not None
    assert (result.delay, result.exceeds_cap) == (0.0, True)


def test_server_delay_is_frozen() -> None:
    result = parse(("Retry-After", "5"))
    assert result is not None
    with pytest.raises(AttributeError):
        result.requested = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "cap", "error"),
    [
        (NOW, -1.0, ValueError),
        (NOW, math.nan, ValueError),
        (NOW, math.inf, ValueError),
        (math.nan, CAP, ValueError),
        (-1.0, CAP, ValueError),
        ("now", CAP, TypeError),
        (NOW, None, TypeError),
    ],
)
def test_bad_now_or_cap_is_a_programming_error(now: Any, cap: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"parse_server_delay: (now|cap) must be"):
        parse_server_delay(httpx.Headers({"Retry-After": "5"}), now=now, cap=cap)


# Shapes of headers


class OtherHeaders:
    """Like httpx2.Headers: the same shape, a different class."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def get_list(self, key: str, split_commas: bool = False) -> list[str]:
        del split_commas  # httpx's signature; the parser never asks for splitting
        return [value for name, value in self._pairs if name.lower() == key.lower()]


@pytest.mark.parametrize(
    "headers",
    [
        httpx.Headers({"retry-after": "5"}),
        httpx.Response(429, headers={"Retry-After": "5"}).headers,
        OtherHeaders([("RETRY-AFTER", "5")]),
        {"Retry-After": "5"},
        {"Retry-After": b"5"},
        [("retry-after", "junk"), (b"Retry-After", b"5")],
    ],
)
def test_any_header_shape_works(headers: Any) -> None:
    result = parse_server_delay(headers, now=NOW, cap=CAP)
    assert result == ServerDelay(requested=5.0, header="retry-after", cap=CAP)


def test_no_headers_is_none() -> None:
    assert parse_server_delay(None, now=NOW, cap=CAP) is None
    assert parse_server_delay({}, now=NOW, cap=CAP) is None
    assert parse_server_delay([("retry-after", 5), ("x",)], now=NOW, cap=CAP) is None


# Properties

near_misses = st.text(alphabet="0123456789.,-+eE infaNGMT:Sun0v \t", max_size=40)
digits = st.text(alphabet="0123456789", min_size=1, max_size=400)
blanks = st.text(alphabet=" \t", max_size=2)
numbers = st.tuples(blanks, digits, st.sampled_from(["", ".5", ".25"]), blanks).map("".join)
dates = st.integers(min_value=0, max_value=2 * 10**9).map(imf)
values = st.one_of(st.text(), near_misses, numbers, dates)
header_values = st.dictionaries(
    st.sampled_from(DELAY_HEADERS), st.lists(values, min_size=1, max_size=4), max_size=4
)
nows = st.floats(min_value=0, max_value=4e9)
caps = st.floats(min_value=0, max_value=1e9)


@given(header_values, nows, caps, st.booleans())
def test_never_raises_and_stays_in_range(
    headers: dict[str, list[str]], now: float, cap: float, joined: bool
) -> None:
    """Whatever the values, however duplicated: None, or a finite delay >= 0, capped in [0, cap]."""
    if joined:
        pairs = [(name.encode(), ", ".join(lines).encode()) for name, lines in headers.items()]
    else:
        pairs = [
            (name.encode(), line.encode()) for name, lines in headers.items() for line in lines
        ]
    result = parse_server_delay(httpx.Headers(pairs), now=now, cap=cap)
    if result is None:
        return
    assert result.header in headers
    assert math.isfinite(result.requested)
    assert 0 <= result.requested <= MAX_REQUESTED
    assert 0 <= result.delay <= cap
    assert result.exceeds_cap is (result.requested > cap)


@given(st.sampled_from(DELAY_HEADERS), st.integers(min_value=0, max_value=10**9), caps)
def test_a_delay_in_seconds_round_trips(name: str, seconds: int, cap: float) -> None:
    result = parse_server_delay(httpx.Headers({name: str(seconds)}), now=NOW, cap=cap)
    assert result is not None
    expected = seconds / 1000 if name == "retry-after-ms" else seconds
    assert result.requested == pytest.approx(expected)
    assert result.delay == min(result.requested, cap)


@given(st.integers(min_value=0, max_value=10**8), nows)
def test_a_future_date_round_trips(seconds: int, now: float) -> None:
    at = math.ceil(now) + seconds
    result = parse_server_delay(httpx.Headers({"Retry-After": imf(at)}), now=now, cap=CAP)
    assert result is not None
    assert result.requested == pytest.approx(at - now)
