"""The demo's progress: a live rich table on a terminal, plain lines elsewhere.

A CI log cannot redraw a table, and a redrawn table written to a file is a
mess of escape codes; so without a terminal the progress is a line per second,
plus a line for each new phase and each change of a breaker's state.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import click

from ._output import console

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from ._demo_server import Phase
    from ._demo_workload import Transition

__all__ = ["Display", "Snapshot", "display_for", "quiet"]

_EVENTS: Final = 6
"""Recent events the live table keeps on screen."""
_STATE_STYLES: Final = {"closed": "green", "open": "bold red", "half_open": "yellow"}


@dataclass(frozen=True)
class Snapshot:
    """The demo at one moment, as the progress shows it."""

    at: float
    total: float
    phase: Phase
    phase_index: int
    phases: int
    calls: int
    succeeded: int
    failed: int
    in_flight: int
    attempts: int
    breakers: dict[str, str]
    enqueued: int
    pending: int
    delivered: int
    dead_letters: int


class Display(Protocol):
    """Where the demo reports its progress."""

    def phase(self, index: int, phase: Phase, start: float) -> None:
        """Phase *index* started at *start* seconds."""

    def transition(self, transition: Transition) -> None:
        """A breaker changed state."""

    def update(self, snapshot: Snapshot) -> None:
        """The latest numbers (called a few times a second)."""


class _Quiet:
    def phase(self, index: int, phase: Phase, start: float) -> None:
        pass

    def transition(self, transition: Transition) -> None:
        pass

    def update(self, snapshot: Snapshot) -> None:
        pass


def quiet() -> Display:
    """A display that shows nothing (for tests, and for callers of the demo from Python)."""
    return _Quiet()


class _Lines:
    """Plain lines: one per phase, per breaker transition, and per *every* seconds."""

    def __init__(self, *, err: bool, every: float = 1.0) -> None:
        self._err = err
        self._every = every
        self._next = every

    def _echo(self, text: str) -> None:
        click.echo(text, err=self._err)

    def phase(self, index: int, phase: Phase, start: float) -> None:
        self._echo(
            f"[{start:5.1f}s] phase {index + 1}: {phase.name} ({phase.seconds:.1f} s): "
            f"partner API: {phase.summary}"
        )

    def transition(self, transition: Transition) -> None:
        self._echo(
            f"[{transition.at:5.1f}s] breaker {transition.origin}: "
            f"{transition.old} -> {transition.new}"
        )

    def update(self, snapshot: Snapshot) -> None:
        if snapshot.at < self._next:
            return
        self._next = snapshot.at + self._every
        s = snapshot
        breakers = ", ".join(f"{name} {state}" for name, state in s.breakers.items())
        self._echo(
            f"[{s.at:5.1f}s] calls {s.calls} ({s.succeeded} ok, {s.failed} failed), "
            f"attempts {s.attempts}; breakers: {breakers}; outbox: {s.pending} pending, "
            f"{s.delivered} delivered, {s.dead_letters} dead letters"
        )


class _LiveTable:
    """A rich table redrawn in place."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._events: list[str] = []
        self._live: Live | None = None

    def start(self) -> None:
        from rich.live import Live  # noqa: PLC0415 -- rich only when printing

        self._live = Live(console=self._console, refresh_per_second=8, transient=False)
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()

    def _event(self, text: str) -> None:
        self._events = [*self._events, text][-_EVENTS:]

    def phase(self, index: int, phase: Phase, start: float) -> None:
        self._event(f"{start:5.1f}s  phase {index + 1}: {phase.name}: {phase.summary}")

    def transition(self, transition: Transition) -> None:
        self._event(
            f"{transition.at:5.1f}s  breaker {transition.origin}: "
            f"{transition.old} -> {transition.new}"
        )

    def update(self, snapshot: Snapshot) -> None:
        if self._live is not None:
            self._live.update(self._table(snapshot))

    def _table(self, s: Snapshot) -> Table:
        from rich.table import Table  # noqa: PLC0415 -- rich only when printing
        from rich.text import Text  # noqa: PLC0415

        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        done = min(1.0, s.at / s.total) if s.total else 1.0
        bar = "#" * round(done * 30) + "." * (30 - round(done * 30))
        table.add_row(
            "phase",
            Text(
                f"{s.phase_index + 1}/{s.phases} {s.phase.name}: {s.phase.summary}   "
                f"[{bar}] {s.at:.1f} s"
            ),
        )
        amplification = s.attempts / s.calls if s.calls else 0.0
        table.add_row(
            "calls",
            Text(f"{s.calls} done ({s.succeeded} ok, {s.failed} failed), {s.in_flight} in flight"),
        )
        table.add_row("attempts", Text(f"{s.attempts} ({amplification:.2f} per call)"))
        for name, state in s.breakers.items():
            table.add_row(f"breaker {name}", Text(state, style=_STATE_STYLES.get(state, "")))
        table.add_row(
            "outbox",
            Text(
                f"{s.enqueued} enqueued, {s.pending} pending, {s.delivered} delivered, "
                f"{s.dead_letters} dead letters"
            ),
        )
        for i, event in enumerate(self._events):
            table.add_row("events" if i == 0 else "", Text(event, style="dim"))
        return table


@contextlib.contextmanager
def display_for(*, err: bool) -> Iterator[Display]:
    """The progress display for stdout (or stderr, when stdout carries JSON)."""
    out = console(stderr=err)
    if not out.is_terminal:
        yield _Lines(err=err)
        return
    table = _LiveTable(out)
    table.start()
    try:
        yield table
    finally:
        table.stop()
