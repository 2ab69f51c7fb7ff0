"""``--app MODULE:ATTR``: the application's own `Outbox`, with its handlers and client."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from ..delivery import Outbox

__all__ = ["load_outbox"]


def load_outbox(spec: str) -> Outbox:
    """Import the `Outbox` that *spec* (``"package.module:attribute"``) names.

    The current directory is importable, as it is for ``python -m``, so
    ``--app myapp.tasks:outbox`` works from the project's root.

    Raises:
        click.BadParameter: If *spec* is malformed, the module cannot be imported,
            or the attribute is missing or not an `Outbox` (exit 2).

    """
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        msg = f"expected MODULE:ATTR, such as myapp.tasks:outbox, got {spec!r}"
        raise click.BadParameter(msg, param_hint="'--app'")
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"cannot import {module_name!r}: {exc}"
        raise click.BadParameter(msg, param_hint="'--app'") from None
    try:
        for name in attribute.split("."):
            target = getattr(target, name)
    except AttributeError:
        msg = f"{module_name!r} has no attribute {attribute!r}"
        raise click.BadParameter(msg, param_hint="'--app'") from None
    if not isinstance(target, Outbox):
        msg = f"{spec} is a {type(target).__name__}, not a resilient.Outbox"
        raise click.BadParameter(msg, param_hint="'--app'")
    return target
