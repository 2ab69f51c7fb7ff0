# Copyright (c) 2026 The resilient developers. MIT License, see LICENSE.
"""What limits the HTTP success path: instructions per call, layer by layer.

Wall-clock ratios on a shared 2-core machine move by several per cent from run to run;
instruction counts do not. This part runs ``http_transport.py``'s success-path calls
(``await client.get(URL)`` on an ``httpx.MockTransport`` answering 200) under
valgrind's callgrind, in one process, and reports instructions per call for:

- the bare client;
- ``Transport(Pipeline())``: the transport's own work with no policy (idempotency-key
  lookup, per-origin partition, context, classifier, response bookkeeping);
- the transport with each policy of the default pipeline alone: ``Timeout(30)``,
  ``Retry()``, ``CircuitBreaker()``;
- the default pipeline, ``Timeout(30) > Retry() > CircuitBreaker() > Timeout(10)``;
- httpx-retries' ``RetryTransport()``.

Each contender is warmed up, then its ``--calls`` calls are counted between two
markers (``time.thread_time_ns()``, which callgrind is told to dump counters before),
so interpreter start-up and imports are not in the figures; before each, the garbage
collector is run and the survivors frozen, so every layer starts from the same state.
Ratios are to the bare client; "+instr" is the difference. The wall-clock ratio of the
same default pipeline is ``http_transport.py``'s target; this breakdown says where its
cost goes.

``.venv/bin/python benchmarks/instructions.py`` (about 2 minutes; needs ``valgrind`` on
the PATH, else it reports that it was skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARK = "time_thread_time_ns"  # the C function behind time.thread_time_ns()

# (name, what it adds to the bare client); the order is the order of the counts.
LAYERS: tuple[tuple[str, str], ...] = (
    ("bare call", "httpx.AsyncClient over MockTransport"),
    ("Transport(Pipeline())", "the transport's own bookkeeping"),
    ("Transport(Timeout(30))", "+ one Timeout"),
    ("Transport(Retry())", "+ Retry with its default budget"),
    ("Transport(CircuitBreaker())", "+ a per-origin breaker, TimeWindow(30)"),
    ("Transport() [default pipeline]", "Timeout(30) > Retry() > CircuitBreaker() > Timeout(10)"),
    ("httpx-retries RetryTransport()", "the peer, its defaults"),
)


def _clients() -> list[Any]:
    import httpx  # noqa: PLC0415 -- the child imports what it measures
    import httpx_retries  # noqa: PLC0415

    import resilient as rs  # noqa: PLC0415
    import resilient.http  # noqa: PLC0415
    from resilient.instrumentation import set_hooks  # noqa: PLC0415

    set_hooks([])
    item = {"id": 1, "name": "item", "tags": ["a", "b"]}

    def mock() -> httpx.MockTransport:
        return httpx.MockTransport(lambda _request: httpx.Response(200, json=item))

    transport = resilient.http.Transport
    wraps = (
        lambda m: m,
        lambda m: transport(rs.Pipeline(), m),
        lambda m: transport(rs.Pipeline(rs.Timeout(30)), m),
        lambda m: transport(rs.Pipeline(rs.Retry()), m),
        lambda m: transport(rs.Pipeline(rs.CircuitBreaker()), m),
        lambda m: transport(None, m),
        lambda m: httpx_retries.RetryTransport(transport=m),
    )
    return [httpx.AsyncClient(transport=wrap(mock())) for wrap in wraps]


async def _child(calls: int, *, settle: bool = True) -> None:
    """Make every layer's calls, each batch between markers; *settle*: collect and freeze first."""
    url = "https://api.example/items/1"
    clients = _clients()
    for client in clients:
        for _ in range(max(100, calls // 4)):
            await client.get(url)
    for client in clients:
        # Every layer starts from the same collector state: a full collection that
        # happened to fall in one layer's calls would be charged to that layer.
        if settle:
            gc.collect()
            gc.freeze()
        time.thread_time_ns()  # a marker: callgrind dumps the counts before it
        for _ in range(calls):
            response = await client.get(url)
            if response.status_code != 200:
                raise RuntimeError(response.status_code)
    time.thread_time_ns()


def _totals(path: Path) -> int:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    msg = f"no totals in {path}"
    raise ValueError(msg)


def measure(calls: int) -> dict[str, Any]:
    """Instructions per call for every layer, from one callgrind run."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return {"skipped": "valgrind is not on the PATH"}
    with tempfile.TemporaryDirectory(prefix="resilient-instructions-") as tmp:
        out = Path(tmp) / "callgrind.out"
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 -- our own script, under valgrind
            [
                valgrind,
                "--tool=callgrind",
                f"--dump-before={MARK}",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                str(calls),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        seconds = time.perf_counter() - started
        # out.1 is everything before the first marker; out.2 ... the layers in order.
        dumps = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        counts = [_totals(p) for p in dumps[1 : 1 + len(LAYERS)]]
    if len(counts) != len(LAYERS):
        return {"skipped": f"expected {len(LAYERS)} segments, callgrind wrote {len(counts)}"}
    bare = counts[0] / calls
    rows = [
        {
            "name": name,
            "what": what,
            "instructions_per_call": count / calls,
            "ratio_vs_bare": count / calls / bare,
            "added": count / calls - bare,
        }
        for (name, what), count in zip(LAYERS, counts, strict=True)
    ]
    return {"calls": calls, "seconds": seconds, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="counted calls per layer")
    parser.add_argument("--quick", action="store_true", help="fewer calls (200)")
    parser.add_argument("--child", type=int, metavar="CALLS", help=argparse.SUPPRESS)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.child is not None:
        asyncio.run(_child(args.child))
        return 0

    import resilient as rs  # noqa: PLC0415
    from _common import print_header, write_json  # noqa: PLC0415
    from overhead import machine_info  # noqa: PLC0415

    calls = 200 if args.quick else args.calls
    info = machine_info()
    info["versions"] = {"resilient": rs.__version__}
    print_header(
        "resilient HTTP success path, instructions per call (callgrind)",
        info,
        f"one callgrind run; every layer warmed up, then {calls:,} calls counted between markers",
    )
    result = measure(calls)
    if "skipped" in result:
        print(f"\nskipped: {result['skipped']}")
    else:
        print(f"\n{'layer':<34}{'instructions/call':>18}{'x bare':>9}{'+instr':>10}  what")
        for r in result["rows"]:
            print(
                f"{r['name']:<34}{r['instructions_per_call']:>18,.0f}{r['ratio_vs_bare']:>8.3f}x"
                f"{r['added']:>+10,.0f}  {r['what']}"
            )
        print(f"\nmeasured in {result['seconds']:.0f} s (under valgrind)")
    if args.json:
        write_json(args.json, {"benchmark": "instructions", "machine": info, **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
