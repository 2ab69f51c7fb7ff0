"""Composable async resilience policies.

Import it as ``import resilient as rs``; everything public is re-exported here.
"""

# Subpackages on the public surface: ``rs.http.Transport``, ``rs.stores.SQLiteStore``.
from . import http as http, state as state, stores as stores
from ._context import Context as Context
from ._exceptions import (
    BudgetExhaustedError as BudgetExhaustedError,
    BulkheadFullError as BulkheadFullError,
    CircuitOpenError as CircuitOpenError,
    DeadlineExceededError as DeadlineExceededError,
    PipelineWarning as PipelineWarning,
    RateLimitedError as RateLimitedError,
    RejectedError as RejectedError,
    ResilienceError as ResilienceError,
)
from ._outcome import Outcome as Outcome
from ._pipeline import Pipeline as Pipeline, Policy as Policy, Step as Step
from ._version import __version__ as __version__
from .delivery import (
    Delivery as Delivery,
    DeliveryOptions as DeliveryOptions,
    Outbox as Outbox,
    SecretInMessageError as SecretInMessageError,
    UndeliverableError as UndeliverableError,
)
from .policies._backoff import Backoff as Backoff, Jitter as Jitter
from .policies._breaker import (
    CircuitBreaker as CircuitBreaker,
    CircuitBreakerStatistics as CircuitBreakerStatistics,
    ConsecutiveFailures as ConsecutiveFailures,
    CountWindow as CountWindow,
    TimeWindow as TimeWindow,
)
from .policies._budget import (
    RetryBudget as RetryBudget,
    RetryBudgetStatistics as RetryBudgetStatistics,
)
from .policies._bulkhead import Bulkhead as Bulkhead, BulkheadStatistics as BulkheadStatistics
from .policies._circuit import (
    CircuitState as CircuitState,
    CircuitTransition as CircuitTransition,
)
from .policies._fallback import Fallback as Fallback
from .policies._hedging import Hedging as Hedging
from .policies._rate_limit import (
    RateLimiter as RateLimiter,
    RateLimiterStatistics as RateLimiterStatistics,
)
from .policies._retry import Retry as Retry
from .policies._timeout import Timeout as Timeout

__all__ = [
    "Backoff",
    "BudgetExhaustedError",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadStatistics",
    "CircuitBreaker",
    "CircuitBreakerStatistics",
    "CircuitOpenError",
    "CircuitState",
    "CircuitTransition",
    "ConsecutiveFailures",
    "Context",
    "CountWindow",
    "DeadlineExceededError",
    "Delivery",
    "DeliveryOptions",
    "Fallback",
    "Hedging",
    "Jitter",
    "Outbox",
    "Outcome",
    "Pipeline",
    "PipelineWarning",
    "Policy",
    "RateLimitedError",
    "RateLimiter",
    "RateLimiterStatistics",
    "RejectedError",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "RetryBudgetStatistics",
    "SecretInMessageError",
    "Step",
    "TimeWindow",
    "Timeout",
    "UndeliverableError",
    "__version__",
]
