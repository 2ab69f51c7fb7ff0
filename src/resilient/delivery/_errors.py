"""Errors of durable delivery."""

from __future__ import annotations

__all__ = ["MalformedMessageError", "SecretInMessageError", "UndeliverableError"]


class SecretInMessageError(ValueError):
    """A message would have persisted a credential; the outbox refuses to write it.

    Credentials belong to the relay's client (an httpx ``Auth``, default headers
    or an event hook), which adds them to every delivery.
    """


class UndeliverableError(Exception):
    """Raised by an outbox handler: this message will never succeed, do not retry it.

    The message becomes a dead letter with reason ``"rejected"`` at once.
    """


class MalformedMessageError(ValueError):
    """A stored message could not be read (it becomes a dead letter, ``"malformed"``)."""
