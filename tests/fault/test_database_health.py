"""docs/database-failures.md#what-a-client-sees, health: a service whose database is unreachable
says NOT_SERVING within 2 s, and SERVING within 2 s of its return — on every surface that reports
it: the gateway's /readyz, each service's grpc.health.v1 on its main port and on its plaintext
health port, and its `db_up` metric. Meanwhile every call that needs the database is answered 503
problem+json with Retry-After within the gateway's deadline, never a hang and never a 500; once it
is back the next requests succeed, with nothing restarted.

One stack (one replica of each service) on a PostgreSQL server of its own, stopped (`pg_ctl stop
-m fast`) and started again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests import postgres
from tests.artifacts import record
from tests.conftest import require_tool
from tests.harness import Stack, free_port
from tests.integration.helpers import assert_problem, create_order, order_body

pytestmark = pytest.mark.postgres

# docs/database-failures.md#what-a-client-sees.
FLIP_S = 2.0
DEADLINE_S = 5.0  # GATEWAY_DEADLINE_S's default: every answer comes within it


@pytest.fixture
def pg_stack(tmp_path: Path) -> Iterator[tuple[Stack, postgres.Server]]:
    require_tool(postgres.available(), "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with postgres.server() as server:
        stack = Stack(
            tmp_path / "stack",
            env={
                "ORDER_DATABASE_URL": postgres.create_database(server.url, "orders"),
                "PAYMENT_DATABASE_URL": postgres.create_database(server.url, "payments"),
                "ORDER_HEALTH_PORT": str(free_port()),
                "PAYMENT_HEALTH_PORT": str(free_port()),
            },
        )
        try:
            yield stack.start(), server
        finally:
            stack.stop()


async def _grpc_health(target: str, service: str = "") -> str:
    async with grpc.aio.insecure_channel(target) as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=1)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def _metric(http: httpx.AsyncClient, port: int) -> str:
    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    line = next((line for line in text.splitlines() if line.startswith("db_up ")), "db_up (none)")
    return "SERVING" if line.split()[1] == "1.0" else "NOT_SERVING"


def surfaces(stack: Stack, http: httpx.AsyncClient) -> dict[str, Callable[[], Awaitable[str]]]:
    """Every place that tells whether the services can serve, each read as SERVING or not."""

    async def readyz() -> str:
        return "SERVING" if (await http.get(f"{stack.url}/readyz")).status_code == 200 else "NOT_SERVING"

    env = stack.order.env
    return {
        "gateway /readyz": readyz,
        "order_service health": lambda: _grpc_health(stack.order_target),
        "payment_service health": lambda: _grpc_health(stack.payment_target),
        "order_service health port": lambda: _grpc_health(f"127.0.0.1:{env['ORDER_HEALTH_PORT']}"),
        "payment_service health port": lambda: _grpc_health(f"127.0.0.1:{env['PAYMENT_HEALTH_PORT']}"),
        "order_service db_up": lambda: _metric(http, stack.order_metrics_port),
        "payment_service db_up": lambda: _metric(http, stack.payment_metrics_port),
    }


async def until_all(checks: dict[str, Callable[[], Awaitable[str]]], wanted: str, since: float) -> dict[str, float]:
    """Seconds after `since` at which each surface first said `wanted` (another process's state:
    read every 50 ms, for at most 30 s)."""
    seen: dict[str, float] = {}
    while len(seen) < len(checks) and time.monotonic() - since < 30:
        states = await asyncio.gather(*(check() for name, check in checks.items() if name not in seen))
        now = time.monotonic()
        for name, state in zip([n for n in checks if n not in seen], states, strict=True):
            if state == wanted:
                seen[name] = round(now - since, 3)
        await asyncio.sleep(0.05)
    assert set(seen) == set(checks), f"never {wanted}: {sorted(set(checks) - set(seen))}"
    return seen


async def test_health_and_answers_follow_the_database(pg_stack: tuple[Stack, postgres.Server]) -> None:
    stack, server = pg_stack
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as http:
        paid = await create_order(http)
        waiting = await create_order(http, "pm_wallet_qr")
        checks = surfaces(stack, http)
        await until_all(checks, "SERVING", time.monotonic())

        await asyncio.to_thread(server.stop, "fast")
        stopped = time.monotonic()
        down = await until_all(checks, "NOT_SERVING", stopped)
        # Liveness does not follow the database: restarting the replica would not bring it back.
        for target in (stack.order_target, stack.payment_target):
            assert await _grpc_health(target, "liveness") == "SERVING"

        # Every call that needs a database: 503 problem+json with Retry-After, within the deadline.
        calls = {
            "create": ("POST", "/v1/orders", order_body(), {"Idempotency-Key": "outage-create"}),
            "create without key": ("POST", "/v1/orders", order_body(), {}),
            "get": ("GET", f"/v1/orders/{paid['id']}", None, {}),
            "list": ("GET", "/v1/orders", None, {}),
            "refund": ("POST", f"/v1/orders/{paid['id']}/refund", {"amount": 1}, {"Idempotency-Key": "outage-rf"}),
            "confirm": ("POST", f"/v1/payments/{waiting['payment']['id']}/confirm", {}, {}),
            "cancel": ("POST", f"/v1/orders/{waiting['id']}/cancel", {}, {}),
            "payment": ("GET", f"/v1/payments/{paid['payment']['id']}", None, {}),
            "long poll": ("GET", f"/v1/orders/{paid['id']}", None, {"Prefer": "wait=2", "If-None-Match": '"1"'}),
        }
        answered: dict[str, float] = {}
        for name, (method, path, body, headers) in calls.items():
            started = time.monotonic()
            reply = await http.request(method, path, json=body, headers=headers)
            answered[name] = round(time.monotonic() - started, 3)
            assert_problem(reply, 503, "UNAVAILABLE")
            assert int(reply.headers["retry-after"]) >= 1, name
            assert answered[name] < DEADLINE_S, name
        async with http.stream("GET", f"/v1/orders/{paid['id']}/events", headers={"Last-Event-ID": "0"}) as sse:
            await sse.aread()
            assert sse.status_code == 503, sse.text
            assert sse.headers["retry-after"]

        await asyncio.to_thread(server.start)
        started = time.monotonic()
        back = await until_all(checks, "SERVING", started)
        # The pools reconnect by themselves: the next requests succeed, nothing was restarted.
        again = await http.post("/v1/orders", json=order_body(), headers={"Idempotency-Key": "after-outage"})
        assert again.status_code == 201, again.text
        refunded = await http.post(f"/v1/orders/{paid['id']}/refund", json={"amount": 1})
        assert refunded.status_code == 200, refunded.text
        confirmed = await http.post(f"/v1/payments/{waiting['payment']['id']}/confirm", json={})
        assert confirmed.status_code == 200, confirmed.text
    assert all(service.running for service in stack.services.values())
    record(
        "database-report",
        "health follows the database",
        {"not_serving_after_s": down, "serving_after_s": back, "answer_s_while_down": answered},
    )
    assert max(down.values()) < FLIP_S, down
    assert max(back.values()) < FLIP_S, back
