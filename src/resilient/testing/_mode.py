"""`set_testing`: make every `Retry` quick and short inside tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._mode import TestingMode, testing_mode
from ..policies._validate import check_count

if TYPE_CHECKING:
    from contextvars import Token
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["TestingToken", "set_testing"]


class TestingToken:
    """Returned by `set_testing`; leaving it as a context manager restores the previous mode."""

    __slots__ = ("_token",)

    def __init__(self, token: Token[TestingMode | None]) -> None:
        self._token = token

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        testing_mode.reset(self._token)


def set_testing(
    enabled: bool = True,  # noqa: FBT001, FBT002 -- reads as set_testing(False)
    *,
    attempts: int | None = 1,
    waits: bool = False,
) -> TestingToken:
    """Switch the testing mode on (or off) for the current context.

    In testing mode every `Retry` and `Hedging` makes at most *attempts* attempts
    (``None``: its own number), and `Retry`, unless *waits*, does not wait between
    them; a wait the downstream asks for that makes `Retry` give up (a
    ``Retry-After`` past the cap, say) still does. Timeouts and hedging delays are
    untouched. The mode lives in a context variable, so it covers the current task
    and the tasks it starts, and never leaks into concurrent tests::

        with resilient.testing.set_testing(attempts=2):
            await client_code()   # at most 2 attempts, no waits

    Raises:
        TypeError, ValueError: If *attempts* is not None or an int >= 1.

    """
    if attempts is not None:
        check_count("set_testing", "attempts", attempts)
    mode = TestingMode(attempts=attempts, waits=waits) if enabled else None
    return TestingToken(testing_mode.set(mode))
