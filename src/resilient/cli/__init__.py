"""The ``resilient`` command."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .._version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resilient", description="Resilience policies for async Python calls."
    )
    parser.add_argument("--version", action="version", version=f"resilient {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run a flaky service under a pipeline and show every attempt"
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the simulated failures")
    demo.add_argument("--calls", type=int, default=15, help="how many calls to make")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``resilient`` command with *argv* (default: the process's arguments)."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo  # noqa: PLC0415 -- keeps `resilient --help` quick

        return run_demo(seed=args.seed, calls=args.calls)
    return 2  # pragma: no cover -- argparse rejects unknown commands first


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
