"""The contracts every outbox and dead-letter store keeps.

One test suite (``tests/test_store_contract.py``) holds every implementation to
them. The rules that matter for delivery:

- ``enqueue`` returns only once the messages are durable;
- a claim leases the messages it returns: until the lease runs out no other
  claim returns them, and only the holder of the lease (its `StoredMessage`)
  can complete, reschedule, release or bury them; a late holder gets ``False``
  and changes nothing;
- of the messages sharing an ordering key, only the oldest is ever claimable,
  so they are delivered one at a time, in order;
- a message leaves the outbox only as delivered (``complete``) or as a dead
  letter (``bury``, in the same transaction); ``restore`` moves dead letters
  back, keeping their idempotency key unless told otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._records import (
        DeadLetter,
        DeadLetterFilter,
        Failure,
        NewMessage,
        OutboxStats,
        StoredMessage,
    )

__all__ = ["DeadLetterStore", "OutboxStore", "Store"]


@runtime_checkable
class OutboxStore(Protocol):
    """Where messages wait until they are delivered."""

    async def open(self) -> None:
        """Connect, and create or migrate the schema. Idempotent."""

    async def close(self) -> None:
        """Release the store's connections. Idempotent."""

    async def enqueue(self, messages: Sequence[NewMessage]) -> None:
        """Add *messages*, durably, in one transaction."""

    async def claim(
        self, owner: str, *, limit: int, lease: float, now: float
    ) -> list[StoredMessage]:
        """Lease up to *limit* due messages to *owner* for *lease* seconds, oldest due first."""

    async def complete(self, messages: Sequence[StoredMessage]) -> int:
        """Remove delivered *messages* whose lease is still held; return how many."""

    async def complete_and_claim(
        self, done: Sequence[StoredMessage], owner: str, *, limit: int, lease: float, now: float
    ) -> tuple[int, list[StoredMessage]]:
        """`complete` *done*, then `claim`, in one transaction: a relay's steady state."""

    async def reschedule(
        self,
        message: StoredMessage,
        *,
        next_attempt_at: float,
        failure: Failure,
        refund: bool = False,
    ) -> bool:
        """Record *failure* and make *message* due again at *next_attempt_at*.

        With *refund*, the attempt is not counted (nothing reached the downstream:
        an open circuit, a full bulkhead). ``False`` if the lease was lost.
        """

    async def release(self, messages: Sequence[StoredMessage], *, now: float) -> int:
        """Give back claimed but unattempted *messages*, due at *now*, attempt refunded."""

    async def bury(
        self, message: StoredMessage, *, reason: str, failure: Failure | None, now: float
    ) -> bool:
        """Move *message* to the dead letters; ``False`` if the lease was lost."""

    async def stats(self, *, now: float) -> OutboxStats:
        """Counts of what the store holds at *now*."""

    async def next_due(self) -> float | None:
        """The earliest time any pending message becomes claimable, ``None`` when empty."""


@runtime_checkable
class DeadLetterStore(Protocol):
    """Where messages that could not be delivered wait for an operator."""

    async def dead_letters(
        self, where: DeadLetterFilter, *, limit: int, after: int | None = None
    ) -> list[DeadLetter]:
        """Up to *limit* dead letters matching *where*, oldest first, after *after* (a seq)."""

    async def dead_letter(self, message_id: str) -> DeadLetter | None:
        """The dead letter of *message_id*, if there is one."""

    async def count_dead_letters(self, where: DeadLetterFilter) -> int:
        """How many dead letters match *where*."""

    async def restore(
        self, ids: Sequence[str], *, now: float, keys: Mapping[str, str] | None = None
    ) -> list[str]:
        """Move the dead letters *ids* back into the outbox, due at *now*, attempts reset.

        They keep their idempotency keys except where *keys* maps an id to a new
        one. Returns the ids moved (ids that are not dead letters are skipped).
        """

    async def purge(self, where: DeadLetterFilter) -> int:
        """Delete the dead letters matching *where*; return how many."""

    async def trim(self, *, max_count: int | None = None, older_than: float | None = None) -> int:
        """Retention: drop the oldest beyond *max_count* and those dead before *older_than*."""


class Store(OutboxStore, DeadLetterStore, Protocol):
    """A store that keeps both the outbox and the dead letters (moves between them are atomic)."""
