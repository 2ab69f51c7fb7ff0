"""Helpers for testing code that uses `resilient`: virtual time, a testing mode, faults."""

from ._faults import (
    FaultLogEntry as FaultLogEntry,
    FaultStatistics as FaultStatistics,
    FaultTransport as FaultTransport,
)
from ._mode import TestingToken as TestingToken, set_testing as set_testing
from ._virtual import (
    VirtualEventLoop as VirtualEventLoop,
    anyio_backends as anyio_backends,
    run as run,
)

__all__ = [
    "FaultLogEntry",
    "FaultStatistics",
    "FaultTransport",
    "TestingToken",
    "VirtualEventLoop",
    "anyio_backends",
    "run",
    "set_testing",
]
