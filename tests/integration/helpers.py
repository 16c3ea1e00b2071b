"""Small builders shared by the integration tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def unique_customer() -> str:
    return f"cus_{uuid.uuid4().hex[:12]}"


def order_body(payment_method: str = "pm_card_visa", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": unique_customer(),
        "currency": "EUR",
        "items": [{"sku": "BOOK-42", "quantity": 2, "unit_price": 1299}],
        "payment_method": payment_method,
    }
    body.update(overrides)
    return body


async def create_order(
    client: httpx.AsyncClient, payment_method: str = "pm_card_visa", **overrides: Any
) -> dict[str, Any]:
    reply = await client.post("/v1/orders", json=order_body(payment_method, **overrides))
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


def assert_problem(reply: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = reply.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["detail"]
    # A replayed error is the first answer again: its request_id is the first request's.
    assert body["request_id"] == reply.headers.get("original-request", reply.headers["x-request-id"])
    if code is not None:
        assert body["code"] == code
    assert "Traceback" not in reply.text
    assert "127.0.0.1" not in reply.text
    return body
