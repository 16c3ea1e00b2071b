"""Any replica, any request (docs/guarantees.md#any-replica-any-request), under fault: SIGKILL of
one order-service replica, of one payment-service replica, and of one of each at once, while the
others run — two of each gRPC service and two gateways on one PostgreSQL server (tests/harness.py
`Cluster`), 32 retrying clients spread over both gateways, and the watched order followed over gRPC,
SSE and WebSocket.

The killed replica is brought back after DOWN_S and the load runs on; then everything drains and
the books are audited from PostgreSQL (tests/fault/ledger.py): no request lost, none charged
twice, every order final and agreeing with its payment, refunds never above the charge, every
client told the one order of its key, every watcher shown every version once and in order, and
the restarted replica serving calls again. What the clients saw on the way — every error answer
by status and kind, the longest wait, when the errors stopped — goes to
test-artifacts/fault-report.json ("replicas: …").

The first replica of each service is the one killed: the gRPC watcher (pick-first over both order
replicas) follows the order on order_service.1, so its stream is among those cut.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import postgres
from tests.fault.scenario import DOWN_S, Scenario
from tests.fault.webhooks import ENV as WEBHOOK_ENV
from tests.harness import Cluster

pytestmark = pytest.mark.postgres

# Shorter than the single stack's 30 s: six processes and PostgreSQL share two cores, and the
# three runs must stay within about two minutes of CI. The kill comes at a third of it, the
# replica is started again DOWN_S later, and the load goes on for the rest — and at least until
# the restarted replica serves calls again.
REPLICA_LOAD_S = float(os.environ.get("FAULT_REPLICA_LOAD_S", "15"))
# A simulated acquirer round trip: each charge spends this long inside the payment service, after
# the order service has claimed the key and stored the order — where a kill leaves the most to
# finish (a key in progress, an order pending, a charge whose answer is lost).
LATENCY_MS = 100


@pytest.fixture
def cluster(postgres_server: str, tmp_path: Path) -> Iterator[Cluster]:
    """Two replicas of each gRPC service and two gateways, on databases of their own."""
    env = {"PAYMENT_PROCESSOR_LATENCY_MS": str(LATENCY_MS), **WEBHOOK_ENV}
    with postgres.cluster_on(postgres_server, tmp_path / "cluster", env=env) as running:
        yield running


@pytest.mark.parametrize(
    "victims",
    [("order_service.1",), ("payment_service.1",), ("order_service.1", "payment_service.1")],
    ids=["order", "payment", "order+payment"],
)
async def test_sigkill_of_a_replica_under_load(cluster: Cluster, victims: tuple[str, ...]) -> None:
    async with Scenario(cluster, f"replicas: sigkill {' + '.join(victims)}") as run:
        await run.warm_up()
        await run.until(REPLICA_LOAD_S / 3)
        run.mark_fault()
        for name in victims:
            cluster.services[name].kill()
        # The survivors carry the load alone meanwhile.
        assert all(s.running for n, s in cluster.services.items() if n not in victims)
        await asyncio.sleep(DOWN_S)
        await run.restart(*victims)
        # A replica takes seconds to start on two busy cores: the load goes on at least until
        # each is used again.
        await run.wait_served(*victims)
        await run.until(REPLICA_LOAD_S)
    # The books held (the scenario raised otherwise). What the clients saw on the way: a call cut
    # by the kill is retried on a survivor — by the gateway when an order replica dies, by the
    # order service when a payment replica dies — so no 5xx and no broken connection reaches a
    # client. What remains when an order replica dies: the keys it had claimed stay leased until
    # their lease (the request's deadline + 1 s) runs out, and a retry meanwhile is told 409 with
    # Retry-After.
    seen = [a for a in run.load.attempts if a.outcome != 201]
    allowed = {409} if any(name.startswith("order_service") for name in victims) else set()
    assert {a.outcome for a in seen} <= allowed, run.load.figures(fault_at=run.fault_at)["client_error_kinds"]
    assert all(a.code == "ABORTED" and a.retry_after_s for a in seen), [a.kind for a in seen]
    assert set(run.refunder.errors) <= {str(status) for status in allowed}, run.refunder.errors
    # Behind the gateways too: no service answered a call UNAVAILABLE (or worse) — the order
    # service's own retry of Charge on the surviving payment replica, not the gateway's retry of
    # the whole CreateOrder on the other order replica, is what hides a payment replica's death.
    failed = {
        f"{name}: {call}": n
        for name, calls in run.rpc_failures().items()
        for call, n in calls.items()
        if call.rsplit(" ", 1)[-1] in {"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN"}
    }
    assert not failed, failed
    # And none of them logged an error on the way (a killed process logs nothing at all).
    assert not run.log_errors(), run.log_errors()
