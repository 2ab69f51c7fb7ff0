"""``resilient demo``: a flaky service called through a pipeline, every attempt shown."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

import anyio

from .._exceptions import DeadlineExceededError
from .._pipeline import Pipeline
from ..instrumentation import (
    AttemptInfo,
    GiveUpDetails,
    Hook,
    RetryDetails,
    TimeoutDetails,
)
from ..policies._backoff import Backoff
from ..policies._budget import RetryBudget
from ..policies._retry import Retry
from ..policies._timeout import Timeout

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

__all__ = ["Report", "demo", "run_demo"]


@dataclass
class Report:
    """What the demo saw."""

    calls: int = 0
    succeeded: int = 0
    failed: int = 0
    attempts: int = 0
    retries: int = 0
    timeouts: int = 0
    give_ups: dict[str, int] = field(default_factory=dict)

    @property
    def amplification(self) -> float:
        """Attempts per call."""
        return self.attempts / self.calls if self.calls else 0.0


class _Printer(Hook):
    """Prints what the pipeline does, one line per event."""

    def __init__(self, out: TextIO, report: Report) -> None:
        self._out = out
        self._report = report

    def trace_attempt(self, info: AttemptInfo) -> AbstractContextManager[object] | None:
        self._report.attempts += 1
        print(f"    attempt {info.attempt}", file=self._out)
        return None

    def on_retry(self, details: RetryDetails) -> None:
        self._report.retries += 1
        error = details.outcome.exception
        print(
            f"      failed ({type(error).__name__}: {error}); retrying in {details.delay:.3f} s",
            file=self._out,
        )

    def on_timeout(self, details: TimeoutDetails) -> None:
        self._report.timeouts += 1
        print(f"      timed out after {details.timeout:g} s", file=self._out)

    def on_give_up(self, details: GiveUpDetails) -> None:
        self._report.give_ups[details.reason] = self._report.give_ups.get(details.reason, 0) + 1
        print(
            f"      giving up after attempt {details.attempts} (reason: {details.reason})",
            file=self._out,
        )


# (phase, calls, share of attempts refused, share of attempts that hang)
_PHASES = (("flaky", 0.25, 0.10), ("down", 1.0, 0.0), ("recovered", 0.0, 0.0))


class _FlakyService:
    """A pretend inventory service: sometimes refuses connections, sometimes hangs."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.refuse = 0.0
        self.hang = 0.0

    async def stock(self, sku: str) -> int:
        draw = self._rng.random()
        if draw < self.refuse:
            msg = "connection refused"
            raise ConnectionError(msg)
        if draw < self.refuse + self.hang:
            await anyio.sleep(10)  # hangs: the per-attempt timeout cuts it short
        return sum(map(ord, sku)) % 50


async def demo(out: TextIO, *, seed: int = 7, calls: int = 15) -> Report:
    """Make *calls* calls to a flaky service through a pipeline, printing every attempt."""
    rng = random.Random(seed)  # noqa: S311 -- simulated failures, not secrets
    service = _FlakyService(rng)
    report = Report()
    retry = Retry(
        attempts=4,
        on=(ConnectionError, TimeoutError),
        backoff=Backoff.exponential(0.05, cap=0.5, jitter="full"),
        budget=RetryBudget(ratio=0.2, max_tokens=5),
    )
    pipeline = Pipeline(
        Timeout(5.0),
        retry,
        Timeout(0.25),
        name="inventory.stock",
        hooks=[_Printer(out, report)],
    )
    print(f"pipeline: {pipeline.describe()}\n", file=out)
    per_phase = max(1, calls // len(_PHASES))
    for i in range(calls):
        if i % per_phase == 0 and i // per_phase < len(_PHASES):
            phase, service.refuse, service.hang = _PHASES[i // per_phase]
            print(f"-- the service is {phase} --", file=out)
        sku = f"SKU-{i:03d}"
        report.calls += 1
        print(f"call {i + 1}: stock({sku!r})", file=out)
        try:
            stock = await pipeline.run(service.stock, sku)
        except (ConnectionError, DeadlineExceededError) as exc:
            report.failed += 1
            print(f"  => failed: {type(exc).__name__}: {exc}", file=out)
        else:
            report.succeeded += 1
            print(f"  => {stock} in stock", file=out)
    print(
        f"\n{report.calls} calls: {report.succeeded} succeeded, {report.failed} failed; "
        f"{report.attempts} attempts ({report.amplification:.2f} per call), "
        f"{report.retries} retries, {report.timeouts} attempt timeouts",
        file=out,
    )
    budget = retry.budget.statistics() if retry.budget is not None else None
    if budget is not None:
        print(
            f"retry budget: {budget.retries_allowed} retries granted, "
            f"{budget.retries_denied} refused, {budget.tokens:.1f} of "
            f"{budget.max_tokens:g} tokens left",
            file=out,
        )
    return report


def run_demo(*, seed: int, calls: int) -> int:
    """Run the demo in real time on stdout."""
    anyio.run(lambda: demo(sys.stdout, seed=seed, calls=calls))
    return 0
