"""Where shared mutable state lives: in each process (the default), or in Redis for a fleet.

::

    state = resilient.state.RedisState("redis://cache:6379/0", namespace="checkout")
    breaker = resilient.CircuitBreaker(name="payments", shared=state)
    limiter = resilient.RateLimiter(50, name="partner-api", shared=state)
    retry = resilient.Retry(budget=state.retry_budget("payments"))
"""

from ._budget import SharedRetryBudget as SharedRetryBudget
from ._redis import RedisState as RedisState

__all__ = ["RedisState", "SharedRetryBudget"]
