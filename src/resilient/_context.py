"""`Context`: the state of one logical call, shared by the policies it passes through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable

    from ._classify import Classifier
    from .instrumentation._dispatch import Dispatch

__all__ = ["Context"]


class Context:
    """The per-call state that travels through every policy of a pipeline.

    A new context is made for every logical call, so concurrent calls through one
    pipeline never see each other's attempt numbers or deadlines (the bug of
    tenacity #93). Policies read and update it; user code may read it, and may
    put its own values in `attributes`.

    Attributes:
        deadline: The event-loop time by which the call must finish, or ``None``.
            A `Timeout` narrows it for the calls inside it and restores it after.
        attempt: The number of the attempt under way: 1 for the first.
        idempotency_key: A key that stays the same for every attempt of this call.
        attributes: Free-form values for policies, hooks and telemetry.
        operation: The name of the call, for logs and spans.
        classifier: What outcomes mean, when a protocol layer (the HTTP transport)
            knows better than the policies' defaults; ``None`` otherwise.
        partition: The key that keyed policies (a `CircuitBreaker` without a *key*
            of its own) use for this call: the HTTP transport sets the origin, so
            one failing host never opens the circuit for another. ``None``: one
            circuit for all calls.

    """

    __slots__ = (
        "_attributes",
        "args",
        "attempt",
        "classifier",
        "deadline",
        "dispatch",
        "fn",
        "idempotency_key",
        "kwargs",
        "operation",
        "partition",
    )

    def __init__(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        dispatch: Dispatch,
        operation: str | None = None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.dispatch = dispatch
        self.operation = operation
        self.deadline: float | None = None
        self.attempt = 1
        self.idempotency_key: str | None = None
        self.classifier: Classifier | None = None
        self.partition: Hashable | None = None
        self._attributes: dict[str, Any] | None = None

    def fork(self) -> Context:
        """A copy for a concurrent attempt of the same call (a hedge, say).

        The copy shares the call, hooks, operation name and idempotency key and
        starts from the same deadline, attempt number and attributes (copied), so
        policies inside one attempt cannot disturb another.
        """
        twin = Context(self.fn, self.args, self.kwargs, self.dispatch, self.operation)
        twin.deadline = self.deadline
        twin.attempt = self.attempt
        twin.idempotency_key = self.idempotency_key
        twin.classifier = self.classifier
        twin.partition = self.partition
        if self._attributes is not None:
            twin._attributes = dict(self._attributes)
        return twin

    @property
    def attributes(self) -> dict[str, Any]:
        """Free-form values for policies, hooks and telemetry (made on first use)."""
        if self._attributes is None:
            self._attributes = {}
        return self._attributes

    @property
    def name(self) -> str:
        """The operation's name: the one given to the pipeline, else the callable's."""
        if self.operation is None:
            self.operation = getattr(self.fn, "__qualname__", None) or repr(self.fn)
        return self.operation

    def __repr__(self) -> str:
        return (
            f"Context(operation={self.name!r}, attempt={self.attempt}, "
            f"deadline={self.deadline!r}, idempotency_key={self.idempotency_key!r})"
        )
