"""Closed-loop HTTP load on several targets, in alternating measured windows, with the CPU time
each window cost each process of the target: the engine under every end-to-end table (SQLite,
PostgreSQL, HTTP servers).

Windows of the targets alternate (a, b, c, a, b, c, …) so that a change in the machine's other
load hits all of them alike; each figure is the median of its target's windows. A new variant —
another stack, another server, another setting — is one more `Target` in the list.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench import auth, wrk
from bench.config import Plan
from bench.payloads import create_order_fields
from bench.procs import run_json, tree_cpu_seconds
from bench.stats import Run, median_fields

log = logging.getLogger(__name__)

BODY = orjson.dumps(create_order_fields(1)).decode()
HEADERS = {"Content-Type": "application/json"}
_PRIMING_REQUESTS = 20


@dataclass(frozen=True)
class Target:
    """One row of a table: POST BODY to `url`.

    `pids` names the processes the request goes through, by kind ("gateway", "order_service",
    …), several pids for a kind with replicas; each kind gets a `<kind>_cpu_us` figure per request
    (the sum over its replicas and their child processes) and `cpu_us` is the total. `fields` are
    copied into the row as they are (what the variant is: database, replicas, server…)."""

    name: str
    endpoint: str
    url: str
    pids: Mapping[str, Sequence[int]]
    fields: Mapping[str, Any] = field(default_factory=dict)


def load_tool(choice: str) -> str:
    """`auto`: wrk when it is installed, else the Python load generator."""
    if choice == "auto":
        return "wrk" if wrk.available() else "python"
    return choice


def tool_name(tool: str) -> str:
    return "wrk" if tool == "wrk" else "bench.http_load (aiohttp)"


def window(tool: str, url: str, concurrency: int, seconds: float) -> Run:
    if tool == "wrk":
        return wrk.run(url, BODY, concurrency, seconds)
    args = [url, f"--body={BODY}", f"--concurrency={concurrency}", "--warmup=0.2"]
    rows = run_json("bench.http_load", [*args, f"--duration={seconds}", "--runs=1"], timeout=seconds + 60)
    return Run(**rows[0])


def prime(url: str) -> None:
    """A few requests one after another, so that a first window does not pay for first calls
    (lazy imports, connections, caches) — and a target that cannot answer fails here, clearly."""
    with httpx.Client(timeout=10) as client:
        for _ in range(_PRIMING_REQUESTS):
            response = client.post(url, content=BODY, headers={**HEADERS, **auth.headers()})
            if response.status_code >= 400:
                raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:300]}")


def _cpu(target: Target) -> dict[str, float]:
    return {kind: sum(tree_cpu_seconds(pid) for pid in pids) for kind, pids in target.pids.items()}


def measured_window(tool: str, target: Target, concurrency: int, seconds: float) -> dict[str, Any]:
    before = _cpu(target)
    measured = window(tool, target.url, concurrency, seconds)
    after = _cpu(target)
    row = measured.to_json()
    # CPU time per request of each process: robust where throughput is noisy.
    requests = max(measured.requests, 1)
    total = 0.0
    for kind in target.pids:
        used = (after[kind] - before[kind]) / requests * 1e6
        row[f"{kind}_cpu_us"] = round(used, 1)
        total += used
    row["cpu_us"] = round(total, 1)
    return row


def measure(plan: Plan, tool: str, targets: Sequence[Target], concurrencies: Sequence[int]) -> list[dict[str, Any]]:
    """One row per target and concurrency: the medians of `plan.runs` windows, and the windows."""
    for target in targets:
        prime(target.url)
    results = []
    for concurrency in concurrencies:
        windows: dict[str, list[dict[str, Any]]] = {target.name: [] for target in targets}
        for index in range(plan.runs):
            for target in targets:
                log.info("%s c=%d run %d", target.name, concurrency, index + 1)
                if index == 0 and plan.e2e_warmup_s > 0:
                    window(tool, target.url, concurrency, plan.e2e_warmup_s)
                windows[target.name].append(measured_window(tool, target, concurrency, plan.e2e_window_s))
        for target in targets:
            rows = windows[target.name]
            results.append(
                {"endpoint": target.endpoint, "name": target.name, "concurrency": concurrency}
                | dict(target.fields)
                | median_fields(rows)
                | {"runs": rows}
            )
    return results


def find(rows: Sequence[dict[str, Any]], name: str, concurrency: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["name"] == name and r["concurrency"] == concurrency), None)


def share(rows: Sequence[dict[str, Any]], name: str, baseline: str) -> list[dict[str, Any]]:
    """Throughput of `name` as a share of `baseline`'s, per concurrency measured for both."""
    out = []
    for row in rows:
        if row["name"] != name:
            continue
        base = find(rows, baseline, row["concurrency"])
        if base and base.get("rps") and row.get("rps") is not None:
            out.append(
                {
                    "name": name,
                    "baseline": baseline,
                    "concurrency": row["concurrency"],
                    "share": round(row["rps"] / base["rps"], 3),
                }
            )
    return out
