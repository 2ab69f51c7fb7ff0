"""Hooks into what the policies do, and the hooks that ship with `resilient`.

A hook is a `Hook` subclass that overrides the methods it cares about; the others
cost nothing. Install hooks for every pipeline with `set_hooks`, or for one with
``Pipeline(..., hooks=[...])``. By default every pipeline logs through structlog.
"""

from ._dispatch import (
    AttemptInfo as AttemptInfo,
    CallInfo as CallInfo,
    GiveUpDetails as GiveUpDetails,
    Hook as Hook,
    RetryDetails as RetryDetails,
    TimeoutDetails as TimeoutDetails,
    get_hooks as get_hooks,
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
