"""The ``resilient`` command group: ``demo``, ``dlq``, ``outbox`` and ``store``."""

from __future__ import annotations

import click

from .._version import __version__
from ._dlq import dlq
from ._exit import EXIT_CODES_HELP
from ._outbox_cmds import outbox
from ._store_cmds import store

__all__ = ["cli"]


@click.group(
    name="resilient",
    epilog=EXIT_CODES_HELP,
    # A bare `resilient` is a usage error (exit 2), as it was before click.
    no_args_is_help=False,
    subcommand_metavar="COMMAND [ARGS]...",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(
    __version__, "--version", prog_name="resilient", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Resilience policies for async Python calls, and the tools to operate an outbox.

    Commands that read a store take --store URL, or the RESILIENT_STORE
    environment variable: sqlite:///relative.db, sqlite:////absolute.db, a
    file path, or postgresql://user@host/db.
    """


@cli.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--seed", type=int, default=7, show_default=True, help="Seed of the simulated failures."
)
@click.option("--calls", type=int, default=15, show_default=True, help="How many calls to make.")
@click.pass_context
def demo(ctx: click.Context, *, seed: int, calls: int) -> None:
    """Run a flaky service under a pipeline and show every attempt."""
    from ._demo import run_demo  # noqa: PLC0415 -- keeps `resilient --help` quick

    ctx.exit(run_demo(seed=seed, calls=calls))


cli.add_command(dlq)
cli.add_command(outbox)
cli.add_command(store)
