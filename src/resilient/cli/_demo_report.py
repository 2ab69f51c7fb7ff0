"""The demo's report: what happened, as JSON and as text, and the checks that it adds up.

The numbers come from both sides on purpose: the client's counters (`Tally`),
the server's own records, and the store's statistics. A check passes only when
two independent sides agree, so the report cannot be right by construction.
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import click

from ._demo_server import ORIGINS

if TYPE_CHECKING:
    from ..stores._records import OutboxStats
    from ._demo_server import Schedule, ServedRequest
    from ._demo_workload import Tally, Transition

_WIDTH: Final = 100
"""Longest line of the text report (wrapped lines only: the others are shorter)."""

__all__ = ["Check", "OriginReport", "OutboxReport", "Report", "build_report", "store_url"]


@dataclass(frozen=True)
class Check:
    """One consistency check: its name, whether it passed, and the numbers behind it."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class OriginReport:
    """The users' calls to one origin, and its circuit."""

    name: str
    url: str
    calls: int
    succeeded: int
    failed: int
    attempts: int
    rejected_by_breaker: int
    server_seen: int
    breaker_state: str
    transitions: tuple[Transition, ...]


@dataclass(frozen=True)
class OutboxReport:
    """The outbox's messages, from the store's statistics and the server's records."""

    enqueued: int
    delivered: int
    dead_lettered: int
    pending: int
    delivery_attempts: int
    """Delivery attempts the relay wrote to the wire."""
    delivery_cut: int
    """Delivery attempts cancelled while being written (the server may have them)."""
    server_seen: int
    """Delivery requests the server saw."""
    server_accepted: int
    """Distinct messages (idempotency keys) the server answered with a 2xx."""


@dataclass(frozen=True)
class Report:
    """Everything the demo reports; `to_json` and `text` are two views of it."""

    seed: int
    mode: str
    seconds: float
    phases: tuple[tuple[str, float, float, str], ...]
    calls: int
    succeeded: int
    failed: int
    failures: dict[str, int]
    attempts: int
    cut: int
    unsent: int
    server_seen: int
    retries: int
    retries_refused_by_budget: int
    origins: tuple[OriginReport, ...]
    outbox: OutboxReport
    checks: tuple[Check, ...]
    store: str
    store_is_temporary: bool

    @property
    def amplification(self) -> float:
        """Attempts per call: what the users' traffic cost the server."""
        return self.attempts / self.calls if self.calls else 0.0

    @property
    def ok(self) -> bool:
        """Whether every check passed (the command's exit code is 0 only then)."""
        return all(check.passed for check in self.checks)

    @property
    def dead_letters_command(self) -> str:
        """The command that lists this run's dead letters."""
        return f"resilient dlq list --store {shlex.quote(self.store)}"

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--json``)."""
        return {
            "seed": self.seed,
            "mode": self.mode,
            "seconds": round(self.seconds, 3),
            "phases": [
                {"name": name, "start": round(start, 3), "end": round(end, 3), "summary": summary}
                for name, start, end, summary in self.phases
            ],
            "http": {
                "calls": self.calls,
                "succeeded": self.succeeded,
                "failed": self.failed,
                "failures": dict(sorted(self.failures.items())),
                "attempts": self.attempts,
                "attempts_cut_mid_write": self.cut,
                "attempts_unsent": self.unsent,
                "server_seen": self.server_seen,
                "amplification": round(self.amplification, 3),
                "retries": self.retries,
                "retries_refused_by_budget": self.retries_refused_by_budget,
                "origins": {o.name: _origin_json(o) for o in self.origins},
            },
            "outbox": {
                "enqueued": self.outbox.enqueued,
                "delivered": self.outbox.delivered,
                "dead_lettered": self.outbox.dead_lettered,
                "pending": self.outbox.pending,
                "delivery_attempts": self.outbox.delivery_attempts,
                "delivery_attempts_cut_mid_write": self.outbox.delivery_cut,
                "server_seen": self.outbox.server_seen,
                "server_accepted": self.outbox.server_accepted,
            },
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks
            ],
            "nothing_lost": self.checks[0].passed,
            "ok": self.ok,
            "store": self.store,
            "store_is_temporary": self.store_is_temporary,
            "dead_letters_command": self.dead_letters_command,
        }

    def text(self, *, color: bool = False) -> list[str]:
        """The report as lines of text, for people."""

        def verdict(check: Check) -> str:
            word = "PASS" if check.passed else "FAIL"
            return (
                click.style(word, fg="green" if check.passed else "red", bold=True)
                if color
                else word
            )

        by_count = sorted(self.failures.items(), key=lambda item: (-item[1], item[0]))
        failures = ", ".join(f"{n} {why}" for why, n in by_count)
        phases = [f"{name} {start:g}-{end:g} s," for name, start, end, _ in self.phases]
        phases[-1] = phases[-1].rstrip(",")
        rejected = sum(o.rejected_by_breaker for o in self.origins)
        lines = [
            (
                f"resilient demo: finished in {self.seconds:.1f} s "
                f"(seed {self.seed}, {self.mode} mode)"
            ),
            *_wrapped(phases, "partner API phases: "),
            "",
            "HTTP calls (the users' workload)",
            *_wrapped(
                (
                    f"{self.calls}: {self.succeeded} succeeded, {self.failed} failed"
                    + (f" ({failures})" if failures else "")
                ).split(" "),
                "  calls         ",
            ),
            (
                f"  attempts      {self.attempts} sent for {self.calls} calls: "
                f"{self.amplification:.2f} per call (amplification)"
            ),
        ]
        if rejected:
            lines.append(
                f"                the {rejected} calls failed fast by an open circuit sent none"
            )
        lines += [
            (
                f"  retries       {self.retries} made, {self.retries_refused_by_budget} "
                "refused by the retry budget (the client's, outbox included)"
            ),
            f"  server saw    {self.server_seen} requests from the users",
        ]
        for i, o in enumerate(self.origins):
            lines.append(
                f"  {'by origin' if i == 0 else '':<13} {o.name:<8} {o.calls} calls, "
                f"{o.attempts} attempts, server saw {o.server_seen} ({o.url})"
            )
        lines += ["", "Circuit breakers (one per origin)"]
        for o in self.origins:
            lines += _wrapped(_transitions_text(o), f"  {o.name:<13} ")
        box = self.outbox
        lines += [
            "",
            "Outbox (SQLite)",
            (
                f"  messages      {box.enqueued} enqueued: {box.delivered} delivered, "
                f"{box.dead_lettered} dead-lettered, {box.pending} pending"
            ),
            (
                f"  deliveries    {box.delivery_attempts} attempts sent, server saw "
                f"{box.server_seen}, accepted {box.server_accepted} distinct messages"
            ),
            "",
            "Checks",
        ]
        for c in self.checks:
            # Wrapped before coloring: the escape codes would count as width.
            text = _wrapped(f"{c.name}: {c.detail}".split(" "), "  PASS  ")
            lines += [verdict(c).join(text[0].split("PASS", 1)), *text[1:]]
        lines += ["", f"Dead letters: {self.dead_letters_command}"]
        if self.store_is_temporary:
            note = (
                "(the store is in a temporary directory, kept so that this command works; "
                "--db PATH puts it where you choose)"
            )
            lines += _wrapped(note.split(" "), "  ")
        return lines


def _origin_json(o: OriginReport) -> dict[str, Any]:
    return {
        "url": o.url,
        "calls": o.calls,
        "succeeded": o.succeeded,
        "failed": o.failed,
        "attempts": o.attempts,
        "rejected_by_breaker": o.rejected_by_breaker,
        "server_seen": o.server_seen,
        "breaker": {
            "state": o.breaker_state,
            "transitions": [
                {"at": round(t.at, 3), "from": t.old, "to": t.new} for t in o.transitions
            ],
        },
    }


def _transitions_text(o: OriginReport) -> list[str]:
    if not o.transitions:
        return [f"{o.breaker_state} throughout"]
    return [o.transitions[0].old, *(f"-> {t.new} {t.at:.1f}s" for t in o.transitions)]


def _wrapped(tokens: list[str], first: str, width: int = _WIDTH) -> list[str]:
    """*tokens* packed into lines of *width*, the first after *first*, the rest under it.

    A token (``"-> open 15.8s"``, say) is never split across lines.
    """
    indent = " " * len(first)
    lines: list[str] = []
    line, empty = first, True
    for token in tokens:
        if not empty and len(line) + 1 + len(token) > width:
            lines.append(line)
            line, empty = indent + token, False
        else:
            line, empty = (line + token if empty else f"{line} {token}"), False
    lines.append(line)
    return lines


def store_url(path: str) -> str:
    """The ``--store`` URL of the SQLite file at *path* (four slashes when absolute)."""
    return f"sqlite:///{path}"


def build_report(
    *,
    seed: int,
    mode: str,
    seconds: float,
    schedule: Schedule,
    tally: Tally,
    requests: list[ServedRequest],
    stats: OutboxStats,
    urls: dict[str, str],
    store: str,
    store_is_temporary: bool,
) -> Report:
    """Put the client's counts, the server's records and the store's statistics together."""
    users = [r for r in requests if r.source == "users"]
    deliveries = [r for r in requests if r.source == "outbox"]
    seen = Counter(r.origin for r in users)
    origins = tuple(_origin(name, urls[name], tally, seen[name]) for name in ORIGINS)
    accepted = len({r.idempotency_key for r in deliveries if r.status < 300})  # noqa: PLR2004
    delivered = stats.delivered
    outbox = OutboxReport(
        enqueued=tally.enqueued,
        delivered=delivered,
        dead_lettered=stats.dead_letters,
        pending=stats.pending,
        delivery_attempts=tally.outbox_attempts,
        delivery_cut=tally.outbox_cut,
        server_seen=len(deliveries),
        server_accepted=accepted,
    )
    calls = tally.calls
    attempts = tally.attempts
    cut = sum(o.cut for o in tally.origins.values())
    unsent = sum(o.unsent for o in tally.origins.values())
    checks = (
        Check(
            "nothing lost",
            outbox.enqueued == outbox.delivered + outbox.dead_lettered and outbox.pending == 0,
            f"{outbox.enqueued} enqueued == {outbox.delivered} delivered + "
            f"{outbox.dead_lettered} dead-lettered, {outbox.pending} pending",
        ),
        _reached(
            "every attempt reached the server",
            sent=attempts,
            cut=cut,
            seen=len(users),
            sent_as="attempts sent",
            seen_as="requests the server saw from the users",
            note=f" ({unsent} more were cancelled before they were sent)" if unsent else "",
        ),
        _reached(
            "every delivery attempt reached the server",
            sent=outbox.delivery_attempts,
            cut=outbox.delivery_cut,
            seen=outbox.server_seen,
            sent_as="sent",
            seen_as="seen",
        ),
        Check(
            "every delivered message was accepted",
            delivered == accepted,
            f"{delivered} delivered == {accepted} distinct messages the server accepted",
        ),
    )
    return Report(
        seed=seed,
        mode=mode,
        seconds=seconds,
        phases=tuple((p.name, start, end, p.summary) for p, start, end in schedule.spans()),
        calls=calls,
        succeeded=sum(o.succeeded for o in origins),
        failed=sum(o.failed for o in origins),
        failures=dict(tally.failures),
        attempts=attempts,
        cut=cut,
        unsent=unsent,
        server_seen=len(users),
        retries=tally.retries,
        retries_refused_by_budget=tally.budget_refusals,
        origins=origins,
        outbox=outbox,
        checks=checks,
        store=store,
        store_is_temporary=store_is_temporary,
    )


def _reached(
    name: str, *, sent: int, cut: int, seen: int, sent_as: str, seen_as: str, note: str = ""
) -> Check:
    """Whether the server saw every attempt written, and nothing the client did not send.

    An attempt cancelled mid-write may or may not have arrived, so with *cut* of
    them the server's count may lie anywhere from *sent* to *sent* + *cut*.
    """
    if not cut:
        return Check(name, sent == seen, f"{sent} {sent_as} == {seen} {seen_as}{note}")
    return Check(
        name,
        sent <= seen <= sent + cut,
        f"{sent} {sent_as} <= {seen} {seen_as} <= {sent} + {cut} cancelled mid-write{note}",
    )


def _origin(name: str, url: str, tally: Tally, server_seen: int) -> OriginReport:
    counted = tally.origins[name]
    transitions = tuple(t for t in tally.transitions if t.origin == name)
    return OriginReport(
        name=name,
        url=url,
        calls=counted.calls,
        succeeded=counted.succeeded,
        failed=counted.failed,
        attempts=counted.attempts,
        rejected_by_breaker=counted.rejected,
        server_seen=server_seen,
        breaker_state=transitions[-1].new if transitions else "closed",
        transitions=transitions,
    )
