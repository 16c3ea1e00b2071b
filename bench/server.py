"""Benchmark 2c, the gateway's HTTP server: the same gateway application (with the bare route:
bench/bare_gateway.py) under uvicorn (httptools, uvloop, as `python -m gateway` runs it) and under
granian (bench/granian_gateway.py), on the bare route and on POST /v1/orders, windows alternating.

Both gateways are started fresh for this section, side by side, in front of the SQLite stack's
order and payment services, so that the two differ in nothing but the server.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from bench.bare_gateway import BARE
from bench.config import Plan
from bench.e2e import ORDERS
from bench.procs import Server
from bench.windows import Target, measure, share, tool_name
from tests.harness import Stack, free_port

SERVERS = {"uvicorn": "bench.bare_gateway", "granian": "bench.granian_gateway"}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def run(plan: Plan, stack: Stack, tool: str, workdir: Path) -> dict[str, Any]:
    services = {name: [s.proc.pid] for name, s in stack.services.items() if name != "gateway" and s.proc is not None}
    gateways: dict[str, tuple[Server, str]] = {}
    try:
        for server, module in SERVERS.items():
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = stack.gateway.env | {"GATEWAY_PORT": str(port), "GATEWAY_PUBLIC_URL": url}
            gateways[server] = (Server(module, [], workdir / f"gateway_{server}.log", env), url)
        for process, url in gateways.values():
            process.wait_http(f"{url}/readyz", timeout=60)
        targets = [
            Target(
                f"{server}_{route}",
                f"POST {path}",
                url + path,
                # The bare route never reaches the services: only the gateway's CPU is its own.
                {"gateway": [process.pid]} | (services if route == "orders" else {}),
                {"server": server, "route": route},
            )
            for route, path in (("bare", BARE), ("orders", ORDERS))
            for server, (process, url) in gateways.items()
        ]
        results = measure(plan, tool, targets, plan.server_concurrency)
    finally:
        for process, _ in gateways.values():
            process.stop()
    return {
        "load_tool": tool_name(tool),
        "window_s": plan.e2e_window_s,
        "runs_per_figure": plan.runs,
        "servers": {
            "uvicorn": (
                f"uvicorn {_version('uvicorn')} (httptools {_version('httptools')}, uvloop {_version('uvloop')})"
            ),
            "granian": f"granian {_version('granian')} (ASGI, 1 worker, uvloop, HTTP/1.1)",
        },
        "results": results,
        "ratios": share(results, "granian_bare", "uvicorn_bare") + share(results, "granian_orders", "uvicorn_orders"),
    }
