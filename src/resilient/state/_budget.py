"""`SharedRetryBudget`: a retry budget whose tokens a fleet shares through Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._clock import hold, now
from ..policies._budget import RetryBudget

if TYPE_CHECKING:
    from ._redis import RedisState

__all__ = ["SharedRetryBudget"]


class SharedRetryBudget(RetryBudget):
    """A `RetryBudget` settled with Redis: made by `RedisState.retry_budget`.

    Successes earn and retries spend from a local copy of the fleet's tokens, so
    neither pays a round trip; the sync task sends what was earned and spent and
    takes the fleet's balance back every sync interval. Between two syncs the
    processes may together spend what each of them sees, which bounds the
    overspend by the retries a process makes within one interval.

    The budget fails closed: a process that has not heard the fleet's balance
    (it just started, or it was idle for two sync intervals) has no tokens and
    makes no retries until its next sync, which its first call asks for. So a
    fleet that restarts at once does not spend a bucket per process against a
    service that is down. ``await state.refresh()`` at start-up hears it at once.
    """

    __slots__ = ("__weakref__", "_earned", "_key", "_last_sync", "_shared", "_spent")

    def __init__(
        self, shared: RedisState, name: str, *, ratio: float = 0.2, max_tokens: float = 10.0
    ) -> None:
        super().__init__(ratio=ratio, max_tokens=max_tokens)
        given: Any = name
        if not isinstance(given, str) or not given:
            msg = f"RedisState.retry_budget: name must be a non-empty str, got {name!r}"
            raise TypeError(msg)
        self._shared = shared
        self._key = shared.key("budget", name)
        self._earned = 0
        self._spent = 0
        self._last_sync = -1e18
        self._tokens = 0.0  # unknown until the first sync

    def record_success(self) -> None:
        """Earn *ratio* tokens, locally now and fleet-wide at the next sync."""
        super().record_success()
        self._earned += 1
        self._nudge()

    def try_retry(self) -> bool:
        """Take a token from the local copy; the fleet's balance learns it at the next sync."""
        if super().try_retry():
            self._spent += 1
            self._nudge()
            return True
        self._nudge()
        return False

    def _nudge(self) -> None:
        if now() - self._last_sync >= self._shared.sync_interval:
            self._shared.wake()
        else:
            self._shared.ensure()

    def wants_sync(self, at: float) -> bool:
        """Whether there is something to settle, or the copy is a sync interval old."""
        return (
            bool(self._earned or self._spent) or at - self._last_sync >= self._shared.sync_interval
        )

    def idle(self, at: float) -> None:
        """No traffic: once the copy is two intervals old, stop trusting it (fail closed)."""
        if at - self._last_sync >= 2 * self._shared.sync_interval:
            self._tokens = 0.0

    async def sync(self, shared: RedisState) -> None:
        """Send what was earned and spent; take the fleet's balance."""
        earned, spent = self._earned, self._spent
        self._earned = self._spent = 0
        with hold():
            tokens = await shared.scripts["BUDGET"](
                keys=[self._key], args=[earned, spent, self.ratio, self.max_tokens, shared.ttl]
            )
        # What was earned and spent while the script ran stays counted locally.
        self._tokens = min(
            self.max_tokens, max(0.0, float(tokens) + self._earned * self.ratio - self._spent)
        )
        self._last_sync = now()
