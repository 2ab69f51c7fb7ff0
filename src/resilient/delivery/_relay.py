"""`Relay`: workers that claim messages under leases and deliver them through the policies."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio
import httpx
import structlog

from .._clock import wall
from .._exceptions import BulkheadFullError, CircuitOpenError, RateLimitedError
from .._pipeline import Pipeline
from ..http._classification import RETRY_STATUSES
from ..http._errors import IdempotencyKeyMismatchError, RetryAfterTooLongError
from ..http._retry_after import parse_server_delay
from ..policies._timeout import Timeout
from ..policies._validate import check_count
from ..stores._records import Failure, StoredMessage
from ._errors import MalformedMessageError, UndeliverableError
from ._message import HandlerMessage, HttpMessage, decode

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from ._outbox import Outbox

__all__ = ["Delivery", "Relay", "RelayStatistics"]

_log = structlog.get_logger("resilient.outbox")

_MAX_ERROR = 1000
"""Longest error text kept with a message (a server's HTML error page is not a reason)."""

_NOT_ATTEMPTED = (CircuitOpenError, BulkheadFullError, RateLimitedError)
"""Refusals that kept the call from the downstream: they cost a message no attempt."""

_RETENTION_EVERY = 60.0
"""Seconds between the relay's dead-letter retention sweeps."""


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt of a handler message, as the handler receives it.

    Attributes:
        message_id: The message's id (stable across attempts and replays).
        payload: The JSON payload it was sent with.
        idempotency_key: The same for every attempt, redelivery and replay of
            the message: make the handler's effect conditional on it.
        attempt: 1 for the first delivery attempt.

    """

    message_id: str
    payload: Any
    idempotency_key: str
    attempt: int


@dataclass
class RelayStatistics:
    """What a relay has done since it started.

    Attributes:
        claimed: Messages claimed.
        delivered: Messages delivered (and removed from the outbox).
        rescheduled: Failed attempts put back for redelivery.
        dead_lettered: Messages moved to the dead letters (all reasons).
        malformed: Of those, messages whose stored row could not be read.
        released: Claimed messages given back unattempted (at shutdown).
        lost_leases: Messages whose lease ran out before the relay recorded
            their outcome (another worker may deliver them again).
        store_errors: Store operations that failed (the relay waits and goes on).

    """

    claimed: int = 0
    delivered: int = 0
    rescheduled: int = 0
    dead_lettered: int = 0
    malformed: int = 0
    released: int = 0
    lost_leases: int = 0
    store_errors: int = 0


@dataclass(frozen=True)
class _Verdict:
    kind: Literal["delivered", "retry", "reject"]
    failure: Failure | None = None
    wait: float | None = None  # the server's (or the breaker's) requested delay
    refund: bool = False  # nothing reached the downstream
    reason: str = "rejected"  # the dead letter's reason, for a rejection


_DELIVERED = _Verdict("delivered")


class Relay:
    """Delivers an outbox's messages: claim under a lease, deliver, record, repeat.

    Made by `Outbox.relay`; use it as an async context manager (the workers run
    for the duration of the block) or call `run` to deliver until cancelled.

    On the way out it stops claiming, lets deliveries in flight finish for up
    to ``grace`` seconds, cancels the rest and gives their messages back, so
    another relay delivers them at once. A relay that is killed instead leaves
    its leases to run out, after which other relays redeliver the messages
    with the same idempotency keys.

    Args:
        outbox: The outbox to deliver.
        workers: Concurrent delivery loops.
        name: Names this relay's leases in the store.

    Raises:
        ValueError: If *workers* is not a positive int.

    """

    def __init__(self, outbox: Outbox, *, workers: int = 4, name: str | None = None) -> None:
        check_count("Relay", "workers", workers)
        self.outbox = outbox
        self.workers = workers
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.statistics = RelayStatistics()
        self._stopping = False
        self._wakeup: anyio.Event | None = None
        self._running = 0
        self._finished: anyio.Event | None = None
        self._progress: anyio.Event | None = None  # set when a worker records an outcome
        self._group: Any = None
        self._client: httpx.AsyncClient | None = None
        self._own_client = False
        policy = outbox.policy if outbox.policy is not None else Timeout(30.0)
        self._pipeline = policy if isinstance(policy, Pipeline) else Pipeline(policy)

    def __repr__(self) -> str:
        return f"Relay({self.name!r}, workers={self.workers})"

    # Lifecycle

    async def __aenter__(self) -> Relay:  # noqa: PYI034 -- Self needs Python 3.11
        if self._group is not None:
            msg = "Relay: already running"
            raise RuntimeError(msg)
        await self.outbox.store.open()
        self._client = self.outbox.client
        if self._client is None:
            from ..http._transport import Transport  # noqa: PLC0415 -- only when a relay runs

            self._client = httpx.AsyncClient(transport=Transport())
            self._own_client = True
        self._stopping = False
        self._wakeup = anyio.Event()
        self._finished = anyio.Event()
        self._running = self.workers
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        for index in range(self.workers):
            group.start_soon(self._worker, index)
        group.start_soon(self._housekeeping)
        if callable(getattr(self.outbox.store, "notifications", None)):
            group.start_soon(self._listen)
        self.outbox._relays.add(self)  # noqa: SLF001 -- the outbox wakes its relays
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group, self._group = self._group, None
        self.outbox._relays.discard(self)  # noqa: SLF001
        # Shielded: a relay cancelled by its caller still lets work in flight finish.
        with anyio.CancelScope(shield=True):
            self._stopping = True
            self.wake()
            assert self._finished is not None  # noqa: S101 -- set in __aenter__
            with anyio.move_on_after(self.outbox.options.grace):
                await self._finished.wait()
        # Workers still delivering now are cancelled; they give their messages back.
        group.cancel_scope.cancel()
        try:
            swallowed = bool(await group.__aexit__(exc_type, exc, tb))
        finally:
            if self._own_client and self._client is not None:
                with anyio.CancelScope(shield=True):
                    await self._client.aclose()
            self._client = None
        return swallowed

    async def run(self) -> None:
        """Deliver until cancelled, then stop as the context manager does."""
        async with self:
            await anyio.sleep_forever()

    def wake(self) -> None:
        """Make idle workers claim now (an enqueue in this process calls it)."""
        event = self._wakeup
        if event is not None:
            self._wakeup = anyio.Event()
            event.set()

    async def drain(self, *, timeout: float | None = None) -> bool:  # noqa: ASYNC109 -- a bound on the whole wait
        """Wait until the outbox is empty: every message delivered or dead-lettered.

        Messages waiting for a redelivery are waited for. Returns ``False`` if
        *timeout* seconds passed first.
        """
        if self._group is None:
            msg = "Relay.drain: the relay is not running (use it as `async with`)"
            raise RuntimeError(msg)
        with anyio.move_on_after(timeout):
            while True:
                progress = self._progress = anyio.Event()
                stats = await self.outbox.store.stats(now=wall())
                if stats.pending == 0:
                    return True
                with anyio.move_on_after(self.outbox.options.poll_interval):
                    await progress.wait()
        return False

    # Workers

    async def _worker(self, index: int) -> None:
        del index
        options = self.outbox.options
        store = self.outbox.store
        stats = self.statistics
        # Delivered messages are removed with the next claim, in its transaction:
        # one commit and one round trip per batch instead of two.
        done: list[StoredMessage] = []
        try:
            while not self._stopping:
                # A wake-up during the claim sets this event: the idle wait below
                # must see it, not the fresh one wake() put in its place.
                wakeup = self._wakeup
                try:
                    if done:
                        completed, batch = await store.complete_and_claim(
                            done, self.name, limit=options.batch, lease=options.lease, now=wall()
                        )
                        stats.delivered += completed
                        stats.lost_leases += len(done) - completed
                        done = []
                        self._progressed()
                    else:
                        batch = await store.claim(
                            self.name, limit=options.batch, lease=options.lease, now=wall()
                        )
                except Exception as exc:  # noqa: BLE001 -- a store outage must not end the relay
                    stats.store_errors += 1
                    _log.error("outbox.store_error", operation="claim", error=_error_text(exc))
                    await self._idle(options.poll_interval)
                    continue
                if not batch:
                    await self._idle(await self._until_due(), wakeup)
                    continue
                stats.claimed += len(batch)
                done = await self._deliver_batch(batch)
        finally:
            if done:
                with anyio.CancelScope(shield=True):
                    await self._settle(done, [])
            self._running -= 1
            if self._running == 0 and self._finished is not None:
                self._finished.set()

    async def _until_due(self) -> float:
        poll = self.outbox.options.poll_interval
        try:
            due = await self.outbox.store.next_due()
        except Exception:  # noqa: BLE001 -- the claim will report a store outage
            return poll
        if due is None:
            return poll
        wait = due - wall()
        # <= 0: messages are due but none claimable (an ordering key's head is
        # leased); poll rather than spin.
        return poll if wait <= 0 else min(poll, wait)

    async def _idle(self, seconds: float, event: anyio.Event | None = None) -> None:
        if event is None:
            event = self._wakeup
        if event is None or self._stopping:
            return
        with anyio.move_on_after(seconds):
            await event.wait()

    async def _deliver_batch(self, batch: list[StoredMessage]) -> list[StoredMessage]:
        """Deliver *batch*; return the delivered messages, not yet removed from the store."""
        options = self.outbox.options
        waiting = list(reversed(batch))
        done: list[StoredMessage] = []
        current: StoredMessage | None = None
        finished = False
        try:
            while waiting and not self._stopping:
                message = waiting[-1]
                # Give back what a slow batch would otherwise hold past its lease.
                if wall() > message.lease_until - options.lease / 4:
                    break
                current = waiting.pop()
                verdict = await self._deliver(current)
                if verdict is _DELIVERED:
                    done.append(current)
                else:
                    await self._record(current, verdict)
                current = None
            finished = True
        finally:
            with anyio.CancelScope(shield=True):
                if current is not None:
                    waiting.append(current)  # cancelled mid-delivery: let another relay retry
                # Interrupted: record what was delivered now; else the next claim does.
                await self._settle([] if finished else done, waiting)
        return done

    async def _settle(self, done: list[StoredMessage], waiting: list[StoredMessage]) -> None:
        store = self.outbox.store
        stats = self.statistics
        if not done and not waiting:
            return
        try:
            if done:
                completed = await store.complete(done)
                stats.delivered += completed
                stats.lost_leases += len(done) - completed
            if waiting:
                stats.released += await store.release(waiting, now=wall())
        except Exception as exc:  # noqa: BLE001 -- leases run out; the messages come back
            stats.store_errors += 1
            _log.error("outbox.store_error", operation="complete", error=_error_text(exc))
        finally:
            self._progressed()

    async def _record(self, message: StoredMessage, verdict: _Verdict) -> None:
        options = self.outbox.options
        store = self.outbox.store
        failure = verdict.failure
        assert failure is not None  # noqa: S101 -- every non-delivery carries one
        now = failure.at
        log = _log.bind(
            message_id=message.id,
            destination=message.destination,
            attempt=message.attempts,
            status=failure.status,
            failure=failure.error,
        )
        delay = options.backoff.delay(max(1, message.attempts))
        if verdict.wait is not None:
            delay = max(delay, min(verdict.wait, options.max_server_delay))
        reason: str | None = None
        if verdict.kind == "reject":
            reason = verdict.reason
        elif not verdict.refund and message.attempts >= options.max_attempts:
            reason = "exhausted"
        elif options.max_age is not None and now + delay - message.created_at > options.max_age:
            reason = "expired"  # the next attempt would come too late to be of use
        try:
            if reason is not None:
                if await store.bury(message, reason=reason, failure=failure, now=now):
                    self.statistics.dead_lettered += 1
                    if reason == "malformed":
                        self.statistics.malformed += 1
                    log.warning("outbox.dead_lettered", reason=reason)
                else:
                    self.statistics.lost_leases += 1
                return
            if await store.reschedule(
                message, next_attempt_at=now + delay, failure=failure, refund=verdict.refund
            ):
                self.statistics.rescheduled += 1
                log.info("outbox.rescheduled", delay=round(delay, 3))
            else:
                self.statistics.lost_leases += 1
        except Exception as exc:  # noqa: BLE001 -- the lease runs out and the message returns
            self.statistics.store_errors += 1
            log.error(  # noqa: TRY400 -- the store's traceback tells an operator nothing
                "outbox.store_error", operation="record", error=_error_text(exc)
            )
        finally:
            self._progressed()

    def _progressed(self) -> None:
        if self._progress is not None:
            self._progress.set()

    async def _deliver(self, message: StoredMessage) -> _Verdict:
        try:
            if not message.idempotency_key:
                raise MalformedMessageError("no idempotency key")  # noqa: TRY301
            decoded = decode(message.data)
        except MalformedMessageError as exc:
            _log.error("outbox.malformed", message_id=message.id, error=str(exc))
            return _Verdict("reject", Failure(wall(), f"malformed: {exc}"), reason="malformed")
        if isinstance(decoded, HttpMessage):
            return await self._send(decoded, message)
        return await self._call(decoded, message)

    async def _send(self, http: HttpMessage, message: StoredMessage) -> _Verdict:  # noqa: PLR0911
        client = self._client
        assert client is not None  # noqa: S101 -- set while running
        request = client.build_request(
            http.method, http.url, headers=list(http.headers), content=http.body
        )
        request.headers[self.outbox.options.idempotency_header] = message.idempotency_key
        try:
            response = await client.send(request)
        except RetryAfterTooLongError as exc:
            return _Verdict("retry", self._failure(exc, request), wait=exc.retry_after)
        except _NOT_ATTEMPTED as exc:
            wait = getattr(exc, "retry_after", None)
            return _Verdict("retry", self._failure(exc, request), wait=wait, refund=True)
        except IdempotencyKeyMismatchError as exc:
            return _Verdict("reject", self._failure(exc, request))
        except Exception as exc:  # noqa: BLE001 -- any other failure is worth another attempt
            return _Verdict("retry", self._failure(exc, request))
        status = response.status_code
        if status < 300:  # noqa: PLR2004
            return _DELIVERED
        failure = Failure(wall(), f"HTTP {status} {response.reason_phrase}".strip(), status)
        if status in RETRY_STATUSES or status >= 500 or status == 409:  # noqa: PLR2004
            server = parse_server_delay(
                response.headers, now=failure.at, cap=self.outbox.options.max_server_delay
            )
            return _Verdict("retry", failure, wait=None if server is None else server.delay)
        return _Verdict("reject", failure)

    async def _call(self, handler: HandlerMessage, message: StoredMessage) -> _Verdict:
        fn = self.outbox.handlers.get(handler.name)
        if fn is None:
            failure = Failure(wall(), f"no handler is registered as {handler.name!r}")
            return _Verdict("reject", failure, reason="unknown-handler")
        delivery = Delivery(message.id, handler.payload, message.idempotency_key, message.attempts)
        try:
            await self._pipeline.run(fn, delivery)
        except UndeliverableError as exc:
            return _Verdict("reject", self._failure(exc))
        except _NOT_ATTEMPTED as exc:
            wait = getattr(exc, "retry_after", None)
            return _Verdict("retry", self._failure(exc), wait=wait, refund=True)
        except Exception as exc:  # noqa: BLE001 -- a handler's failure asks for redelivery
            return _Verdict("retry", self._failure(exc))
        return _DELIVERED

    def _failure(self, exc: BaseException, request: httpx.Request | None = None) -> Failure:
        # Scrubbed whole, then cut: a secret across the cut would leave its first part.
        scrub = (
            None
            if request is None
            else self.outbox.redaction.scrubber(request.headers, request.url)
        )
        return Failure(wall(), _error_text(exc, scrub))

    async def _housekeeping(self) -> None:
        while not self._stopping:
            try:
                await self.outbox.dead_letters.enforce_retention()
            except Exception as exc:  # noqa: BLE001 -- retention can wait for the next sweep
                self.statistics.store_errors += 1
                _log.error("outbox.store_error", operation="retention", error=_error_text(exc))
            await self._idle_for(_RETENTION_EVERY)

    async def _listen(self) -> None:
        # A store that announces enqueues (PostgreSQL's LISTEN/NOTIFY) wakes idle
        # workers at once; when the announcements fail, polling carries on alone.
        store: Any = self.outbox.store
        while not self._stopping:
            try:
                async for _ in store.notifications():
                    self.wake()
            except Exception as exc:  # noqa: BLE001 -- polling is the fallback
                _log.warning("outbox.listen_failed", error=_error_text(exc))
            await self._idle_for(self.outbox.options.poll_interval)

    async def _idle_for(self, seconds: float) -> None:
        # Wakes with the workers, so a stopping relay ends its housekeeping at once.
        deadline = wall() + seconds
        while not self._stopping and wall() < deadline:
            await self._idle(deadline - wall())


def _error_text(exc: BaseException, scrub: Callable[[str], str] | None = None) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if scrub is not None:
        text = scrub(text)
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"
