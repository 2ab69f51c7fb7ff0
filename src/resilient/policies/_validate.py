"""Checks that option classes share, so every message names the field, value and range."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["check_count", "check_seconds"]


def _type_name(value: Any) -> str:
    return type(value).__name__


def check_seconds(
    owner: str,
    field: str,
    value: Any,
    *,
    positive: bool = False,
    allow_none: bool = False,
) -> None:
    """Check that *value* is a finite number of seconds (>= 0, or > 0 if *positive*)."""
    if value is None and allow_none:
        return
    allowed = "a finite number > 0" if positive else "a finite number >= 0"
    if allow_none:
        allowed += " or None"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{owner}: {field} must be {allowed}, got {value!r} ({_type_name(value)})"
        raise TypeError(msg)
    if math.isnan(value) or math.isinf(value) or value < 0 or (positive and value == 0):
        msg = f"{owner}: {field} must be {allowed}, got {value!r}"
        raise ValueError(msg)


def check_count(owner: str, field: str, value: Any, *, minimum: int = 1) -> None:
    """Check that *value* is an int (not a bool) of at least *minimum*."""
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{owner}: {field} must be an int >= {minimum}, got {value!r} ({_type_name(value)})"
        raise TypeError(msg)
    if value < minimum:
        msg = f"{owner}: {field} must be an int >= {minimum}, got {value!r}"
        raise ValueError(msg)
