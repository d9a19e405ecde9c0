"""B0: ``{__typename}`` against one ``kokous serve`` process (one worker, SQLite).

The hello-world of the stack (uvicorn, Starlette, middleware, strawberry); later benchmarks
divide by it. N concurrent keep-alive connections (benchmarks/loadgen.py, far cheaper than httpx, which would
otherwise be the bottleneck on two cores) send a fixed number of requests after a warm-up.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from benchmarks import Run, benchmark
from benchmarks.loadgen import LoadResult, post_request, run_load
from benchmarks.servers import ServerProcess, serve, server_env, sqlite_database
from benchmarks.stats import Summary

REQUESTS = 2_000
CONCURRENCY = 20
WARM_UP = 200
QUERY = {"query": "{ __typename }"}
EXPECTED = {"data": {"__typename": "Query"}}


def check(status: int, body: bytes) -> bool:
    return status == 200 and json.loads(body) == EXPECTED


async def hammer(server: ServerProcess, requests: int, concurrency: int) -> LoadResult:
    request = post_request("127.0.0.1", server.port, "/graphql", QUERY)
    return await run_load(server.port, request, requests=requests, concurrency=concurrency, check=check)


def measure(requests: int = REQUESTS, concurrency: int = CONCURRENCY) -> dict[str, Any]:
    with sqlite_database() as url, serve(1, server_env(url)) as (server,):
        asyncio.run(hammer(server, WARM_UP, concurrency))
        load = asyncio.run(hammer(server, requests, concurrency))
    return {
        "requests": requests,
        "concurrency": concurrency,
        "seconds": load.seconds,
        "rps": load.rate,
        "latency_ms": Summary.of(load.latencies).scaled(1000),
        "failures": load.failures,
        "first_failure": load.first_failure,
    }


def plot(ax: Any, run: Run) -> None:
    latency = run.chart.get("latency_ms")
    if latency is None:
        return
    labels = ["p50", "p95", "p99"]
    values = [latency["p50"], latency["p95"], latency["p99"]]
    bars = ax.bar(labels, values, color=["#4c72b0", "#55a868", "#c44e52"])
    ax.bar_label(bars, fmt="%.1f ms")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"B0 {{__typename}}: {run.chart['rps']:,.0f} req/s ({run.chart['concurrency']} concurrent)")


@benchmark("B0", "{__typename} on one kokous serve process (one worker, SQLite)", plot=plot)
def b0(run: Run) -> None:
    result = measure()
    latency: Summary = result["latency_ms"]
    shape = f"{result['requests']:,} requests, {result['concurrency']} concurrent, one worker, SQLite"
    run.figure("hello-world throughput", result["rps"], "req/s", comparison=shape)
    run.figure("hello-world p50", latency.p50, "ms")
    run.figure("hello-world p95", latency.p95, "ms")
    run.figure("hello-world p99", latency.p99, "ms", comparison=f"max {latency.max:.1f} ms")
    run.figure(
        "hello-world failed requests",
        result["failures"],
        "",
        comparison=result["first_failure"],
        target="0",
        passed=result["failures"] == 0,
    )
    run.chart.update({"rps": result["rps"], "concurrency": result["concurrency"], "latency_ms": latency.as_dict()})
