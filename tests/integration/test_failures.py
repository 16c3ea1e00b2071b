"""A payment service that is down or slow: the right status within the deadline, never a hang,
and the order finished later by the reconciler with exactly one payment."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import httpx

from tests.harness import ROOT, Stack
from tests.integration.helpers import assert_problem, order_body

DEADLINE_S = 5  # the gateway's default (GATEWAY_DEADLINE_S)
# What a busy two-core machine may add to an answer that is due at a deadline.
SLACK_S = 5.0


async def wait_for_status(
    client: httpx.AsyncClient, order_id: str, status: str, timeout: float = 20
) -> dict[str, object]:
    """Long-poll the order until it reaches `status` (the reconciler runs every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order: dict[str, object] = (await client.get(f"/v1/orders/{order_id}")).json()
        if order["status"] == status:
            return order
        await asyncio.sleep(0.2)
    raise AssertionError(f"order {order_id} did not become {status}: {order}")


async def test_payment_service_down_is_503_then_finished(fresh_stack: Stack) -> None:
    fresh_stack.start()
    fresh_stack.payment.stop()
    async with httpx.AsyncClient(base_url=fresh_stack.url, headers=fresh_stack.headers, timeout=30) as client:
        body = order_body()
        started = time.monotonic()
        reply = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": "down-1"})
        elapsed = time.monotonic() - started
        assert_problem(reply, 503, "UNAVAILABLE")
        # Answered, not hung: within the 5 s deadline on an idle machine; the bound leaves a busy
        # one room (a hang would run into the client's 30 s).
        assert elapsed < DEADLINE_S + SLACK_S, f"took {elapsed:.1f}s, the deadline is {DEADLINE_S}s"
        ready = await client.get("/readyz")
        assert_problem(ready, 503)
        assert "payment_service" in ready.json()["detail"]

        # The order exists, waiting for its payment; nothing was charged.
        (pending,) = (await client.get("/v1/orders", params={"customer_id": body["customer_id"]})).json()["orders"]
        assert pending["status"] == "pending_payment"
        assert pending["payment"] is None

        fresh_stack.payment.start()
        fresh_stack.wait_ready()
        paid = await wait_for_status(client, pending["id"], "paid")
        retry = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": "down-1"})
        assert retry.status_code == 201
        assert retry.json()["id"] == pending["id"]
        assert retry.json()["payment"]["id"] == paid["payment"]["id"]  # type: ignore[index]


async def test_slow_payment_service_is_504_within_the_deadline(fresh_stack: Stack) -> None:
    fresh_stack.env["GATEWAY_DEADLINE_S"] = "1"
    fresh_stack.service_env["payment_service"] = {"PAYMENT_PROCESSOR_LATENCY_MS": "1500"}
    fresh_stack.__post_init__()
    fresh_stack.start()
    async with httpx.AsyncClient(base_url=fresh_stack.url, headers=fresh_stack.headers, timeout=30) as client:
        body = order_body()
        started = time.monotonic()
        reply = await client.post("/v1/orders", json=body)
        elapsed = time.monotonic() - started
        assert_problem(reply, 504, "DEADLINE_EXCEEDED")
        # The gateway's 1 s deadline ended the wait, not the acquirer's 1.5 s (that would be a 201).
        assert 0.9 < elapsed < 1 + SLACK_S, elapsed
        # The reconciler (5 s deadline of its own) finishes the order with one payment.
        (order,) = (await client.get("/v1/orders", params={"customer_id": body["customer_id"]})).json()["orders"]
        paid = await wait_for_status(client, order["id"], "paid")
        payment = (await client.get(f"/v1/payments/{paid['payment']['id']}")).json()  # type: ignore[index]
        assert payment["status"] == "succeeded"


async def test_order_service_down_is_503(fresh_stack: Stack) -> None:
    fresh_stack.start()
    async with httpx.AsyncClient(base_url=fresh_stack.url, headers=fresh_stack.headers, timeout=30) as client:
        created = (await client.post("/v1/orders", json=order_body())).json()
        fresh_stack.order.kill()
        assert_problem(await client.get(f"/v1/orders/{created['id']}"), 503, "UNAVAILABLE")
        assert_problem(await client.post("/v1/orders", json=order_body()), 503, "UNAVAILABLE")
        fresh_stack.order.start()
        fresh_stack.wait_ready()
        assert (await client.get(f"/v1/orders/{created['id']}")).json() == created


def test_sigterm_exits_cleanly(fresh_stack: Stack) -> None:
    fresh_stack.start()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the gateway ends "by the signal".
    assert fresh_stack.gateway.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in fresh_stack.gateway.log()
    for service in (fresh_stack.order, fresh_stack.payment):
        assert service.stop() == 0, service.log()[-2000:]
        assert '"msg":"stopped"' in service.log()


def test_bad_configuration_stops_the_service_with_one_line() -> None:
    for module, variable, value in [
        ("gateway", "GATEWAY_PORT", "eighty"),
        ("gateway", "GATEWAY_DEADLINE_S", "-1"),
        ("order_service", "ORDER_SERVICE_PORT", "70000"),
        ("payment_service", "PAYMENT_ACTION_TIMEOUT_S", "soon"),
        ("payment_service", "LOG_LEVEL", "LOUD"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", module], cwd=ROOT, env={"PATH": "/usr/bin:/bin", variable: value},
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert variable in lines[0]
