"""Shared fixtures: every async test runs on asyncio and trio, in virtual time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import structlog
from hypothesis import HealthCheck, settings

import resilient.instrumentation
import resilient.testing

if TYPE_CHECKING:
    from collections.abc import Iterator

# Hypothesis builds its table of unicode characters on the first st.text() draw of
# a process (about a second), which its too_slow check blames on whichever test
# draws first: with an empty .hypothesis/ cache, a lone run of that test fails.
settings.register_profile("resilient", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("resilient")


@pytest.fixture(params=resilient.testing.anyio_backends(), ids=lambda backend: backend[0])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """Run each async test on asyncio (VirtualEventLoop) and trio (MockClock)."""
    return request.param


@pytest.fixture(autouse=True)
def _restore_hooks() -> Iterator[None]:
    """Tests may install hooks; put the defaults back after each."""
    before = resilient.instrumentation.get_hooks()
    yield
    resilient.instrumentation.set_hooks(before)


@pytest.fixture
def logs() -> Iterator[list[dict[str, object]]]:
    """The structlog events logged during the test."""
    with structlog.testing.capture_logs() as captured:
        yield captured


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the trio runs of PostgreSQL store tests: psycopg's async runs on asyncio only."""
    dropped = [item for item in items if "[trio-postgres" in item.name]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if "[trio-postgres" not in item.name]
