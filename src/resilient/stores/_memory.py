"""`MemoryStore`: the outbox and dead letters in this process's memory.

For tests, demos and work that may be lost with the process. Every method
runs without awaiting in between its reads and writes, so on one event loop
each is atomic without a lock.
"""

from __future__ import annotations

import heapq
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._records import DeadLetter, DeadLetterFilter, Failure, NewMessage, OutboxStats, StoredMessage

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = ["MemoryStore"]


@dataclass
class _Row:
    seq: int
    message: NewMessage
    next_attempt_at: float
    attempts: int = 0
    lease_token: str | None = None
    lease_until: float = 0.0
    first_failure_at: float | None = None
    last_failure_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None


class MemoryStore:
    """An outbox and dead-letter store in memory (nothing survives the process).

    ::

        store = resilient.stores.MemoryStore()
    """

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._queues: dict[str, list[str]] = {}  # ordering key -> ids, oldest first
        self._dead: dict[str, DeadLetter] = {}
        self._seq = 0
        self._dead_seq = 0
        self._delivered = 0

    def __repr__(self) -> str:
        return f"MemoryStore(pending={len(self._rows)}, dead_letters={len(self._dead)})"

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close: what it holds stays until the object goes."""

    # Outbox

    async def enqueue(self, messages: Sequence[NewMessage]) -> None:
        """Add *messages*."""
        seen: set[str] = set()
        for message in messages:
            if message.id in self._rows or message.id in self._dead or message.id in seen:
                msg = f"MemoryStore: message id {message.id!r} is already stored"
                raise ValueError(msg)
            seen.add(message.id)
        for message in messages:
            self._add(message, message.next_attempt_at)

    def _add(self, message: NewMessage, due: float) -> None:
        self._seq += 1
        self._rows[message.id] = _Row(self._seq, message, due)
        if message.ordering_key is not None:
            self._queues.setdefault(message.ordering_key, []).append(message.id)

    def _remove(self, message_id: str) -> _Row:
        row = self._rows.pop(message_id)
        key = row.message.ordering_key
        if key is not None:
            queue = self._queues[key]
            queue.remove(message_id)
            if not queue:
                del self._queues[key]
        return row

    def _claimable(self, row: _Row, now: float) -> bool:
        key = row.message.ordering_key
        return (
            row.next_attempt_at <= now
            and (row.lease_token is None or row.lease_until <= now)
            and (key is None or self._queues[key][0] == row.message.id)
        )

    async def claim(
        self, owner: str, *, limit: int, lease: float, now: float
    ) -> list[StoredMessage]:
        """Lease up to *limit* due messages to *owner*."""
        del owner  # the token identifies the claim; the owner only shows in SQL stores
        rows = heapq.nsmallest(
            limit,
            (row for row in self._rows.values() if self._claimable(row, now)),
            key=lambda row: (row.next_attempt_at, row.seq),
        )
        token = secrets.token_hex(8)
        until = now + lease
        claimed = []
        for row in rows:
            row.attempts += 1
            row.lease_token = token
            # Due again when the lease runs out, so a crashed holder's messages return.
            # The due time stays: a message whose lease runs out (its holder died)
            # keeps its place at the front of the queue.
            row.lease_until = until
            claimed.append(self._stored(row))
        return claimed

    @staticmethod
    def _stored(row: _Row) -> StoredMessage:
        m = row.message
        return StoredMessage(
            id=m.id,
            data=m.data,
            destination=m.destination,
            idempotency_key=m.idempotency_key,
            ordering_key=m.ordering_key,
            created_at=m.created_at,
            attempts=row.attempts,
            lease_token=row.lease_token or "",
            lease_until=row.lease_until,
            first_failure_at=row.first_failure_at,
            last_failure_at=row.last_failure_at,
            last_status=row.last_status,
            last_error=row.last_error,
        )

    def _held(self, message: StoredMessage) -> _Row | None:
        row = self._rows.get(message.id)
        if row is None or row.lease_token != message.lease_token:
            return None
        return row

    async def complete(self, messages: Sequence[StoredMessage]) -> int:
        """Remove delivered *messages* whose lease is still held."""
        done = 0
        for message in messages:
            if self._held(message) is not None:
                self._remove(message.id)
                done += 1
        self._delivered += done
        return done

    async def complete_and_claim(
        self, done: Sequence[StoredMessage], owner: str, *, limit: int, lease: float, now: float
    ) -> tuple[int, list[StoredMessage]]:
        """`complete` *done*, then `claim`."""
        completed = await self.complete(done)
        return completed, await self.claim(owner, limit=limit, lease=lease, now=now)

    async def reschedule(
        self,
        message: StoredMessage,
        *,
        next_attempt_at: float,
        failure: Failure,
        refund: bool = False,
    ) -> bool:
        """Record *failure* and make *message* due at *next_attempt_at*."""
        row = self._held(message)
        if row is None:
            return False
        _record(row, failure)
        if refund:
            row.attempts -= 1
        row.lease_token = None
        row.lease_until = 0.0
        row.next_attempt_at = next_attempt_at
        return True

    async def release(self, messages: Sequence[StoredMessage], *, now: float) -> int:
        """Give back claimed, unattempted *messages*."""
        released = 0
        for message in messages:
            row = self._held(message)
            if row is not None:
                row.attempts -= 1
                row.lease_token = None
                row.lease_until = 0.0
                row.next_attempt_at = now
                released += 1
        return released

    async def bury(
        self, message: StoredMessage, *, reason: str, failure: Failure | None, now: float
    ) -> bool:
        """Move *message* to the dead letters."""
        row = self._held(message)
        if row is None:
            return False
        if failure is not None:
            _record(row, failure)
        self._remove(message.id)
        m = row.message
        self._dead_seq += 1
        self._dead[m.id] = DeadLetter(
            seq=self._dead_seq,
            id=m.id,
            data=m.data,
            destination=m.destination,
            idempotency_key=m.idempotency_key,
            ordering_key=m.ordering_key,
            created_at=m.created_at,
            reason=reason,
            attempts=row.attempts,
            dead_at=now,
            first_failure_at=row.first_failure_at,
            last_failure_at=row.last_failure_at,
            last_status=row.last_status,
            last_error=row.last_error,
        )
        return True

    async def stats(self, *, now: float) -> OutboxStats:
        """Counts of what the store holds."""
        rows = self._rows.values()
        leased = sum(1 for row in rows if row.lease_token is not None and row.lease_until > now)
        waiting = [at for at in map(_claimable_at, self._heads()) if at > now]
        return OutboxStats(
            pending=len(self._rows),
            due=sum(1 for row in rows if self._claimable(row, now)),
            leased=leased,
            dead_letters=len(self._dead),
            delivered=self._delivered,
            oldest_created_at=min((row.message.created_at for row in rows), default=None),
            next_attempt_at=min(waiting, default=None),
        )

    async def next_due(self) -> float | None:
        """The earliest time any pending message becomes claimable."""
        return min(map(_claimable_at, self._heads()), default=None)

    def _heads(self) -> Iterator[_Row]:
        # Only these can become claimable by time alone: a message behind the head
        # of its ordering key waits for the head, whatever its own next attempt time.
        for row in self._rows.values():
            key = row.message.ordering_key
            if key is None or self._queues[key][0] == row.message.id:
                yield row

    # Dead letters

    def _matching(self, where: DeadLetterFilter) -> list[DeadLetter]:
        return [letter for letter in self._dead.values() if where.matches(letter)]

    async def dead_letters(
        self, where: DeadLetterFilter, *, limit: int, after: int | None = None
    ) -> list[DeadLetter]:
        """Up to *limit* dead letters matching *where*, oldest first."""
        start = -1 if after is None else after
        page = [letter for letter in self._matching(where) if letter.seq > start]
        return sorted(page, key=lambda letter: letter.seq)[:limit]

    async def dead_letter(self, message_id: str) -> DeadLetter | None:
        """The dead letter of *message_id*."""
        return self._dead.get(message_id)

    async def count_dead_letters(self, where: DeadLetterFilter) -> int:
        """How many dead letters match *where*."""
        return len(self._matching(where))

    async def restore(
        self, ids: Sequence[str], *, now: float, keys: Mapping[str, str] | None = None
    ) -> list[str]:
        """Move dead letters back into the outbox."""
        restored = []
        for message_id in ids:
            letter = self._dead.pop(message_id, None)
            if letter is None:
                continue
            key = (
                letter.idempotency_key
                if keys is None
                else keys.get(message_id, letter.idempotency_key)
            )
            message = NewMessage(
                id=letter.id,
                data=letter.data,
                destination=letter.destination,
                idempotency_key=key,
                ordering_key=letter.ordering_key,
                created_at=letter.created_at,
                next_attempt_at=now,
            )
            self._add(message, now)
            restored.append(message_id)
        return restored

    async def purge(self, where: DeadLetterFilter) -> int:
        """Delete the dead letters matching *where*."""
        doomed = self._matching(where)
        for letter in doomed:
            del self._dead[letter.id]
        return len(doomed)

    async def trim(self, *, max_count: int | None = None, older_than: float | None = None) -> int:
        """Drop the oldest dead letters beyond *max_count* and those dead before *older_than*."""
        letters = sorted(self._dead.values(), key=lambda letter: letter.seq)
        doomed = {
            letter.id
            for letter in letters
            if older_than is not None and letter.dead_at < older_than
        }
        if max_count is not None:
            keep = [letter for letter in letters if letter.id not in doomed]
            doomed.update(letter.id for letter in keep[: max(0, len(keep) - max_count)])
        for message_id in doomed:
            del self._dead[message_id]
        return len(doomed)


def _record(row: _Row, failure: Failure) -> None:
    if row.first_failure_at is None:
        row.first_failure_at = failure.at
    row.last_failure_at = failure.at
    row.last_status = failure.status
    row.last_error = failure.error


def _claimable_at(row: _Row) -> float:
    """When *row* may next be claimed: when it is due and its lease (if any) has run out."""
    if row.lease_token is None:
        return row.next_attempt_at
    return max(row.next_attempt_at, row.lease_until)
