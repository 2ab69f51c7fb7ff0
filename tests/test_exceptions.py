"""The error tree drawn in _exceptions.py holds."""

from __future__ import annotations

import pickle

import pytest

import resilient as rs


@pytest.mark.parametrize(
    "error",
    [
        rs.DeadlineExceededError,
        rs.CircuitOpenError,
        rs.BulkheadFullError,
        rs.RateLimitedError,
        rs.BudgetExhaustedError,
    ],
)
def test_rejections_share_one_base(error: type[Exception]) -> None:
    """Every rejection is a RejectedError and a ResilienceError."""
    assert issubclass(error, rs.RejectedError)
    assert issubclass(error, rs.ResilienceError)


def test_timeout_error_is_also_the_builtin() -> None:
    """Code that catches TimeoutError catches ours."""
    error = rs.DeadlineExceededError(2.5)
    assert isinstance(error, TimeoutError)
    assert error.timeout == 2.5
    assert "2.5 s" in str(error)


def test_timeout_error_pickles() -> None:
    """Errors cross process boundaries (multiprocessing, task queues) intact."""
    error = pickle.loads(pickle.dumps(rs.DeadlineExceededError(1.0)))  # noqa: S301 -- our own bytes
    assert isinstance(error, rs.DeadlineExceededError)
    assert error.timeout == 1.0


def test_the_docstring_draws_the_tree() -> None:
    """The tree in the module docstring names every error class."""
    from resilient import _exceptions

    doc = _exceptions.__doc__ or ""
    for name in _exceptions.__all__:
        assert name in doc


@pytest.mark.parametrize(
    ("error", "retry_after", "text"),
    [
        (rs.CircuitOpenError(2.5, "payments"), 2.5, "circuit 'payments' is open"),
        (rs.CircuitOpenError(None, "db", "half_open"), None, "probe calls are taken"),
        (rs.RateLimitedError(0.25), 0.25, "try again in 0.25 s"),
        (rs.RateLimitedError(None), None, "rate limit exceeded"),
        (rs.BulkheadFullError(4, 8), None, "4 calls running and 8 waiting"),
    ],
)
def test_rejections_say_when_to_come_back(
    error: rs.RejectedError, retry_after: float | None, text: str
) -> None:
    assert error.retry_after == retry_after
    assert text in str(error)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own bytes
    assert type(copy) is type(error)
    assert str(copy) == str(error)
