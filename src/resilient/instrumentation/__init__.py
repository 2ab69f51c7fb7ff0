"""Hooks into what the policies do, and the hooks that ship with `resilient`.

A hook is a `Hook` subclass that overrides the methods it cares about; the others
cost nothing. Install hooks for every pipeline with `set_hooks`, or for one with
``Pipeline(..., hooks=[...])``. By default every pipeline logs through structlog.
"""

from ._dispatch import (
    AttemptInfo as AttemptInfo,
)
from ._dispatch import (
    CallInfo as CallInfo,
)
from ._dispatch import (
    GiveUpDetails as GiveUpDetails,
)
from ._dispatch import (
    Hook as Hook,
)
from ._dispatch import (
    RetryDetails as RetryDetails,
)
from ._dispatch import (
    TimeoutDetails as TimeoutDetails,
)
from ._dispatch import (
    get_hooks as get_hooks,
)
from ._dispatch import (
    set_hooks as set_hooks,
)
from ._otel import OpenTelemetryHook as OpenTelemetryHook
from ._structlog import StructlogHook as StructlogHook

__all__ = [
    "AttemptInfo",
    "CallInfo",
    "GiveUpDetails",
    "Hook",
    "OpenTelemetryHook",
    "RetryDetails",
    "StructlogHook",
    "TimeoutDetails",
    "get_hooks",
    "set_hooks",
]
