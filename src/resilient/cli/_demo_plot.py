"""``resilient demo --plot FILE.png``: the run's timeline, drawn with matplotlib.

matplotlib is the optional ``plot`` extra, so it is imported only here and only
when asked for. The figure is made without pyplot: no global state, no GUI
backend, nothing left open.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

    from ._demo_server import Schedule, ServedRequest
    from ._demo_workload import Transition

__all__ = ["MISSING", "available", "draw"]

MISSING: Final = (
    "--plot needs matplotlib, which the 'plot' extra installs: pip install 'resilient-client[plot]'"
)

_LEVELS: Final = {"closed": 0, "half_open": 1, "open": 2}
_PHASE_COLORS: Final = ("#e8f5e9", "#fff3e0", "#e3f2fd", "#ffebee", "#f1f8e9")


def available() -> bool:
    """Whether matplotlib can be imported (without importing it: that takes a while)."""
    return importlib.util.find_spec("matplotlib") is not None


def _rates(
    requests: list[ServedRequest], end: float, width: float
) -> tuple[list[float], list[float], list[float]]:
    """Bin starts, and requests and failed requests (4xx and 5xx) per second in each bin."""
    bins = max(1, int(end / width) + 1)
    attempts = [0.0] * bins
    failures = [0.0] * bins
    for request in requests:
        i = min(bins - 1, int(request.at / width))
        attempts[i] += 1 / width
        if request.status >= 400:  # noqa: PLR2004
            failures[i] += 1 / width
    return [i * width for i in range(bins)], attempts, failures


def draw(
    path: Path,
    *,
    schedule: Schedule,
    requests: list[ServedRequest],
    transitions: list[Transition],
    origins: tuple[str, ...],
    depth: list[tuple[float, int, int]],
    end: float,
) -> None:
    """Draw the timeline to *path*: attempts/s, failures/s, breaker states, outbox depth.

    *depth* holds ``(seconds, pending, dead letters)`` samples of the outbox.
    """
    from matplotlib.figure import Figure  # noqa: PLC0415 -- the optional extra

    figure = Figure(figsize=(11, 8), layout="constrained")
    rate_axes, breaker_axes, outbox_axes = figure.subplots(
        3, 1, sharex=True, height_ratios=(3, 2, 2)
    )
    for i, (phase, start, stop) in enumerate(schedule.spans()):
        for axes in (rate_axes, breaker_axes, outbox_axes):
            axes.axvspan(start, stop, color=_PHASE_COLORS[i % len(_PHASE_COLORS)], lw=0)
        rate_axes.annotate(
            phase.name,
            ((start + stop) / 2, 1.0),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="bottom",
            fontsize=9,
        )

    starts, attempts, failures = _rates(requests, end, max(0.1, schedule.total / 60))
    rate_axes.step(starts, attempts, where="post", label="requests/s the server saw")
    rate_axes.step(starts, failures, where="post", color="tab:red", label="failed (4xx, 5xx)/s")
    rate_axes.set_ylabel("per second")
    rate_axes.legend(loc="upper left", fontsize=8)

    for n, origin in enumerate(origins):
        times, levels = [0.0], [0]
        for t in transitions:
            if t.origin == origin:
                times.append(t.at)
                levels.append(_LEVELS.get(t.new, 2))
        times.append(end)
        levels.append(levels[-1])
        offset = n * 0.08  # two closed breakers would hide each other
        breaker_axes.step(times, [lv + offset for lv in levels], where="post", label=origin)
    breaker_axes.set_yticks(list(_LEVELS.values()), list(_LEVELS))
    breaker_axes.set_ylim(-0.4, 2.6)
    breaker_axes.set_ylabel("breaker")
    breaker_axes.legend(loc="upper left", fontsize=8)

    times = [at for at, _, _ in depth]
    outbox_axes.step(times, [p for _, p, _ in depth], where="post", label="pending")
    outbox_axes.step(
        times, [d for _, _, d in depth], where="post", color="tab:gray", label="dead letters"
    )
    outbox_axes.set_ylabel("outbox")
    outbox_axes.set_xlabel("seconds")
    outbox_axes.set_xlim(0, end)
    outbox_axes.legend(loc="upper left", fontsize=8)

    figure.suptitle("resilient demo: a flaky partner API, a steady catalog API, an outbox")
    figure.savefig(path, dpi=100)
