"""Benchmark 2b: `POST /v1/orders` on PostgreSQL, in one run, windows alternating, on the set-up
of bench/pg.py:
- `postgres_single`: one replica of each service, the processes of the SQLite stack (table 2a) on
  PostgreSQL — the row the PostgreSQL-against-SQLite goals are judged on;
- `postgres_r1`, `postgres_r2`: the same 2 order and 2 payment replicas on the same database,
  reached through a gateway pinned to order replica A (1 replica takes the calls) or through the
  gateway that spreads them over both (2 replicas). Payment calls go round-robin over both
  payment replicas in both rows.

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


def _single_pids(setup: PostgresSetup) -> dict[str, list[int]]:
    pids = {name: [s.proc.pid] for name, s in setup.single.services.items() if s.proc is not None}
    return pids | {"postgres": [setup.postmaster_pid]}


def run(plan: Plan, setup: PostgresSetup, tool: str) -> dict[str, Any]:
    cluster = setup.cluster
    payments = len(cluster.payment_targets)
    shared = cluster.services["gateway.1"].proc
    assert shared is not None
    variants = [
        ("postgres_r1", 1, setup.pinned[0], setup.pinned_pids[0]),
        ("postgres_r2", len(cluster.order_targets), cluster.urls[0], shared.pid),
    ]
    single = Target(
        "postgres_single",
        f"POST {ORDERS}",
        setup.single.url + ORDERS,
        _single_pids(setup),
        {"database": "postgresql", "order_replicas": 1, "payment_replicas": 1},
    )
    targets = [single] + [
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
