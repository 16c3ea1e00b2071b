"""Benchmark 2: `POST /v1/orders` end to end on the SQLite default (gateway → order service →
payment service, two gRPC hops, durable writes) against two endpoints that answer the same order
document from memory:

- `plain`: a plain FastAPI app in its own process (bench/plain_app.py) — the issue's baseline;
- `bare`: POST /v1/bench/orders of bench/bare_gateway.py, a gateway of its own beside the stack's
  (the same application, settings and server): the same middleware, converter and encoder as
  POST /v1/orders, without the hops.

Windows of the three alternate (bench/windows.py). Another variant of the stack (a setting
turned on, say) is one more target: start that stack beside this one and pass
`orders_target("orders_<variant>", variant_stack)` in `variants`; its row lands in the same
table, measured in the same alternation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.bare_gateway import BARE
from bench.config import Plan
from bench.procs import Server, stop_together
from bench.windows import BODY, Target, measure, share, tool_name
from tests.harness import Stack, free_port

log = logging.getLogger(__name__)

ORDERS = "/v1/orders"


def stack_pids(stack: Stack) -> dict[str, list[int]]:
    return {name: [service.proc.pid] for name, service in stack.services.items() if service.proc is not None}


def orders_target(name: str, stack: Stack, path: str = ORDERS, label: str = "", **fields: Any) -> Target:
    """POST `path` on `stack`'s gateway, its three processes' CPU counted; `label` follows the
    endpoint in the row's name (e.g. "(tracing on)")."""
    return Target(name, f"POST {path} {label}".rstrip(), stack.url + path, stack_pids(stack), fields)


def run(plan: Plan, stack: Stack, tool: str, workdir: Path, variants: Sequence[Target] = ()) -> dict[str, Any]:
    plain_port, bare_port = free_port(), free_port()
    bare_url = f"http://127.0.0.1:{bare_port}"
    bare_env = stack.gateway.env | {"GATEWAY_PORT": str(bare_port), "GATEWAY_PUBLIC_URL": bare_url}
    plain = Server("bench.plain_app", [str(plain_port)], workdir / "plain_app.log")
    bare = Server("bench.bare_gateway", [], workdir / "bare_gateway.log", bare_env)
    try:
        plain.wait_http(f"http://127.0.0.1:{plain_port}/healthz")
        bare.wait_http(f"{bare_url}/healthz")
        targets = [
            orders_target("orders", stack, database="sqlite"),
            # Its own gateway process: it never reaches the services, so only that CPU is the row's.
            Target("bare", f"POST {BARE}", bare_url + BARE, {"gateway": [bare.pid]}),
            Target(
                "plain",
                "POST /v1/orders (plain FastAPI)",
                f"http://127.0.0.1:{plain_port}{ORDERS}",
                {"plain": [plain.pid]},
            ),
        ]
        results = measure(plan, tool, [*targets, *variants], plan.e2e_concurrency)
    finally:
        stop_together([plain.proc, bare.proc])
    return {
        "load_tool": tool_name(tool),
        "body": orjson.loads(BODY),
        "window_s": plan.e2e_window_s,
        "runs_per_figure": plan.runs,
        "results": results,
        "ratios": share(results, "orders", "plain")
        + share(results, "orders", "bare")
        + [ratio for variant in variants for ratio in share(results, variant.name, "orders")],
    }
