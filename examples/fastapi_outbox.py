"""A FastAPI app that stores an order and its outbox message in one transaction.

Run it offline (a stand-in answers for the fulfilment API), or against your own::

    python examples/fastapi_outbox.py
    EXAMPLE_FULFILMENT_URL=http://localhost:8080/fulfilments python examples/fastapi_outbox.py

or serve it (``pip install uvicorn``; ``EXAMPLE_DATABASE`` defaults to ``shop.db``)::

    EXAMPLE_FULFILMENT_URL=... uvicorn --app-dir examples --factory fastapi_outbox:app_from_env

``POST /orders`` writes the ``Order`` row with SQLAlchemy and, in the same transaction,
an outbox message: the ``POST`` that asks the fulfilment API to ship the order. Both are
committed together or not at all, so there is no order that is never shipped (the
process died between the commit and the call) and no shipment of an order that was
rolled back (the call went out, then the commit failed). A relay started in the app's
lifespan delivers the messages through ``resilient.http.Transport``: retried with
backoff while the fulfilment API is down, redelivered for hours if need be, and always
with the message's ``Idempotency-Key`` (``order-<id>``), so the API can deduplicate the
repeats that at-least-once delivery brings.

The outbox lives in the application's own SQLite file (its tables are ``resilient_*``).
`resilient.stores.SQLiteStore` must be opened before any transaction writes to it:
the lifespan does that first.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import resilient as rs
from resilient.http import Transport

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: How the relay calls the fulfilment API, within one delivery attempt. Between
#: attempts the outbox redelivers on its own schedule (rs.DeliveryOptions).
DELIVERY = rs.Pipeline(
    rs.Timeout(20.0),  # the whole attempt; keep it below the lease (60 s by default)
    rs.Retry(attempts=3),  # 408, 429, 5xx, connection errors; the message's key kept
    rs.CircuitBreaker(),  # one circuit per origin
    rs.Timeout(5.0),  # each request
    name="fulfilment",
)

#: What the warehouse holds; an order for more fails its last check.
STOCK = {"SKU-1": 10, "SKU-2": 3}


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(primary_key=True)
    sku: Mapped[str]
    quantity: Mapped[int]


class OrderIn(BaseModel):
    sku: str
    quantity: int = Field(gt=0)


def create_app(database: str | Path, fulfilment_url: str, next_transport: Any = None) -> FastAPI:
    """The app, its database in the SQLite file *database*.

    *next_transport* is what the relay's client sends through: None for the network,
    or a mock.
    """
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    client = httpx.AsyncClient(transport=Transport(DELIVERY, next_transport))
    outbox = rs.Outbox(rs.stores.SQLiteStore(database), client=client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await outbox.store.open()  # first: creates the outbox tables, outside any transaction
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with client, outbox.relay(workers=2) as relay:
            app.state.relay = relay
            yield  # serving; leaving stops the relay (in-flight deliveries finish)
        await outbox.store.close()
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.outbox = outbox

    @app.post("/orders", status_code=201)
    async def place_order(order_in: OrderIn) -> dict[str, Any]:
        order = Order(id=uuid.uuid4().hex, sku=order_in.sku, quantity=order_in.quantity)
        shipment = httpx.Request(
            "POST",
            fulfilment_url,
            json={"order": order.id, "sku": order.sku, "quantity": order.quantity},
            headers={"Idempotency-Key": f"order-{order.id}"},  # every delivery repeats it
        )
        async with sessions() as session, session.begin():  # commits, or rolls back on raise
            session.add(order)
            await session.flush()  # the INSERT, now: the order row first
            await outbox.send(shipment, connection=session)  # in the same transaction
            if order.quantity > STOCK.get(order.sku, 0):
                # A check that fails after the message was written (a stock reservation,
                # a credit check): raising rolls back the order and its message alike.
                raise HTTPException(409, f"only {STOCK.get(order.sku, 0)} of {order.sku} left")
        app.state.relay.wake()  # committed: deliver now, not at the relay's next poll
        return {"id": order.id, "sku": order.sku, "quantity": order.quantity}

    @app.get("/orders")
    async def list_orders() -> list[dict[str, Any]]:
        async with sessions() as session:
            orders = await session.scalars(select(Order))
            return [{"id": o.id, "sku": o.sku, "quantity": o.quantity} for o in orders]

    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory``: the database and the fulfilment API from the environment."""
    return create_app(
        os.environ.get("EXAMPLE_DATABASE", "shop.db"), os.environ["EXAMPLE_FULFILMENT_URL"]
    )


async def main(next_transport: Any = None) -> dict[str, Any]:
    """Place two orders and one that fails; wait for the deliveries; print and return it all."""
    fulfilment_url = os.environ.get("EXAMPLE_FULFILMENT_URL")
    if fulfilment_url is None:  # nothing configured: an in-process stand-in
        fulfilment_url = "https://fulfilment.example/shipments"
        next_transport = next_transport or httpx.MockTransport(offline_fulfilment)
    with tempfile.TemporaryDirectory() as directory:
        app = create_app(Path(directory) / "shop.db", fulfilment_url, next_transport)
        shop = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop")
        async with app.router.lifespan_context(app), shop:  # what a server does on start-up
            placed = [
                await shop.post("/orders", json={"sku": "SKU-1", "quantity": 2}),
                await shop.post("/orders", json={"sku": "SKU-2", "quantity": 1}),
            ]
            refused = await shop.post("/orders", json={"sku": "SKU-2", "quantity": 5})
            delivered = await app.state.relay.drain(timeout=30)
            orders = (await shop.get("/orders")).json()
            stats = await app.state.outbox.stats()
    for response in [*placed, refused]:
        print(f"POST /orders -> {response.status_code} {response.json()}")
    print(f"{len(orders)} orders stored; outbox drained: {delivered}, {stats.pending} pending")
    return {
        "placed": [response.json() for response in placed],
        "refused": refused.status_code,
        "orders": orders,
        "drained": delivered,
        "dead_letters": stats.dead_letters,
    }


def offline_fulfilment(request: httpx.Request) -> httpx.Response:
    """The fulfilment API's stand-in: accepts every shipment."""
    key = request.headers["Idempotency-Key"]
    print(f"fulfilment <- {request.method} {request.url.path} key {key}")
    return httpx.Response(202, json={"accepted": True})


if __name__ == "__main__":
    asyncio.run(main())
