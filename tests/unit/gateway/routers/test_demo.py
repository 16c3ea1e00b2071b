from __future__ import annotations

import grpc
import httpx

from shop.order.v1 import order_pb2
from tests.unit.gateway.fake_services import Answers
from tests.unit.gateway.messages import SECRET, order

BODY = {
    "customer_id": "cus_42",
    "currency": "EUR",
    "items": [{"sku": "BOOK-42", "quantity": 1, "unit_price": 100}],
    "payment_method": "pm_card_visa",
}


async def test_the_demo_page_creates_for_the_demo_account(anonymous: httpx.AsyncClient, answers: Answers) -> None:
    answers.messages["CreateOrder"] = order()
    reply = await anonymous.post("/demo/orders", json=BODY)
    assert reply.status_code == 201
    assert answers.last("CreateOrder").metadata["x-account-id"] == "acct_demo"


async def test_a_change_needs_the_orders_secret_then_acts_for_the_demo_account(
    anonymous: httpx.AsyncClient, answers: Answers
) -> None:
    answers.messages["GetOrder"] = order()
    answers.messages["RefundOrder"] = order(order_pb2.ORDER_STATUS_REFUNDED, version=3)
    reply = await anonymous.post("/demo/orders/ord_1/refund", params={"client_secret": SECRET}, json={})
    assert reply.status_code == 200
    assert answers.last("GetOrder").metadata["x-client-secret"] == SECRET
    assert answers.last("RefundOrder").metadata["x-account-id"] == "acct_demo"


async def test_without_the_secret_nothing_changes(anonymous: httpx.AsyncClient, answers: Answers) -> None:
    assert (await anonymous.post("/demo/orders/ord_1/cancel", json={})).status_code == 401
    answers.errors["GetOrder"] = grpc.StatusCode.NOT_FOUND
    reply = await anonymous.post("/demo/orders/ord_1/cancel", params={"client_secret": SECRET}, json={})
    assert reply.status_code == 404
    assert [asked.method for asked in answers.asked] == ["GetOrder"]
