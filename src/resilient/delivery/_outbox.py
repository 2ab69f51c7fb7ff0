"""`Outbox`: write first, deliver later, with the same policies; lose nothing."""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any, TypeVar, overload

import httpx
import structlog

from .._clock import wall
from .._pipeline import Pipeline, Policy
from ..http._redact import Redaction
from ..policies._validate import check_seconds
from ..stores._protocol import OutboxStore, Store
from ..stores._records import NewMessage
from ._dead_letters import DeadLetters
from ._message import encode_handler, encode_http
from ._options import DeliveryOptions, check_text
from ._relay import Delivery, Relay

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..stores._records import OutboxStats

__all__ = ["Handler", "Outbox"]

_log = structlog.get_logger("resilient.outbox")


Handler = TypeVar("Handler", bound="Callable[[Delivery], Awaitable[Any]]")
"""An outbox handler: an async function of one `Delivery`."""


class Outbox:
    """Messages written to a store first, then delivered by a relay, with policies.

    ::

        store = resilient.stores.SQLiteStore("resilient.db")
        outbox = resilient.Outbox(store, client=client)

        await outbox.send(httpx.Request("POST", url, json=order))   # durable on return

        @outbox.handler("crm.sync")
        async def sync(delivery: resilient.Delivery) -> None: ...

        await outbox.send("crm.sync", {"customer": 42})

        async with outbox.relay(workers=4):
            ...   # delivering until the block ends

    Delivery is at least once: a message is removed only after it was
    delivered, so a crash between delivering and recording it means one more
    delivery, carrying the same idempotency key.

    Args:
        store: Where messages and dead letters are kept.
        client: The ``httpx.AsyncClient`` that delivers HTTP messages; its
            transport holds the policies (``resilient.http.Transport``) and its
            auth, default headers and event hooks supply credentials. By
            default the relay makes one with ``resilient.http.Transport()``.
        policy: The policies around each handler call; by default a 30 s
            `Timeout`.
        options: Redelivery, leases, limits and retention (`DeliveryOptions`).
        redaction: What counts as a credential, refused at enqueue and hidden
            in logs and dead letters.

    Raises:
        TypeError: If an argument has the wrong type.

    """

    def __init__(
        self,
        store: Store,
        *,
        client: httpx.AsyncClient | None = None,
        policy: Pipeline | Policy | None = None,
        options: DeliveryOptions | None = None,
        redaction: Redaction | None = None,
    ) -> None:
        if not isinstance(store, OutboxStore):
            msg = f"Outbox: store must be an outbox store (resilient.stores), got {store!r}"
            raise TypeError(msg)
        if client is not None and not callable(getattr(client, "send", None)):
            msg = f"Outbox: client must be an httpx.AsyncClient, got {client!r}"
            raise TypeError(msg)
        if policy is not None and not isinstance(policy, (Pipeline, Policy)):
            msg = f"Outbox: policy must be a Pipeline or a policy, got {policy!r}"
            raise TypeError(msg)
        if options is not None and not isinstance(options, DeliveryOptions):
            msg = f"Outbox: options must be DeliveryOptions, got {options!r}"
            raise TypeError(msg)
        if redaction is not None and not isinstance(redaction, Redaction):
            msg = f"Outbox: redaction must be a Redaction, got {redaction!r}"
            raise TypeError(msg)
        self.store = store
        self.client = client
        self.policy = policy
        self.options = options if options is not None else DeliveryOptions()
        self.redaction = redaction if redaction is not None else Redaction()
        self.dead_letters = DeadLetters(store, self.options)
        """Inspect, replay and purge the messages that could not be delivered."""
        self.handlers: dict[str, Callable[[Delivery], Awaitable[Any]]] = {}
        self._relays: set[Relay] = set()

    def __repr__(self) -> str:
        return f"Outbox({self.store!r})"

    def handler(self, name: str) -> Callable[[Handler], Handler]:
        """Register the async function that delivers messages sent to *name*.

        ::

            @outbox.handler("crm.sync")
            async def sync(delivery: resilient.Delivery) -> None:
                await crm.upsert(delivery.payload, key=delivery.idempotency_key)

        The handler succeeds by returning; it asks for redelivery by raising,
        and for no redelivery by raising `UndeliverableError`.

        Raises:
            TypeError: If *name* is not a non-empty str.
            ValueError: If a handler is already registered under *name*.

        """
        check_text("Outbox.handler", "name", name)
        if name in self.handlers:
            msg = f"Outbox.handler: a handler is already registered as {name!r}"
            raise ValueError(msg)

        def register(fn: Handler) -> Handler:
            self.handlers[name] = fn
            return fn

        return register

    @overload
    async def send(
        self,
        message: httpx.Request,
        *,
        ordering_key: str | None = None,
        delay: float = 0.0,
        connection: Any = None,
    ) -> str: ...

    @overload
    async def send(
        self,
        message: str,
        payload: Any,
        *,
        ordering_key: str | None = None,
        idempotency_key: str | None = None,
        delay: float = 0.0,
        connection: Any = None,
    ) -> str: ...

    async def send(
        self,
        message: httpx.Request | str,
        payload: Any = None,
        *,
        ordering_key: str | None = None,
        idempotency_key: str | None = None,
        delay: float = 0.0,
        connection: Any = None,
    ) -> str:
        """Put a message in the outbox; return its id once it is durable.

        *message* is an ``httpx.Request`` (its body in memory), or the name of
        a handler with its JSON *payload*. Every message gets an idempotency
        key, minted here (or the ``Idempotency-Key`` the request carries, or
        *idempotency_key* for a handler message) and reused by every delivery
        attempt, redelivery and replay.

        With *connection* (the application's own database connection, such as
        a ``sqlite3.Connection`` to the store's file), the message is written in
        the caller's open transaction: it will be delivered if that transaction
        commits and never if it rolls back. The id is returned before the
        commit.

        Args:
            message: The request, or a handler name.
            payload: The handler's JSON payload.
            ordering_key: Messages with the same key are delivered one at a
                time, in order of sending.
            idempotency_key: The key of a handler message (default: minted).
            delay: Seconds to wait before the first delivery.
            connection: The caller's connection, for a transactional enqueue.

        Raises:
            SecretInMessageError: If the message would persist a credential.
            TypeError: If an argument has the wrong type, or *connection* is
                given to a store that cannot write within it.

        """
        check_seconds("Outbox.send", "delay", delay)
        check_text("Outbox.send", "ordering_key", ordering_key, allow_none=True)
        if isinstance(message, httpx.Request):
            if payload is not None or idempotency_key is not None:
                msg = (
                    "Outbox.send: an HTTP request carries its own body and key; payload= and "
                    "idempotency_key= are for handler messages (set the request's "
                    f"{self.options.idempotency_header} header instead)"
                )
                raise TypeError(msg)
            encoded = encode_http(
                message,
                redaction=self.redaction,
                idempotency_header=self.options.idempotency_header,
                secrets=self.options.secrets,
            )
            if encoded.stripped:
                _log.warning("outbox.credentials_stripped", headers=list(encoded.stripped))
            document, destination = encoded.document, encoded.message.destination
            key = encoded.idempotency_key
        elif isinstance(message, str):
            check_text("Outbox.send", "idempotency_key", idempotency_key, allow_none=True)
            handler_message, document = encode_handler(message, payload, redaction=self.redaction)
            destination, key = handler_message.destination, idempotency_key
        else:
            msg = (
                "Outbox.send: message must be an httpx.Request or a handler name, "
                f"got {type(message).__name__}"
            )
            raise TypeError(msg)
        now = wall()
        record = NewMessage(
            id=uuid.uuid4().hex,
            data=document,
            destination=destination,
            idempotency_key=key or secrets.token_urlsafe(24),
            ordering_key=ordering_key,
            created_at=now,
            next_attempt_at=now + delay,
        )
        if connection is None:
            await self.store.enqueue([record])
            self.wake()
        else:
            within = getattr(self.store, "enqueue_within", None)
            if within is None:
                store = type(self.store).__name__
                msg = f"Outbox.send: {store} cannot write within a caller's transaction"
                raise TypeError(msg)
            await within(connection, [record])
        return record.id

    def relay(self, *, workers: int = 4, name: str | None = None) -> Relay:
        """A relay that delivers this outbox's messages; use it as ``async with``.

        Args:
            workers: Concurrent delivery loops.
            name: Identifies the relay's leases in the store (default: host, pid
                and a random suffix).

        """
        return Relay(self, workers=workers, name=name)

    async def stats(self) -> OutboxStats:
        """What the store holds now: pending, due, leased, dead letters, delivered."""
        return await self.store.stats(now=wall())

    def wake(self) -> None:
        """Make this process's running relays claim now.

        `send` does it itself; a `send(..., connection=...)` cannot (the message
        exists only once the caller commits), so call this after the commit for
        immediate delivery rather than at the relays' next poll.
        """
        for relay in self._relays:
            relay.wake()
