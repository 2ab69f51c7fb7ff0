"""``resilient store init``: creates or migrates a store's schema, idempotently."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import TYPE_CHECKING

import anyio
from click.testing import CliRunner

from backends import POSTGRES_URL, drop_schema, postgres_url
from resilient.cli._app import cli
from resilient.stores import SCHEMA_VERSION

if TYPE_CHECKING:
    from pathlib import Path


def test_init_creates_a_sqlite_store_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    result = CliRunner().invoke(cli, ["store", "init", "--store", f"sqlite:///{path}"])
    assert result.exit_code == 0, result.output
    assert result.output == f"store sqlite:///{path}: schema version {SCHEMA_VERSION} (created)\n"
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"resilient_outbox", "resilient_dead_letters", "resilient_meta"} <= tables


def test_init_is_idempotent_and_reports_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["store", "init", "--store", url]).exit_code == 0
    result = runner.invoke(cli, ["store", "init", "--store", url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "store": url,
        "schema_version": SCHEMA_VERSION,
        "created": False,
    }


def test_init_refuses_a_newer_schema_with_exit_code_4(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    runner = CliRunner()
    assert runner.invoke(cli, ["store", "init", "--store", str(path)]).exit_code == 0
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE resilient_meta SET value = '99' WHERE key = 'schema_version'")
    result = runner.invoke(cli, ["store", "init", "--store", str(path)])
    assert result.exit_code == 4
    assert "version 99, newer than this release" in result.output


def test_init_needs_a_store() -> None:
    result = CliRunner(env={"RESILIENT_STORE": ""}).invoke(cli, ["store", "init"])
    assert result.exit_code == 2
    assert "no store given" in result.output


def test_init_creates_a_postgres_schema_named_in_the_url() -> None:
    postgres_url()
    schema = f"cli_{uuid.uuid4().hex[:10]}"
    url = f"{POSTGRES_URL}?schema={schema}"
    runner = CliRunner()
    try:
        first = runner.invoke(cli, ["store", "init", "--store", url, "--json"])
        again = runner.invoke(cli, ["store", "init", "--store", url, "--json"])
    finally:
        anyio.run(drop_schema, schema)
    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["schema_version"] == SCHEMA_VERSION
