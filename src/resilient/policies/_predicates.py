"""The *on* option that Retry, CircuitBreaker, Hedging and Fallback share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["exception_matcher"]


def _is_exception_type(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def exception_matcher(owner: str, on: Any) -> Callable[[BaseException], bool]:
    """Turn an *on* option (class, tuple of classes, predicate) into a predicate.

    Errors name *owner*, the option class being built.
    """
    if _is_exception_type(on):
        return lambda exc: isinstance(exc, on)
    if isinstance(on, tuple):
        for i, item in enumerate(on):
            if not _is_exception_type(item):
                msg = f"{owner}: on[{i}] must be an exception class, got {item!r}"
                raise TypeError(msg)
        if not on:
            msg = f"{owner}: on must name at least one exception class, got ()"
            raise ValueError(msg)
        return lambda exc: isinstance(exc, on)
    if callable(on):
        return on  # type: ignore[no-any-return]
    msg = (
        f"{owner}: on must be an exception class, a tuple of them, or a predicate "
        f"taking the exception; got {on!r} ({type(on).__name__})"
    )
    raise TypeError(msg)
