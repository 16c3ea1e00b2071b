"""Secrets never leak (docs/security.md#secrets-never-leak): a stack logging at DEBUG is driven
through every kind of request — good and bad keys, Basic and Bearer, client secrets right and wrong
on every channel, refusals, 429s, the demo routes, the phone page — and then the logs of all three
services, the metrics and the OpenAPI document are searched for every key and every client secret
that was used. (Every other stack of the run is searched too, when it stops: tests/conftest.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.harness import Stack, bearer, new_key
from tests.integration.helpers import order_body
from tests.integration.push_clients import ws_closed, ws_url


async def test_no_key_or_client_secret_in_any_log_metric_error_or_document(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "stack", env={"LOG_LEVEL": "DEBUG", "GATEWAY_AUTH_FAILURE_LIMIT": "1000/minute"})
    stack.start()
    wrong_key = new_key()
    used: list[str] = [wrong_key]
    bodies: list[str] = []
    try:
        async with (
            httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=15) as client,
            httpx.AsyncClient(base_url=stack.url, timeout=15) as anonymous,
        ):
            order = (await client.post("/v1/orders", json=order_body("pm_wallet_qr"))).json()
            demo = (await anonymous.post("/demo/orders", json=order_body("pm_wallet_qr"))).json()
            used += [order["client_secret"], demo["client_secret"]]
            secret = {"client_secret": order["client_secret"]}
            wrong = {"client_secret": demo["client_secret"]}
            payment = order["payment"]["id"]
            replies = [
                await anonymous.get("/v1/orders", auth=(stack.keys.secret, "")),
                await anonymous.get("/v1/orders", headers=bearer(wrong_key)),
                await anonymous.get("/v1/orders", auth=(wrong_key, "")),
                await anonymous.post("/v1/orders", headers=bearer(stack.keys.read_only), json=order_body()),
                await anonymous.get(f"/v1/orders/{order['id']}", params=secret),
                await anonymous.get(f"/v1/orders/{order['id']}", params=wrong),
                await anonymous.get(f"/v1/orders/{order['id']}/events", params=wrong),
                await anonymous.get(f"/v1/payments/{payment}", params=secret),
                await anonymous.get(f"/v1/payments/{payment}/qr.svg", params=secret),
                await anonymous.get(f"/pay/{payment}", params=secret),
                await anonymous.get(f"/pay/{payment}", params=wrong),
                await anonymous.post(f"/v1/payments/{payment}/confirm", json={"client_secret": demo["client_secret"]}),
                await anonymous.post(f"/demo/orders/{order['id']}/cancel", params=wrong, json={}),
                await client.get(f"/v1/orders/{demo['id']}"),
                await client.get(f"/v1/orders/{order['id']}", params={"client_secret": "x" * 300}),
            ]
            async with connect(ws_url(stack, order["id"]) + f"?client_secret={demo['client_secret']}") as socket:
                assert (await ws_closed(socket))[0] == 4404
            long_poll = asyncio.create_task(
                anonymous.get(
                    f"/v1/orders/{order['id']}",
                    params=secret,
                    headers={"If-None-Match": f'"{order["version"]}"', "Prefer": "wait=10"},
                )
            )
            confirmed = await anonymous.post(f"/v1/payments/{payment}/confirm", json=secret)
            assert confirmed.status_code == 200, confirmed.text
            assert (await long_poll).status_code == 200
            refused = [r for r in replies if r.status_code >= 400]
            assert len(refused) >= 9
            # The answers that refuse: none repeats what it was given.
            bodies = [r.text for r in refused]
            metrics = (await anonymous.get("/metrics")).text
            document = (await anonymous.get("/openapi.json")).text
    finally:
        stack.stop()
    everything = [*used, *stack.keys.all]
    assert stack.leaked_lines(everything) == []
    for text in [metrics, document, *bodies]:
        for secret_value in everything:
            assert secret_value not in text
    assert "_secret_" not in metrics
    # The logs were there to be searched: DEBUG lines of all three, about these requests.
    for service in stack.services.values():
        assert len(service.log().splitlines()) > 10, service.module
