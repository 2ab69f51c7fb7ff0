"""An outbox relay over PostgreSQL in a process of its own (a helper, not tests).

``python tests/fleet_relay_process.py URL --schema S [--lease S] [--workers N]
[--batch N] [--poll S]`` runs a relay over the `PostgresStore` at *URL*, schema *S*,
until the process is killed, or until it receives SIGTERM, on which it stops the way
an application shuts down (deliveries in flight finish, claimed messages are given
back). It prints ``relay ready <pid>`` once the relay runs.

Every request it sends carries ``X-Relay: <pid>``, so the receiver can tell which
process delivered what. As in ``tests/outbox_relay_process.py`` the client is a plain
``httpx.AsyncClient``: every failed attempt goes through the outbox's own
redelivery, not through a `Retry` inside one attempt.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import anyio
import httpx

from resilient import Backoff
from resilient.delivery import DeliveryOptions, Outbox
from resilient.stores import PostgresStore

RELAY_HEADER = "X-Relay"


async def relay(url: str, schema: str, args: argparse.Namespace) -> None:
    """Deliver the outbox in *schema* until SIGTERM (or until the process is killed)."""
    options = DeliveryOptions(
        lease=args.lease,
        backoff=Backoff.constant(0.05),
        poll_interval=args.poll,
        batch=args.batch,
        grace=5.0,
    )
    store = PostgresStore(url, schema=schema, pool_size=args.workers + 2)
    headers = {RELAY_HEADER: str(os.getpid())}
    async with httpx.AsyncClient(timeout=5.0, headers=headers) as client:
        outbox = Outbox(store, client=client, options=options)
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            running = outbox.relay(workers=args.workers)
            async with running:
                print(f"relay ready {os.getpid()}", flush=True)  # noqa: T201 -- to the log file
                if args.announce:  # tell the test, which waits on it rather than polling
                    await client.post(args.announce)
                async for _ in signals:
                    break
        await store.close()
    print(f"relay stopped: {running.statistics}", flush=True)  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the relay."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the PostgreSQL URL")
    parser.add_argument("--schema", required=True, help="the store's schema")
    parser.add_argument("--lease", type=float, default=2.0, help="lease in seconds (2.0)")
    parser.add_argument("--workers", type=int, default=4, help="relay workers (4)")
    parser.add_argument("--batch", type=int, default=32, help="messages per claim (32)")
    parser.add_argument("--poll", type=float, default=0.05, help="poll interval (0.05)")
    parser.add_argument("--announce", help="a URL to POST to once the relay runs")
    args = parser.parse_args(argv)
    # psycopg's async connections need asyncio (anyio's default backend).
    anyio.run(lambda: relay(args.url, args.schema, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
