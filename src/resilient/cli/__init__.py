"""The ``resilient`` command (built on click, printing with rich).

::

    resilient demo
    resilient dlq list --store sqlite:///resilient.db --since 2h
    resilient outbox drain --app myapp.tasks:outbox --timeout 60
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

from ._app import cli

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the ``resilient`` command with *argv* (default: the process's arguments).

    Ends with ``SystemExit`` carrying the exit code, as a console script does.
    """
    cli.main(args=None if argv is None else list(argv), prog_name="resilient")
    sys.exit(0)  # pragma: no cover -- click's standalone mode always exits


if __name__ == "__main__":  # pragma: no cover
    main()
