"""The ``resilient`` command group: ``demo``, ``dlq``, ``outbox`` and ``store``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    "--seed",
    type=int,
    default=7,
    show_default=True,
    help="Seed of the workload and of the server's failures.",
)
@click.option(
    "--calls",
    type=click.IntRange(min=1),
    metavar="N",
    help="HTTP calls the users make, spread over the phases [default: 600; 200 with --short].",
)
@click.option(
    "--short", is_flag=True, help="Every phase at 15% of its length: about 5 s instead of 30 s."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as JSON; progress goes to stderr."
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Keep the outbox's SQLite file here (a new file) instead of in a temporary directory.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE.png",
    help="Draw the timeline to FILE.png. Needs matplotlib (the 'plot' extra): "
    "without it the demo does not start (exit 2).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    *,
    seed: int,
    calls: int | None,
    short: bool,
    as_json: bool,
    db: Path | None,
    plot: Path | None,
) -> None:
    """Run a flaky HTTP server on 127.0.0.1, call it through the pipeline and an outbox.

    The partner API goes through five phases (healthy, a burst of 5xx, 429 with
    Retry-After, a full outage, recovery) while a steady catalog API answers
    every call. The report counts calls, attempts, breaker transitions and the
    outbox's messages, and checks that nothing was lost: the exit code is 0
    only if every check passes.
    """
    from ._demo import run_demo  # noqa: PLC0415 -- keeps `resilient --help` quick

    # Only the options given: run_demo's own defaults stand for the others.
    given: dict[str, Any] = {
        name: value
        for name, value in (("short", short), ("as_json", as_json), ("db", db), ("plot", plot))
        if value
    }
    ctx.exit(run_demo(seed=seed, calls=calls, **given))


cli.add_command(dlq)
cli.add_command(outbox)
cli.add_command(store)
