"""Benchmark 2b: `POST /v1/orders` on PostgreSQL with 1 and with 2 order-service replicas, in one
run, windows alternating, on the set-up of bench/pg.py: the same 2 order and 2 payment replicas
on the same database, reached through a gateway pinned to order replica A (1 replica takes the
calls) or through the gateway that spreads them over both (2 replicas). Payment calls go
round-robin over both payment replicas in both rows.

CPU is counted per kind of process, summed over its replicas, and for the PostgreSQL server (all
its backends): on SQLite the database's work is inside the services' own CPU figures.
On a 2-core machine a second replica cannot add capacity: every process already shares the same
two cores, so these rows show what spreading the calls costs or saves here (more processes
awake, more connections, the NOTIFY path), not what replicas would gain on more machines.
"""

from __future__ import annotations

from typing import Any

from bench.config import Plan
from bench.pg import PostgresSetup
from bench.windows import Target, measure, share, tool_name

ORDERS = "/v1/orders"


def _pids(setup: PostgresSetup, gateway: int) -> dict[str, list[int]]:
    pids: dict[str, list[int]] = {"gateway": [gateway], "postgres": [setup.postmaster_pid]}
    for name, service in setup.cluster.services.items():
        kind = name.split(".")[0]
        if kind != "gateway" and service.proc is not None:
            pids.setdefault(kind, []).append(service.proc.pid)
    return pids


def run(plan: Plan, setup: PostgresSetup, tool: str) -> dict[str, Any]:
    cluster = setup.cluster
    payments = len(cluster.payment_targets)
    shared = cluster.services["gateway.1"].proc
    assert shared is not None
    variants = [
        ("postgres_r1", 1, setup.pinned[0], setup.pinned_pids[0]),
        ("postgres_r2", len(cluster.order_targets), cluster.urls[0], shared.pid),
    ]
    targets = [
        Target(
            name,
            f"POST {ORDERS}",
            url + ORDERS,
            _pids(setup, gateway),
            {"database": "postgresql", "order_replicas": replicas, "payment_replicas": payments},
        )
        for name, replicas, url, gateway in variants
    ]
    results = measure(plan, tool, targets, plan.postgres_concurrency)
    return {
        "load_tool": tool_name(tool),
        "window_s": plan.e2e_window_s,
        "runs_per_figure": plan.runs,
        "postgres": f"PostgreSQL {setup.server_version}, fsync and synchronous_commit at their defaults (on)",
        "results": results,
        # 2 order replicas' throughput as a share of 1 replica's.
        "ratios": share(results, "postgres_r2", "postgres_r1"),
    }
