"""Every route (docs/rest-api.md#routes) and test payment method
(docs/rest-api.md#test-payment-methods) over HTTP against the three real services."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.harness import Stack
from tests.integration.helpers import assert_problem, create_order, order_body, unique_customer

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def assert_order_shape(order: dict[str, Any]) -> None:
    assert set(order) == {
        "id", "client_secret", "customer_id", "status", "currency", "items", "amount", "amount_refunded",
        "payment", "version", "created_at", "updated_at",
    }  # fmt: skip
    assert order["id"].startswith("ord_")
    assert RFC3339.match(order["created_at"])
    assert RFC3339.match(order["updated_at"])
    payment = order["payment"]
    assert set(payment) == {
        "id", "status", "payment_method", "amount", "amount_refunded", "currency", "failure_code",
        "decline_code", "failure_message", "next_action", "created_at", "updated_at",
    }  # fmt: skip
    assert payment["id"].startswith("pay_")
    assert RFC3339.match(payment["created_at"])


async def test_create_paid_order(client: httpx.AsyncClient) -> None:
    body = order_body("pm_card_visa")
    reply = await client.post("/v1/orders", json=body)
    assert reply.status_code == 201
    order = reply.json()
    assert_order_shape(order)
    assert order["status"] == "paid"
    assert order["amount"] == 2598
    assert order["items"] == body["items"]
    assert order["customer_id"] == body["customer_id"]
    assert order["payment"]["status"] == "succeeded"
    assert order["payment"]["amount"] == 2598
    assert order["payment"]["next_action"] is None
    assert reply.headers["location"] == f"/v1/orders/{order['id']}"
    assert reply.headers["etag"] == f'"{order["version"]}"'

    again = await client.get(f"/v1/orders/{order['id']}")
    assert again.status_code == 200
    assert again.json() == order
    payment = await client.get(f"/v1/payments/{order['payment']['id']}")
    assert payment.status_code == 200
    assert payment.json() == order["payment"]


@pytest.mark.parametrize(
    ("method", "failure_code", "decline_code"),
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ],
)
async def test_declined_payment_is_an_order_not_an_error(
    client: httpx.AsyncClient, method: str, failure_code: str, decline_code: str
) -> None:
    order = await create_order(client, method)
    assert order["status"] == "payment_failed"
    assert order["payment"]["status"] == "failed"
    assert order["payment"]["failure_code"] == failure_code
    assert order["payment"]["decline_code"] == decline_code
    assert order["payment"]["failure_message"]


@pytest.mark.parametrize("method", ["pm_card_mastercard"])
async def test_other_card_succeeds(client: httpx.AsyncClient, method: str) -> None:
    assert (await create_order(client, method))["status"] == "paid"


@pytest.mark.parametrize("method", ["pm_card_authenticationRequired", "pm_wallet_qr"])
async def test_requires_action_then_approve(client: httpx.AsyncClient, stack: Stack, method: str) -> None:
    order = await create_order(client, method)
    assert order["status"] == "requires_action"
    payment = order["payment"]
    assert payment["status"] == "requires_action"
    action = payment["next_action"]
    assert action["type"] == "scan_qr"
    # Both carry the order's client secret: the phone and the <img> have no API key.
    secret = order["client_secret"]
    assert action["confirm_url"] == f"{stack.url}/pay/{payment['id']}?client_secret={secret}"
    assert action["qr_svg_url"] == f"{stack.url}/v1/payments/{payment['id']}/qr.svg?client_secret={secret}"
    assert RFC3339.match(action["expires_at"])

    confirmed = await client.post(f"/v1/payments/{payment['id']}/confirm", json={})
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "succeeded"
    assert confirmed.json()["next_action"] is None
    after = (await client.get(f"/v1/orders/{order['id']}")).json()
    assert after["status"] == "paid"
    assert after["version"] == order["version"] + 1

    # A second tap on the phone answers with the payment as it is; a late "decline" is refused.
    assert (await client.post(f"/v1/payments/{payment['id']}/confirm", json={"approve": True})).status_code == 200
    late = await client.post(f"/v1/payments/{payment['id']}/confirm", json={"approve": False})
    assert_problem(late, 400, "FAILED_PRECONDITION")


async def test_requires_action_then_decline(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_wallet_qr")
    reply = await client.post(f"/v1/payments/{order['payment']['id']}/confirm", json={"approve": False})
    assert reply.status_code == 200
    assert reply.json()["status"] == "failed"
    assert reply.json()["failure_code"]
    assert (await client.get(f"/v1/orders/{order['id']}")).json()["status"] == "payment_failed"


async def test_confirm_a_payment_that_needs_no_action(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_card_chargeDeclined")
    reply = await client.post(f"/v1/payments/{order['payment']['id']}/confirm", json={})
    assert_problem(reply, 400, "FAILED_PRECONDITION")


async def test_cancel(client: httpx.AsyncClient) -> None:
    waiting = await create_order(client, "pm_wallet_qr")
    reply = await client.post(f"/v1/orders/{waiting['id']}/cancel")
    assert reply.status_code == 200
    assert reply.json()["status"] == "canceled"
    assert reply.json()["payment"]["status"] == "canceled"
    again = await client.post(f"/v1/orders/{waiting['id']}/cancel", json={})
    assert again.status_code == 200
    assert again.json()["version"] == reply.json()["version"]
    # The canceled payment can no longer be approved.
    late = await client.post(f"/v1/payments/{waiting['payment']['id']}/confirm", json={})
    assert_problem(late, 400, "FAILED_PRECONDITION")

    paid = await create_order(client)
    refused = await client.post(f"/v1/orders/{paid['id']}/cancel", json={})
    body = assert_problem(refused, 400, "FAILED_PRECONDITION")
    assert "paid" in body["detail"]
    assert (await client.get(f"/v1/orders/{paid['id']}")).json() == paid


async def test_refunds(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    partial = await client.post(f"/v1/orders/{order['id']}/refund", json={"amount": 500})
    assert partial.status_code == 200
    assert partial.json()["status"] == "partially_refunded"
    assert partial.json()["amount_refunded"] == 500
    assert partial.json()["payment"]["amount_refunded"] == 500

    too_much = await client.post(f"/v1/orders/{order['id']}/refund", json={"amount": 2099})
    assert assert_problem(too_much, 400)["code"] in ("OUT_OF_RANGE", "INVALID_ARGUMENT")
    zero = await client.post(f"/v1/orders/{order['id']}/refund", json={"amount": 0})
    assert_problem(zero, 400, "INVALID_ARGUMENT")

    rest = await client.post(f"/v1/orders/{order['id']}/refund", json={})
    assert rest.status_code == 200
    assert rest.json()["status"] == "refunded"
    assert rest.json()["amount_refunded"] == 2598
    assert rest.json()["payment"]["status"] == "refunded"
    assert_problem(await client.post(f"/v1/orders/{order['id']}/refund", json={}), 400, "FAILED_PRECONDITION")

    unpaid = await create_order(client, "pm_card_chargeDeclined")
    assert_problem(await client.post(f"/v1/orders/{unpaid['id']}/refund", json={}), 400, "FAILED_PRECONDITION")


async def test_list_pages_newest_first(client: httpx.AsyncClient) -> None:
    customer = unique_customer()
    created = [await create_order(client, customer_id=customer) for _ in range(5)]
    declined = await create_order(client, "pm_card_chargeDeclined", customer_id=customer)
    seen: list[str] = []
    token = ""
    while True:
        params: dict[str, str | int] = {
            "customer_id": customer,
            "page_size": 2,
            **({"page_token": token} if token else {}),
        }
        page = (await client.get("/v1/orders", params=params)).json()
        assert len(page["orders"]) <= 2
        seen += [o["id"] for o in page["orders"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [declined["id"], *[o["id"] for o in reversed(created)]]

    failed = (await client.get("/v1/orders", params={"customer_id": customer, "status": "payment_failed"})).json()
    assert [o["id"] for o in failed["orders"]] == [declined["id"]]
    assert failed["next_page_token"] == ""
    default = (await client.get("/v1/orders")).json()
    assert 1 <= len(default["orders"]) <= 20


@pytest.mark.parametrize(
    "params",
    [{"page_size": 0}, {"page_size": 101}, {"page_size": "x"}, {"status": "lost"}, {"page_token": "garbage!"}],
)
async def test_list_refuses_bad_parameters(client: httpx.AsyncClient, params: dict[str, Any]) -> None:
    assert_problem(await client.get("/v1/orders", params=params), 400, "INVALID_ARGUMENT")


def _items(n: int, **item: Any) -> list[dict[str, Any]]:
    return [{"sku": f"SKU-{i}", "quantity": 1, "unit_price": 100, **item} for i in range(n)]


INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("missing field", {"customer_id": None}, "customer_id"),
    ("customer id characters", {"customer_id": "cus 42"}, "customer_id"),
    ("customer id length", {"customer_id": "c" * 65}, "customer_id"),
    ("lower-case currency", {"currency": "eur"}, "currency"),
    ("unknown currency", {"currency": "XXY"}, "currency"),
    ("unknown payment method", {"payment_method": "pm_card_unknown"}, "payment_method"),
    ("no items", {"items": []}, "items"),
    ("too many items", {"items": _items(101)}, "items"),
    ("quantity zero", {"items": _items(1, quantity=0)}, "items.0.quantity"),
    ("quantity too big", {"items": _items(1, quantity=1001)}, "items.0.quantity"),
    ("quantity as string", {"items": _items(1, quantity="2")}, "items.0.quantity"),
    ("quantity as float", {"items": _items(1, quantity=1.5)}, "items.0.quantity"),
    ("negative price", {"items": _items(1, unit_price=-1)}, "items.0.unit_price"),
    ("price too big", {"items": _items(1, unit_price=10_000_001)}, "items.0.unit_price"),
    ("sku characters", {"items": _items(1, sku="BOOK 42")}, "items.0.sku"),
    ("unknown item field", {"items": _items(1, colour="red")}, "items.0.colour"),
    ("unknown field", {"coupon": "FREE"}, "coupon"),
    ("total zero", {"items": _items(1, unit_price=0)}, "items"),
    ("total too big", {"items": _items(11, quantity=1000, unit_price=10_000_000)}, "items"),
]


@pytest.mark.parametrize(("case", "change", "field"), INVALID_BODIES, ids=[c[0] for c in INVALID_BODIES])
async def test_invalid_order_is_400_and_changes_nothing(
    client: httpx.AsyncClient, case: str, change: dict[str, Any], field: str
) -> None:
    body = order_body()
    body.update(change)
    if body["customer_id"] is None:
        del body["customer_id"]
    reply = await client.post("/v1/orders", json=body)
    problem = assert_problem(reply, 400, "INVALID_ARGUMENT")
    assert field in [e["field"] for e in problem["errors"]], problem
    if isinstance(body.get("customer_id"), str) and len(body["customer_id"]) <= 64:
        listed = await client.get("/v1/orders", params={"customer_id": body["customer_id"]})
        if listed.status_code == 200:
            assert listed.json()["orders"] == []


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"customer_id": ', {"content-type": "application/json"}, 400),
        (b"[1, 2]", {"content-type": "application/json"}, 400),
        (b"customer_id=cus_1", {"content-type": "application/x-www-form-urlencoded"}, 415),
        (b'{"customer_id": "cus_1"}', {"content-type": "text/plain"}, 415),
        (b"{}", {}, 415),
        (b"x" * (64 * 1024 + 1), {"content-type": "application/json"}, 413),
    ],
    ids=["truncated json", "json array", "form", "text/plain", "no content type", "over 64 KiB"],
)
async def test_body_errors(client: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int) -> None:
    reply = await client.post("/v1/orders", content=content, headers=headers)
    assert_problem(reply, status)


async def test_not_found_and_wrong_method(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/orders/ord_00000000000000000000000000"), 404, "NOT_FOUND")
    assert_problem(await client.get("/v1/payments/pay_00000000000000000000000000"), 404, "NOT_FOUND")
    assert_problem(await client.post("/v1/payments/pay_00000000000000000000000000/confirm", json={}), 404)
    assert_problem(await client.post("/v1/orders/ord_00000000000000000000000000/cancel", json={}), 404)
    assert_problem(await client.get("/v1/nothing-here"), 404, "NOT_FOUND")
    assert_problem(await client.delete("/v1/orders"), 405)


async def test_request_id_travels_through_both_services(client: httpx.AsyncClient, stack: Stack) -> None:
    request_id = f"trace-{unique_customer()}"
    reply = await client.post("/v1/orders", json=order_body(), headers={"X-Request-ID": request_id})
    assert reply.status_code == 201
    assert reply.headers["x-request-id"] == request_id
    made = (await client.get("/healthz")).headers["x-request-id"]
    assert made
    assert made != request_id
    for service in (stack.order, stack.payment, stack.gateway):
        assert f'"request_id":"{request_id}"' in service.log(), service.module


async def test_health_readiness_metrics_docs(client: httpx.AsyncClient) -> None:
    # An order of its own, so that the counters below have something to count however the
    # module's tests are ordered or picked.
    assert (await client.post("/v1/orders", json=order_body())).status_code == 201
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["services"] == {"order_service": "SERVING", "payment_service": "SERVING"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'http_requests_total{method="POST",route="/v1/orders",status="201"}' in metrics.text
    assert 'grpc_client_calls_total{code="OK",method="CreateOrder"}' in metrics.text
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/orders/{order_id}/refund" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200
