"""How long and how hard each benchmark runs: the full run (`make bench`, under 10 minutes on
2 cores) and the quick one (`--quick`, about a minute: proves every section works, nothing more)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Plan:
    name: str
    runs: int  # each figure is the median of this many measured windows
    codec_budget_s: float  # per payload and format
    ratelimit_budget_s: float  # per window of rate-limit checks (bench/ratelimit.py)
    hop_warmup_s: float
    hop_window_s: float
    hop_concurrency: tuple[int, ...]
    e2e_warmup_s: float  # 0: only a few priming requests (wrk's windows are whole seconds)
    e2e_window_s: float
    e2e_concurrency: tuple[int, ...]  # the SQLite rows (orders, bare, plain)
    postgres_concurrency: tuple[int, ...]  # POST /v1/orders on PostgreSQL, 1 and 2 replicas
    server_concurrency: tuple[int, ...]  # the gateway under uvicorn and under granian
    push_watchers: tuple[int, ...]
    push_trials: dict[int, int]  # watchers → trials pooled for the delays
    replica_trials: int  # changes pooled for the same- and cross-replica delays
    short_poll_interval_s: float
    long_poll_wait_s: int
    idle_window_s: float
    memory_watchers: int
    memory_fresh_gateway: bool  # restart the gateway before each memory measurement
    # Orders placed with 1 endpoint, and with 100 endpoints (one dead): bench/webhooks.py.
    webhook_orders: tuple[int, int]
    # Orders of each kind (without and with an Idempotency-Key) whose statements are counted.
    statement_orders: int


# Each knob as (full run, quick run).
_KNOBS: dict[str, tuple[Any, Any]] = {
    "runs": (3, 1),
    "codec_budget_s": (0.6, 0.03),
    "ratelimit_budget_s": (1.0, 0.05),
    "hop_warmup_s": (1.0, 0.2),
    "hop_window_s": (3.0, 0.3),
    "hop_concurrency": ((1, 32), (32,)),
    "e2e_warmup_s": (2.0, 1.0),
    "e2e_window_s": (6.0, 2.0),
    "e2e_concurrency": ((1, 32), (1, 32)),
    "postgres_concurrency": ((1, 32), (32,)),
    # c=32 only: the servers differ in what they do per request under load; at c=1 the figure
    # is the services' latency, which the e2e rows already give.
    "server_concurrency": ((32,), (32,)),
    "push_watchers": ((1, 100, 1000), (1, 10)),
    "push_trials": ({1: 10, 100: 3, 1000: 2}, {1: 2, 10: 1}),
    "replica_trials": (30, 3),
    "short_poll_interval_s": (1.0, 1.0),
    "long_poll_wait_s": (30, 30),
    "idle_window_s": (61.0, 2.5),
    "memory_watchers": (1000, 50),
    "memory_fresh_gateway": (True, False),
    "webhook_orders": ((300, 30), (20, 3)),
    "statement_orders": (500, 100),
}
FULL = Plan(name="full", **{knob: full for knob, (full, _) in _KNOBS.items()})
QUICK = Plan(name="quick", **{knob: quick for knob, (_, quick) in _KNOBS.items()})
