"""`Backoff`: how long `Retry` waits before each retry."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._validate import check_seconds

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Backoff", "Jitter"]

Jitter = Literal["none", "full", "equal", "decorrelated"]
_JITTERS = ("none", "full", "equal", "decorrelated")
_KINDS = ("constant", "linear", "exponential")


@dataclass(frozen=True)
class Backoff:
    """A schedule of waits between attempts, with jitter and a cap.

    Build one with `constant`, `linear` or `exponential`. For the retry after
    attempt *n* (1 for the first failure) the wait before jitter is:

    ========================  =====================================
    constant                  ``base``
    linear                    ``base + step * (n - 1)``
    exponential               ``base * multiplier ** (n - 1)``
    ========================  =====================================

    capped at *cap*. Then jitter spreads it so that clients that failed together
    do not retry together (see AWS, "Exponential Backoff And Jitter"):

    ================  =====================================================
    ``"none"``        the wait itself
    ``"full"``        uniform in ``[0, wait]``
    ``"equal"``       ``wait / 2`` plus uniform in ``[0, wait / 2]``
    ``"decorrelated"`` uniform in ``[base, 3 * previous]``, capped at *cap*, where
                      *previous* is the last wait (*base* before the first):
                      exponential only, it grows by 3 on its own and
                      ignores *multiplier*
    ================  =====================================================

    Every wait is finite and in ``[0, cap]``.

    Raises:
        TypeError: If a number is not a number.
        ValueError: If a delay is negative, NaN or infinite, *cap* is below
            *base*, *multiplier* is below 1, or *kind*/*jitter* is unknown.

    """

    kind: Literal["constant", "linear", "exponential"]
    base: float
    cap: float
    step: float = 0.0
    multiplier: float = 2.0
    jitter: Jitter = "none"

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            msg = f"Backoff: kind must be one of {', '.join(_KINDS)}; got {self.kind!r}"
            raise ValueError(msg)
        if self.jitter not in _JITTERS:
            allowed = ", ".join(map(repr, _JITTERS))
            msg = f"Backoff: jitter must be one of {allowed}; got {self.jitter!r}"
            raise ValueError(msg)
        check_seconds("Backoff", "base", self.base)
        check_seconds("Backoff", "cap", self.cap)
        check_seconds("Backoff", "step", self.step)
        check_seconds("Backoff", "multiplier", self.multiplier)
        if self.cap < self.base:
            msg = f"Backoff: cap must be >= base ({self.base!r}), got {self.cap!r}"
            raise ValueError(msg)
        if self.multiplier < 1:
            msg = f"Backoff: multiplier must be >= 1, got {self.multiplier!r}"
            raise ValueError(msg)
        if self.jitter == "decorrelated":
            if self.kind != "exponential":
                msg = f"Backoff: jitter 'decorrelated' needs kind 'exponential', got {self.kind!r}"
                raise ValueError(msg)
            if self.base <= 0:
                msg = f"Backoff: jitter 'decorrelated' needs base > 0, got {self.base!r}"
                raise ValueError(msg)

    @classmethod
    def constant(cls, delay: float, *, jitter: Jitter = "none") -> Backoff:
        """Wait *delay* seconds before every retry."""
        return cls("constant", delay, delay, jitter=jitter)

    @classmethod
    def linear(
        cls, base: float, step: float | None = None, *, cap: float = 30.0, jitter: Jitter = "none"
    ) -> Backoff:
        """Wait *base*, then *step* more before each further retry (*step* defaults to *base*)."""
        return cls("linear", base, cap, step=base if step is None else step, jitter=jitter)

    @classmethod
    def exponential(
        cls,
        base: float,
        *,
        cap: float = 30.0,
        multiplier: float = 2.0,
        jitter: Jitter = "full",
    ) -> Backoff:
        """Wait *base*, multiplied by *multiplier* for each further retry, up to *cap*."""
        return cls("exponential", base, cap, multiplier=multiplier, jitter=jitter)

    def delay(
        self, attempt: int, previous: float = 0.0, rand: Callable[[], float] = random.random
    ) -> float:
        """The wait before the retry that follows failed attempt *attempt* (1-based).

        Args:
            attempt: The number of the attempt that failed.
            previous: The previous wait of this call, 0 before the first
                (decorrelated jitter grows from it, starting from *base*).
            rand: A source of floats in [0, 1).

        """
        base, cap = self.base, self.cap
        if self.jitter == "decorrelated":
            # AWS's "sleep = min(cap, uniform(base, sleep * 3))" with sleep = base at
            # first, so even the first retries of clients that failed together spread.
            high = min(cap, max(base, previous) * 3.0)
            return base + rand() * (high - base)
        if self.kind == "constant":
            wait = base
        elif self.kind == "linear":
            wait = min(cap, base + self.step * (attempt - 1))
        else:
            try:
                wait = min(cap, base * self.multiplier ** (attempt - 1))
            except OverflowError:
                wait = cap
        if self.jitter == "full":
            return rand() * wait
        if self.jitter == "equal":
            return wait / 2 + rand() * (wait / 2)
        return wait

    def describe(self) -> str:
        """E.g. ``exponential(0.2, cap=5, jitter=full)``."""
        if self.kind == "constant":
            text = f"constant({self.base:g}"
        elif self.kind == "linear":
            text = f"linear({self.base:g}, step={self.step:g}, cap={self.cap:g}"
        else:
            text = f"exponential({self.base:g}, cap={self.cap:g}"
            if self.multiplier != 2.0:  # noqa: PLR2004 -- the default needs no mention
                text += f", multiplier={self.multiplier:g}"
        return f"{text}, jitter={self.jitter})" if self.jitter != "none" else f"{text})"
