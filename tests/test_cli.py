"""The `resilient` command."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from resilient.cli import cli, main

if TYPE_CHECKING:
    from pathlib import Path


def test_demo_runs_end_to_end_and_prints_a_runnable_dead_letter_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The demo in short mode, as text: progress lines, the report, a command that works.

    Without --db the store is made in a temporary directory and kept, so the
    command printed at the end lists the run's dead letters.
    """
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp makes the store
    result = CliRunner().invoke(cli, ["demo", "--short", "--seed", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = result.stdout
    # Progress: a line per phase and per breaker transition (no terminal here).
    for phase in ("healthy", "5xx burst", "throttled", "outage", "recovered"):
        assert f": {phase} (" in text
    assert "breaker partner: closed -> open" in text
    assert "breaker catalog" not in text
    # The report, its numbers consistent with one another.
    summary = re.search(r"calls +(\d+): (\d+) succeeded, (\d+) failed", text)
    assert summary is not None
    calls, succeeded, failed = map(int, summary.groups())
    assert calls == 200
    assert succeeded + failed == calls
    lost = re.search(r"PASS  nothing lost: (\d+) enqueued == (\d+) delivered \+ (\d+) dead", text)
    assert lost is not None
    enqueued, delivered, dead = map(int, lost.groups())
    assert enqueued == delivered + dead
    assert "FAIL" not in text
    assert "catalog       closed throughout" in text
    # The dead-letter command, run as printed.
    command = re.search(r"^Dead letters: (resilient dlq list .+)$", text, re.MULTILINE)
    assert command is not None
    argv = shlex.split(command.group(1))
    assert argv[:4] == ["resilient", "dlq", "list", "--store"]
    assert argv[4].startswith(f"sqlite:///{tmp_path}/resilient-demo-")
    listed = CliRunner().invoke(cli, [*argv[1:], "--json"], catch_exceptions=False)
    assert listed.exit_code == 0
    assert len(json.loads(listed.stdout)["letters"]) == dead


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("resilient ")


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_python_dash_m_resilient_shows_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "resilient", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "demo" in done.stdout
