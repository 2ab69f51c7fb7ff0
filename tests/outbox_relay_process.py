"""An outbox relay in a process of its own, for tests that kill it (a helper, not tests).

``python tests/outbox_relay_process.py DB [--lease S] [--workers N]`` runs a relay
over the `SQLiteStore` file *DB* until the process is killed, or until it receives
SIGTERM, on which it stops the way an application shuts down: it leaves the relay's
``async with`` block, so deliveries in flight finish and claimed messages are given
back. It prints ``relay ready`` once the relay runs.

The relay's client is a plain ``httpx.AsyncClient``, not one with
``resilient.http.Transport``: a Transport's `Retry` would repeat a 503 within one
delivery attempt, so the receiver's failures would never reach the outbox. With a
plain client every failed attempt goes through the outbox's own path (the store's
``reschedule``, a redelivery after the backoff), which is what the crash tests are
about.
"""

from __future__ import annotations

import argparse
import signal
import sys

import anyio
import httpx

from resilient import Backoff
from resilient.delivery import DeliveryOptions, Outbox
from resilient.stores import SQLiteStore


async def relay(path: str, *, lease: float, workers: int) -> None:
    """Deliver the outbox in *path* until SIGTERM (or until the process is killed)."""
    options = DeliveryOptions(
        lease=lease,
        backoff=Backoff.constant(0.05),
        poll_interval=0.05,
        grace=5.0,
    )
    async with httpx.AsyncClient(timeout=5.0) as client:
        outbox = Outbox(SQLiteStore(path), client=client, options=options)
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            running = outbox.relay(workers=workers)
            async with running:
                print("relay ready", flush=True)  # noqa: T201 -- to the test's log file
                async for _ in signals:
                    break
        await outbox.store.close()
    print(f"relay stopped: {running.statistics}", flush=True)  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the relay."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", help="the SQLiteStore file")
    parser.add_argument("--lease", type=float, default=2.0, help="lease in seconds (2.0)")
    parser.add_argument("--workers", type=int, default=4, help="relay workers (4)")
    args = parser.parse_args(argv)
    anyio.run(lambda: relay(args.db, lease=args.lease, workers=args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
