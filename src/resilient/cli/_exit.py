"""Exit codes of the ``resilient`` command, and the errors that end it with them.

Scripts branch on these, so each means one thing and never changes:
``0`` done, ``1`` failed (or aborted, or timed out), ``2`` usage error,
``3`` not found, ``4`` the store cannot be opened or read.
"""

from __future__ import annotations

from typing import Final

import click

__all__ = [
    "EXIT_CODES_HELP",
    "FAILURE",
    "NOT_FOUND",
    "OK",
    "STORE_ERROR",
    "USAGE",
    "CommandFailedError",
    "NotFoundError",
    "StoreError",
]

OK: Final = 0
FAILURE: Final = 1
USAGE: Final = 2
NOT_FOUND: Final = 3
STORE_ERROR: Final = 4

# "\b" keeps click from re-wrapping the lines of this paragraph into one.
EXIT_CODES_HELP: Final = """\b
Exit codes:
  0  success
  1  failure: aborted at a prompt, a timed-out drain, a failed demo check
  2  usage error: a bad option or argument, no store given
  3  not found: no dead letter has that id
  4  store error: the store cannot be opened or read"""


class CommandFailedError(click.ClickException):
    """The command ran but did not do what was asked (exit code 1)."""

    exit_code = FAILURE


class NotFoundError(click.ClickException):
    """What the command was asked about does not exist (exit code 3)."""

    exit_code = NOT_FOUND


class StoreError(click.ClickException):
    """The store could not be opened or read (exit code 4); the message says why, on one line."""

    exit_code = STORE_ERROR
