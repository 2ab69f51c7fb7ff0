"""Errors of the HTTP layer."""

from __future__ import annotations

from typing import Any

from .._exceptions import RejectedError, ResilienceError

__all__ = ["IdempotencyKeyMismatchError", "RequestNotReplayableError", "RetryAfterTooLongError"]


class RetryAfterTooLongError(RejectedError):
    """The server asked to wait longer than the cap or the call's deadline allows.

    Raised at once instead of stalling the call (a ``Retry-After: 1200`` would
    otherwise hold it for 20 minutes).

    Attributes:
        retry_after: The delay the server asked for, in seconds.
        response: The response that asked for it (its body already read).

    """

    def __init__(self, retry_after: float, response: Any, reason: str) -> None:
        super().__init__(
            f"the server asked to retry after {retry_after:g} s, {reason}; not waiting for it"
        )
        self.retry_after = retry_after
        self.response = response


class IdempotencyKeyMismatchError(ResilienceError):
    """The server answered 422 to a request with an idempotency key.

    Per the IETF Idempotency-Key draft the key was already used with a different
    request body: retrying cannot help, and sending the new body needs a new key.

    Attributes:
        key: The idempotency key.
        response: The 422 response.

    """

    def __init__(self, key: str, response: Any) -> None:
        super().__init__(
            f"the server refused idempotency key {key!r} (422): it was used before with a "
            "different request; use a new key for a new request"
        )
        self.key = key
        self.response = response


class RequestNotReplayableError(ResilienceError):
    """A policy asked to send again a request whose body was a one-shot stream.

    The default classification never retries such a request; a custom *on* or
    *on_result* can ask for it, and then this error replaces a second sending
    that would fail anyway. Give the body as bytes to make the request retryable.
    """

    def __init__(self, line: str) -> None:
        super().__init__(
            f"{line}: not sent again: its body was a stream, already consumed by the first "
            "attempt; pass the body as bytes to make the request retryable"
        )
