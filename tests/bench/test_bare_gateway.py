"""The benchmark's gateway: the product's application with one more route, which answers the
document POST /v1/orders answers (built by the same converter) without any service; the
product itself has no such route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from bench.bare_gateway import BARE, bench_app
from gateway.app import create_app
from gateway.schemas import OrderPublic
from gateway.settings import GatewaySettings

KEY = "sk_test_bench_0123456789abcdef"
SETTINGS = GatewaySettings.model_validate({"gateway_api_keys": f"acct_bench:{KEY}"})
BODY = {
    "customer_id": "cus_42",
    "currency": "EUR",
    "items": [{"sku": "BOOK-42", "quantity": 2, "unit_price": 1299}],
    "payment_method": "pm_card_visa",
}


def _client(app: Any, key: str | None = KEY) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=headers)


async def test_the_product_has_no_bench_route() -> None:
    async with _client(create_app(SETTINGS)) as client:
        assert (await client.post(BARE, json=BODY)).status_code == 404
    assert not any("bench" in name for name in GatewaySettings.model_fields)


async def test_answers_an_order_document_as_post_orders_does() -> None:
    async with _client(bench_app(SETTINGS)) as client:
        response = await client.post(BARE, json=BODY)
    assert response.status_code == 201, response.text
    document = response.json()
    TypeAdapter(OrderPublic).validate_python(document)
    assert document.keys() == TypeAdapter(OrderPublic).json_schema()["properties"].keys()
    assert (document["status"], document["amount"], document["version"]) == ("paid", 2598, 2)
    assert document["payment"]["status"] == "succeeded"
    assert document["client_secret"].startswith(f"{document['id']}_secret_")
    assert response.headers["etag"] == '"2"'
    assert response.headers["location"] == f"/v1/orders/{document['id']}"
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("key", "body", "status"), [(None, BODY, 401), (KEY, {**BODY, "extra": 1}, 400)])
async def test_refuses_what_post_orders_refuses(key: str | None, body: dict[str, Any], status: int) -> None:
    async with _client(bench_app(SETTINGS), key) as client:
        response = await client.post(BARE, json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
