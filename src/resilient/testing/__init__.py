"""Helpers for testing code that uses `resilient`: virtual time and a testing mode."""

from ._mode import TestingToken as TestingToken, set_testing as set_testing
from ._virtual import (
    VirtualEventLoop as VirtualEventLoop,
    anyio_backends as anyio_backends,
    run as run,
)

__all__ = ["TestingToken", "VirtualEventLoop", "anyio_backends", "run", "set_testing"]
