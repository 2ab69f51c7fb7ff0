"""`SharedState`: what a policy needs from a store of state shared by a fleet.

Policies keep their state in the process by default; given a shared state
(`resilient.state.RedisState`), a `CircuitBreaker` takes its circuits from it
and a `RateLimiter` its slots. This protocol is all the policies know of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Hashable

    from ._circuit import Circuit, CircuitSettings, CircuitState

__all__ = ["SharedState"]


@runtime_checkable
class SharedState(Protocol):
    """A place for state that many processes share."""

    def key(self, kind: str, name: str, part: Hashable | None = None) -> str:
        """The storage key of the object *kind* named *name* (and *part*, when keyed)."""

    def circuit(
        self, settings: CircuitSettings, key: Hashable | None, state: CircuitState, window: Any
    ) -> Circuit:
        """A circuit whose state is shared; *window* is the breaker's `TimeWindow`."""

    async def take_slot(self, key: str, interval: float, tolerance: float) -> float:
        """Take a rate-limit slot (0.0) or return the seconds until one is free."""
