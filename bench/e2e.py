"""Benchmark 2: `POST /v1/orders` end to end (gateway → order service → payment service, two
gRPC hops, two durable SQLite writes) against the bare endpoint in the same gateway process that
answers the same JSON (gateway/routers/bench.py). Windows of the two alternate, so that a change
in the machine's other load hits both alike; each figure is the median of the windows."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from bench import wrk
from bench.config import Plan
from bench.procs import cpu_seconds, run_json
from bench.stats import Run, median_fields
from tests.harness import Stack

log = logging.getLogger(__name__)

BODY = orjson.dumps(
    {
        "customer_id": "cus_42",
        "currency": "EUR",
        "items": [{"sku": "BOOK-42", "quantity": 2, "unit_price": 1299}],
        "payment_method": "pm_card_visa",
    }
).decode()

ENDPOINTS = {"orders": "/v1/orders", "bare": "/v1/bench/orders"}


def load_tool(choice: str) -> str:
    """`auto`: wrk when it is installed, else the Python load generator."""
    if choice == "auto":
        return "wrk" if wrk.available() else "python"
    return choice


def window(tool: str, url: str, concurrency: int, seconds: float) -> Run:
    if tool == "wrk":
        return wrk.run(url, BODY, concurrency, seconds)
    args = [url, f"--body={BODY}", f"--concurrency={concurrency}", "--warmup=0.2"]
    rows = run_json("bench.http_load", [*args, f"--duration={seconds}", "--runs=1"], timeout=seconds + 60)
    return Run(**rows[0])


def run(plan: Plan, stack: Stack, tool: str) -> dict[str, Any]:
    pids = {name: service.proc.pid for name, service in stack.services.items() if service.proc is not None}
    results = []
    for concurrency in plan.e2e_concurrency:
        windows: dict[str, list[dict[str, Any]]] = {name: [] for name in ENDPOINTS}
        for index in range(plan.runs):
            for name, path in ENDPOINTS.items():
                log.info("e2e %s c=%d run %d", name, concurrency, index + 1)
                if index == 0:
                    window(tool, stack.url + path, concurrency, plan.e2e_warmup_s)
                before = {service: cpu_seconds(pid) for service, pid in pids.items()}
                measured = window(tool, stack.url + path, concurrency, plan.e2e_window_s)
                row = measured.to_json()
                # CPU time per request of each process: robust where throughput is noisy.
                requests = max(measured.requests, 1)
                for service, pid in pids.items():
                    row[f"{service}_cpu_us"] = round((cpu_seconds(pid) - before[service]) / requests * 1e6, 1)
                windows[name].append(row)
        for name, rows in windows.items():
            results.append(
                {"endpoint": f"POST {ENDPOINTS[name]}", "name": name, "concurrency": concurrency}
                | median_fields(rows)
                | {"runs": rows}
            )
    return {
        "load_tool": "wrk" if tool == "wrk" else "bench.http_load (aiohttp)",
        "body": orjson.loads(BODY),
        "window_s": plan.e2e_window_s,
        "runs_per_figure": plan.runs,
        "results": results,
        "ratios": ratios(results),
    }


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """End-to-end throughput as a share of the bare endpoint's, per concurrency."""
    out = []
    for row in results:
        if row["name"] != "orders":
            continue
        bare = next(
            (r for r in results if r["name"] == "bare" and r["concurrency"] == row["concurrency"]),
            None,
        )
        if bare and bare.get("rps"):
            out.append({"concurrency": row["concurrency"], "orders_vs_bare": round(row["rps"] / bare["rps"], 3)})
    return out
