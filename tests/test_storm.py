"""The default Retry under a storm: bounded load when all fails, full success when little does.

The simulation lives in benchmarks/storm.py (which also prints the peers beside us); these
are behaviour targets in virtual time, not timings, so they belong in the test suite.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

STORM = Path(__file__).parent.parent / "benchmarks" / "storm.py"


@pytest.fixture(scope="module")
def storm() -> ModuleType:
    spec = importlib.util.spec_from_file_location("storm", STORM)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["storm"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_defaults_add_almost_no_load_when_everything_fails(storm: ModuleType, seed: int) -> None:
    """p = 1.0: the default budget holds amplification (attempts / calls) to <= 1.05."""
    result = storm.simulate("resilient", 1.0, calls=1000, seed=seed)
    assert result["calls"] == 1000
    assert result["successes"] == 0
    assert result["amplification"] <= 1.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_defaults_lose_no_success_when_a_tenth_fails(storm: ModuleType, seed: int) -> None:
    """p = 0.1: the budget grants every retry that is needed, success >= 0.999."""
    result = storm.simulate("resilient", 0.1, calls=1000, seed=seed)
    assert result["success_ratio"] >= 0.999


def test_without_failures_nothing_is_retried(storm: ModuleType) -> None:
    result = storm.simulate("resilient", 0.0, calls=200, seed=0)
    assert result["attempts"] == 200
    assert result["success_ratio"] == 1.0
