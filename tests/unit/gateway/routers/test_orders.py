from __future__ import annotations

import grpc
import httpx
import pytest

from shop.order.v1 import order_pb2
from tests.unit.gateway.fake_services import Answers
from tests.unit.gateway.messages import order

BODY = {
    "customer_id": "cus_42",
    "currency": "EUR",
    "items": [{"sku": "BOOK-42", "quantity": 2, "unit_price": 1299}],
    "payment_method": "pm_card_visa",
}


async def test_create_sends_the_order_for_the_keys_account_and_answers_201(
    client: httpx.AsyncClient, answers: Answers
) -> None:
    answers.messages["CreateOrder"] = order()
    reply = await client.post("/v1/orders", json=BODY, headers={"Idempotency-Key": "key-1"})
    assert reply.status_code == 201
    assert reply.headers["location"] == "/v1/orders/ord_1"
    assert reply.headers["etag"] == '"2"'
    assert "idempotent-replayed" not in reply.headers
    assert reply.json()["status"] == "paid"
    asked = answers.last("CreateOrder")
    assert asked.message == order_pb2.CreateOrderRequest(
        customer_id="cus_42",
        currency="EUR",
        items=[order_pb2.LineItem(sku="BOOK-42", quantity=2, unit_price=1299)],
        payment_method="pm_card_visa",
    )
    assert asked.metadata["x-account-id"] == "acct_shop"
    assert asked.metadata["idempotency-key"] == "key-1"


async def test_a_replayed_answer_says_so(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.messages["CreateOrder"] = order()
    answers.replayed = True
    reply = await client.post("/v1/orders", json=BODY, headers={"Idempotency-Key": "key-1"})
    assert reply.headers["idempotent-replayed"] == "true"


async def test_an_invalid_body_never_reaches_the_service(client: httpx.AsyncClient, answers: Answers) -> None:
    reply = await client.post("/v1/orders", json={**BODY, "items": []})
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["field"] == "items"
    assert answers.asked == []


async def test_an_invalid_idempotency_key_is_400(client: httpx.AsyncClient, answers: Answers) -> None:
    reply = await client.post("/v1/orders", json=BODY, headers={"Idempotency-Key": "with space"})
    assert reply.status_code == 400
    assert reply.json()["errors"] == [{"field": "Idempotency-Key", "message": "must be 1-255 visible ASCII characters"}]


async def test_read_answers_the_order_with_its_version_as_etag(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.messages["GetOrder"] = order(version=3)
    reply = await client.get("/v1/orders/ord_1")
    assert reply.status_code == 200
    assert reply.headers["etag"] == '"3"'
    assert answers.last("GetOrder").message == order_pb2.GetOrderRequest(order_id="ord_1")


async def test_read_with_the_current_version_is_304(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.messages["GetOrder"] = order(version=3)
    reply = await client.get("/v1/orders/ord_1", headers={"If-None-Match": '"3"'})
    assert reply.status_code == 304
    assert reply.headers["etag"] == '"3"'


async def test_long_polling_from_ahead_of_the_order_is_400(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.messages["GetOrder"] = order(version=3)
    reply = await client.get("/v1/orders/ord_1", headers={"If-None-Match": '"9"', "Prefer": "wait=5"})
    assert reply.status_code == 400


@pytest.mark.parametrize("order_id", ["has-dash", "x" * 65])
async def test_an_invalid_id_never_reaches_the_service(
    client: httpx.AsyncClient, answers: Answers, order_id: str
) -> None:
    assert (await client.get(f"/v1/orders/{order_id}")).status_code == 400
    assert answers.asked == []


async def test_a_service_error_is_answered_as_a_problem(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.errors["GetOrder"] = grpc.StatusCode.NOT_FOUND
    reply = await client.get("/v1/orders/ord_1")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"


async def test_list_passes_the_filters_and_the_page(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.messages["ListOrders"] = order_pb2.ListOrdersResponse(orders=[order()], next_page_token="next")
    reply = await client.get("/v1/orders", params={"status": "partially_refunded", "page_size": 5, "page_token": "p"})
    assert reply.status_code == 200
    assert [o["id"] for o in reply.json()["orders"]] == ["ord_1"]
    assert reply.json()["next_page_token"] == "next"
    assert answers.last("ListOrders").message == order_pb2.ListOrdersRequest(
        status=order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED, page_size=5, page_token="p"
    )


async def test_list_refuses_an_unknown_status(client: httpx.AsyncClient, answers: Answers) -> None:
    assert (await client.get("/v1/orders", params={"status": "lost"})).status_code == 400


async def test_cancel(client: httpx.AsyncClient, answers: Answers) -> None:
    answers.messages["CancelOrder"] = order(order_pb2.ORDER_STATUS_CANCELED, version=3)
    reply = await client.post("/v1/orders/ord_1/cancel", json={})
    assert (reply.status_code, reply.json()["status"]) == (200, "canceled")
    assert answers.last("CancelOrder").message == order_pb2.CancelOrderRequest(order_id="ord_1")


@pytest.mark.parametrize(("body", "amount"), [({}, None), ({"amount": 100}, 100)])
async def test_refund_some_or_everything_left(
    client: httpx.AsyncClient, answers: Answers, body: dict[str, int], amount: int | None
) -> None:
    answers.messages["RefundOrder"] = order(order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED, version=3)
    assert (await client.post("/v1/orders/ord_1/refund", json=body)).status_code == 200
    message = answers.last("RefundOrder").message
    assert isinstance(message, order_pb2.RefundOrderRequest)
    assert (message.amount if message.HasField("amount") else None) == amount


async def test_refund_refuses_null(client: httpx.AsyncClient, answers: Answers) -> None:
    assert (await client.post("/v1/orders/ord_1/refund", json={"amount": None})).status_code == 400
    assert answers.asked == []
