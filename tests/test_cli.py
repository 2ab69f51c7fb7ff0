"""The `resilient` command."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from resilient.cli import main
from resilient.cli._demo import demo
from resilient.testing import run


def test_demo_prints_every_attempt_and_a_consistent_summary() -> None:
    """The demo's report agrees with the attempts it printed (run in virtual time)."""
    out = io.StringIO()
    report = run(lambda: demo(out, seed=7, calls=15))
    text = out.getvalue()
    assert text.startswith("pipeline: Pipeline(Timeout(5) > Retry(")
    assert report.calls == 15
    assert report.succeeded + report.failed == report.calls
    assert text.count("    attempt ") == report.attempts
    assert text.count("retrying in") == report.retries
    assert report.attempts == report.calls + report.retries
    assert text.count("timed out after") == report.timeouts
    assert "-- the service is down --" in text
    assert "reason: budget" in text  # the outage drains the budget
    summary = re.search(r"(\d+) calls: (\d+) succeeded, (\d+) failed; (\d+) attempts", text)
    assert summary is not None
    assert tuple(map(int, summary.groups())) == (
        report.calls,
        report.succeeded,
        report.failed,
        report.attempts,
    )


def test_demo_is_reproducible_from_its_seed() -> None:
    first, second = io.StringIO(), io.StringIO()
    run(lambda: demo(first, seed=3, calls=9))
    run(lambda: demo(second, seed=3, calls=9))
    strip = re.compile(r"retrying in [0-9.]+ s")  # jitter is not seeded
    assert strip.sub("", first.getvalue()) == strip.sub("", second.getvalue())


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
