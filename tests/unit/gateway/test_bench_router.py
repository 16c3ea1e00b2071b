"""The bare endpoint of `make bench`: off unless GATEWAY_BENCH_ROUTES, and when on it answers
the same document as POST /v1/orders (the fields of OrderPublic), without any backend."""

from __future__ import annotations

import httpx

from gateway.app import create_app
from gateway.schemas import OrderPublic
from gateway.settings import GatewaySettings

BODY = {
    "customer_id": "cus_42",
    "currency": "EUR",
    "items": [{"sku": "BOOK-42", "quantity": 2, "unit_price": 1299}],
    "payment_method": "pm_card_visa",
}


KEY = "sk_test_bench_0123456789abcdef"


def _client(enabled: bool) -> httpx.AsyncClient:
    settings = {"gateway_bench_routes": enabled, "gateway_api_keys": f"acct_bench:{KEY}"}
    app = create_app(GatewaySettings.model_validate(settings))
    # Under /v1 like the route it stands beside: the same key check, so that the comparison is fair.
    headers = {"Authorization": f"Bearer {KEY}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=headers)


async def test_off_by_default() -> None:
    assert GatewaySettings.model_fields["gateway_bench_routes"].default is False
    async with _client(False) as client:
        assert (await client.post("/v1/bench/orders", json=BODY)).status_code == 404


async def test_answers_an_order_document() -> None:
    async with _client(True) as client:
        response = await client.post("/v1/bench/orders", json=BODY)
    assert response.status_code == 201
    order = OrderPublic.model_validate(response.json())
    assert (order.status, order.amount, order.version) == ("paid", 2598, 2)
    assert order.payment is not None
    assert order.payment.status == "succeeded"
    assert response.headers["etag"] == '"2"'
    assert response.headers["location"] == f"/v1/orders/{order.id}"


async def test_refuses_what_post_orders_refuses() -> None:
    async with _client(True) as client:
        response = await client.post("/v1/bench/orders", json={**BODY, "extra": 1})
    assert response.status_code == 400
