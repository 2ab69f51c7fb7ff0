# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""Per-request overhead of ``resilient.http.Transport`` over a bare httpx client.

Every contender is an ``httpx.AsyncClient`` making ``await client.get(URL)`` against
an ``httpx.MockTransport`` whose handler returns ``httpx.Response(200, json=...)``
at once, so what is measured is the cost of the layers between the client and that
transport. The bare client talks to the MockTransport directly; the others put a
resilience transport in between, wrapping the same kind of MockTransport:

- the success path: every request gets a 200. resilient's ``Transport()`` (its
  default pipeline, ``Timeout(30) > Retry() > CircuitBreaker() > Timeout(10)``),
  ``Transport(Pipeline(Retry()))`` and httpx-retries' ``RetryTransport()``;
- the fail-once path: the handler answers 503 to every odd request and 200 to
  every even one (its own count, one handler per client), so each logical call
  fails once and then succeeds. Every library waits zero seconds between attempts;
  the bare client's call is a hand-written "on 503, send it again".

resilient's transport opens a client span per attempt through the OpenTelemetry
API. No SDK is configured here, so that span is a no-op; the rows marked
``OTel SDK`` (information, not targets) pass an opentelemetry-sdk
``TracerProvider()`` with no span processor or exporter, to show what recording
the spans costs.

Method, the same as ``overhead.py`` (whose timing code this script reuses): in each
of ``--rounds`` rounds every contender of a path runs a batch of ``--calls``
sequential calls, in a freshly shuffled order; a contender's figure is the median
over rounds of its ns/call, with the min and max; a ratio between two contenders is
taken within each round and the median of the per-round ratios is reported.

Run it with ``.venv/bin/python benchmarks/http_transport.py`` (``--help`` for flags).
The script is not called ``http.py``: its directory is first on ``sys.path`` when
any script of this directory runs, and a ``benchmarks/http.py`` would then be
imported in place of the standard library's ``http`` package (which httpx imports).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import httpx_retries
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import resilient as rs
import resilient.http

# overhead.py sits next to this script (first on sys.path when the script is run):
# its contender record, timing loop, table and machine report are reused as they are.
from overhead import (
    BARE,
    Contender,
    _loadavg,
    _print_table,
    _ratios,
    _summary,
    _version,
    judge,
    machine_info,
    measure,
    parse_args,
)
from resilient.instrumentation import set_hooks

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

URL = "https://api.example/items/1"
ITEM = {"id": 1, "name": "item", "tags": ["a", "b"]}
UNAVAILABLE = {"error": "unavailable"}

# --- contenders' names ------------------------------------------------------------

RS_DEFAULT = "resilient Transport() [default pipeline]"
RS_RETRY = "resilient Transport(Pipeline(Retry()))"
HXR = "httpx-retries RetryTransport() [defaults]"
RS_DEFAULT_SDK = "resilient Transport(), OTel SDK provider [info]"

RS_STACK = "resilient Transport(T30>Retry(0 wait)>CB>T10)"
RS_STACK_RETRY = "resilient Transport(Pipeline(Retry(0 wait)))"
HXR_ZERO = "httpx-retries RetryTransport(Retry(backoff_factor=0))"
RS_STACK_SDK = "resilient T30>Retry>CB>T10, OTel SDK provider [info]"

# (path, what, reference, highest allowed median ratio).
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("success", RS_DEFAULT, BARE, 1.10),
    ("fail_once", RS_STACK, BARE, 1.20),
)

# (path, what, reference): more per-round ratios, printed as information.
OTHER_RATIOS: tuple[tuple[str, str, str], ...] = (
    ("success", RS_RETRY, BARE),
    ("success", HXR, BARE),
    ("success", RS_DEFAULT, HXR),
    ("success", RS_DEFAULT_SDK, RS_DEFAULT),
    ("fail_once", RS_STACK_RETRY, BARE),
    ("fail_once", HXR_ZERO, BARE),
    ("fail_once", RS_STACK, HXR_ZERO),
    ("fail_once", RS_STACK_SDK, RS_STACK),
)

PEERS = ("httpx", "httpx-retries", "opentelemetry-api", "opentelemetry-sdk")

CONFIG_NOTES: dict[str, tuple[str, ...]] = {
    "both paths": (
        (
            f"every contender: its own httpx.AsyncClient(transport=...) over its own "
            f"httpx.MockTransport(handler); a call is `await client.get({URL!r})`, then "
            "a check that the status is 200 (a non-200 raises and is counted)"
        ),
        (
            "resilient.http.Transport(policy, MockTransport(handler)); httpx-retries "
            "RetryTransport(transport=MockTransport(handler), retry=...)"
        ),
        "instrumentation off: resilient set_hooks([]); httpx-retries logs at DEBUG only",
        (
            "OpenTelemetry: resilient's Transport starts a client span per attempt "
            "through the OTel API; rows marked 'OTel SDK provider' pass "
            "tracer_provider=opentelemetry.sdk.trace.TracerProvider() (no span "
            "processor, no exporter: spans are recorded, then dropped) and are "
            "information, not targets"
        ),
    ),
    "success path": (
        "handler: httpx.Response(200, json=ITEM) for every request",
        (
            "resilient: Transport() = default_pipeline(): Timeout(30) > Retry() "
            "(4 attempts, default backoff, default RetryBudget) > CircuitBreaker() "
            "(TimeWindow(30), failure_rate=0.5, min_calls=20) > Timeout(10); and "
            "Transport(Pipeline(Retry()))"
        ),
        "httpx-retries: RetryTransport(transport=...) with its default Retry()",
    ),
    "fail-once path": (
        (
            "handler: 503 (json body) to every odd request, 200 to every even one, "
            "counted per handler, so every logical call is 503 then 200: two requests"
        ),
        (
            "'bare call' is hand-written: `r = await client.get(URL)`; if r is a 503, "
            "`r = await client.get(URL)` again"
        ),
        (
            "resilient: Timeout(30) > Retry(backoff=Backoff.constant(0), budget=None) > "
            "CircuitBreaker(failure_rate=0.75) > Timeout(10); and "
            "Pipeline(Retry(backoff=Backoff.constant(0), budget=None)). Not the "
            "default budget and breaker: on this path half of all attempts fail, "
            "which is what they exist to stop (see 'defaults on the fail-once path')"
        ),
        (
            "httpx-retries: Retry(backoff_factor=0) (its default: zero backoff; "
            "total=10, retries 429/502/503/504); it still awaits asyncio.sleep(0) "
            "between attempts (one turn of the event loop); resilient skips a zero wait"
        ),
    ),
}


# --- handlers and calls -------------------------------------------------------------


class StatusError(Exception):
    """A logical call ended with a status other than 200."""


@dataclass
class Served:
    """Requests one handler has answered (shared by nothing else)."""

    count: int = 0


def ok_handler(served: Served) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        del request
        served.count += 1
        return httpx.Response(200, json=ITEM)

    return handler


def fail_once_handler(served: Served) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        del request
        served.count += 1
        if served.count % 2:
            return httpx.Response(503, json=UNAVAILABLE)
        return httpx.Response(200, json=ITEM)

    return handler


def get(client: httpx.AsyncClient) -> Callable[[], Awaitable[int]]:
    async def call() -> int:
        response = await client.get(URL)
        if response.status_code != 200:
            raise StatusError(response.status_code)
        return 1

    return call


def get_again_on_503(client: httpx.AsyncClient) -> Callable[[], Awaitable[int]]:
    async def call() -> int:
        response = await client.get(URL)
        if response.status_code == 503:
            response = await client.get(URL)
        if response.status_code != 200:
            raise StatusError(response.status_code)
        return 1

    return call


# --- the contenders -----------------------------------------------------------------


@dataclass
class Setup:
    """The contenders of one path, with what is needed to check and close them."""

    contenders: list[Contender] = field(default_factory=list)
    served: dict[str, Served] = field(default_factory=dict)
    clients: list[httpx.AsyncClient] = field(default_factory=list)


def _zero_wait_stack(
    *, breaker: rs.CircuitBreaker | None = None, budget: bool = False
) -> rs.Pipeline:
    zero = rs.Backoff.constant(0)
    retry = rs.Retry(backoff=zero) if budget else rs.Retry(backoff=zero, budget=None)
    breaker = breaker if breaker is not None else rs.CircuitBreaker(failure_rate=0.75)
    return rs.Pipeline(rs.Timeout(30.0), retry, breaker, rs.Timeout(10.0))


def build(path: str, sdk: TracerProvider) -> Setup:
    """The contenders of *path* (``success`` or ``fail_once``), built in the running loop."""
    setup = Setup()
    make_handler = ok_handler if path == "success" else fail_once_handler

    def add(name: str, wrap: Callable[[httpx.MockTransport], Any] | None) -> None:
        served = Served()
        mock = httpx.MockTransport(make_handler(served))
        client = httpx.AsyncClient(transport=mock if wrap is None else wrap(mock))
        again = wrap is None and path == "fail_once"  # the hand-written retry
        call = get_again_on_503(client) if again else get(client)
        setup.contenders.append(Contender(name, call))
        setup.served[name] = served
        setup.clients.append(client)

    transport = resilient.http.Transport
    if path == "success":
        add(BARE, None)
        add(RS_DEFAULT, lambda mock: transport(None, mock))
        add(RS_RETRY, lambda mock: transport(rs.Pipeline(rs.Retry()), mock))
        add(HXR, lambda mock: httpx_retries.RetryTransport(transport=mock))
        add(RS_DEFAULT_SDK, lambda mock: transport(None, mock, tracer_provider=sdk))
    else:
        zero = rs.Backoff.constant(0)
        add(BARE, None)
        add(RS_STACK, lambda mock: transport(_zero_wait_stack(), mock))
        add(
            RS_STACK_RETRY,
            lambda mock: transport(rs.Pipeline(rs.Retry(backoff=zero, budget=None)), mock),
        )
        add(
            HXR_ZERO,
            lambda mock: httpx_retries.RetryTransport(
                transport=mock, retry=httpx_retries.Retry(backoff_factor=0)
            ),
        )
        add(RS_STACK_SDK, lambda mock: transport(_zero_wait_stack(), mock, tracer_provider=sdk))
    return setup


async def _run_path(
    path: str, sdk: TracerProvider, rounds: int, calls: int, rng: random.Random
) -> tuple[list[Contender], dict[str, float]]:
    setup = build(path, sdk)  # inside the loop that times them
    # The handlers alternate by themselves: overhead.py's success-path batch is the
    # right loop for both paths.
    await measure(setup.contenders, "success", rounds, calls, rng)
    for client in setup.clients:
        await client.aclose()
    logical = 1 + max(1, calls // 10) + rounds * calls  # check + warm-up + timed
    per_call = {name: served.count / logical for name, served in setup.served.items()}
    return setup.contenders, per_call


async def _outcome(client: httpx.AsyncClient) -> str:
    """The status of one call, or the name of what it raised."""
    try:
        response = await client.get(URL)
    except Exception as exc:
        return type(exc).__name__
    return str(response.status_code)


async def _defaults_probe(calls: int) -> list[tuple[str, Counter[str]]]:
    """What the default budget and breaker do on the fail-once path (not timed)."""
    probes = (
        (
            "default RetryBudget, default CircuitBreaker()",
            _zero_wait_stack(breaker=rs.CircuitBreaker(), budget=True),
        ),
        ("budget=None, default CircuitBreaker()", _zero_wait_stack(breaker=rs.CircuitBreaker())),
        ("default RetryBudget, CircuitBreaker(failure_rate=0.75)", _zero_wait_stack(budget=True)),
    )
    results = []
    for label, policy in probes:
        served = Served()
        transport = resilient.http.Transport(policy, httpx.MockTransport(fail_once_handler(served)))
        async with httpx.AsyncClient(transport=transport) as client:
            outcomes = Counter([await _outcome(client) for _ in range(calls)])
        results.append((label, outcomes))
    return results


# --- reporting ----------------------------------------------------------------------


def _targets(path: str, by_name: dict[str, Contender]) -> list[dict[str, Any]]:
    results = []
    for t_path, what, ref, limit in TARGETS:
        if t_path != path:
            continue
        verdict = judge(_ratios(by_name[what], by_name[ref]), limit)
        clean = by_name[what].errors == 0 and by_name[ref].errors == 0
        # A contender whose calls raised did not do the work it is timed for.
        verdict["pass"] = verdict["pass"] and by_name[what].errors == 0
        results.append({"path": path, "what": what, "reference": ref, "clean": clean, **verdict})
    return results


def _other_ratios(path: str, by_name: dict[str, Contender]) -> list[dict[str, Any]]:
    results = []
    for r_path, what, ref in OTHER_RATIOS:
        if r_path != path:
            continue
        a, b = by_name[what], by_name[ref]
        ratios = _ratios(a, b)
        added = [x - y for x, y in zip(a.samples, b.samples, strict=True)]
        results.append(
            {
                "path": path,
                "what": what,
                "reference": ref,
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "added_ns_median": statistics.median(added),
            }
        )
    return results


PATH_TITLES = {
    "success": "Success path (every request: 200)",
    "fail_once": "Fail-once path (every logical call: 503, then 200)",
}


def _print_targets(results: list[dict[str, Any]]) -> None:
    print("\nTargets (median over rounds of the per-round ratio):")
    for r in results:
        verdict = "PASS" if r["pass"] else "FAIL"
        print(
            f"  {verdict}  [{r['path']}] {r['what']} / {r['reference']}: "
            f"{r['ratio_median']:.3f}x [{r['ratio_min']:.3f}-{r['ratio_max']:.3f}] "
            f"<= {r['limit']:g}x (within in {r['rounds_within']}/{r['rounds']} rounds)"
        )
        if not r["clean"]:
            print("        (a contender's calls raised: see the notes under its table)")


def _print_other_ratios(results: list[dict[str, Any]]) -> None:
    print("\nMore per-round ratios (information, not targets):")
    for r in results:
        print(
            f"  [{r['path']}] {r['what']} / {r['reference']}: {r['ratio_median']:.3f}x "
            f"[{r['ratio_min']:.3f}-{r['ratio_max']:.3f}], "
            f"{r['added_ns_median'] / 1000:+,.1f} us per call"
        )


def _otel_status(sdk: TracerProvider) -> dict[str, Any]:
    """Which tracer provider is global, and whether each kind of span records."""
    provider = trace.get_tracer_provider()
    probe = trace.get_tracer("resilient.benchmarks").start_span("probe")
    global_recording = probe.is_recording()
    probe.end()
    probe = sdk.get_tracer("resilient.benchmarks").start_span("probe")
    sdk_recording = probe.is_recording()
    probe.end()
    return {
        "global_provider": type(provider).__name__,
        "global_span_recording": global_recording,
        "sdk_sampler": sdk.sampler.get_description(),
        "sdk_span_recording": sdk_recording,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv, rounds=31, calls=1000)

    set_hooks([])  # instrumentation off, so logging does not dominate the figures
    # Not installed globally: only the "OTel SDK provider" rows are given it.
    sdk = TracerProvider(shutdown_on_exit=False)
    otel = _otel_status(sdk)

    info = machine_info()
    info["versions"] = {"resilient": rs.__version__} | {name: _version(name) for name in PEERS}
    print("resilient HTTP benchmark: resilient.http.Transport over a bare httpx client")
    print(f"python      {info['python']}")
    print(f"platform    {info['platform']} ({info['implementation']})")
    print(f"cpus        {info['cpu_count']} (usable: {info['cpus_usable']})")
    print(f"loadavg     {info['loadavg']}")
    print(f"event loop  {info['event_loop']}")
    print("versions    " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print(f"method      {args.rounds} rounds x {args.calls:,} calls per contender, shuffled")
    print("            order each round; ratios taken per round, then the median")
    print(
        f"otel        global tracer provider: {otel['global_provider']}; its spans record: "
        f"{otel['global_span_recording']}"
    )
    if not otel["global_span_recording"]:
        print("            no OTel SDK is configured: the transport's span per attempt is a")
        print("            no-op, and every row not marked 'OTel SDK provider' pays only that")
    print(
        f"            'OTel SDK provider' rows: sdk TracerProvider(), sampler "
        f"{otel['sdk_sampler']}, no processor or exporter; spans record: "
        f"{otel['sdk_span_recording']}"
    )
    print("config")
    for section, notes in CONFIG_NOTES.items():
        print(f"  {section}:")
        for note in notes:
            print(f"  - {note}")

    rng = random.Random(args.seed)
    started = time.perf_counter()
    paths: dict[str, dict[str, Any]] = {}
    requests_per_call: dict[str, dict[str, float]] = {}
    target_results: list[dict[str, Any]] = []
    other_results: list[dict[str, Any]] = []
    for path in ("success", "fail_once"):
        contenders, per_call = asyncio.run(_run_path(path, sdk, args.rounds, args.calls, rng))
        summary = _summary(contenders)
        paths[path] = summary
        requests_per_call[path] = per_call
        _print_table(
            f"{PATH_TITLES[path]} (ns per call; x bare = per-round ratio to the bare call)",
            contenders,
            summary,
            args.calls,
        )
        expected = 1 if path == "success" else 2
        odd = {name: n for name, n in per_call.items() if n != expected}
        if odd:
            for name, n in odd.items():
                print(f"  note: {name}: {n:.3f} requests per logical call, not {expected}")
        else:
            print(f"  every contender sent exactly {expected} request(s) per logical call")
        by_name = {c.name: c for c in contenders}
        target_results += _targets(path, by_name)
        other_results += _other_ratios(path, by_name)

    probe_calls = 100
    probes = asyncio.run(_defaults_probe(probe_calls))
    print(
        f"\nDefaults on the fail-once path (not timed; {probe_calls} calls each through "
        "Timeout(30) > Retry(backoff=Backoff.constant(0), ...) > ... > Timeout(10)):"
    )
    for label, outcomes in probes:
        seen = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
        print(f"  {label}: {seen}")
    print(
        "  (half of all attempts fail here: the breaker opens once its window holds 20\n"
        "  attempts at a 50 % failure rate, and each retry spends a budget token that a\n"
        "  success refills by only 0.2; the timed rows turn both off to measure the retry)"
    )

    _print_targets(target_results)
    _print_other_ratios(other_results)
    sdk.shutdown()

    info["loadavg_end"] = _loadavg()
    elapsed = time.perf_counter() - started
    print(f"\nloadavg at end {info['loadavg_end']}; measured in {elapsed:.0f} s")
    print("Figures are from one run on one machine; compare ratios, not absolute ns.")

    if args.json:
        doc = {
            "benchmark": "http_transport",
            "machine": info,
            "rounds": args.rounds,
            "calls": args.calls,
            "seed": args.seed,
            "otel": otel,
            "config": {k: list(v) for k, v in CONFIG_NOTES.items()},
            "paths": paths,
            "requests_per_call": requests_per_call,
            "defaults_probe": {label: dict(outcomes) for label, outcomes in probes},
            "targets": target_results,
            "other_ratios": other_results,
            "elapsed_seconds": elapsed,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
