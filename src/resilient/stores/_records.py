"""What the stores keep: messages waiting in the outbox and the dead letters.

Stores hold a message's document (``data``, versioned JSON text) as an opaque
string: they never parse it, so a row the delivery layer cannot read is still
stored, claimed and moved to the dead letters whole, never dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "Failure",
    "NewMessage",
    "OutboxStats",
    "StoredMessage",
]

REASONS: Final = ("exhausted", "rejected", "malformed", "unknown-handler", "expired")
"""Why a message became a dead letter (`DeadLetter.reason`)."""


@dataclass(frozen=True)
class NewMessage:
    """A message to put in the outbox.

    Attributes:
        id: Unique message id.
        data: The message document (what to deliver), as JSON text.
        destination: Where it goes, for listing and filtering: the URL
            (without its query) of an HTTP request, or the handler's name.
        idempotency_key: The key every delivery attempt of this message carries.
        ordering_key: Messages with the same key are delivered one at a time,
            in the order they were enqueued; ``None`` for no ordering.
        created_at: When it was enqueued (seconds since the epoch).
        next_attempt_at: When it may first be delivered (seconds since the epoch).

    """

    id: str
    data: str
    destination: str
    idempotency_key: str
    ordering_key: str | None
    created_at: float
    next_attempt_at: float


@dataclass(frozen=True)
class StoredMessage:
    """A message claimed from the outbox, under a lease.

    Attributes:
        attempts: Delivery attempts so far, counting the one this claim is for.
        lease_token: Proves the claim: completing, rescheduling or burying the
            message succeeds only while no other worker has claimed it since.
        lease_until: When the lease runs out and another worker may claim it.
        first_failure_at: When its first delivery attempt failed, if one has.
        last_failure_at: When its last delivery attempt failed, if one has.
        last_status: The HTTP status of the last failed attempt, if it had one.
        last_error: What the last failed attempt ended with (already redacted).

    The other attributes are those of `NewMessage`.

    """

    id: str
    data: str
    destination: str
    idempotency_key: str
    ordering_key: str | None
    created_at: float
    attempts: int
    lease_token: str
    lease_until: float
    first_failure_at: float | None = None
    last_failure_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Failure:
    """A failed delivery attempt, as the stores record it.

    Attributes:
        at: When it failed (seconds since the epoch).
        error: What it ended with, already redacted.
        status: The HTTP status of the response, if there was one.

    """

    at: float
    error: str
    status: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message that will not be delivered unless someone replays it.

    Attributes:
        seq: Its place in the dead-letter queue (increasing; the paging cursor).
        reason: Why: ``"exhausted"`` (out of attempts), ``"expired"`` (older than
            the maximum age), ``"rejected"`` (a failure that retrying cannot
            fix, such as a 4xx response), ``"malformed"`` (a stored row that
            could not be read) or ``"unknown-handler"``.
        attempts: Delivery attempts made.
        dead_at: When it became a dead letter (seconds since the epoch).

    The other attributes are those of `StoredMessage`; ``data`` is kept exactly
    as it was stored, even when it could not be read.

    """

    seq: int
    id: str
    data: str
    destination: str
    idempotency_key: str
    ordering_key: str | None
    created_at: float
    reason: str
    attempts: int
    dead_at: float
    first_failure_at: float | None = None
    last_failure_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters a listing, count, replay or purge applies to.

    Every condition given must hold; the default filter matches every dead letter.

    Attributes:
        ids: Only these message ids.
        destination: Only destinations that start with this text (an origin
            such as ``"https://api.example.com"``, a full URL, a handler name).
        reason: Only this reason.
        since: Only dead letters that died at or after this time (epoch seconds).
        until: Only dead letters that died before this time (epoch seconds).

    Raises:
        TypeError: If a condition has the wrong type.
        ValueError: If *since* is not before *until*.

    """

    ids: tuple[str, ...] | None = None
    destination: str | None = None
    reason: str | None = None
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        ids: Any = self.ids
        if ids is not None:
            if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
                msg = f"DeadLetterFilter: ids must be a sequence of message ids, got {ids!r}"
                raise TypeError(msg)
            object.__setattr__(self, "ids", tuple(ids))
        for name in ("destination", "reason"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                msg = f"DeadLetterFilter: {name} must be a str or None, got {value!r}"
                raise TypeError(msg)
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                msg = f"DeadLetterFilter: {name} must be finite epoch seconds, got {value!r}"
                raise TypeError(msg)
        if self.since is not None and self.until is not None and self.since >= self.until:
            msg = (
                f"DeadLetterFilter: since must be before until, got since={self.since!r}, "
                f"until={self.until!r}"
            )
            raise ValueError(msg)

    def matches(self, letter: DeadLetter) -> bool:
        """Whether *letter* passes this filter (what a store without a query language uses)."""
        return (
            (self.ids is None or letter.id in self.ids)
            and (self.destination is None or letter.destination.startswith(self.destination))
            and (self.reason is None or letter.reason == self.reason)
            and (self.since is None or letter.dead_at >= self.since)
            and (self.until is None or letter.dead_at < self.until)
        )


@dataclass(frozen=True)
class OutboxStats:
    """How much is in a store.

    Attributes:
        pending: Messages in the outbox (due, waiting or leased).
        due: Pending messages that may be claimed now.
        leased: Pending messages under a live lease (being delivered).
        dead_letters: Messages in the dead-letter queue.
        delivered: Messages delivered since the store was created.
        oldest_created_at: When the oldest pending message was enqueued.
        next_attempt_at: The earliest time a message not yet due becomes due.

    """

    pending: int
    due: int
    leased: int
    dead_letters: int
    delivered: int
    oldest_created_at: float | None
    next_attempt_at: float | None
