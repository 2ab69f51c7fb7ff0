"""Checks for the HTTP layer's options: each message names the option and what it allows."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["check_header_name", "is_token", "items_of"]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An RFC 9110 token: what a header name (and a method) is made of."""

_NAME_RULE = "a header name (letters, digits and !#$%&'*+-.^_`|~; no spaces)"


def is_token(value: str) -> bool:
    """Whether *value* is an RFC 9110 token."""
    return _TOKEN.fullmatch(value) is not None


def check_header_name(owner: str, field: str, value: Any, *, allow_none: bool = False) -> None:
    """Check that *value* is a header name httpx can send (``None`` too, if allowed)."""
    if value is None and allow_none:
        return
    allowed = f"{_NAME_RULE} or None" if allow_none else _NAME_RULE
    if not isinstance(value, str):
        msg = f"{owner}: {field} must be {allowed}, got {value!r} ({type(value).__name__})"
        raise TypeError(msg)
    if not is_token(value):
        msg = f"{owner}: {field} must be {allowed}, got {value!r}"
        raise ValueError(msg)


def items_of(owner: str, field: str, value: Any, what: str) -> tuple[Any, ...]:
    """The items of *value*, a collection of *what*; read once (a generator is one too)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        msg = (
            f"{owner}: {field} must be a collection of {what}, "
            f"got {value!r} ({type(value).__name__})"
        )
        raise TypeError(msg)
    return tuple(value)
