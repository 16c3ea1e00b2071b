"""The several-replicas set-up in containers (docker-compose.yml + docker-compose.postgres.yml,
two order-service and two payment-service replicas on one PostgreSQL): the migration runs once
and exits 0, Docker's DNS names every replica, the gRPC clients spread their calls over all of
them, and the flow goes on when one replica of each service is stopped."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.artifacts import record
from tests.e2e.compose import (
    COMPOSE_FILE,
    POSTGRES_FILE,
    ComposeError,
    ComposeStack,
)
from tests.e2e.conftest import new_compose_stack
from tests.e2e.test_stack import confirm, create_order

pytestmark = pytest.mark.docker

REPLICAS = {"order_service": 2, "payment_service": 2}
REPORT = "compose-postgres-e2e"
_RPC_PREFIX = {"order_service": "/shop.order.v1.OrderService/", "payment_service": "/shop.payment.v1.PaymentService/"}


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    stack = new_compose_stack(REPORT, files=(COMPOSE_FILE, POSTGRES_FILE), one_shot=("certs", "migrate"))
    stack.env["SHOP_POSTGRES_IMAGE"] = "shop-postgres:e2e"
    try:
        started = time.monotonic()
        stack.build()
        built = time.monotonic()
        try:
            stack.up(*(f"--scale={service}={count}" for service, count in REPLICAS.items()))
        except ComposeError as exc:  # most often: the migration did not exit, so nothing else started
            migrate_log = stack.run("logs", "--no-color", "--tail", "20", "migrate", check=False)
            raise ComposeError(f"{exc}\nthe migrate service's last lines:\n{migrate_log}") from exc
        stack.wait_healthy()
        healthy = time.monotonic()
        record(REPORT, "start", {"build_s": round(built - started, 1), "up_to_healthy_s": round(healthy - built, 1)})
        yield stack
    finally:
        stack.down(volumes=True)  # keeps the logs in test-artifacts/compose-postgres-e2e.log first


@pytest.fixture
def http(stack: ComposeStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, headers=stack.headers, timeout=15) as client:
        yield client


def run_flow(http: httpx.Client) -> None:
    """A paid order, a declined one, a QR payment confirmed, and the customer's list."""
    customer = f"cus_{uuid.uuid4().hex[:12]}"
    paid = create_order(http, "pm_card_visa", customer)
    declined = create_order(http, "pm_card_chargeDeclined", customer)
    waiting = create_order(http, "pm_wallet_qr", customer)

    assert (paid["status"], paid["payment"]["status"]) == ("paid", "succeeded")
    assert (declined["status"], declined["payment"]["decline_code"]) == ("payment_failed", "generic_decline")
    assert waiting["status"] == "requires_action"
    assert confirm(http, waiting["payment"]["id"])["status"] == "succeeded"
    listed = http.get("/v1/orders", params={"customer_id": customer}).json()["orders"]
    assert [(o["id"], o["status"]) for o in listed] == [
        (waiting["id"], "paid"),
        (declined["id"], "payment_failed"),
        (paid["id"], "paid"),
    ]


def served_calls(container: str, service: str) -> int:
    """The RPCs of `service` that this container has answered, from its JSON log lines."""
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=30, check=True)
    count = 0
    for line in logs.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        rpc = entry.get("rpc") if isinstance(entry, dict) else None
        if entry.get("service") == service and isinstance(rpc, str) and rpc.startswith(_RPC_PREFIX[service]):
            count += 1
    return count


def calls_by_replica(stack: ComposeStack) -> dict[str, list[int]]:
    replicas = stack.replicas()
    return {
        service: [served_calls(c, service) for c in replicas[service] if c not in stack.stopped] for service in REPLICAS
    }


def test_the_migration_ran_once_and_every_replica_is_healthy(stack: ComposeStack) -> None:
    replicas = stack.replicas()
    (migrate,) = replicas["migrate"]

    assert stack.states({"migrate": migrate})["migrate"]["ExitCode"] == 0
    assert {service: len(replicas[service]) for service in REPLICAS} == REPLICAS
    assert len(replicas["gateway"]) == len(replicas["postgres"]) == 1


def test_docker_dns_names_every_replica(stack: ComposeStack) -> None:
    """What `dns:///order_service:50051` resolves to inside the gateway: every replica."""
    replicas = stack.replicas()
    (gateway,) = replicas["gateway"]
    for service in REPLICAS:
        resolve = f"import socket; print(*sorted({{a[4][0] for a in socket.getaddrinfo('{service}', 1)}}))"
        resolved = subprocess.run(
            ["docker", "exec", gateway, "python", "-c", resolve], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()
        addresses = subprocess.run(
            ["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"]
            + replicas[service],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()

        assert resolved == sorted(addresses), service
        assert len(resolved) == REPLICAS[service]


def test_calls_are_spread_over_every_replica(http: httpx.Client, stack: ComposeStack) -> None:
    before = calls_by_replica(stack)
    for _ in range(4):
        run_flow(http)
    after = calls_by_replica(stack)

    served = {service: [b - a for a, b in zip(before[service], after[service], strict=True)] for service in REPLICAS}
    record(REPORT, "spread", {"calls_by_replica": served})
    for service, counts in served.items():
        assert all(count > 0 for count in counts), f"{service}: calls by replica {counts}"


def test_the_flow_goes_on_with_one_replica_of_each_stopped(http: httpx.Client, stack: ComposeStack) -> None:
    replicas = stack.replicas()
    stopping = time.monotonic()
    for service in REPLICAS:
        stack.stop_container(replicas[service][0])
    stopped_s = time.monotonic() - stopping

    before = calls_by_replica(stack)
    flow_started = time.monotonic()
    for _ in range(2):
        run_flow(http)
    flow_s = time.monotonic() - flow_started
    after = calls_by_replica(stack)
    stack.wait_healthy(timeout=30)  # the gateway, postgres and the survivors stayed healthy

    served = {service: [b - a for a, b in zip(before[service], after[service], strict=True)] for service in REPLICAS}
    record(REPORT, "one_replica_stopped", {"stop_s": round(stopped_s, 1), "flow_s": round(flow_s, 2), "calls": served})
    for service, counts in served.items():
        assert len(counts) == REPLICAS[service] - 1, service
        assert all(count > 0 for count in counts), f"{service}: calls by surviving replica {counts}"
