"""`resilient dlq ...` and `resilient outbox ...` against real SQLite files.

The stores are filled through the real API: `Outbox.send`, then the store's
`claim` and `bury` at chosen times (so filters on time are exact), or a relay
in virtual time that fails the way a downstream would.
"""

from __future__ import annotations

import ast
import http.server
import json
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from click.testing import CliRunner, Result

import resilient
from resilient.cli import cli
from resilient.cli._output import format_duration, format_time, truncate
from resilient.cli._timeparse import parse_time
from resilient.delivery import DeliveryOptions, Outbox
from resilient.stores import Failure, NewMessage, SQLiteStore
from resilient.testing import run

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

NOW = time.time()
API = "https://api.example.com"
CANARY = "CANARY-s3cr3t-7f1e2d"  # a credential that must never be printed


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:  # noqa: A002
    """Run the command as a user would, stdout and stderr apart."""
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path: sqlite:////tmp/...


# Filling stores through the real API


async def _send_and_bury(
    path: Path, letters: Sequence[dict[str, Any]], pending: Sequence[dict[str, Any]]
) -> list[str]:
    store = SQLiteStore(path)
    outbox = Outbox(store)
    ids = []
    try:
        await store.open()  # creates the file, even for an empty store
        for letter in letters:
            message_id = await _send(outbox, letter)
            (claimed,) = await store.claim("test", limit=1, lease=60, now=NOW + 10_000)
            assert claimed.id == message_id
            failure = Failure(
                letter["dead_at"], letter.get("error", "HTTP 503 Service Unavailable"), 503
            )
            reason = letter.get("reason", "exhausted")
            assert await store.bury(claimed, reason=reason, failure=failure, now=letter["dead_at"])
            ids.append(message_id)
        for message in pending:
            await _send(outbox, message)
    finally:
        await store.close()
    return ids


async def _send(outbox: Outbox, spec: dict[str, Any]) -> str:
    if "handler" in spec:
        return await outbox.send(spec["handler"], spec["payload"], delay=spec.get("delay", 0.0))
    request = httpx.Request(
        "POST", spec.get("url", f"{API}/orders"), json=spec.get("json", {"sku": "A-1"})
    )
    return await outbox.send(request, delay=spec.get("delay", 0.0))


def fill(
    path: Path,
    letters: Sequence[dict[str, Any]] = (),
    pending: Sequence[dict[str, Any]] = (),
) -> list[str]:
    """Dead letters (each buried at its ``dead_at``) and pending messages; the letters' ids."""
    return anyio.run(_send_and_bury, path, letters, pending)


def counts(path: Path) -> tuple[int, int]:
    """(pending, dead letters) in the store at *path*."""

    async def read() -> tuple[int, int]:
        store = SQLiteStore(path)
        try:
            stats = await store.stats(now=time.time())
        finally:
            await store.close()
        return stats.pending, stats.dead_letters

    return anyio.run(read)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


@pytest.fixture
def five(db: Path) -> list[str]:
    """Five dead letters, an hour apart, the oldest five hours ago, two destinations."""
    return fill(
        db,
        [
            {
                "dead_at": NOW - 3600 * (5 - i),
                "url": f"{API}/orders" if i % 2 == 0 else "https://billing.example.com/charge",
                "reason": "exhausted" if i < 3 else "rejected",
            }
            for i in range(5)
        ],
    )


# Help, version, usage


COMMANDS = [
    [],
    ["demo"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "show"],
    ["dlq", "count"],
    ["dlq", "replay"],
    ["dlq", "purge"],
    ["outbox"],
    ["outbox", "stats"],
    ["outbox", "drain"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "resilient")
def test_every_command_has_help_with_the_exit_codes(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: resilient")
    assert "Exit codes:" in result.stdout
    assert "4  store error" in result.stdout


@pytest.mark.parametrize("command", COMMANDS[3:8] + COMMANDS[9:], ids=" ".join)
def test_every_store_command_takes_store_and_names_the_env_var(command: list[str]) -> None:
    assert "RESILIENT_STORE" in invoke(*command, "--help").stdout


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"resilient {resilient.__version__}\n"


@pytest.mark.parametrize("group", [[], ["dlq"], ["outbox"]])
def test_a_group_without_a_command_is_a_usage_error(group: list[str]) -> None:
    result = invoke(*group)
    assert result.exit_code == 2
    assert "Missing command" in result.stderr


def test_demo_still_runs_with_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_run_demo(*, seed: int, calls: int) -> int:
        seen.update(seed=seed, calls=calls)
        return 0

    monkeypatch.setattr("resilient.cli._demo.run_demo", fake_run_demo)
    assert invoke("demo", "--seed", "3", "--calls", "4").exit_code == 0
    assert seen == {"seed": 3, "calls": 4}
    assert invoke("demo", "--calls", "many").exit_code == 2


# Store errors and usage errors


def test_no_store_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESILIENT_STORE", raising=False)
    result = invoke("dlq", "list")
    assert result.exit_code == 2
    assert "no store given" in result.stderr
    assert "RESILIENT_STORE" in result.stderr


def test_the_store_comes_from_the_environment(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "count", env={"RESILIENT_STORE": url_of(db)})
    assert result.exit_code == 0
    assert result.stdout == "5\n"


def test_relative_sqlite_urls_and_bare_paths(
    db: Path, five: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(db.parent)
    assert invoke("dlq", "count", "--store", "sqlite:///outbox.db").stdout == "5\n"
    assert invoke("dlq", "count", "--store", "outbox.db").stdout == "5\n"


def test_an_unknown_scheme_is_a_usage_error_that_hides_passwords() -> None:
    result = invoke("dlq", "list", "--store", f"redis://admin:{CANARY}@cache/0")
    assert result.exit_code == 2
    assert "unsupported store URL scheme 'redis'" in result.stderr
    assert CANARY not in result.output


def test_a_store_that_fails_to_open_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a store's driver raises on open (a refused connection, a missing extra)."""
    from resilient.stores import MemoryStore

    async def refuse(self: MemoryStore) -> None:
        msg = "connection refused\nby the server"
        raise RuntimeError(msg)  # not an OSError: any failure to open counts

    monkeypatch.setattr(MemoryStore, "open", refuse)
    result = invoke("outbox", "stats", "--store", "memory://")
    assert result.exit_code == 4
    assert result.stderr == "Error: store MemoryStore: connection refused by the server\n"


def test_a_missing_file_is_a_store_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = invoke("dlq", "list", "--store", url_of(missing))
    assert result.exit_code == 4
    assert "no such file" in result.stderr
    assert not missing.exists()


def test_a_file_that_is_not_a_database_is_a_store_error_in_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite at all " * 100)
    for command in (["dlq", "list"], ["outbox", "stats"], ["dlq", "purge", "--all", "--yes"]):
        result = invoke(*command, "--store", url_of(junk))
        assert result.exit_code == 4
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.output
        assert "file is not a database" in result.stderr


def test_a_schema_from_a_newer_release_is_a_store_error(db: Path, five: list[str]) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE resilient_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    result = invoke("outbox", "stats", "--store", url_of(db))
    assert result.exit_code == 4
    assert "newer than this release" in result.stderr
    assert "Traceback" not in result.output


# dlq list


def test_list_shows_a_table_of_the_dead_letters(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "list", "--store", url_of(db))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "DEAD",
        "AT",
        "REASON",
        "ATTEMPTS",
        "DESTINATION",
        "LAST",
        "FAILURE",
    ]
    rows = lines[1:6]
    assert [row.split()[0] for row in rows] == five  # oldest first, ids whole
    assert rows[0].split()[1] == format_time(NOW - 5 * 3600)
    assert rows[0].split()[2:5] == ["exhausted", "1", f"{API}/orders"]
    assert "503 HTTP 503 Service Unavailable" in rows[0]
    assert lines[6] == "5 dead letters; last page"


def test_list_pages_with_the_cursor(db: Path, five: list[str]) -> None:
    first = invoke("dlq", "list", "--store", url_of(db), "--limit", "2")
    assert first.stdout.splitlines()[-1] == "2 dead letters; next page: --after 2"
    second = invoke("dlq", "list", "--store", url_of(db), "--limit", "2", "--after", "2")
    assert [line.split()[0] for line in second.stdout.splitlines()[1:3]] == five[2:4]


def test_list_json_pages_through_everything(db: Path, five: list[str]) -> None:
    seen: list[str] = []
    cursor: int | None = None
    pages = 0
    while True:
        args = ["dlq", "list", "--store", url_of(db), "--limit", "2", "--json"]
        if cursor is not None:
            args += ["--after", str(cursor)]
        result = invoke(*args)
        assert result.exit_code == 0
        page = json.loads(result.stdout)
        assert set(page) == {"letters", "next_cursor"}
        seen += [letter["id"] for letter in page["letters"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == five
    assert pages == 3


def test_list_json_is_describe_letter(db: Path, five: list[str]) -> None:
    page = json.loads(invoke("dlq", "list", "--store", url_of(db), "--json").stdout)
    letter = page["letters"][0]
    assert letter["id"] == five[0]
    assert letter["reason"] == "exhausted"
    assert letter["dead_at"] == pytest.approx(NOW - 5 * 3600)
    assert letter["request"]["method"] == "POST"
    assert letter["request"]["body"] == {"sku": "A-1"}


def test_an_empty_listing_says_so(db: Path) -> None:
    fill(db)
    result = invoke("dlq", "list", "--store", url_of(db))
    assert result.exit_code == 0
    assert result.stdout == "no dead letters match\n"
    empty = json.loads(invoke("dlq", "list", "--store", url_of(db), "--json").stdout)
    assert empty == {"letters": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--destination", API], [0, 2, 4]),
        (["--destination", "https://billing."], [1, 3]),
        (["--reason", "rejected"], [3, 4]),
        (["--since", "2h30m"], [3, 4]),  # died 2 and 1 hours ago
        (["--until", "3h30m ago"], [0, 1]),
        (["--since", "4h30m", "--until", "1h30m"], [1, 2, 3]),
        (["--since", format_time(NOW - 3 * 3600 - 1)], [2, 3, 4]),
        (["--reason", "exhausted", "--destination", API], [0, 2]),
        (["--since", "1d"], [0, 1, 2, 3, 4]),
    ],
)
def test_filters(db: Path, five: list[str], options: list[str], expected: list[int]) -> None:
    listed = json.loads(invoke("dlq", "list", "--store", url_of(db), "--json", *options).stdout)
    assert [letter["id"] for letter in listed["letters"]] == [five[i] for i in expected]
    counted = invoke("dlq", "count", "--store", url_of(db), *options)
    assert counted.stdout == f"{len(expected)}\n"
    as_json = invoke("dlq", "count", "--store", url_of(db), "--json", *options)
    assert json.loads(as_json.stdout) == {"count": len(expected)}


@pytest.mark.parametrize(
    "options",
    [
        ["--since", "yesterday"],
        ["--until", "5 hours"],
        ["--since", "1h", "--until", "2h"],  # since after until
        ["--reason", "bored"],
        ["--limit", "0"],
        ["--after", "-1"],
    ],
)
def test_bad_filters_are_usage_errors(db: Path, five: list[str], options: list[str]) -> None:
    result = invoke("dlq", "list", "--store", url_of(db), *options)
    assert result.exit_code == 2
    assert "Error:" in result.stderr


def test_list_in_a_narrow_terminal_keeps_ids_whole(
    db: Path, five: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    import resilient.cli._dlq as dlq_module

    def terminal(*, stderr: bool = False) -> Console:
        return Console(stderr=stderr, force_terminal=True, width=90, highlight=False, markup=False)

    monkeypatch.setattr(dlq_module, "console", terminal)
    result = invoke("dlq", "list", "--store", url_of(db))
    assert result.exit_code == 0
    for letter_id in five:
        assert letter_id in result.stdout
    assert "…" in result.stdout  # destinations and failures were cut to fit


# dlq show


def test_show_prints_every_field_and_the_request(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "show", five[1], "--store", url_of(db))
    assert result.exit_code == 0
    text = result.stdout
    for field in (
        "id",
        "cursor",
        "reason",
        "attempts",
        "destination",
        "idempotency key",
        "ordering key",
        "created at",
        "first failure at",
        "last failure at",
        "dead at",
        "last status",
        "last error",
    ):
        assert f"\n{field} " in "\n" + text
    assert five[1] in text
    assert "POST https://billing.example.com/charge" in text
    assert "content-type: application/json" in text
    assert '"sku": "A-1"' in text


def test_show_json(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "show", five[0], "--store", url_of(db), "--json")
    view = json.loads(result.stdout)
    assert view["id"] == five[0]
    assert view["request"]["url"] == f"{API}/orders"
    assert ["content-type", "application/json"] in view["request"]["headers"]


def test_show_a_handler_message(db: Path) -> None:
    (letter_id,) = fill(
        db, [{"handler": "crm.sync", "payload": {"customer": 42}, "dead_at": NOW - 60}]
    )
    text = invoke("dlq", "show", letter_id, "--store", url_of(db)).stdout
    assert "handler  crm.sync" in text
    assert '"customer": 42' in text
    view = json.loads(invoke("dlq", "show", letter_id, "--store", url_of(db), "--json").stdout)
    assert view["handler"] == "crm.sync"
    assert view["payload"] == {"customer": 42}


def test_show_an_unknown_id_exits_3(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "show", "no-such-id", "--store", url_of(db))
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "no dead letter has id 'no-such-id'" in result.stderr


# dlq replay


def test_replay_ids(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "replay", five[0], five[3], "--store", url_of(db), "--yes")
    assert result.exit_code == 0
    assert result.stdout == "replayed 2 dead letters\n"
    assert counts(db) == (2, 3)


def test_replay_asks_first_and_no_aborts(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "replay", "--reason", "rejected", "--store", url_of(db), input="n\n")
    assert result.exit_code == 1
    assert "Replay 2 dead letters?" in result.stderr
    assert "aborted" in result.stderr
    assert counts(db) == (0, 5)
    result = invoke("dlq", "replay", "--reason", "rejected", "--store", url_of(db), input="y\n")
    assert result.exit_code == 0
    assert result.stdout == "replayed 2 dead letters\n"
    assert counts(db) == (2, 3)


def test_replay_all_keeps_the_keys_unless_told(db: Path, five: list[str]) -> None:
    before = {
        letter["id"]: letter["idempotency_key"]
        for letter in json.loads(invoke("dlq", "list", "--store", url_of(db), "--json").stdout)[
            "letters"
        ]
    }
    assert invoke("dlq", "replay", five[0], "--store", url_of(db), "-y").exit_code == 0
    result = invoke("dlq", "replay", "--all", "--new-keys", "--store", url_of(db), "-y")
    assert result.stdout == "replayed 4 dead letters\n"

    async def keys() -> dict[str, str]:
        store = SQLiteStore(db)
        try:
            claimed = await store.claim("test", limit=10, lease=60, now=time.time())
        finally:
            await store.close()
        return {m.id: m.idempotency_key for m in claimed}

    after = anyio.run(keys)
    assert set(after) == set(five)
    assert after[five[0]] == before[five[0]]
    assert all(after[i] != before[i] for i in five[1:])


def test_replay_at_a_rate(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "replay", "--all", "--rate", "1000", "--store", url_of(db), "-y")
    assert result.stdout == "replayed 5 dead letters\n"
    assert invoke("dlq", "replay", "--all", "--rate", "0", "--store", url_of(db)).exit_code == 2


def test_replay_of_an_unknown_id_exits_3_and_replays_nothing(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "replay", five[0], "nope", "--store", url_of(db), "-y")
    assert result.exit_code == 3
    assert "'nope'" in result.stderr
    assert counts(db) == (0, 5)


def test_replay_of_nothing_matching_is_fine(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "replay", "--destination", "https://nowhere", "--store", url_of(db))
    assert result.exit_code == 0
    assert result.stdout == "no dead letters match; nothing to replay\n"


@pytest.mark.parametrize("verb", ["replay", "purge"])
@pytest.mark.parametrize(
    "selection",
    [[], ["--all", "--reason", "rejected"], ["--all", "some-id"]],
    ids=["nothing", "all-and-filter", "all-and-id"],
)
def test_replay_and_purge_need_one_selection(
    db: Path, five: list[str], verb: str, selection: list[str]
) -> None:
    result = invoke("dlq", verb, *selection, "--store", url_of(db), "--yes")
    assert result.exit_code == 2
    assert "Error:" in result.stderr
    assert counts(db) == (0, 5)


# dlq purge


def test_purge_asks_with_the_count_and_no_aborts(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "purge", "--destination", API, "--store", url_of(db), input="n\n")
    assert result.exit_code == 1
    assert "Delete 3 dead letters for good? [y/N]" in result.stderr
    assert "aborted" in result.stderr
    assert counts(db) == (0, 5)


def test_purge_yes_at_the_prompt(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "purge", "--destination", API, "--store", url_of(db), input="y\n")
    assert result.exit_code == 0
    assert result.stdout == "purged 3 dead letters\n"
    left = json.loads(invoke("dlq", "list", "--store", url_of(db), "--json").stdout)
    assert [letter["id"] for letter in left["letters"]] == [five[1], five[3]]


def test_purge_ids_and_all_with_yes(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "purge", five[2], "--store", url_of(db), "--yes")
    assert result.stdout == "purged 1 dead letter\n"
    result = invoke("dlq", "purge", "--all", "--store", url_of(db), "-y")
    assert result.stdout == "purged 4 dead letters\n"
    assert counts(db) == (0, 0)
    result = invoke("dlq", "purge", "--all", "--store", url_of(db))
    assert result.exit_code == 0
    assert result.stdout == "no dead letters match; nothing to purge\n"


def test_purge_of_an_unknown_id_exits_3(db: Path, five: list[str]) -> None:
    result = invoke("dlq", "purge", "nope", five[0], "--store", url_of(db), "--yes")
    assert result.exit_code == 3
    assert counts(db) == (0, 5)


def test_purge_deletes_only_what_it_counted(
    db: Path, five: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A letter that dies while the question is on the screen is not deleted unseen."""
    late: list[str] = []

    def confirm(question: str, **_: object) -> bool:
        late.extend(fill(db, [{"dead_at": time.time()}]))
        return True

    monkeypatch.setattr("click.confirm", confirm)
    result = invoke("dlq", "purge", "--all", "--store", url_of(db))
    assert result.stdout == "purged 5 dead letters\n"
    left = json.loads(invoke("dlq", "list", "--store", url_of(db), "--json").stdout)
    assert [letter["id"] for letter in left["letters"]] == late


def test_progress_bars_on_a_terminal(
    db: Path, five: list[str], tmp_path: Path, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    import resilient.cli._output as output

    def terminal(*, stderr: bool = False) -> Console:
        return Console(stderr=stderr, force_terminal=True, highlight=False, markup=False)

    monkeypatch.setattr(output, "console", terminal)
    # Two a second: the replay takes a second, long enough for the bar to move.
    result = invoke("dlq", "replay", "--since", "3h30m", "--rate", "2", "--store", url_of(db), "-y")
    assert result.exit_code == 0
    assert result.stdout == "replayed 3 dead letters\n"
    result = invoke("dlq", "purge", "--all", "--store", url_of(db), "-y")
    assert result.stdout == "purged 2 dead letters\n"
    other = tmp_path / "other.db"
    fill(other, pending=[{"url": f"{receiver}/orders"}] * 3)
    result = invoke("outbox", "drain", "--timeout", "30", "--store", url_of(other))
    assert result.exit_code == 0
    assert "delivered 3 messages" in result.stdout


# Secrets


def _leaky_client() -> httpx.AsyncClient:
    """A client that adds a credential and fails with an error that quotes it."""

    def refuse(request: httpx.Request) -> httpx.Response:
        msg = f"refused; sent Authorization: {request.headers['authorization']}"
        raise httpx.ConnectError(msg, request=request)

    return httpx.AsyncClient(
        transport=httpx.MockTransport(refuse), headers={"Authorization": f"Bearer {CANARY}"}
    )


def test_credentials_quoted_in_errors_are_never_printed(db: Path) -> None:
    async def deliver_and_fail() -> None:
        outbox = Outbox(
            SQLiteStore(db), client=_leaky_client(), options=DeliveryOptions(max_attempts=1)
        )
        await outbox.send(httpx.Request("POST", f"{API}/orders", json={"sku": "A-1"}))
        async with outbox.relay(workers=1) as relay:
            assert await relay.drain(timeout=60)
        await outbox.store.close()

    run(deliver_and_fail)
    listed = invoke("dlq", "list", "--store", url_of(db), "--json")
    (letter,) = json.loads(listed.stdout)["letters"]
    assert letter["reason"] == "exhausted"
    assert "refused; sent Authorization" in letter["last_error"]
    outputs = [
        listed,
        invoke("dlq", "list", "--store", url_of(db)),
        invoke("dlq", "show", letter["id"], "--store", url_of(db)),
        invoke("dlq", "show", letter["id"], "--store", url_of(db), "--json"),
    ]
    for result in outputs:
        assert result.exit_code == 0
        assert CANARY not in result.output


def _write_raw_letter(path: Path, data: str, error: str) -> str:
    """A dead letter from a row written by hand (or by another release): no checks on enqueue."""

    async def write() -> str:
        store = SQLiteStore(path)
        try:
            message = NewMessage(
                id=uuid.uuid4().hex,
                data=data,
                destination=f"{API}/orders",
                idempotency_key="key-1",
                ordering_key=None,
                created_at=NOW - 60,
                next_attempt_at=NOW - 60,
            )
            await store.enqueue([message])
            (claimed,) = await store.claim("test", limit=1, lease=60, now=NOW)
            await store.bury(claimed, reason="exhausted", failure=Failure(NOW, error), now=NOW)
        finally:
            await store.close()
        return message.id

    return anyio.run(write)


def test_stored_credentials_are_shown_redacted(db: Path) -> None:
    document = {
        "v": 1,
        "kind": "http",
        "method": "POST",
        "url": f"{API}/orders?api_key={CANARY}&page=2",
        "headers": [["authorization", f"Bearer {CANARY}"], ["x-trace", "t-1"]],
        "body": "{}",
        "encoding": "utf-8",
    }
    letter_id = _write_raw_letter(db, json.dumps(document), f"HTTP 401 for Bearer {CANARY}")
    shown = invoke("dlq", "show", letter_id, "--store", url_of(db))
    assert "authorization: Bearer [REDACTED]" in shown.stdout
    assert "x-trace: t-1" in shown.stdout
    assert "api_key=[REDACTED]" in shown.stdout
    as_json = invoke("dlq", "show", letter_id, "--store", url_of(db), "--json")
    view = json.loads(as_json.stdout)
    assert ["authorization", "Bearer [REDACTED]"] in view["request"]["headers"]
    assert view["last_error"] == "HTTP 401 for [REDACTED]"
    listed = invoke("dlq", "list", "--store", url_of(db))
    for result in (shown, as_json, listed):
        assert CANARY not in result.output


def test_a_malformed_letter_is_shown_raw_but_scrubbed(db: Path) -> None:
    document = {
        "v": 99,  # written by a newer release: unreadable here
        "kind": "http",
        "url": f"{API}/orders",
        "headers": [["authorization", f"Bearer {CANARY}"]],
    }
    letter_id = _write_raw_letter(db, json.dumps(document), "malformed: unknown format version")
    shown = invoke("dlq", "show", letter_id, "--store", url_of(db))
    assert "malformed  unknown format version 99" in shown.stdout
    assert '"v": 99' in shown.stdout
    as_json = invoke("dlq", "show", letter_id, "--store", url_of(db), "--json")
    assert "[REDACTED]" in json.loads(as_json.stdout)["raw"]
    for result in (shown, as_json):
        assert CANARY not in result.output


# outbox stats


def test_stats(db: Path) -> None:
    fill(
        db,
        [{"dead_at": NOW - 60}, {"dead_at": NOW - 30}],
        [{}, {"delay": 3600.0}, {"handler": "crm.sync", "payload": {}}],
    )
    result = invoke("outbox", "stats", "--store", url_of(db))
    assert result.exit_code == 0
    rows = {line.split("  ")[0]: line.split() for line in result.stdout.splitlines()}
    assert rows["pending"][1] == "3"
    assert rows["due"][1] == "2"
    assert rows["leased"][1] == "0"
    assert rows["dead letters"][2] == "2"
    assert rows["delivered"][1] == "0"
    assert "next attempt" in rows
    stats = json.loads(invoke("outbox", "stats", "--store", url_of(db), "--json").stdout)
    assert stats["pending"] == 3
    assert stats["due"] == 2
    assert stats["dead_letters"] == 2
    assert stats["delivered"] == 0
    assert 0 <= stats["oldest_pending_age"] < 600
    assert 3000 < stats["next_attempt_in"] <= 3600


def test_stats_of_an_empty_store(db: Path) -> None:
    fill(db)
    stats = json.loads(invoke("outbox", "stats", "--store", url_of(db), "--json").stdout)
    assert stats["pending"] == 0
    assert stats["oldest_pending_age"] is None
    assert stats["next_attempt_in"] is None
    assert "oldest pending" in invoke("outbox", "stats", "--store", url_of(db)).stdout


# outbox drain


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[bytes] = []  # noqa: RUF012 -- shared with the test, on purpose

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(201)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that accepts every POST; its URL."""
    _Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_drain_delivers_http_messages_with_the_default_client(db: Path, receiver: str) -> None:
    fill(db, pending=[{"url": f"{receiver}/orders", "json": {"n": n}} for n in range(3)])
    result = invoke("outbox", "drain", "--store", url_of(db), "--timeout", "30", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "delivered 3 messages" in result.stdout
    assert "the outbox is empty" in result.stdout
    assert sorted(json.loads(body)["n"] for body in _Receiver.received) == [0, 1, 2]
    assert counts(db) == (0, 0)


def test_drain_of_an_empty_outbox(db: Path) -> None:
    fill(db)
    result = invoke("outbox", "drain", "--store", url_of(db))
    assert result.exit_code == 0
    assert "the outbox is empty" in result.stdout


def test_drain_times_out_with_exit_1(db: Path) -> None:
    fill(db, pending=[{"delay": 3600.0}])
    started = time.monotonic()
    result = invoke("outbox", "drain", "--store", url_of(db), "--timeout", "0.2")
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert "timed out after 0.2 s; 1 message still pending" in result.stderr
    assert counts(db) == (1, 0)


def _app_module(tmp_path: Path, db: Path, body: str) -> str:
    name = f"cli_app_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        "import resilient\n"
        "from resilient.stores import SQLiteStore\n"
        f"outbox = resilient.Outbox(SQLiteStore({str(db)!r}))\n"
        "seen = []\n" + body
    )
    return name


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The current directory, importable for --app; sys.path and sys.modules put back after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("cli_app_"):
            del sys.modules[name]


def test_drain_with_the_apps_outbox_uses_its_handlers(app_dir: Path, db: Path) -> None:
    fill(db, pending=[{"handler": "crm.sync", "payload": {"customer": n}} for n in range(4)])
    name = _app_module(
        app_dir,
        db,
        "@outbox.handler('crm.sync')\n"
        "async def sync(delivery):\n"
        "    seen.append(delivery.payload['customer'])\n",
    )
    result = invoke("outbox", "drain", "--app", f"{name}:outbox", "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert "delivered 4 messages" in result.stdout
    assert sorted(sys.modules[name].seen) == [0, 1, 2, 3]
    assert counts(db) == (0, 0)


def test_without_the_app_handler_messages_become_dead_letters(db: Path) -> None:
    fill(db, pending=[{"handler": "crm.sync", "payload": {}}])
    result = invoke("outbox", "drain", "--store", url_of(db), "--timeout", "30")
    assert result.exit_code == 0
    assert "dead-lettered 1" in result.stdout
    listed = json.loads(invoke("dlq", "list", "--store", url_of(db), "--json").stdout)
    assert listed["letters"][0]["reason"] == "unknown-handler"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("no_colon", "expected MODULE:ATTR"),
        ("cli_app_missing_module:outbox", "cannot import"),
        ("{app}:nothing", "has no attribute"),
        ("{app}:seen", "is a list, not a resilient.Outbox"),
    ],
)
def test_bad_apps_are_usage_errors(app_dir: Path, db: Path, spec: str, error: str) -> None:
    fill(db)
    name = _app_module(app_dir, db, "")
    result = invoke("outbox", "drain", "--app", spec.format(app=name))
    assert result.exit_code == 2
    assert error in result.stderr


def test_app_and_store_together_are_a_usage_error(app_dir: Path, db: Path) -> None:
    fill(db)
    name = _app_module(app_dir, db, "")
    result = invoke("outbox", "drain", "--app", f"{name}:outbox", "--store", url_of(db))
    assert result.exit_code == 2
    assert "not both" in result.stderr
    # ...but a store from the environment gives way to the app's.
    result = invoke(
        "outbox", "drain", "--app", f"{name}:outbox", env={"RESILIENT_STORE": "memory://"}
    )
    assert result.exit_code == 0


# Helpers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", 1_000_000.0),
        ("90s", 1_000_000.0 - 90),
        ("30m", 1_000_000.0 - 1800),
        ("2h", 1_000_000.0 - 7200),
        ("7d", 1_000_000.0 - 7 * 86_400),
        ("1w", 1_000_000.0 - 604_800),
        ("1h30m", 1_000_000.0 - 5400),
        ("1.5h ago", 1_000_000.0 - 5400),
        ("2026-11-20T10:00:00Z", 1_795_168_800.0),
        ("2026-11-20T11:00:00+01:00", 1_795_168_800.0),
        ("2026-11-20T10:00:00.5z", 1_795_168_800.5),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time(text, now=1_000_000.0) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2h tomorrow", "-2h", "h", "2026-13-01"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time"):
        parse_time(text, now=0.0)


def test_format_time_round_trips_through_parse_time() -> None:
    assert parse_time(format_time(1_795_168_800.0), now=0.0) == 1_795_168_800.0
    assert format_time(None) == "-"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (42.4, "42s"),
        (3599, "59m 59s"),
        (7500, "2h 5m"),
        (90_000, "1d 1h"),
        (-65, "-1m 5s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_truncate() -> None:
    assert truncate("a  b\nc", 10) == "a b c"
    assert truncate("abcdefghij", 5) == "abcd…"
    assert truncate(None, 5) == "-"


def test_only_the_cli_imports_click_and_rich() -> None:
    """The library itself never needs them (httpx may import them on its own)."""
    package = Path(resilient.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if "cli" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("click", "rich")
            ]
    assert offenders == []
