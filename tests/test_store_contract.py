"""The store contract: every store implementation held to the rules in `resilient.stores._protocol`.

Each test runs against every store in `STORES`. Stores take the time as
``now=`` arguments, so the tests pass fixed epoch seconds (from ``T0``) and no
clock is involved.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from resilient.stores import (
    DeadLetterFilter,
    DeadLetterStore,
    Failure,
    MemoryStore,
    NewMessage,
    OutboxStats,
    OutboxStore,
    PostgresStore,
    SQLiteStore,
    Store,
    StoredMessage,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

from backends import drop_schema, postgres_url

pytestmark = pytest.mark.anyio

T0 = 1000.0
LEASE = 60.0
API = "https://api.example.com"


# The stores under test. Each factory yields a fresh, opened, empty store and
# checks it after the test; a new implementation (PostgreSQL: skipped when no
# server is configured) joins the suite by adding its factory here.


@contextlib.asynccontextmanager
async def memory_store(tmp_path: Path) -> AsyncIterator[Store]:
    del tmp_path
    store = MemoryStore()
    await store.open()
    yield store
    await store.close()


@contextlib.asynccontextmanager
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SQLiteStore(tmp_path / "contract.db")
    await store.open()
    yield store
    assert await store.integrity_check() == ["ok"]
    await store.close()


@contextlib.asynccontextmanager
async def postgres_store(tmp_path: Path) -> AsyncIterator[Store]:
    # A schema of its own per test: tests never see each other's rows.
    schema = f"contract_{tmp_path.name.lower().replace('-', '_')[-40:]}_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(postgres_url(), schema=schema)
    await store.open()
    try:
        yield store
    finally:
        await drop_schema(schema)
        await store.close()


STORES: dict[str, Callable[[Path], AbstractAsyncContextManager[Store]]] = {
    "memory": memory_store,
    "sqlite": sqlite_store,
    "postgres": postgres_store,
}


@pytest.fixture(params=list(STORES))
async def store(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: object):
    # (trio x postgres is deselected in conftest.py: psycopg's async runs on asyncio only)
    async with STORES[request.param](tmp_path) as opened:
        yield opened


# Helpers


def new(
    message_id: str,
    *,
    due: float = T0,
    key: str | None = None,
    data: str | None = None,
    destination: str = f"{API}/orders",
    created_at: float | None = None,
) -> NewMessage:
    return NewMessage(
        id=message_id,
        data=f'{{"v": 1, "id": "{message_id}"}}' if data is None else data,
        destination=destination,
        idempotency_key=f"key-{message_id}",
        ordering_key=key,
        created_at=T0 - 100 if created_at is None else created_at,
        next_attempt_at=due,
    )


def ids(messages: Sequence[Any]) -> list[str]:
    return [m.id for m in messages]


async def claim(
    store: Store, *, now: float = T0, limit: int = 100, lease: float = LEASE
) -> list[StoredMessage]:
    return await store.claim("worker", limit=limit, lease=lease, now=now)


async def claim_one(store: Store, *, now: float = T0, lease: float = LEASE) -> StoredMessage:
    claimed = await claim(store, now=now, limit=1, lease=lease)
    assert len(claimed) == 1, claimed
    return claimed[0]


def failure(at: float, error: str = "HTTP 503", status: int | None = 503) -> Failure:
    return Failure(at=at, error=error, status=status)


async def deliver_in_order(store: Store, *, now: float) -> list[str]:
    """Claim one at a time and complete each, until nothing is claimable: the delivery order."""
    order: list[str] = []
    while batch := await claim(store, now=now, limit=1):
        assert await store.complete(batch) == 1
        order.extend(ids(batch))
    return order


async def bury_new(
    store: Store,
    message_id: str,
    *,
    dead_at: float,
    reason: str = "exhausted",
    destination: str = f"{API}/orders",
) -> None:
    """Enqueue *message_id*, claim it and bury it at *dead_at* (the outbox must be empty)."""
    await store.enqueue([new(message_id, destination=destination)])
    message = await claim_one(store)
    assert message.id == message_id
    assert await store.bury(message, reason=reason, failure=failure(dead_at - 1), now=dead_at)


# Enqueue and claim


async def test_every_store_implements_both_protocols(store: Store) -> None:
    assert isinstance(store, OutboxStore)
    assert isinstance(store, DeadLetterStore)


async def test_claim_returns_due_messages_oldest_due_first_up_to_limit(store: Store) -> None:
    await store.enqueue(
        [
            new("m1", due=T0 + 3),
            new("m2", due=T0 + 1),
            new("m3", due=T0 + 2),
            new("m4", due=T0 + 1),  # due with m2, enqueued after it
            new("m5", due=T0 + 1000),  # not due yet
        ]
    )
    assert ids(await claim(store, now=T0 + 10, limit=3)) == ["m2", "m4", "m3"]
    assert ids(await claim(store, now=T0 + 10, limit=3)) == ["m1"]
    assert await claim(store, now=T0 + 10) == []


async def test_claim_returns_a_message_only_once_it_is_due(store: Store) -> None:
    await store.enqueue([new("later", due=T0 + 50)])
    assert await claim(store, now=T0 + 49.999) == []
    assert ids(await claim(store, now=T0 + 50)) == ["later"]


async def test_claim_of_an_empty_store_returns_nothing(store: Store) -> None:
    assert await claim(store) == []


async def test_claimed_message_carries_what_was_enqueued_and_its_lease(store: Store) -> None:
    sent = new("m1", key="customer-7", data='{"v": 1, "body": "ü"}', created_at=T0 - 5)
    await store.enqueue([sent])
    got = await claim_one(store, now=T0 + 1, lease=30.0)
    assert (got.id, got.data, got.destination, got.idempotency_key, got.ordering_key) == (
        sent.id,
        sent.data,
        sent.destination,
        sent.idempotency_key,
        sent.ordering_key,
    )
    assert got.created_at == T0 - 5
    assert got.attempts == 1
    assert got.lease_token
    assert got.lease_until == T0 + 31.0
    assert (got.first_failure_at, got.last_failure_at, got.last_status, got.last_error) == (
        None,
        None,
        None,
        None,
    )


async def test_enqueue_is_all_or_nothing(store: Store) -> None:
    await store.enqueue([new("m1")])
    with pytest.raises(Exception):  # noqa: B017, PT011 -- each store raises its own error
        await store.enqueue([new("m2"), new("m1")])
    with pytest.raises(Exception):  # noqa: B017, PT011
        await store.enqueue([new("m3", key="k"), new("m3", key="k")])
    assert (await store.stats(now=T0)).pending == 1
    # Nothing of the failed batches is left behind, not even in an ordering key's queue.
    await store.enqueue([new("m2"), new("m3", key="k"), new("m4", key="k")])
    assert await deliver_in_order(store, now=T0) == ["m1", "m2", "m3", "m4"]


# Leases


async def test_claimed_message_is_not_claimable_again_until_its_lease_runs_out(
    store: Store,
) -> None:
    await store.enqueue([new("m1")])
    first = await claim_one(store, now=T0, lease=30.0)
    assert await claim(store, now=T0 + 29.999) == []
    again = await claim_one(store, now=T0 + 30.0, lease=30.0)
    assert again.id == "m1"
    assert again.attempts == 2
    assert again.lease_token != first.lease_token
    assert again.lease_until == T0 + 60.0


def _stale_operations() -> dict[str, Callable[[Store, StoredMessage], Awaitable[object]]]:
    return {
        "complete": lambda store, m: store.complete([m]),
        "reschedule": lambda store, m: store.reschedule(
            m, next_attempt_at=T0 + 5000, failure=failure(T0 + 40)
        ),
        "reschedule-refund": lambda store, m: store.reschedule(
            m, next_attempt_at=T0 + 5000, failure=failure(T0 + 40), refund=True
        ),
        "release": lambda store, m: store.release([m], now=T0 + 5000),
        "bury": lambda store, m: store.bury(
            m, reason="exhausted", failure=failure(T0 + 40), now=T0 + 40
        ),
    }


@pytest.mark.parametrize("operation", list(_stale_operations()))
async def test_a_stale_holder_cannot_change_the_message(store: Store, operation: str) -> None:
    """After its lease ran out and another worker claimed the message, the old holder gets
    False or 0, and the message, its attempts and the new holder's lease are untouched."""
    await store.enqueue([new("m1")])
    stale = await claim_one(store, now=T0, lease=30.0)
    current = await claim_one(store, now=T0 + 31, lease=30.0)
    before = await store.stats(now=T0 + 40)

    result = await _stale_operations()[operation](store, stale)

    assert result in (False, 0)
    assert await store.stats(now=T0 + 40) == before
    assert await store.count_dead_letters(DeadLetterFilter()) == 0
    assert await store.next_due() == T0 + 61
    # The current holder still holds the lease, and no attempt was refunded or added.
    assert await store.reschedule(current, next_attempt_at=T0 + 45, failure=failure(T0 + 41))
    assert (await claim_one(store, now=T0 + 45)).attempts == 3


async def test_giving_up_the_lease_ends_the_holders_rights(store: Store) -> None:
    await store.enqueue([new("done"), new("retried"), new("released")])
    done, retried, released = await claim(store)
    assert await store.complete([done]) == 1
    assert await store.reschedule(retried, next_attempt_at=T0 + 10, failure=failure(T0))
    assert await store.release([released], now=T0 + 10) == 1

    assert await store.complete([done]) == 0
    assert not await store.bury(done, reason="rejected", failure=None, now=T0)
    assert await store.complete([retried]) == 0
    assert not await store.reschedule(retried, next_attempt_at=T0, failure=failure(T0))
    assert await store.release([released], now=T0) == 0
    assert not await store.bury(released, reason="rejected", failure=None, now=T0)

    assert await store.count_dead_letters(DeadLetterFilter()) == 0
    assert (await store.stats(now=T0 + 10)).delivered == 1
    assert sorted(ids(await claim(store, now=T0 + 10))) == ["released", "retried"]


# Complete


async def test_a_message_whose_lease_ran_out_goes_before_later_ones(store: Store) -> None:
    # Its relay died holding it: it must not wait behind the backlog that came due since.
    await store.enqueue([new(f"m{n}", due=T0 + n) for n in range(5)])
    (dead,) = await claim(store, limit=1)  # m0, then its holder dies
    assert dead.id == "m0"
    later = T0 + LEASE + 10
    batch = await claim(store, now=later, limit=2)
    assert ids(batch) == ["m0", "m1"]
    assert batch[0].attempts == 2


async def test_complete_and_claim_completes_first_then_claims_the_next_head(store: Store) -> None:
    await store.enqueue([new("a1", key="a"), new("a2", key="a"), new("b1")])
    first = await claim(store, limit=1)  # a1, the oldest
    stale = first[0]
    completed, batch = await store.complete_and_claim(
        first, "w2", limit=10, lease=LEASE, now=T0 + 1
    )
    assert completed == 1
    assert sorted(ids(batch)) == ["a2", "b1"]  # a1's removal made a2 the head of "a"
    assert (await store.stats(now=T0 + 1)).delivered == 1
    # A stale claim completes nothing, and the claim still happens.
    completed, batch = await store.complete_and_claim(
        [stale], "w3", limit=10, lease=LEASE, now=T0 + 2
    )
    assert (completed, batch) == (0, [])


async def test_complete_removes_the_messages_and_counts_them_delivered(store: Store) -> None:
    await store.enqueue([new("m1"), new("m2"), new("m3")])
    m1, m2, _m3 = await claim(store, lease=10.0)
    assert await store.complete([]) == 0
    assert await store.complete([m1, m2]) == 2
    stats = await store.stats(now=T0)
    assert (stats.pending, stats.delivered) == (1, 2)
    # Delivered messages never come back, even after their lease would have run out.
    again = await claim(store, now=T0 + 10)
    assert ids(again) == ["m3"]
    assert await store.complete(again) == 1
    assert await claim(store, now=T0 + 10_000) == []
    assert (await store.stats(now=T0 + 10_000)).delivered == 3


# Reschedule


async def test_reschedule_makes_the_message_due_at_next_attempt_at(store: Store) -> None:
    await store.enqueue([new("m1")])
    first = await claim_one(store, now=T0, lease=LEASE)
    assert await store.reschedule(first, next_attempt_at=T0 + 5, failure=failure(T0 + 1))
    # Due before the lease would have run out: a rescheduled message holds no lease.
    assert (await store.stats(now=T0 + 2)).leased == 0
    assert await claim(store, now=T0 + 4.999) == []
    again = await claim_one(store, now=T0 + 5)
    assert again.id == "m1"
    assert again.attempts == 2
    assert again.lease_token != first.lease_token


async def test_reschedule_records_first_and_last_failure(store: Store) -> None:
    await store.enqueue([new("m1")])
    message = await claim_one(store, now=T0)
    assert await store.reschedule(
        message, next_attempt_at=T0 + 10, failure=Failure(at=T0 + 1, error="HTTP 503", status=503)
    )
    message = await claim_one(store, now=T0 + 10)
    assert (message.first_failure_at, message.last_failure_at) == (T0 + 1, T0 + 1)
    assert (message.last_status, message.last_error) == (503, "HTTP 503")

    assert await store.reschedule(
        message, next_attempt_at=T0 + 20, failure=Failure(at=T0 + 11, error="ReadTimeout")
    )
    message = await claim_one(store, now=T0 + 20)
    assert (message.first_failure_at, message.last_failure_at) == (T0 + 1, T0 + 11)
    assert (message.last_status, message.last_error) == (None, "ReadTimeout")
    assert message.attempts == 3


async def test_reschedule_with_refund_does_not_count_the_attempt(store: Store) -> None:
    await store.enqueue([new("m1")])
    message = await claim_one(store, now=T0)
    assert await store.reschedule(
        message, next_attempt_at=T0 + 10, failure=failure(T0, "circuit open", None), refund=True
    )
    message = await claim_one(store, now=T0 + 10)
    assert message.attempts == 1
    assert message.last_error == "circuit open"
    assert await store.reschedule(message, next_attempt_at=T0 + 20, failure=failure(T0 + 10))
    assert (await claim_one(store, now=T0 + 20)).attempts == 2


# Release


async def test_release_refunds_the_attempt_and_makes_the_message_due_at_now(
    store: Store,
) -> None:
    await store.enqueue([new("m1"), new("m2")])
    m1, m2 = await claim(store, now=T0, lease=LEASE)
    assert await store.release([m1, m2], now=T0 + 10) == 2
    assert await store.next_due() == T0 + 10
    assert (await store.stats(now=T0 + 10)).leased == 0
    assert await claim(store, now=T0 + 9.999) == []
    again = await claim(store, now=T0 + 10)
    assert ids(again) == ["m1", "m2"]
    assert [m.attempts for m in again] == [1, 1]
    assert again[0].lease_token != m1.lease_token
    assert await store.release([], now=T0) == 0


# Ordering keys


async def test_only_the_oldest_message_of_an_ordering_key_is_claimable(store: Store) -> None:
    await store.enqueue(
        [
            new("a1", key="a"),
            new("a2", key="a"),
            new("b1", key="b"),
            new("a3", key="a"),
            new("n1"),
            new("b2", key="b"),
        ]
    )
    assert sorted(ids(await claim(store, now=T0))) == ["a1", "b1", "n1"]
    assert (await store.stats(now=T0 + 1)).due == 0


async def test_one_message_per_ordering_key_is_in_flight(store: Store) -> None:
    await store.enqueue([new("a1", key="a"), new("a2", key="a")])
    head = await claim_one(store, now=T0, lease=30.0)
    assert head.id == "a1"
    # While the head is leased, the next one waits, however long.
    assert await claim(store, now=T0 + 29) == []
    # A crashed holder's head comes back when its lease runs out; still not a2.
    assert ids(await claim(store, now=T0 + 30, lease=30.0)) == ["a1"]
    assert await claim(store, now=T0 + 59) == []


async def test_messages_of_an_ordering_key_are_delivered_in_enqueue_order(store: Store) -> None:
    # Later messages are due earlier: the key's order still wins.
    await store.enqueue(
        [
            new("a1", key="a", due=T0 + 3),
            new("b1", key="b", due=T0 + 2),
            new("a2", key="a", due=T0 + 2),
            new("a3", key="a", due=T0 + 1),
            new("b2", key="b", due=T0 + 1),
        ]
    )
    order = await deliver_in_order(store, now=T0 + 10)
    assert [i for i in order if i.startswith("a")] == ["a1", "a2", "a3"]
    assert [i for i in order if i.startswith("b")] == ["b1", "b2"]


async def test_a_rescheduled_head_blocks_the_later_messages_of_its_key(store: Store) -> None:
    await store.enqueue([new("a1", key="a"), new("a2", key="a"), new("b1", key="b")])
    head = await claim_one(store, now=T0)
    assert head.id == "a1"
    assert await store.reschedule(head, next_attempt_at=T0 + 100, failure=failure(T0))
    # a2 is due (since T0) but waits behind a1; b1 is not held up.
    assert ids(await claim(store, now=T0 + 50)) == ["b1"]
    assert await claim(store, now=T0 + 99) == []
    assert await deliver_in_order(store, now=T0 + 100) == ["a1", "a2"]


async def test_a_buried_head_lets_the_next_message_of_its_key_through(store: Store) -> None:
    await store.enqueue([new("a1", key="a"), new("a2", key="a")])
    head = await claim_one(store)
    assert await store.bury(head, reason="rejected", failure=failure(T0), now=T0)
    assert ids(await claim(store)) == ["a2"]


# Bury


@pytest.mark.parametrize(
    "data",
    [
        '{"v": 1, "request": {"method": "POST"}}',
        "not JSON at all {",
        "",
        'accents éü, emoji 😀, "quotes", \\ and \r\n',
        "NUL \x00 inside",
    ],
    ids=["json", "not-json", "empty", "odd-characters", "nul"],
)
async def test_bury_moves_the_message_to_the_dead_letters(store: Store, data: str) -> None:
    if "\x00" in data and isinstance(store, PostgresStore):
        pytest.skip("PostgreSQL text cannot hold NUL; documents are JSON, which escapes it")
    await store.enqueue([new("m1", data=data, key="k", created_at=T0 - 7)])
    first = await claim_one(store, now=T0)
    assert await store.reschedule(first, next_attempt_at=T0 + 10, failure=failure(T0 + 1))
    second = await claim_one(store, now=T0 + 10)

    assert await store.bury(
        second,
        reason="exhausted",
        failure=Failure(at=T0 + 11, error="HTTP 500", status=500),
        now=T0 + 12,
    )

    letter = await store.dead_letter("m1")
    assert letter is not None
    assert letter.data == data
    assert (letter.id, letter.destination, letter.idempotency_key, letter.ordering_key) == (
        "m1",
        f"{API}/orders",
        "key-m1",
        "k",
    )
    assert letter.created_at == T0 - 7
    assert (letter.reason, letter.attempts, letter.dead_at) == ("exhausted", 2, T0 + 12)
    assert (letter.first_failure_at, letter.last_failure_at) == (T0 + 1, T0 + 11)
    assert (letter.last_status, letter.last_error) == (500, "HTTP 500")
    # In the dead letters and nowhere else.
    stats = await store.stats(now=T0 + 12)
    assert (stats.pending, stats.dead_letters, stats.delivered) == (0, 1, 0)
    assert await store.next_due() is None
    assert await claim(store, now=T0 + 10_000) == []


async def test_bury_without_a_failure_keeps_the_failures_recorded_before(store: Store) -> None:
    await store.enqueue([new("m1")])
    message = await claim_one(store, now=T0)
    assert await store.reschedule(
        message, next_attempt_at=T0 + 10, failure=Failure(at=T0 + 1, error="HTTP 429", status=429)
    )
    message = await claim_one(store, now=T0 + 10)
    assert await store.bury(message, reason="expired", failure=None, now=T0 + 10)
    letter = await store.dead_letter("m1")
    assert letter is not None
    assert (letter.reason, letter.attempts, letter.dead_at) == ("expired", 2, T0 + 10)
    assert (letter.first_failure_at, letter.last_failure_at) == (T0 + 1, T0 + 1)
    assert (letter.last_status, letter.last_error) == (429, "HTTP 429")


async def test_dead_letter_of_an_unknown_id_is_none(store: Store) -> None:
    await store.enqueue([new("pending")])
    assert await store.dead_letter("pending") is None
    assert await store.dead_letter("nope") is None


# Listing dead letters


async def _five_dead_letters(store: Store) -> None:
    await bury_new(store, "a", dead_at=T0 + 100, destination=f"{API}/orders")
    await bury_new(store, "b", dead_at=T0 + 200, destination=f"{API}/users", reason="rejected")
    await bury_new(store, "c", dead_at=T0 + 300, destination="https://other.example.org/x")
    await bury_new(store, "d", dead_at=T0 + 400, destination="send_email", reason="malformed")
    await bury_new(store, "e", dead_at=T0 + 500, destination="sendXemail", reason="malformed")


FILTERS = {
    "everything": (DeadLetterFilter(), ["a", "b", "c", "d", "e"]),
    "ids": (DeadLetterFilter(ids=("c", "a", "not-dead")), ["a", "c"]),
    "no-ids": (DeadLetterFilter(ids=()), []),
    "origin": (DeadLetterFilter(destination=API), ["a", "b"]),
    "url": (DeadLetterFilter(destination=f"{API}/users"), ["b"]),
    # A prefix, not a pattern: "_" matches only itself.
    "handler": (DeadLetterFilter(destination="send_"), ["d"]),
    "reason": (DeadLetterFilter(reason="exhausted"), ["a", "c"]),
    "since-inclusive": (DeadLetterFilter(since=T0 + 300), ["c", "d", "e"]),
    "until-exclusive": (DeadLetterFilter(until=T0 + 300), ["a", "b"]),
    "window": (DeadLetterFilter(since=T0 + 200, until=T0 + 400), ["b", "c"]),
    "all-conditions": (
        DeadLetterFilter(
            ids=("a", "b", "c"), destination="https://", reason="exhausted", since=T0 + 150
        ),
        ["c"],
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
async def test_dead_letters_and_count_apply_the_filter(store: Store, name: str) -> None:
    where, expected = FILTERS[name]
    await _five_dead_letters(store)
    assert ids(await store.dead_letters(where, limit=100)) == expected
    assert await store.count_dead_letters(where) == len(expected)


async def test_dead_letters_are_listed_oldest_first(store: Store) -> None:
    await _five_dead_letters(store)
    letters = await store.dead_letters(DeadLetterFilter(), limit=100)
    assert ids(letters) == ["a", "b", "c", "d", "e"]
    seqs = [letter.seq for letter in letters]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)


async def test_dead_letters_page_with_after_seq(store: Store) -> None:
    await _five_dead_letters(store)
    pages: list[list[str]] = []
    after: int | None = None
    while page := await store.dead_letters(DeadLetterFilter(), limit=2, after=after):
        pages.append(ids(page))
        after = page[-1].seq
    assert pages == [["a", "b"], ["c", "d"], ["e"]]


async def test_dead_letters_page_within_a_filter(store: Store) -> None:
    await _five_dead_letters(store)
    where = DeadLetterFilter(destination="https://")
    first = await store.dead_letters(where, limit=2)
    assert ids(first) == ["a", "b"]
    assert ids(await store.dead_letters(where, limit=2, after=first[-1].seq)) == ["c"]


# Restore


async def test_restore_moves_dead_letters_back_due_at_now_with_their_keys(store: Store) -> None:
    await store.enqueue([new("m1", data="kept as is {")])
    message = await claim_one(store, now=T0)
    assert await store.reschedule(message, next_attempt_at=T0, failure=failure(T0))
    message = await claim_one(store, now=T0)
    assert await store.bury(message, reason="exhausted", failure=failure(T0), now=T0 + 1)

    assert await store.restore(["m1"], now=T0 + 500) == ["m1"]

    assert await store.dead_letter("m1") is None
    assert await store.count_dead_letters(DeadLetterFilter()) == 0
    assert await store.next_due() == T0 + 500
    assert await claim(store, now=T0 + 499) == []
    restored = await claim_one(store, now=T0 + 500)
    assert (restored.id, restored.data, restored.idempotency_key) == (
        "m1",
        "kept as is {",
        "key-m1",
    )
    assert restored.attempts == 1  # reset to 0, then this claim


async def test_restore_with_keys_gives_those_messages_new_idempotency_keys(
    store: Store,
) -> None:
    await bury_new(store, "a", dead_at=T0 + 1)
    await bury_new(store, "b", dead_at=T0 + 2)
    restored = await store.restore(["a", "b"], now=T0 + 10, keys={"b": "replay-b"})
    assert sorted(restored) == ["a", "b"]
    keys = {m.id: m.idempotency_key for m in await claim(store, now=T0 + 10)}
    assert keys == {"a": "key-a", "b": "replay-b"}


async def test_restore_skips_ids_that_are_not_dead_letters(store: Store) -> None:
    await bury_new(store, "dead", dead_at=T0 + 1)
    await store.enqueue([new("pending")])
    restored = await store.restore(["unknown", "pending", "dead"], now=T0 + 10)
    assert restored == ["dead"]
    assert await store.restore(["dead"], now=T0 + 10) == []  # already back
    stats = await store.stats(now=T0 + 10)
    assert (stats.pending, stats.dead_letters) == (2, 0)
    assert sorted(ids(await claim(store, now=T0 + 10))) == ["dead", "pending"]


# Purge and trim


async def test_purge_deletes_only_the_matching_dead_letters(store: Store) -> None:
    await _five_dead_letters(store)
    await store.enqueue([new("pending")])
    assert await store.purge(DeadLetterFilter(reason="malformed")) == 2
    assert ids(await store.dead_letters(DeadLetterFilter(), limit=100)) == ["a", "b", "c"]
    assert await store.purge(DeadLetterFilter(destination=API, until=T0 + 150)) == 1
    assert ids(await store.dead_letters(DeadLetterFilter(), limit=100)) == ["b", "c"]
    assert await store.purge(DeadLetterFilter(ids=("zzz",))) == 0
    assert await store.purge(DeadLetterFilter()) == 2
    assert await store.count_dead_letters(DeadLetterFilter()) == 0
    assert (await store.stats(now=T0)).pending == 1  # the outbox is not touched


async def test_trim_to_max_count_keeps_the_newest(store: Store) -> None:
    await _five_dead_letters(store)
    assert await store.trim(max_count=2) == 3
    assert ids(await store.dead_letters(DeadLetterFilter(), limit=100)) == ["d", "e"]
    assert await store.trim(max_count=2) == 0
    assert await store.trim(max_count=0) == 2
    assert await store.count_dead_letters(DeadLetterFilter()) == 0


async def test_trim_older_than_drops_those_dead_before_it(store: Store) -> None:
    await _five_dead_letters(store)
    assert await store.trim(older_than=T0 + 300) == 2
    assert ids(await store.dead_letters(DeadLetterFilter(), limit=100)) == ["c", "d", "e"]


async def test_trim_with_both_limits_and_with_none(store: Store) -> None:
    await _five_dead_letters(store)
    assert await store.trim() == 0
    # a and b are too old; of c, d and e, only the newest 2 stay.
    assert await store.trim(max_count=2, older_than=T0 + 250) == 3
    assert ids(await store.dead_letters(DeadLetterFilter(), limit=100)) == ["d", "e"]


# Stats and next_due


async def test_stats_of_an_empty_store(store: Store) -> None:
    assert await store.stats(now=T0) == OutboxStats(
        pending=0,
        due=0,
        leased=0,
        dead_letters=0,
        delivered=0,
        oldest_created_at=None,
        next_attempt_at=None,
    )
    assert await store.next_due() is None


async def test_stats_counts_what_the_store_holds(store: Store) -> None:
    await store.enqueue([new("delivered", created_at=T0 - 900)])
    await store.complete([await claim_one(store, now=T0)])
    await bury_new(store, "dead", dead_at=T0 + 1)
    await store.enqueue(
        [
            new("leased", created_at=T0 - 500),
            new("due", due=T0 + 10, created_at=T0 - 400),
            new("head", key="k", due=T0 + 10),
            new("behind", key="k", due=T0 + 10),
            new("waiting", due=T0 + 3000),
        ]
    )
    assert ids(await claim(store, now=T0, limit=1, lease=200.0)) == ["leased"]

    assert await store.stats(now=T0 + 100) == OutboxStats(
        pending=5,
        due=2,  # "due" and "head"; "behind" waits for "head"
        leased=1,
        dead_letters=1,
        delivered=1,
        oldest_created_at=T0 - 500,
        next_attempt_at=T0 + 200,  # when the lease runs out
    )
    # Once the lease has run out, the message is due again, not leased.
    later = await store.stats(now=T0 + 200)
    assert (later.due, later.leased, later.next_attempt_at) == (3, 0, T0 + 3000)


async def test_next_due_is_the_earliest_time_a_message_becomes_claimable(store: Store) -> None:
    await store.enqueue([new("m1", due=T0 + 50), new("m2", due=T0 + 20)])
    assert await store.next_due() == T0 + 20
    await claim_one(store, now=T0 + 20, lease=10.0)
    assert await store.next_due() == T0 + 30  # m2's lease runs out before m1 is due
    await store.complete(await claim(store, now=T0 + 50))
    assert await store.next_due() is None


async def test_next_due_ignores_messages_waiting_behind_their_ordering_key(
    store: Store,
) -> None:
    await store.enqueue([new("head", key="k", due=T0), new("behind", key="k", due=T0 + 200)])
    head = await claim_one(store, now=T0)
    assert await store.reschedule(head, next_attempt_at=T0 + 300, failure=failure(T0))
    # "behind" is due at T0 + 200, but nothing is claimable before the head is.
    assert await store.next_due() == T0 + 300
    stats = await store.stats(now=T0 + 100)
    assert (stats.due, stats.next_attempt_at) == (0, T0 + 300)
