"""The outbox, its relay and its dead letters, on the memory and SQLite stores, in virtual time."""

from __future__ import annotations

import itertools
import json
import sqlite3
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest

import resilient as rs
from resilient._clock import sleep, wall
from resilient.delivery import DeadLetters, describe_letter
from resilient.stores import MemoryStore, SQLiteStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

pytestmark = pytest.mark.anyio

FAST = rs.DeliveryOptions(
    backoff=rs.Backoff.constant(5.0), poll_interval=0.5, max_attempts=4, lease=30.0, grace=2.0
)


class Receiver:
    """A MockTransport handler that records requests and answers from a script."""

    def __init__(self, *answers: int | Exception | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(wall())
        answer: Any = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return httpx.Response(answer)

    @property
    def keys(self) -> list[str | None]:
        return [r.headers.get("idempotency-key") for r in self.requests]

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self), **kwargs)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[rs.stores.Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sqlite_store = SQLiteStore(tmp_path / "outbox.db")
    yield sqlite_store
    assert await sqlite_store.integrity_check() == ["ok"]
    await sqlite_store.close()


def post(url: str = "https://api.example.com/orders", **kwargs: Any) -> httpx.Request:
    kwargs.setdefault("json", {"order": 1})
    return httpx.Request("POST", url, **kwargs)


async def drain(
    outbox: rs.Outbox, *, workers: int = 2, within: float = 3600.0
) -> rs.delivery.Relay:
    async with outbox.relay(workers=workers) as relay:
        assert await relay.drain(timeout=within)
    return relay


# Sending


async def test_send_is_durable_before_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = rs.Outbox(SQLiteStore(path))
    message_id = await outbox.send(post())
    # Another connection (another process, as far as SQLite is concerned) sees it committed.
    with sqlite3.connect(path) as other:
        rows = other.execute("SELECT id FROM resilient_outbox").fetchall()
    assert rows == [(message_id,)]


async def test_a_transactional_enqueue_is_delivered_on_commit_and_never_on_rollback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.db"
    receiver = Receiver()
    outbox = rs.Outbox(SQLiteStore(path), client=receiver.client())
    await outbox.store.open()  # at the application's start: creates the outbox's tables
    app = sqlite3.connect(path)
    app.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
    app.commit()

    app.execute("INSERT INTO orders (item) VALUES ('kept')")
    await outbox.send(post(json={"item": "kept"}), connection=app)
    app.commit()

    app.execute("INSERT INTO orders (item) VALUES ('dropped')")
    await outbox.send(post(json={"item": "dropped"}), connection=app)
    app.rollback()
    app.close()

    await drain(outbox)
    assert [json.loads(r.content) for r in receiver.requests] == [{"item": "kept"}]
    assert (await outbox.stats()).pending == 0


async def test_a_transactional_enqueue_needs_the_schema_in_place(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    outbox = rs.Outbox(SQLiteStore(path))
    app = sqlite3.connect(path)
    with pytest.raises(RuntimeError, match=r"schema version 0, not \d+; open the store"):
        await outbox.send(post(), connection=app)
    app.close()


async def test_a_transactional_enqueue_needs_a_store_that_can_write_within_it() -> None:
    outbox = rs.Outbox(MemoryStore())
    with pytest.raises(TypeError, match="cannot write within a caller's transaction"):
        await outbox.send(post(), connection=object())


async def test_every_delivery_carries_the_key_minted_at_enqueue(store: rs.stores.Store) -> None:
    receiver = Receiver(503, 503)
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    await outbox.send(post())
    await outbox.send(post())
    await drain(outbox)
    keys = receiver.keys
    assert len(keys) == 4
    assert len(set(keys)) == 2  # two messages, each with one key over all its attempts
    assert all(key is not None and len(key) >= 32 for key in keys)


async def test_a_request_keeps_the_idempotency_key_it_carries(store: rs.stores.Store) -> None:
    receiver = Receiver(500)
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    await outbox.send(post(headers={"Idempotency-Key": "order-77"}))
    await drain(outbox)
    assert receiver.keys == ["order-77", "order-77"]


@pytest.mark.parametrize(
    ("request_", "named"),
    [
        (post(headers={"Authorization": "Bearer canary-token-1"}), "authorization"),
        (post(headers={"Cookie": "session=canary"}), "cookie"),
        (post(headers={"X-Api-Key": "canary"}), "x-api-key"),
        (post("https://api.example.com/x?api_key=canary"), "api_key"),
        (post("https://user:canary@api.example.com/x"), "user information"),
        (post(json={"user": "a", "password": "canary"}), "password"),
        (post(json=None, data={"client_secret": "canary"}), "client_secret"),  # a form
        (post("https://api.example.com/x?format=json;api_key=canary"), "api_key"),
    ],
)
async def test_credentials_are_refused_at_enqueue(request_: httpx.Request, named: str) -> None:
    store = MemoryStore()
    outbox = rs.Outbox(store)
    with pytest.raises(rs.SecretInMessageError, match=named):
        await outbox.send(request_)
    assert (await store.stats(now=0.0)).pending == 0


async def test_strip_drops_credential_headers_and_the_relay_client_supplies_auth(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    path = tmp_path / "outbox.db"
    receiver = Receiver()
    client = receiver.client(auth=httpx.BasicAuth("relay-user", "relay-pass"))
    options = rs.DeliveryOptions(secrets="strip")
    outbox = rs.Outbox(SQLiteStore(path), client=client, options=options)
    await outbox.send(post(headers={"Authorization": "Bearer canary-token-2", "X-Trace": "t1"}))
    assert [e["headers"] for e in logs if e["event"] == "outbox.credentials_stripped"] == [
        ["authorization"]
    ]
    assert b"canary-token-2" not in path.read_bytes()
    await drain(outbox)
    (sent,) = receiver.requests
    assert sent.headers["authorization"].startswith("Basic ")
    assert sent.headers["x-trace"] == "t1"


async def test_a_handler_payload_with_a_secret_field_is_refused() -> None:
    outbox = rs.Outbox(MemoryStore())
    with pytest.raises(rs.SecretInMessageError, match="token"):
        await outbox.send("crm.sync", {"customer": 1, "auth": {"token": "canary"}})


async def test_bad_messages_are_refused_with_the_reason() -> None:
    outbox = rs.Outbox(MemoryStore())

    async def stream() -> AsyncIterator[bytes]:
        yield b"x"

    with pytest.raises(TypeError, match="stream"):
        await outbox.send(httpx.Request("POST", "https://api.example.com/", content=stream()))
    with pytest.raises(TypeError, match="JSON"):
        await outbox.send("crm.sync", {"when": object()})
    with pytest.raises(TypeError, match="JSON"):
        await outbox.send("crm.sync", {"ratio": float("nan")})
    with pytest.raises(TypeError, match="ordering_key"):
        await outbox.send("crm.sync", {}, ordering_key="")
    with pytest.raises(TypeError, match="payload= and idempotency_key= are for handler"):
        await outbox.send(post(), {"a": 1})  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="delay"):
        await outbox.send("crm.sync", {}, delay=-1)


def test_a_handler_name_is_registered_once() -> None:
    outbox = rs.Outbox(MemoryStore())

    @outbox.handler("crm.sync")
    async def first(delivery: rs.Delivery) -> None: ...

    with pytest.raises(ValueError, match=r"already registered as 'crm\.sync'"):
        outbox.handler("crm.sync")
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        outbox.handler("")
    assert outbox.handlers == {"crm.sync": first}


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("max_attempts", 0, ValueError),
        ("max_attempts", 1.5, TypeError),
        ("max_age", 0, ValueError),
        ("backoff", 2.0, TypeError),
        ("max_server_delay", -1, ValueError),
        ("lease", 0, ValueError),
        ("batch", 0, ValueError),
        ("poll_interval", float("inf"), ValueError),
        ("grace", -0.5, ValueError),
        ("secrets", "log", ValueError),
        ("idempotency_header", "", TypeError),
        ("dead_letter_limit", -1, ValueError),
        ("dead_letter_max_age", float("nan"), ValueError),
        ("replay_rate", 0, ValueError),
    ],
)
def test_invalid_delivery_options_name_the_field(field: str, value: Any, error: type) -> None:
    with pytest.raises(error, match=field):
        rs.DeliveryOptions(**{field: value})


def test_outbox_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="store must be an outbox store"):
        rs.Outbox("resilient.db")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"client must be an httpx\.AsyncClient"):
        rs.Outbox(MemoryStore(), client=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options must be DeliveryOptions"):
        rs.Outbox(MemoryStore(), options={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        rs.Outbox(MemoryStore()).relay(workers=0)


# Redelivery


async def test_a_retryable_failure_is_rescheduled_on_the_persisted_backoff(
    store: rs.stores.Store,
) -> None:
    receiver = Receiver(503, 502)
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    await outbox.send(post())
    relay = await drain(outbox)
    assert len(receiver.requests) == 3
    gaps = [b - a for a, b in itertools.pairwise(receiver.times)]
    assert all(5.0 <= gap < 6.0 for gap in gaps), gaps  # constant 5 s backoff, polled at 0.5 s
    assert relay.statistics.rescheduled == 2
    assert relay.statistics.delivered == 1


async def test_the_reschedule_is_written_to_the_store(store: rs.stores.Store) -> None:
    receiver = Receiver(503)
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    await outbox.send(post())
    async with outbox.relay(workers=1):
        while not receiver.requests:
            await sleep(0.1)
        await sleep(1.0)  # the failure is recorded; the redelivery is 4 s away
        stats = await outbox.stats()
    assert stats.pending == 1
    assert stats.due == 0
    assert stats.next_attempt_at == pytest.approx(receiver.times[0] + 5.0, abs=0.01)


async def test_retry_after_sets_the_next_attempt_up_to_the_cap(store: rs.stores.Store) -> None:
    def busy(seconds: str) -> Callable[[httpx.Request], httpx.Response]:
        return lambda _: httpx.Response(429, headers={"Retry-After": seconds})

    receiver = Receiver(busy("120"), busy("100000"))
    options = rs.DeliveryOptions(
        backoff=rs.Backoff.constant(1.0), poll_interval=60.0, max_server_delay=600.0
    )
    outbox = rs.Outbox(store, client=receiver.client(), options=options)
    await outbox.send(post())
    await drain(outbox, within=7200)
    first, second = (b - a for a, b in itertools.pairwise(receiver.times))
    assert 120.0 <= first < 121.0
    assert 600.0 <= second < 601.0  # the server asked for 27 hours; the cap is 10 minutes


async def test_a_non_retryable_status_becomes_a_rejected_dead_letter(
    store: rs.stores.Store,
) -> None:
    receiver = Receiver(422)
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    message_id = await outbox.send(post())
    await drain(outbox)
    letter = await outbox.dead_letters.get(message_id)
    assert letter is not None
    assert (letter.reason, letter.attempts, letter.last_status) == ("rejected", 1, 422)
    assert letter.last_error == "HTTP 422 Unprocessable Entity"
    assert letter.idempotency_key == receiver.keys[0]


async def test_a_message_out_of_attempts_becomes_an_exhausted_dead_letter(
    store: rs.stores.Store,
) -> None:
    receiver = Receiver(503, 503, 500, httpx.ConnectError("refused"))
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    message_id = await outbox.send(post())
    relay = await drain(outbox)
    letter = await outbox.dead_letters.get(message_id)
    assert letter is not None
    assert (letter.reason, letter.attempts) == ("exhausted", 4)
    assert letter.last_error == "ConnectError: refused"
    assert letter.last_status is None
    assert letter.first_failure_at == pytest.approx(receiver.times[0], abs=0.01)
    assert letter.last_failure_at == pytest.approx(receiver.times[-1], abs=0.01)
    assert json.loads(letter.data)["url"] == "https://api.example.com/orders"
    assert relay.statistics.dead_lettered == 1


async def test_a_message_older_than_max_age_expires(store: rs.stores.Store) -> None:
    receiver = Receiver(*[503] * 10)
    options = rs.DeliveryOptions(backoff=rs.Backoff.constant(60.0), max_age=150.0)
    outbox = rs.Outbox(store, client=receiver.client(), options=options)
    message_id = await outbox.send(post())
    await drain(outbox)
    letter = await outbox.dead_letters.get(message_id)
    assert letter is not None
    assert letter.reason == "expired"
    assert letter.attempts == 3  # at 0, 60 and 120 s; the next, at 180 s, would be too late


async def test_an_open_circuit_delays_without_spending_attempts(store: rs.stores.Store) -> None:
    receiver = Receiver(*[503] * 3)
    breaker = rs.CircuitBreaker(window=rs.ConsecutiveFailures(3), open_for=30.0)
    transport = rs.http.Transport(
        rs.Pipeline(rs.Retry(attempts=3, backoff=rs.Backoff.constant(0.1)), breaker),
        httpx.MockTransport(receiver),
    )
    options = rs.DeliveryOptions(backoff=rs.Backoff.constant(1.0), max_attempts=2)
    outbox = rs.Outbox(store, client=httpx.AsyncClient(transport=transport), options=options)
    await outbox.send(post("https://down.example.com/a"))
    await outbox.send(post("https://down.example.com/b"))
    await drain(outbox)
    # Attempt 1 of the first message met three 503s and opened the circuit; the second
    # message then met the open circuit, which cost it no attempt. After 30 s both went.
    assert len(receiver.requests) == 5
    assert await outbox.dead_letters.count() == 0


async def test_handler_messages_are_redelivered_until_they_succeed(
    store: rs.stores.Store,
) -> None:
    outbox = rs.Outbox(store, options=FAST)
    seen: list[rs.Delivery] = []

    @outbox.handler("crm.sync")
    async def sync(delivery: rs.Delivery) -> None:
        seen.append(delivery)
        if delivery.attempt < 3:
            raise ConnectionError("crm is down")

    message_id = await outbox.send("crm.sync", {"customer": 42}, idempotency_key="cust-42")
    await drain(outbox)
    assert [d.attempt for d in seen] == [1, 2, 3]
    assert {(d.message_id, d.idempotency_key) for d in seen} == {(message_id, "cust-42")}
    assert seen[0].payload == {"customer": 42}


async def test_undeliverable_and_unknown_handlers_become_dead_letters(
    store: rs.stores.Store,
) -> None:
    outbox = rs.Outbox(store, options=FAST)

    @outbox.handler("crm.sync")
    async def sync(delivery: rs.Delivery) -> None:
        raise rs.UndeliverableError("customer 42 was deleted")

    rejected = await outbox.send("crm.sync", {"customer": 42})
    unknown = await outbox.send("billing.charge", {"amount": 1})
    await drain(outbox)
    first = await outbox.dead_letters.get(rejected)
    second = await outbox.dead_letters.get(unknown)
    assert first is not None
    assert second is not None
    assert (first.reason, first.last_error) == (
        "rejected",
        "UndeliverableError: customer 42 was deleted",
    )
    assert second.reason == "unknown-handler"


async def test_the_handler_policy_bounds_each_attempt(store: rs.stores.Store) -> None:
    outbox = rs.Outbox(store, policy=rs.Timeout(2.0), options=FAST)
    started: list[float] = []

    @outbox.handler("slow")
    async def slow(delivery: rs.Delivery) -> None:
        started.append(wall())
        if delivery.attempt == 1:
            await sleep(10.0)

    await outbox.send("slow", {})
    await drain(outbox)
    assert len(started) == 2
    assert 7.0 <= started[1] - started[0] < 8.0  # timed out at 2 s, redelivered 5 s later


# Malformed rows


async def test_malformed_rows_become_dead_letters_and_the_relay_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    store = SQLiteStore(path)
    receiver = Receiver()
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    await outbox.send(post(json={"n": 1}))
    bad = {
        "not-json": "{oops",
        "a-list": "[1, 2]",
        "unknown-version": json.dumps({"v": 99, "kind": "http"}),
        "unknown-kind": json.dumps({"v": 1, "kind": "smtp"}),
        "missing-url": json.dumps({"v": 1, "kind": "http", "method": "GET", "headers": []}),
        "bad-headers": json.dumps(
            {
                "v": 1,
                "kind": "http",
                "method": "GET",
                "url": "https://a.example/",
                "headers": [["x"]],
                "body": "",
                "encoding": "utf-8",
            }
        ),
        "no-key": json.dumps({"v": 1, "kind": "handler", "name": "x", "payload": {}}),
    }
    with sqlite3.connect(path) as raw:
        for name, data in bad.items():
            raw.execute(
                "INSERT INTO resilient_outbox (id, data, destination, idempotency_key, "
                "created_at, next_attempt_at) VALUES (?, ?, 'somewhere', ?, 0, 0)",
                (name, data, "" if name == "no-key" else f"key-{name}"),
            )
    await outbox.send(post(json={"n": 2}))
    relay = await drain(outbox)
    assert sorted(json.loads(r.content)["n"] for r in receiver.requests) == [1, 2]
    assert relay.statistics.malformed == len(bad)
    for name, data in bad.items():
        letter = await outbox.dead_letters.get(name)
        assert letter is not None, name
        assert letter.reason == "malformed"
        assert letter.data == data  # kept byte for byte
        assert letter.last_error is not None
        assert letter.last_error.startswith("malformed: ")
    assert await store.integrity_check() == ["ok"]


# Ordering, leases, shutdown


async def test_messages_with_an_ordering_key_are_delivered_one_at_a_time_in_order(
    store: rs.stores.Store,
) -> None:
    outbox = rs.Outbox(store, options=FAST)
    delivered: list[tuple[str, int]] = []
    in_flight: dict[str, int] = {}
    failed_once: set[int] = set()

    @outbox.handler("ledger")
    async def ledger(delivery: rs.Delivery) -> None:
        account, n = delivery.payload["account"], delivery.payload["n"]
        in_flight[account] = in_flight.get(account, 0) + 1
        assert in_flight[account] == 1, "two messages of one key in flight"
        try:
            await sleep(0.1)
            if n == 2 and n not in failed_once:
                failed_once.add(n)
                raise ConnectionError("try again")
            delivered.append((account, n))
        finally:
            in_flight[account] -= 1

    for n in range(6):
        for account in ("a", "b"):
            await outbox.send("ledger", {"account": account, "n": n}, ordering_key=account)
    await drain(outbox, workers=4)
    for account in ("a", "b"):
        assert [n for acct, n in delivered if acct == account] == list(range(6))


async def test_a_leased_message_waits_for_its_lease_then_goes_with_the_same_key(
    store: rs.stores.Store,
) -> None:
    receiver = Receiver()
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    await outbox.send(post())
    # A relay that claimed the message and died: its lease has 30 s to run.
    (claimed,) = await store.claim("dead-relay", limit=10, lease=30.0, now=wall())
    start = wall()
    await drain(outbox)
    assert receiver.keys == [claimed.idempotency_key]
    assert 30.0 <= receiver.times[0] - start < 31.0


async def test_shutdown_lets_work_in_flight_finish_within_the_grace_period(
    store: rs.stores.Store,
) -> None:
    outbox = rs.Outbox(store, options=FAST)  # grace 2 s
    finished: list[int] = []

    @outbox.handler("job")
    async def job(delivery: rs.Delivery) -> None:
        await sleep(delivery.payload["seconds"])
        finished.append(delivery.payload["seconds"])

    await outbox.send("job", {"seconds": 1.0})
    async with outbox.relay(workers=1):
        await sleep(0.1)  # claimed and running
    assert finished == [1.0]
    stats = await outbox.stats()
    assert (stats.pending, stats.delivered) == (0, 1)


async def test_shutdown_past_the_grace_period_gives_messages_back(store: rs.stores.Store) -> None:
    outbox = rs.Outbox(store, options=FAST)  # grace 2 s
    attempts: list[int] = []

    @outbox.handler("job")
    async def job(delivery: rs.Delivery) -> None:
        attempts.append(delivery.attempt)
        if len(attempts) == 1:
            await sleep(100.0)

    for _ in range(3):
        await outbox.send("job", {})
    async with outbox.relay(workers=1) as relay:
        await sleep(0.1)
    stopped_at = wall()
    assert relay.statistics.released == 3  # the one cancelled and the two not started
    stats = await outbox.stats()
    assert (stats.pending, stats.leased, stats.due) == (3, 0, 3)
    # The next relay takes them at once, and the cancelled attempt was not counted.
    await drain(outbox)
    assert attempts == [1, 1, 1, 1]
    assert wall() - stopped_at < 1.0


async def test_an_enqueue_wakes_an_idle_relay(store: rs.stores.Store) -> None:
    receiver = Receiver()
    options = rs.DeliveryOptions(poll_interval=30.0)
    outbox = rs.Outbox(store, client=receiver.client(), options=options)
    async with outbox.relay(workers=2) as relay:
        await sleep(5.0)  # idle, polling every 30 s
        sent_at = wall()
        await outbox.send(post())
        assert await relay.drain(timeout=60)
    assert receiver.times[0] - sent_at < 0.1


class FlakyStore(MemoryStore):
    """A store whose claims fail a few times, as a database restarting would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def claim(self, owner: str, *, limit: int, lease: float, now: float) -> Any:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return await super().claim(owner, limit=limit, lease=lease, now=now)


async def test_store_errors_do_not_stop_the_relay(logs: list[dict[str, Any]]) -> None:
    receiver = Receiver()
    store = FlakyStore(failures=3)
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    await outbox.send(post())
    relay = await drain(outbox, workers=1)
    assert relay.statistics.store_errors == 3
    assert len(receiver.requests) == 1
    errors = [e for e in logs if e["event"] == "outbox.store_error"]
    assert len(errors) == 3
    assert errors[0]["error"] == "OperationalError: database is locked"


# Dead letters


async def fill_dead_letters(outbox: rs.Outbox, count: int, *, status: int = 400) -> list[str]:
    ids = [await outbox.send(post(f"https://api.example.com/n/{n}")) for n in range(count)]
    original = outbox.client
    outbox.client = Receiver(*[status] * count).client()
    await drain(outbox, workers=1)
    outbox.client = original
    return ids


async def test_dead_letters_page_and_filter(store: rs.stores.Store) -> None:
    outbox = rs.Outbox(store, options=FAST)
    ids = await fill_dead_letters(outbox, 5)
    letters: list[rs.stores.DeadLetter] = []
    after = None
    while True:
        page = await outbox.dead_letters.list(limit=2, after=after)
        letters += page.letters
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert sorted(letter.id for letter in letters) == sorted(ids)
    assert len(letters) == 5
    dead = outbox.dead_letters
    assert await dead.count() == 5
    assert await dead.count(reason="rejected") == 5
    assert await dead.count(reason="exhausted") == 0
    assert await dead.count(destination="https://api.example.com/n/3") == 1
    assert await dead.count(destination="https://other.example.com") == 0
    assert await dead.count(since=wall() + 1) == 0
    assert await dead.count(until=wall() + 1) == 5


async def test_replay_keeps_the_key_and_delivers_again(store: rs.stores.Store) -> None:
    outbox = rs.Outbox(store, options=FAST)
    (message_id,) = await fill_dead_letters(outbox, 1)
    letter = await outbox.dead_letters.get(message_id)
    assert letter is not None
    receiver = Receiver()
    outbox.client = receiver.client()
    assert await outbox.dead_letters.replay(message_id) == [message_id]
    await drain(outbox)
    assert receiver.keys == [letter.idempotency_key]
    assert await outbox.dead_letters.count() == 0


async def test_replay_with_new_keys_mints_them(store: rs.stores.Store) -> None:
    outbox = rs.Outbox(store, options=FAST)
    ids = await fill_dead_letters(outbox, 2)
    old = {i: (await outbox.dead_letters.get(i)).idempotency_key for i in ids}  # type: ignore[union-attr]
    receiver = Receiver()
    outbox.client = receiver.client()
    assert sorted(await outbox.dead_letters.replay(everything=True, new_keys=True)) == sorted(ids)
    await drain(outbox)
    assert len(set(receiver.keys)) == 2
    assert not set(receiver.keys) & set(old.values())


async def test_replay_is_rate_limited(store: rs.stores.Store) -> None:
    outbox = rs.Outbox(store, options=FAST)
    await fill_dead_letters(outbox, 25)
    start = wall()
    replayed = await outbox.dead_letters.replay(reason="rejected", rate=10.0)
    assert len(replayed) == 25
    assert 2.0 <= wall() - start < 3.0  # 25 at 10/s: chunks of 10, 10, 5


async def test_replay_and_purge_need_a_selection(store: rs.stores.Store) -> None:
    dead = rs.Outbox(store).dead_letters
    with pytest.raises(ValueError, match="name the dead letters"):
        await dead.replay()
    with pytest.raises(ValueError, match="name the dead letters"):
        await dead.purge()
    with pytest.raises(ValueError, match="rate"):
        await dead.replay(everything=True, rate=0)


async def test_purge_deletes_only_what_it_selects(store: rs.stores.Store) -> None:
    outbox = rs.Outbox(store, options=FAST)
    ids = await fill_dead_letters(outbox, 4)
    assert await outbox.dead_letters.purge(ids[:2]) == 2
    assert await outbox.dead_letters.purge(ids[0]) == 0
    assert await outbox.dead_letters.count() == 2
    assert await outbox.dead_letters.purge(everything=True) == 2


async def test_retention_keeps_the_newest_up_to_the_limit_and_age(store: rs.stores.Store) -> None:
    keep_all = rs.DeliveryOptions(dead_letter_limit=None, dead_letter_max_age=None)
    ids = await fill_dead_letters(rs.Outbox(store, options=keep_all), 5)
    assert await rs.Outbox(store, options=keep_all).dead_letters.enforce_retention() == 0
    options = rs.DeliveryOptions(dead_letter_limit=3, dead_letter_max_age=3600.0)
    outbox = rs.Outbox(store, options=options)
    assert await outbox.dead_letters.enforce_retention() == 2
    kept = (await outbox.dead_letters.list()).letters
    assert [letter.id for letter in kept] == ids[2:]
    await sleep(3601.0)
    assert await outbox.dead_letters.enforce_retention() == 3
    assert await outbox.dead_letters.count() == 0


async def test_the_relay_enforces_retention(store: rs.stores.Store) -> None:
    options = rs.DeliveryOptions(dead_letter_limit=1)
    outbox = rs.Outbox(store, options=options)
    await fill_dead_letters(outbox, 3)
    async with outbox.relay(workers=1):
        await sleep(1.0)
    assert await outbox.dead_letters.count() == 1


def test_dead_letters_is_the_outboxes_queue() -> None:
    outbox = rs.Outbox(MemoryStore())
    assert isinstance(outbox.dead_letters, DeadLetters)


async def test_a_described_dead_letter_shows_the_request_redacted(store: rs.stores.Store) -> None:
    redaction = rs.http.Redaction(headers={"x-tenant"})
    outbox = rs.Outbox(store, redaction=rs.http.Redaction(headers=set()), options=FAST)
    (message_id,) = [
        await outbox.send(post(headers={"X-Tenant": "tenant-canary"}, json={"note": "n"}))
    ]
    outbox.client = Receiver(400).client()
    await drain(outbox)
    letter = await outbox.dead_letters.get(message_id)
    assert letter is not None
    view = describe_letter(letter, redaction)
    assert view["request"]["method"] == "POST"
    assert ["x-tenant", "[REDACTED]"] in view["request"]["headers"]
    assert view["request"]["body"] == {"note": "n"}
    assert "tenant-canary" not in json.dumps(view)


async def test_a_described_dead_letter_hides_the_secret_fields_of_a_form() -> None:
    # Stored by an outbox told that no field is secret; shown with the defaults.
    outbox = rs.Outbox(MemoryStore(), redaction=rs.http.Redaction(body_fields=set()), options=FAST)
    request = post(json=None, data={"grant_type": "client_credentials", "client_secret": "canary"})
    message_id = await outbox.send(request)
    outbox.client = Receiver(400).client()
    await drain(outbox)
    letter = await outbox.dead_letters.get(message_id)
    assert letter is not None
    view = describe_letter(letter)
    assert view["request"]["body"] == {
        "grant_type": ["client_credentials"],
        "client_secret": "[REDACTED]",
    }
    assert "canary" not in json.dumps(view)


async def test_a_failure_is_scrubbed_whole_before_it_is_cut_to_length() -> None:
    api_key = "ak_live_0123456789abcdefghijklmnopqrstuvwxyz"

    def quote_the_key(request: httpx.Request) -> httpx.Response:
        # The key straddles the 1000th character of "ConnectError: <message>".
        padding = "x" * (1000 - len("ConnectError: ") - 20)
        raise httpx.ConnectError(f"{padding}{request.headers['x-api-key']}", request=request)

    client = httpx.AsyncClient(
        transport=httpx.MockTransport(quote_the_key), headers={"X-Api-Key": api_key}
    )
    outbox = rs.Outbox(MemoryStore(), client=client, options=rs.DeliveryOptions(max_attempts=1))
    message_id = await outbox.send(post())
    await drain(outbox)
    letter = await outbox.dead_letters.get(message_id)
    assert letter is not None
    assert letter.last_error is not None
    assert api_key[:8] not in letter.last_error
    assert "[REDACTED]" in letter.last_error


async def test_a_json_body_sent_as_a_form_is_shown_as_json_with_its_secrets_hidden() -> None:
    outbox = rs.Outbox(MemoryStore(), redaction=rs.http.Redaction(body_fields=set()), options=FAST)
    request = post(
        json=None,
        content=b'{"user": "ada", "password": "canary"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    message_id = await outbox.send(request)
    outbox.client = Receiver(400).client()
    await drain(outbox)
    letter = await outbox.dead_letters.get(message_id)
    assert letter is not None
    assert describe_letter(letter)["request"]["body"] == {"user": "ada", "password": "[REDACTED]"}


@pytest.mark.parametrize(
    "url",
    ["https://api.example.com/items?fields=name;key", "https://api.example.com/s?tags=oauth;token"],
)
async def test_a_semicolon_list_with_a_secret_word_in_it_is_no_secret(url: str) -> None:
    store = MemoryStore()
    await rs.Outbox(store).send(post(url))
    assert (await store.stats(now=0.0)).pending == 1


async def dead_letter_of_a_stored_row(data: str) -> rs.stores.DeadLetter:
    """The dead letter a relay makes of a row holding *data*, written to the store as it is."""
    store = MemoryStore()
    row = rs.stores.NewMessage(
        id="m1",
        data=data,
        destination="x",
        idempotency_key="k",
        ordering_key=None,
        created_at=0.0,
        next_attempt_at=0.0,
    )
    await store.enqueue([row])
    outbox = rs.Outbox(store, options=FAST)
    await drain(outbox)
    letter = await outbox.dead_letters.get("m1")
    assert letter is not None
    return letter


async def test_a_dead_letter_with_a_lone_surrogate_is_described_as_malformed() -> None:
    letter = await dead_letter_of_a_stored_row(json.dumps({"v": 0, "body": "\ud800"}))
    view = describe_letter(letter)
    assert "malformed" in view
    assert view["raw"] == letter.data


async def test_a_malformed_dead_letter_is_described_with_its_raw_data() -> None:
    view = describe_letter(await dead_letter_of_a_stored_row("{broken"))
    assert view["raw"] == "{broken"
    assert view["malformed"].startswith("not JSON")


async def test_relay_drain_needs_a_running_relay() -> None:
    relay = rs.Outbox(MemoryStore()).relay()
    with pytest.raises(RuntimeError, match="not running"):
        await relay.drain()


async def test_relay_run_delivers_until_cancelled(store: rs.stores.Store) -> None:
    receiver = Receiver()
    outbox = rs.Outbox(store, client=receiver.client(), options=FAST)
    await outbox.send(post())
    with anyio.move_on_after(5.0):
        await outbox.relay().run()
    assert len(receiver.requests) == 1
    assert (await outbox.stats()).pending == 0


class SlowEmptyClaims(MemoryStore):
    """A store whose empty claims take a moment: a wake-up can arrive during one."""

    def __init__(self) -> None:
        super().__init__()
        self.claiming: anyio.Event | None = None

    async def claim(self, owner: str, *, limit: int, lease: float, now: float) -> Any:
        batch = await super().claim(owner, limit=limit, lease=lease, now=now)
        if self.claiming is not None and not batch:
            self.claiming.set()
            await sleep(0.01)
        return batch


async def test_a_wake_up_during_a_claim_is_not_lost() -> None:
    receiver = Receiver()
    store = SlowEmptyClaims()
    options = rs.DeliveryOptions(poll_interval=30.0)
    outbox = rs.Outbox(store, client=receiver.client(), options=options)
    async with outbox.relay(workers=1) as relay:
        await sleep(1.0)
        store.claiming = anyio.Event()
        relay.wake()
        await store.claiming.wait()  # the worker is inside a claim that will find nothing
        sent_at = wall()
        await outbox.send(post())  # wakes the relay while it claims
        assert await relay.drain(timeout=60)
    assert receiver.times[0] - sent_at < 1.0  # not the 30 s poll


async def test_outbox_wake_after_a_transactional_send(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    receiver = Receiver()
    options = rs.DeliveryOptions(poll_interval=30.0)
    outbox = rs.Outbox(SQLiteStore(path), client=receiver.client(), options=options)
    await outbox.store.open()
    async with outbox.relay(workers=1) as relay:
        await sleep(1.0)  # idle, polling every 30 s
        app = sqlite3.connect(path)
        await outbox.send(post(), connection=app)
        app.commit()
        app.close()
        committed_at = wall()
        outbox.wake()
        assert await relay.drain(timeout=60)
    assert receiver.times[0] - committed_at < 1.0
