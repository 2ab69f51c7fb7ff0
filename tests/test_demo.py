"""`resilient demo` end to end: a real server on 127.0.0.1, in real time, in short mode.

One run (``--short --json --plot --db``) serves most tests of this module: the
server it started is kept (the demo's server class is swapped for one that
remembers its instances), so the report's numbers are checked against the
requests the server really answered, not against the report's own copy.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import structlog
from click.testing import CliRunner, Result

from resilient.cli import _demo, cli
from resilient.cli._demo_report import build_report
from resilient.cli._demo_server import CATALOG, PARTNER, DemoServer, Schedule, ServedRequest
from resilient.cli._demo_workload import Tally, WireCounter, plan
from resilient.stores import OutboxStats

if TYPE_CHECKING:
    from pathlib import Path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@dataclass
class Run:
    result: Result
    report: dict[str, Any]
    server: DemoServer
    db: Path
    png: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The demo, run once for the module: ``--short --json --plot FILE --db FILE``."""
    servers: list[DemoServer] = []

    class RememberedServer(DemoServer):
        def __post_init__(self) -> None:
            super().__post_init__()
            servers.append(self)

    folder = tmp_path_factory.mktemp("demo")
    db, png = folder / "demo.db", folder / "timeline.png"
    # structlog configured to print to stdout, as an earlier test (or an embedding
    # program) may leave it: the relay's log lines must not land in the JSON.
    factory = structlog.PrintLoggerFactory()
    structlog.configure(logger_factory=factory)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_demo, "DemoServer", RememberedServer)
            result = invoke("demo", "--short", "--json", "--plot", str(png), "--db", str(db))
        assert structlog.get_config()["logger_factory"] is factory  # put back after the run
    finally:
        structlog.reset_defaults()
    assert len(servers) == 1
    return Run(result, json.loads(result.stdout), servers[0], db, png)


def test_the_run_passes_and_prints_only_json_on_stdout(run: Run) -> None:
    assert run.result.exit_code == 0, run.result.output
    assert run.report["ok"] is True
    assert all(check["passed"] for check in run.report["checks"])
    assert run.report["mode"] == "short"
    assert run.report["plot"] == str(run.png)
    # The progress went to stderr, as plain lines (no terminal here).
    assert "phase 1: healthy" in run.result.stderr
    assert "phase 4: outage" in run.result.stderr


def test_nothing_is_lost(run: Run) -> None:
    outbox = run.report["outbox"]
    assert outbox["pending"] == 0
    assert outbox["enqueued"] == outbox["delivered"] + outbox["dead_lettered"]
    assert outbox["dead_lettered"] > 0
    assert run.report["nothing_lost"] is True
    # Every message planned was enqueued: one per 5 calls.
    assert outbox["enqueued"] == _demo.SHORT_CALLS // 5


def test_the_users_attempts_are_the_requests_the_server_saw(run: Run) -> None:
    http = run.report["http"]
    users = [r for r in run.server.requests if r.source == "users"]
    assert http["calls"] == _demo.SHORT_CALLS
    assert http["succeeded"] + http["failed"] == http["calls"]
    # Attempts are counted at the client's socket; each one is a request the server
    # answered, and so is an attempt cut by a timeout mid-write, or not.
    # Calls refused by an open circuit never left the client: not attempts.
    cut = http["attempts_cut_mid_write"]
    assert http["server_seen"] == len(users)
    assert http["attempts"] <= len(users) <= http["attempts"] + cut
    assert http["amplification"] == round(http["attempts"] / http["calls"], 3)
    seen = Counter(r.origin for r in users)
    for origin in (PARTNER, CATALOG):
        assert http["origins"][origin]["server_seen"] == seen[origin]
    assert sum(http["origins"][o]["attempts"] for o in (PARTNER, CATALOG)) == http["attempts"]
    failures = http["failures"]
    assert sum(failures.values()) == http["failed"]
    assert failures.get("circuit open", 0) == http["origins"][PARTNER]["rejected_by_breaker"]


def test_the_outbox_numbers_are_what_the_server_saw(run: Run) -> None:
    outbox = run.report["outbox"]
    deliveries = [r for r in run.server.requests if r.source == "outbox"]
    cut = outbox["delivery_attempts_cut_mid_write"]
    assert outbox["server_seen"] == len(deliveries)
    assert outbox["delivery_attempts"] <= len(deliveries) <= outbox["delivery_attempts"] + cut
    accepted = {r.idempotency_key for r in deliveries if r.status < 300}
    assert outbox["delivered"] == len(accepted)
    # Every message to the retired /v1 endpoint is a dead letter, and only those.
    retired = {r.idempotency_key for r in deliveries if r.path == "/v1/events"}
    assert outbox["dead_lettered"] == len(retired)
    assert not accepted & retired
    assert all(key for key in accepted | retired)


def test_the_server_went_through_every_phase(run: Run) -> None:
    statuses = Counter(r.status for r in run.server.requests if r.origin == PARTNER)
    assert statuses[429] > 0  # throttled, with Retry-After
    assert statuses[503] > 0  # the burst and the outage
    assert statuses[410] > 0  # the retired endpoint
    assert {r.status for r in run.server.requests if r.origin == CATALOG} == {200}
    phases = run.report["phases"]
    assert [p["name"] for p in phases] == [p.name for p in Schedule(_demo.SHORT_SCALE).phases]
    outage = next(p for p in phases if p["name"] == "outage")
    # Well inside the outage (not at its edges, where a request may straddle), all 503.
    inside = [
        r
        for r in run.server.requests
        if r.origin == PARTNER and outage["start"] + 0.05 < r.at < outage["end"] - 0.05
    ]
    assert inside
    assert {r.status for r in inside} == {503}


def test_the_flaky_origins_breaker_opens_and_closes_and_the_steady_one_never_moves(
    run: Run,
) -> None:
    origins = run.report["http"]["origins"]
    partner = [(t["from"], t["to"]) for t in origins[PARTNER]["breaker"]["transitions"]]
    assert ("closed", "open") in partner
    assert partner[-1] == ("half_open", "closed")
    assert origins[PARTNER]["breaker"]["state"] == "closed"
    assert origins[CATALOG]["breaker"] == {"state": "closed", "transitions": []}


def test_the_plot_is_a_png(run: Run) -> None:
    data = run.png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000


def test_the_dead_letters_command_lists_the_dead_letters(run: Run) -> None:
    command = run.report["dead_letters_command"]
    assert command == f"resilient dlq list --store sqlite:///{run.db}"
    assert run.report["store_is_temporary"] is False
    listed = invoke("dlq", "list", "--store", f"sqlite:///{run.db}", "--json", "--limit", "1000")
    assert listed.exit_code == 0
    letters = json.loads(listed.stdout)["letters"]
    assert len(letters) == run.report["outbox"]["dead_lettered"]
    assert {letter["reason"] for letter in letters} == {"rejected"}
    assert all(letter["destination"].endswith("/v1/events") for letter in letters)


# Refused before anything runs


def test_plot_without_matplotlib_is_a_usage_error_before_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    result = invoke("demo", "--short", "--plot", str(tmp_path / "t.png"))
    assert result.exit_code == 2
    assert "pip install 'resilient-client[plot]'" in result.stderr
    assert "phase" not in result.output  # nothing ran
    assert not (tmp_path / "t.png").exists()


def test_an_existing_db_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    db.write_bytes(b"")
    result = invoke("demo", "--short", "--db", str(db))
    assert result.exit_code == 2
    assert "--db" in result.stderr
    assert "exists" in result.stderr


def test_help_names_the_flags() -> None:
    text = invoke("demo", "--help").stdout
    for flag in ("--seed", "--calls", "--short", "--json", "--db", "--plot"):
        assert flag in text


# The parts, without the network


def test_the_schedule_runs_its_phases_in_order() -> None:
    schedule = Schedule()
    assert [p.name for p in schedule.phases] == [
        "healthy",
        "5xx burst",
        "throttled",
        "outage",
        "recovered",
    ]
    assert schedule.total == pytest.approx(26.0)
    assert schedule.at(0).name == "healthy"
    assert schedule.at(schedule.starts[3]).name == "outage"
    assert schedule.at(10_000).name == "recovered"  # the last phase lasts
    short = Schedule(_demo.SHORT_SCALE)
    assert short.total == pytest.approx(26.0 * _demo.SHORT_SCALE)
    throttled = short.phases[2]
    assert throttled.retry_after == pytest.approx(_demo.SHORT_SCALE)


def test_the_workload_is_reproducible_from_its_seed() -> None:
    schedule = Schedule()
    first = plan(schedule, calls=100, seed=3)
    assert first == plan(schedule, calls=100, seed=3)
    assert first != plan(schedule, calls=100, seed=4)
    assert len(first.calls) == 100
    assert len(first.messages) == 20
    assert [c.at for c in first.calls] == sorted(c.at for c in first.calls)
    assert all(c.at < schedule.total for c in first.calls)
    # POSTs carry an idempotency key, so the pipeline may retry them.
    assert all(c.idempotency_key for c in first.calls if c.method == "POST")


class _Wire(httpx.AsyncBaseTransport):
    """Emits httpcore's write events up to *reached*, then fails as a timeout would."""

    def __init__(self, reached: tuple[str, ...]) -> None:
        self.reached = reached

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        trace = request.extensions["trace"]
        for event in self.reached:
            await trace(event, {})
        raise httpx.WriteTimeout("cut", request=request)


@pytest.mark.parametrize(
    ("reached", "counted"),
    [
        ((), "unsent"),
        (("http11.send_request_headers.started",), "cut"),
        (
            (
                "http11.send_request_headers.started",
                "http11.send_request_headers.complete",
                "http11.send_request_body.started",
            ),
            "cut",
        ),
        (("http11.send_request_headers.started", "http11.send_request_body.complete"), "sent"),
    ],
)
@pytest.mark.anyio
async def test_an_attempt_counts_as_sent_cut_or_unsent_by_how_far_it_was_written(
    reached: tuple[str, ...], counted: str
) -> None:
    tally = Tally()
    wire = WireCounter(_Wire(reached), tally, {80: PARTNER})
    with pytest.raises(httpx.WriteTimeout):
        await wire.handle_async_request(httpx.Request("GET", "http://127.0.0.1/v2/orders/1"))
    partner = tally.origins[PARTNER]
    assert (partner.attempts, partner.cut, partner.unsent) == (
        counted == "sent",
        counted == "cut",
        counted == "unsent",
    )


@pytest.mark.parametrize(("seen", "passed"), [(4, False), (5, True), (7, True), (8, False)])
def test_the_server_may_have_seen_attempts_cut_mid_write_but_no_more(
    seen: int, passed: bool
) -> None:
    tally = Tally()
    tally.origins[PARTNER].attempts, tally.origins[PARTNER].cut = 5, 2
    requests = [ServedRequest(0.0, PARTNER, "GET", "/v2/orders/1", None, 200)] * seen
    stats = OutboxStats(0, 0, 0, 0, 0, None, None)
    report = build_report(
        seed=1,
        mode="short",
        seconds=1.0,
        schedule=Schedule(),
        tally=tally,
        requests=requests,
        stats=stats,
        urls={PARTNER: "http://127.0.0.1:1", CATALOG: "http://127.0.0.1:2"},
        store="sqlite:///demo.db",
        store_is_temporary=False,
    )
    (check,) = (c for c in report.checks if c.name == "every attempt reached the server")
    assert check.passed is passed
    assert check.detail == (
        f"5 attempts sent <= {seen} requests the server saw from the users <= 5 + 2 "
        "cancelled mid-write"
    )
