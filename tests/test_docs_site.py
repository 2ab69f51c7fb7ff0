"""The documentation site builds with ``mkdocs build --strict``, and its nav lists every page.

The build renders the API reference from the docstrings (mkdocstrings), so a docstring
that the strict build cannot digest fails here, as does a broken link or anchor.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"


class _Loader(yaml.SafeLoader):
    """A safe loader that reads mkdocs.yml's ``!!python/name:`` tags as plain strings."""


def _python_name(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> str:
    del loader
    return f"{suffix} {getattr(node, 'value', '')}"


_Loader.add_multi_constructor("tag:yaml.org,2002:python/name:", _python_name)


def _nav_pages(entry: Any) -> list[str]:
    """Every page path in a (nested) mkdocs nav entry."""
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, list):
        return [page for item in entry for page in _nav_pages(item)]
    if isinstance(entry, dict):
        return [page for value in entry.values() for page in _nav_pages(value)]
    return []


def _config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.load(CONFIG.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 -- a SafeLoader subclass
    return config


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    nav = _nav_pages(_config()["nav"])
    assert len(nav) == len(set(nav)), "a page is listed twice in the nav"
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert set(nav) - pages == set(), "nav entries without a page"
    assert pages - set(nav) == set(), "pages missing from the nav"


def test_the_reference_covers_every_public_subpackage() -> None:
    nav = set(_nav_pages(_config()["nav"]))
    for page in ("policies", "http", "delivery", "stores", "state", "testing", "instrumentation"):
        assert f"reference/{page}.md" in nav


@pytest.mark.timeout(60)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(  # noqa: S603 -- our own interpreter, fixed arguments
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    for page in (
        "index.html",
        "getting-started/index.html",
        "testing/index.html",
        "telemetry/index.html",
        "performance/index.html",
        "migrating/index.html",
        "reference/index.html",
        "reference/policies/index.html",
        "reference/http/index.html",
        "reference/delivery/index.html",
        "reference/stores/index.html",
        "reference/state/index.html",
        "reference/testing/index.html",
        "reference/instrumentation/index.html",
    ):
        assert (site / page).is_file(), f"{page} was not built"
    policies = (site / "reference/policies/index.html").read_text(encoding="utf-8")
    for anchor in ("resilient.Pipeline", "resilient.Retry", "resilient.CircuitBreaker"):
        assert f'id="{anchor}"' in policies, f"{anchor} is not in the API reference"
    migrating = (site / "migrating/index.html").read_text(encoding="utf-8")
    assert "tabbed-set" in migrating, "the side-by-side tabs were not rendered"
