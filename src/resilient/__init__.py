"""Composable async resilience policies.

Import it as ``import resilient as rs``; everything public is re-exported here.
"""

from ._context import Context as Context
from ._exceptions import (
    BudgetExhaustedError as BudgetExhaustedError,
    BulkheadFullError as BulkheadFullError,
    CircuitOpenError as CircuitOpenError,
    DeadlineExceededError as DeadlineExceededError,
    RateLimitedError as RateLimitedError,
    RejectedError as RejectedError,
    ResilienceError as ResilienceError,
)
from ._outcome import Outcome as Outcome
from ._pipeline import Pipeline as Pipeline, Policy as Policy, Step as Step
from ._version import __version__ as __version__
from .policies._backoff import Backoff as Backoff, Jitter as Jitter
from .policies._budget import (
    RetryBudget as RetryBudget,
    RetryBudgetStatistics as RetryBudgetStatistics,
)
from .policies._retry import Retry as Retry
from .policies._timeout import Timeout as Timeout

__all__ = [
    "Backoff",
    "BudgetExhaustedError",
    "BulkheadFullError",
    "CircuitOpenError",
    "Context",
    "DeadlineExceededError",
    "Jitter",
    "Outcome",
    "Pipeline",
    "Policy",
    "RateLimitedError",
    "RejectedError",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "RetryBudgetStatistics",
    "Step",
    "Timeout",
    "__version__",
]
