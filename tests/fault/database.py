"""What the database fault runs share: a cluster of replicas on given databases, and the rule for
what clients may see while the database is away (docs/database-failures.md#what-a-client-sees)."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from tests.fault.load import Load
from tests.fault.webhooks import ENV as WEBHOOK_ENV
from tests.harness import Cluster

# A simulated acquirer round trip, as in the replica runs: a fault finds charges under way.
LATENCY_MS = 50


def cluster_on(workdir: Path, order_url: str, payment_url: str) -> Cluster:
    """Two replicas of each gRPC service and two gateways (not started), with the fault runs'
    webhook settings."""
    return Cluster(
        workdir,
        order_database_url=order_url,
        payment_database_url=payment_url,
        env={"PAYMENT_PROCESSOR_LATENCY_MS": str(LATENCY_MS), **WEBHOOK_ENV},
    )


def database_names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"orders_{suffix}", f"payments_{suffix}"


def seen_while_away(load: Load) -> dict[str, Any]:
    """What the clients were answered besides 201 — and the answers
    docs/database-failures.md#what-a-client-sees forbids: anything but a 503 that says when to retry
    (Retry-After) or a 409 of a key whose request is still leased; a broken connection or no answer
    in time (a hang: the gateway's deadline is its 504)."""
    answers = Counter(a.kind for a in load.attempts if a.outcome != 201)
    forbidden = Counter(
        a.kind
        for a in load.attempts
        if a.outcome != 201
        and not (a.outcome == 503 and a.code == "UNAVAILABLE" and a.retry_after_s)
        and not (a.outcome == 409 and a.code == "ABORTED" and a.retry_after_s)
    )
    slowest = max((a.ended - a.started for a in load.attempts), default=0.0)
    return {"answers": dict(answers.most_common()), "forbidden": dict(forbidden), "slowest_answer_s": round(slowest, 3)}
