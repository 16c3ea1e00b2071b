"""The demo page's webhook receiver (gateway/routers/demo_webhooks.py): the page asks for the demo
account's endpoint, the order service POSTs the order's versions to the receiver inside the
gateway, which checks their signatures; the page reads them back with the order's client secret.
Where webhooks may not reach the gateway (private networks not allowed), the page is told why."""

from __future__ import annotations

import asyncio

import httpx

from tests.harness import Stack
from tests.integration.helpers import assert_problem, order_body


async def test_the_demo_receiver_gets_every_version_signed(webhook_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=webhook_stack.url, timeout=10) as page:
        for _ in range(2):  # again: the endpoint is there already
            ready = await page.post("/demo/webhooks/endpoint", json={})
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"enabled": True, "reason": None}
        order = (await page.post("/demo/orders", json=order_body())).json()
        path, secret = f"/demo/orders/{order['id']}/webhooks", {"client_secret": order["client_secret"]}
        async with asyncio.timeout(20):
            while True:
                got = (await page.get(path, params=secret)).json()["webhooks"]
                if len(got) >= 2:
                    break
                await asyncio.sleep(0.05)  # the page's own way: it reads the receiver's list again
        assert [(w["event"]["data"]["version"], w["verified"]) for w in got] == [(1, True), (2, True)]
        assert got[1]["event"]["data"]["order"]["status"] == "paid"
        assert got[1]["received_at"].endswith("Z")
        assert_problem(await page.get(path, params={"client_secret": f"{order['id']}_secret_{'x' * 32}"}), 404)
        assert_problem(await page.get(path), 400)


async def test_where_webhooks_cannot_reach_the_demo_the_page_is_told_why(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as page:
        reply = await page.post("/demo/webhooks/endpoint", json={})
    assert reply.status_code == 200, reply.text
    assert reply.json()["enabled"] is False
    assert "loopback" in reply.json()["reason"]
