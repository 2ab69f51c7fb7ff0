"""``resilient demo``: a flaky HTTP server, a workload through the pipeline and the outbox.

The run, in one event loop:

1. `DemoServer` serves two origins on 127.0.0.1: a *partner* API that goes
   through the `Schedule`'s phases (healthy, a 5xx burst, 429 with
   Retry-After, an outage, recovery) and a steady *catalog* API.
2. Users' calls go through ``httpx.AsyncClient(transport=resilient.http.Transport(...))``
   (Timeout > Retry > CircuitBreaker per origin > Timeout), and messages go into
   an `Outbox` on a SQLite file, delivered by its relay through the same client.
3. After the last phase the relay drains the outbox; the report then puts the
   client's counts next to the server's records and the store's statistics.

`run` is the whole run, for Python callers and tests; `run_demo` is the command.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import click
import httpx
import structlog

from .._clock import wall
from ..delivery import DeliveryOptions, Outbox
from ..http._transport import Transport
from ..policies._backoff import Backoff
from ..stores import SQLiteStore
from . import _demo_plot
from ._demo_live import Display, Snapshot, display_for, quiet
from ._demo_report import Report, build_report, store_url
from ._demo_server import ORIGINS, DemoServer, Schedule
from ._demo_workload import Tally, Transition, WireCounter, demo_pipeline, drive, plan
from ._output import console, print_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ..policies._circuit import CircuitTransition
    from ..stores._records import OutboxStats

__all__ = ["DEFAULT_CALLS", "SHORT_CALLS", "SHORT_SCALE", "Outcome", "Settings", "run", "run_demo"]

SHORT_SCALE: Final = 0.15
"""``--short`` runs every phase, wait and window at this fraction of its length."""
DEFAULT_CALLS: Final = 600
SHORT_CALLS: Final = 200
_WORKERS: Final = 2
_TICK: Final = 0.25
"""Seconds between samples of the outbox and updates of the display (full length)."""


@dataclass(frozen=True)
class Settings:
    """One run's settings.

    Attributes:
        db: The SQLite file of the outbox (created; it must not exist).
        seed: Seeds the workload and the server's failures.
        calls: The users' HTTP calls, spread over the phases.
        short: Every duration at `SHORT_SCALE` of its length (for tests).
        store_is_temporary: Whether *db* is in a directory the demo made.

    """

    db: Path
    seed: int = 7
    calls: int = DEFAULT_CALLS
    short: bool = False
    store_is_temporary: bool = False

    @property
    def scale(self) -> float:
        """What every duration is multiplied by."""
        return SHORT_SCALE if self.short else 1.0


@dataclass
class Outcome:
    """What a run produced: the report, and the raw material it was made from."""

    report: Report
    server: DemoServer
    tally: Tally
    depth: list[tuple[float, int, int]] = field(default_factory=list)
    """``(seconds, pending, dead letters)`` samples of the outbox."""
    seconds: float = 0.0


def _delivery_options(scale: float) -> DeliveryOptions:
    # Redeliveries a few hundred ms apart, so that messages held back by the outage
    # are delivered within seconds of the recovery, not minutes as in production.
    return DeliveryOptions(
        backoff=Backoff.exponential(0.5 * scale, cap=2.0 * scale, jitter="equal"),
        poll_interval=max(0.05, 0.5 * scale),
        lease=30.0,
        grace=2.0,
    )


async def run(settings: Settings, display: Display | None = None) -> Outcome:
    """Run the demo: serve, drive the workload, drain the outbox, and report."""
    show = display if display is not None else quiet()
    schedule = Schedule(settings.scale)
    tally = Tally()
    t0 = anyio.current_time()

    def elapsed() -> float:
        return anyio.current_time() - t0

    server = DemoServer(schedule, settings.seed, elapsed)
    store = SQLiteStore(settings.db)
    depth: list[tuple[float, int, int]] = []
    try:
        await store.open()
        async with anyio.create_task_group() as serving:
            await server.start(serving)
            origins_by_port = {port: origin for origin, port in server.ports.items()}

            def on_transition(change: CircuitTransition) -> None:
                key = change.key
                port = key[2] if isinstance(key, tuple) else None
                origin = origins_by_port.get(port) if isinstance(port, int) else None
                if origin is None:  # pragma: no cover -- every call goes to one of ours
                    return
                transition = Transition(elapsed(), origin, change.old.value, change.new.value)
                tally.transitions.append(transition)
                show.transition(transition)

            wire = WireCounter(httpx.AsyncHTTPTransport(), tally, origins_by_port)
            transport = Transport(demo_pipeline(settings.scale, tally, on_transition), wire)
            urls = {origin: server.url(origin) for origin in ORIGINS}
            work = plan(schedule, calls=settings.calls, seed=settings.seed)
            async with httpx.AsyncClient(transport=transport) as client:
                outbox = Outbox(store, client=client, options=_delivery_options(settings.scale))
                t0 = anyio.current_time()  # the phases start now, with the first call
                async with (
                    outbox.relay(workers=_WORKERS) as relay,
                    anyio.create_task_group() as watch,
                ):
                    watching = functools.partial(
                        _watch,
                        schedule=schedule,
                        store=store,
                        tally=tally,
                        show=show,
                        elapsed=elapsed,
                        depth=depth,
                        scale=settings.scale,
                    )
                    watch.start_soon(watching)
                    await drive(work, client, outbox, urls=urls, tally=tally, elapsed=elapsed)
                    await relay.drain(timeout=max(5.0, 15.0 * settings.scale))
                    watch.cancel_scope.cancel()
            stats = await store.stats(now=wall())
            seconds = elapsed()
            depth.append((seconds, stats.pending, stats.dead_letters))
            show.update(_snapshot(schedule, tally, stats, seconds))
            serving.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await store.close()
    report = build_report(
        seed=settings.seed,
        mode="short" if settings.short else "full",
        seconds=seconds,
        schedule=schedule,
        tally=tally,
        requests=server.requests,
        stats=stats,
        urls=urls,
        store=store_url(str(settings.db)),
        store_is_temporary=settings.store_is_temporary,
    )
    return Outcome(report, server, tally, depth, seconds)


async def _watch(
    *,
    schedule: Schedule,
    store: SQLiteStore,
    tally: Tally,
    show: Display,
    elapsed: Callable[[], float],
    depth: list[tuple[float, int, int]],
    scale: float,
) -> None:
    """Sample the outbox and refresh the display until cancelled; announce each phase."""
    shown = -1
    tick = max(0.05, _TICK * scale)
    while True:
        at = elapsed()
        index = schedule.index_at(at)
        while shown < index:
            shown += 1
            show.phase(shown, schedule.phases[shown], schedule.starts[shown])
        stats = await store.stats(now=wall())
        depth.append((at, stats.pending, stats.dead_letters))
        show.update(_snapshot(schedule, tally, stats, at))
        await anyio.sleep(tick)


def _snapshot(schedule: Schedule, tally: Tally, stats: OutboxStats, at: float) -> Snapshot:
    index = schedule.index_at(at)
    states = dict.fromkeys(ORIGINS, "closed")
    for transition in tally.transitions:
        states[transition.origin] = transition.new
    succeeded = sum(o.succeeded for o in tally.origins.values())
    return Snapshot(
        at=at,
        total=schedule.total,
        phase=schedule.phases[index],
        phase_index=index,
        phases=len(schedule.phases),
        calls=tally.calls,
        succeeded=succeeded,
        failed=tally.calls - succeeded,
        in_flight=tally.in_flight,
        attempts=tally.attempts,
        breakers=states,
        enqueued=tally.enqueued,
        pending=stats.pending,
        delivered=stats.delivered,
        dead_letters=stats.dead_letters,
    )


@contextlib.contextmanager
def _library_errors_only() -> Iterator[None]:
    """Only the library's errors, on stderr, while the demo runs; the config put back after.

    The relay logs every redelivery and dead letter, which the report says
    better, and stdout may carry the JSON report. Unlike the other commands the
    demo runs no application code, so a structlog configuration found in place
    is overridden for the run, not kept.
    """
    saved = structlog.get_config()
    configured = structlog.is_configured()
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
    )
    try:
        yield
    finally:
        if configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


def run_demo(
    *,
    seed: int,
    calls: int | None,
    short: bool = False,
    as_json: bool = False,
    db: Path | None = None,
    plot: Path | None = None,
) -> int:
    """The ``resilient demo`` command: run, print the report, draw the plot; the exit code.

    Raises:
        click.UsageError: If ``--plot`` is given without matplotlib, or the
            ``--db`` file exists (exit 2, before anything runs).

    """
    if plot is not None and not _demo_plot.available():
        raise click.UsageError(_demo_plot.MISSING)
    if db is not None and db.exists():
        msg = f"{db} exists: the demo needs a new store (remove the file, or pick another path)"
        raise click.BadParameter(msg, param_hint="'--db'")
    temporary = db is None
    if db is None:
        # Kept after the run, so that the dead-letter command printed at the end works.
        db = Path(tempfile.mkdtemp(prefix="resilient-demo-")) / "demo.db"
    settings = Settings(
        db=db,
        seed=seed,
        calls=calls if calls is not None else SHORT_CALLS if short else DEFAULT_CALLS,
        short=short,
        store_is_temporary=temporary,
    )
    with _library_errors_only(), display_for(err=as_json) as display:
        outcome = anyio.run(run, settings, display)
    report = outcome.report
    if plot is not None:
        _demo_plot.draw(
            plot,
            schedule=Schedule(settings.scale),
            requests=outcome.server.requests,
            transitions=outcome.tally.transitions,
            origins=ORIGINS,
            depth=outcome.depth,
            end=outcome.seconds,
        )
    if as_json:
        data = report.to_json()
        data["plot"] = None if plot is None else str(plot)
        print_json(data)
    else:
        color = console().is_terminal
        click.echo("")
        for line in report.text(color=color):
            click.echo(line)
        if plot is not None:
            click.echo(f"Timeline: {plot}")
    return 0 if report.ok else 1
