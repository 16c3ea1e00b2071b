"""Benchmark 1, the inter-service hop: gRPC/protobuf against JSON over HTTP/1.1 (httpx, aiohttp).

Each server runs in its own process (bench/hop_server.py) and each load in another
(bench/hop_client.py): three processes never share an interpreter, as in the real system.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench.config import Plan
from bench.procs import Server, run_json
from bench.stats import median_fields
from tests.harness import free_port

log = logging.getLogger(__name__)

TRANSPORTS = ("grpc", "httpx", "aiohttp")
PAYLOADS = ("small", "large")


def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    grpc_port, http_port = free_port(), free_port()
    servers = {
        "grpc": Server("bench.hop_server", ["grpc", str(grpc_port)], workdir / "hop_grpc.log"),
        "http": Server("bench.hop_server", ["http", str(http_port)], workdir / "hop_http.log"),
    }
    try:
        servers["grpc"].wait_grpc(f"127.0.0.1:{grpc_port}")
        servers["http"].wait_http(f"http://127.0.0.1:{http_port}/healthz")
        targets = {
            "grpc": (f"127.0.0.1:{grpc_port}", servers["grpc"].pid),
            "httpx": (f"http://127.0.0.1:{http_port}", servers["http"].pid),
            "aiohttp": (f"http://127.0.0.1:{http_port}", servers["http"].pid),
        }
        results = []
        for payload in PAYLOADS:
            for concurrency in plan.hop_concurrency:
                for transport in TRANSPORTS:
                    target, pid = targets[transport]
                    log.info("hop %s %s c=%d", transport, payload, concurrency)
                    runs = run_json(
                        "bench.hop_client",
                        [
                            transport,
                            target,
                            f"--payload={payload}",
                            f"--concurrency={concurrency}",
                            f"--warmup={plan.hop_warmup_s}",
                            f"--duration={plan.hop_window_s}",
                            f"--runs={plan.runs}",
                            f"--server-pid={pid}",
                        ],
                        timeout=60 + plan.runs * plan.hop_window_s,
                    )
                    results.append(
                        {
                            "transport": transport,
                            "payload": payload,
                            "concurrency": concurrency,
                            **median_fields(runs),
                            "runs": runs,
                        }
                    )
    finally:
        for server in servers.values():
            server.stop()
    return {
        "runs_per_figure": plan.runs,
        "window_s": plan.hop_window_s,
        "payloads": {
            "small": "PaymentService.Charge: ChargeRequest → Payment",
            "large": "OrderService.CreateOrder with 100 line items → Order with its Payment",
        },
        "results": results,
        "ratios": ratios(results),
    }


def find(results: list[dict[str, Any]], transport: str, payload: str, concurrency: int) -> dict[str, Any] | None:
    for row in results:
        if (row["transport"], row["payload"], row["concurrency"]) == (transport, payload, concurrency):
            return row
    return None


def _cpu_us(row: dict[str, Any]) -> float:
    return float(row.get("client_cpu_us") or 0) + float(row.get("server_cpu_us") or 0)


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """gRPC throughput as a multiple of each JSON client's, per payload and concurrency; and its
    calls per CPU-second (client and server together) as a multiple of theirs, which what else
    runs on the machine disturbs far less — a single-threaded server gets a smaller share of two
    busy cores than grpc's threads do, and its throughput swings with the load."""
    out = []
    for row in results:
        if row["transport"] != "grpc":
            continue
        entry: dict[str, Any] = {"payload": row["payload"], "concurrency": row["concurrency"]}
        for other in ("httpx", "aiohttp"):
            match = find(results, other, row["payload"], row["concurrency"])
            if match and match.get("rps"):
                entry[f"grpc_vs_{other}"] = round(row["rps"] / match["rps"], 2)
            if match and _cpu_us(row) and _cpu_us(match):
                entry[f"grpc_cpu_vs_{other}"] = round(_cpu_us(match) / _cpu_us(row), 2)
        out.append(entry)
    return out
