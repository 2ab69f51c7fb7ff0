"""`DeliveryOptions`: how the outbox redelivers, when it gives up, what it keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..policies._backoff import Backoff
from ..policies._validate import check_count, check_seconds

__all__ = ["DeliveryOptions", "check_text"]

_DAY = 86_400.0


def _default_backoff() -> Backoff:
    return Backoff.exponential(2.0, cap=600.0, jitter="equal")


def check_text(owner: str, field: str, value: Any, *, allow_none: bool = False) -> None:
    """Check that *value* is a non-empty str (or ``None`` if *allow_none*)."""
    if value is None and allow_none:
        return
    if not isinstance(value, str) or not value:
        allowed = "a non-empty str or None" if allow_none else "a non-empty str"
        msg = f"{owner}: {field} must be {allowed}, got {value!r}"
        raise TypeError(msg)


@dataclass(frozen=True)
class DeliveryOptions:
    """How an `Outbox` delivers: redelivery schedule, leases, limits, retention.

    A *delivery attempt* is one pass of a message through the relay's client
    (or handler) and its policies: a `Retry` in the client's pipeline retries
    within an attempt; the outbox redelivers between attempts, on *backoff*,
    for as long as an outage lasts, up to *max_attempts*. With the defaults a
    message is redelivered for about 2.5 hours before it becomes a dead letter.

    ========================  ===================================================
    Option                    Default
    ========================  ===================================================
    ``max_attempts``          20
    ``max_age``               ``None`` (no limit)
    ``backoff``               exponential from 2 s, doubling, capped at 10 min,
                              equal jitter
    ``max_server_delay``      1 hour (``Retry-After`` above it is cut to it)
    ``lease``                 60 s
    ``batch``                 32 messages per claim
    ``poll_interval``         1 s
    ``grace``                 10 s
    ``secrets``               ``"refuse"``
    ``idempotency_header``    ``"Idempotency-Key"``
    ``dead_letter_limit``     100,000
    ``dead_letter_max_age``   30 days
    ``replay_rate``           100 per second
    ========================  ===================================================

    Args:
        max_attempts: Delivery attempts before a message becomes a dead letter
            (reason ``"exhausted"``).
        max_age: Seconds after enqueue within which a message must be
            delivered: a failed message whose next attempt would come later
            becomes a dead letter (reason ``"expired"``) instead.
        backoff: The wait before redelivery *n*, after *n* failed attempts.
        max_server_delay: The longest ``Retry-After`` (or ``RateLimit-Reset``)
            honoured; the outbox can wait far longer than a call can, so this is
            large.
        lease: Seconds a claimed message is held by one worker. A worker that
            dies lets it go when the lease runs out; keep it above the longest
            delivery (the client's total timeout).
        batch: Messages claimed at once by a worker.
        poll_interval: Longest wait between claims when nothing is due (an
            enqueue in the same process wakes the relay at once).
        grace: Seconds a stopping relay lets deliveries in flight finish before
            it cancels them and gives their messages back.
        secrets: What `Outbox.send` does with credential headers: ``"refuse"``
            raises `SecretInMessageError`; ``"strip"`` drops them (and logs
            which). Credentials in the URL or a JSON body are always refused.
        idempotency_header: The header that carries the message's key.
        dead_letter_limit: Most dead letters kept; the oldest go first.
            ``None`` keeps all.
        dead_letter_max_age: Seconds a dead letter is kept. ``None`` keeps them.
        replay_rate: Dead letters replayed per second at most.

    Raises:
        TypeError: If an option has the wrong type.
        ValueError: If an option is out of range; the message names it and the range.

    """

    max_attempts: int = 20
    max_age: float | None = None
    backoff: Backoff = field(default_factory=_default_backoff)
    max_server_delay: float = 3600.0
    lease: float = 60.0
    batch: int = 32
    poll_interval: float = 1.0
    grace: float = 10.0
    secrets: Literal["refuse", "strip"] = "refuse"
    idempotency_header: str = "Idempotency-Key"
    dead_letter_limit: int | None = 100_000
    dead_letter_max_age: float | None = 30 * _DAY
    replay_rate: float = 100.0

    def __post_init__(self) -> None:
        owner = "DeliveryOptions"
        check_count(owner, "max_attempts", self.max_attempts)
        check_seconds(owner, "max_age", self.max_age, positive=True, allow_none=True)
        if not isinstance(self.backoff, Backoff):
            msg = f"{owner}: backoff must be a Backoff, got {self.backoff!r}"
            raise TypeError(msg)
        check_seconds(owner, "max_server_delay", self.max_server_delay)
        check_seconds(owner, "lease", self.lease, positive=True)
        check_count(owner, "batch", self.batch)
        check_seconds(owner, "poll_interval", self.poll_interval, positive=True)
        check_seconds(owner, "grace", self.grace)
        if self.secrets not in ("refuse", "strip"):
            msg = f"{owner}: secrets must be 'refuse' or 'strip', got {self.secrets!r}"
            raise ValueError(msg)
        check_text(owner, "idempotency_header", self.idempotency_header)
        if self.dead_letter_limit is not None:
            check_count(owner, "dead_letter_limit", self.dead_letter_limit, minimum=0)
        check_seconds(
            owner, "dead_letter_max_age", self.dead_letter_max_age, positive=True, allow_none=True
        )
        check_seconds(owner, "replay_rate", self.replay_rate, positive=True)
