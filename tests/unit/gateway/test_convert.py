from __future__ import annotations

from pydantic import TypeAdapter

from gateway.convert import confirm_url, create_order_request, order_json, payment_json, with_secret
from gateway.schemas import OrderCreate, OrderPublic, PaymentPublic
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from tests.unit.gateway.messages import SECRET, order, payment

URL = "https://shop.example"


def test_a_new_orders_body_becomes_its_request() -> None:
    body = OrderCreate.model_validate(
        {
            "customer_id": "cus_42",
            "currency": "EUR",
            "items": [{"sku": "A", "quantity": 2, "unit_price": 5}, {"sku": "B", "quantity": 1, "unit_price": 0}],
            "payment_method": "pm_card_visa",
        }
    )
    assert create_order_request(body) == order_pb2.CreateOrderRequest(
        customer_id="cus_42",
        currency="EUR",
        items=[order_pb2.LineItem(sku="A", quantity=2, unit_price=5), order_pb2.LineItem(sku="B", quantity=1)],
        payment_method="pm_card_visa",
    )


def test_the_order_document_is_the_documented_one_field_for_field() -> None:
    document = order_json(order(), URL)
    TypeAdapter(OrderPublic).validate_python(document, strict=True)
    assert list(document) == list(OrderPublic.__annotations__)
    assert document["payment"] is not None
    assert list(document["payment"]) == list(PaymentPublic.__annotations__)
    assert document["items"] == [{"sku": "BOOK-42", "quantity": 2, "unit_price": 1299}]
    assert document["created_at"].endswith("Z")


def test_every_status_has_its_api_name() -> None:
    for name, number in order_pb2.OrderStatus.items():
        if number:
            document = order_json(order_pb2.Order(status=number), URL)
            assert document["status"] == name.removeprefix("ORDER_STATUS_").lower()
    for name, value in payment_pb2.PaymentStatus.items():
        if value:
            assert payment_json(payment(value), URL)["status"] == name.removeprefix("PAYMENT_STATUS_").lower()


def test_absent_parts_are_null() -> None:
    document = order_json(order_pb2.Order(id="ord_1", status=order_pb2.ORDER_STATUS_PENDING_PAYMENT), URL)
    assert (document["payment"], document["client_secret"]) == (None, None)
    unpaid = payment_json(payment(payment_pb2.PAYMENT_STATUS_FAILED), URL)
    assert (unpaid["failure_code"], unpaid["next_action"]) == (None, None)


def test_a_payment_waiting_for_the_customer_has_its_next_action() -> None:
    waiting = payment(payment_pb2.PAYMENT_STATUS_REQUIRES_ACTION)
    waiting.next_action.expires_at.FromSeconds(1_900_000_000)
    assert payment_json(waiting, URL)["next_action"] == {
        "type": "scan_qr",
        "confirm_url": f"{URL}/pay/pay_1?client_secret={SECRET}",
        "qr_svg_url": f"{URL}/v1/payments/pay_1/qr.svg?client_secret={SECRET}",
        "expires_at": "2030-03-17T17:46:40.000Z",
    }


def test_the_secret_is_quoted_into_the_url() -> None:
    assert with_secret("https://x/pay/p", "a b&c") == "https://x/pay/p?client_secret=a%20b%26c"
    assert with_secret("https://x/pay/p", "") == "https://x/pay/p"
    assert confirm_url(URL, payment()) == f"{URL}/pay/pay_1?client_secret={SECRET}"
