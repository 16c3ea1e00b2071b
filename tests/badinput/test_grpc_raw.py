"""Raw gRPC callers — not the gateway — sending what no well-behaved client sends: values out of
range, empty requests and ids, strings of 100 KB, messages over the 4 MiB limit, bytes that are
not protobuf, and strings that are not UTF-8 (which a protobuf library cannot even build, so
they are written byte by byte). Each must be refused with INVALID_ARGUMENT (a bad value) or
RESOURCE_EXHAUSTED (too big), nothing may be written, and both services must stay up."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpc_client import MAX_MESSAGE_BYTES
from shop.order.v1 import order_pb2 as opb
from shop.payment.v1 import payment_pb2 as ppb
from tests.artifacts import record
from tests.harness import Stack

ORDER = "/shop.order.v1.OrderService/"
PAYMENT = "/shop.payment.v1.PaymentService/"
BAD = (grpc.StatusCode.INVALID_ARGUMENT,)
TOO_BIG = (grpc.StatusCode.RESOURCE_EXHAUSTED,)
REFUND_AMOUNT = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE)  # docs/rest-api.md#cancel-and-refund
INT64_MAX = 2**63 - 1
HUGE = "x" * (MAX_MESSAGE_BYTES + 1024)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2), written by hand."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


NOT_UTF8 = b"\xff\xfe\xc3\x28"
NOT_PROTOBUF = b"\xff\xff\xff\xff\xff\xff"
TRUNCATED = b"\x0a\x40cus_"  # says 64 bytes follow, gives 4


def _item(quantity: int, unit_price: int = 100) -> opb.LineItem:
    return opb.LineItem(sku="SKU", quantity=quantity, unit_price=unit_price)


def _create(**change: object) -> opb.CreateOrderRequest:
    fields: dict[str, object] = {
        "customer_id": "cus_raw",
        "currency": "EUR",
        "items": [_item(1)],
        "payment_method": "pm_card_visa",
    }
    fields.update(change)
    return opb.CreateOrderRequest(**fields)  # type: ignore[arg-type]


def _charge(**change: object) -> ppb.ChargeRequest:
    fields: dict[str, object] = {
        "order_id": "ord_raw",
        "amount": 100,
        "currency": "EUR",
        "payment_method": "pm_card_visa",
        "idempotency_key": "raw-charge",
    }
    fields.update(change)
    return ppb.ChargeRequest(**fields)  # type: ignore[arg-type]


Case = tuple[str, str, bytes | Message, tuple[grpc.StatusCode, ...]]


def _cases(payment_id: str) -> list[Case]:
    """(name, full method, request, accepted codes)."""
    cases: list[Case] = [
        # CreateOrder: out of range, empty, huge, not UTF-8.
        ("create: empty request", ORDER + "CreateOrder", opb.CreateOrderRequest(), BAD),
        ("create: quantity 0", ORDER + "CreateOrder", _create(items=[_item(0)]), BAD),
        ("create: quantity -1", ORDER + "CreateOrder", _create(items=[_item(-1)]), BAD),
        ("create: quantity int64 max", ORDER + "CreateOrder", _create(items=[_item(INT64_MAX)]), BAD),
        ("create: price int64 max", ORDER + "CreateOrder", _create(items=[_item(1, INT64_MAX)]), BAD),
        ("create: price int64 min", ORDER + "CreateOrder", _create(items=[_item(1, -(2**63))]), BAD),
        ("create: 1000 x 10^7 x 100 items", ORDER + "CreateOrder", _create(items=[_item(1000, 10**7)] * 100), BAD),
        ("create: 101 items", ORDER + "CreateOrder", _create(items=[_item(1)] * 101), BAD),
        ("create: 10,000 items", ORDER + "CreateOrder", _create(items=[_item(1)] * 10_000), BAD),
        ("create: total 0", ORDER + "CreateOrder", _create(items=[_item(5, 0)]), BAD),
        ("create: empty sku", ORDER + "CreateOrder", _create(items=[opb.LineItem(sku="", quantity=1)]), BAD),
        ("create: 100 KB customer_id", ORDER + "CreateOrder", _create(customer_id="c" * 100_000), BAD),
        ("create: customer_id with newline", ORDER + "CreateOrder", _create(customer_id="cus_1\n"), BAD),
        ("create: NUL in customer_id", ORDER + "CreateOrder", _create(customer_id="cus\x00"), BAD),
        ("create: lower-case currency", ORDER + "CreateOrder", _create(currency="eur"), BAD),
        ("create: unknown payment method", ORDER + "CreateOrder", _create(payment_method="pm_free_money"), BAD),
        ("create: over 4 MiB", ORDER + "CreateOrder", _create(customer_id=HUGE), TOO_BIG),
        ("create: customer_id not UTF-8", ORDER + "CreateOrder", _field(1, NOT_UTF8), BAD),
        ("create: sku not UTF-8", ORDER + "CreateOrder", _field(3, _field(1, NOT_UTF8)), BAD),
        ("create: not protobuf", ORDER + "CreateOrder", NOT_PROTOBUF, BAD),
        ("create: truncated", ORDER + "CreateOrder", TRUNCATED, BAD),
        # The other order methods.
        ("get: empty id", ORDER + "GetOrder", opb.GetOrderRequest(), BAD),
        ("get: 100 KB id", ORDER + "GetOrder", opb.GetOrderRequest(order_id="o" * 100_000), BAD),
        ("get: id not UTF-8", ORDER + "GetOrder", _field(1, NOT_UTF8), BAD),
        ("get: over 4 MiB", ORDER + "GetOrder", opb.GetOrderRequest(order_id=HUGE), TOO_BIG),
        ("list: page_size -1", ORDER + "ListOrders", opb.ListOrdersRequest(page_size=-1), BAD),
        ("list: page_size 101", ORDER + "ListOrders", opb.ListOrdersRequest(page_size=101), BAD),
        ("list: status 99", ORDER + "ListOrders", opb.ListOrdersRequest(status=99), BAD),  # type: ignore[arg-type]
        ("list: page_token garbage", ORDER + "ListOrders", opb.ListOrdersRequest(page_token="ê?!"), BAD),
        ("list: 100 KB customer_id", ORDER + "ListOrders", opb.ListOrdersRequest(customer_id="c" * 100_000), BAD),
        ("cancel: empty id", ORDER + "CancelOrder", opb.CancelOrderRequest(), BAD),
        ("refund: empty id", ORDER + "RefundOrder", opb.RefundOrderRequest(), BAD),
        ("refund: amount 0", ORDER + "RefundOrder", opb.RefundOrderRequest(order_id="ord_x", amount=0), BAD),
        ("refund: amount -1", ORDER + "RefundOrder", opb.RefundOrderRequest(order_id="ord_x", amount=-1), BAD),
        ("confirm: empty payment id", ORDER + "ConfirmPayment", opb.ConfirmPaymentRequest(), BAD),
        ("watch: empty id", ORDER + "WatchOrder", opb.WatchOrderRequest(), BAD),
        ("watch: after_version -1", ORDER + "WatchOrder", opb.WatchOrderRequest(order_id="o", after_version=-1), BAD),
        ("watch: not protobuf", ORDER + "WatchOrder", NOT_PROTOBUF, BAD),
        # PaymentService.
        ("charge: empty request", PAYMENT + "Charge", ppb.ChargeRequest(), BAD),
        ("charge: amount 0", PAYMENT + "Charge", _charge(amount=0), BAD),
        ("charge: amount -1", PAYMENT + "Charge", _charge(amount=-1), BAD),
        ("charge: amount int64 max", PAYMENT + "Charge", _charge(amount=INT64_MAX), BAD),
        ("charge: amount above the order limit", PAYMENT + "Charge", _charge(amount=100_000_001), BAD),
        ("charge: empty key", PAYMENT + "Charge", _charge(idempotency_key=""), BAD),
        ("charge: 256-character key", PAYMENT + "Charge", _charge(idempotency_key="k" * 256), BAD),
        ("charge: empty order id", PAYMENT + "Charge", _charge(order_id=""), BAD),
        ("charge: unknown currency", PAYMENT + "Charge", _charge(currency="XYZ"), BAD),
        ("charge: over 4 MiB", PAYMENT + "Charge", _charge(order_id=HUGE), TOO_BIG),
        ("charge: order id not UTF-8", PAYMENT + "Charge", _field(1, NOT_UTF8), BAD),
        ("charge: not protobuf", PAYMENT + "Charge", NOT_PROTOBUF, BAD),
        ("get payment: empty id", PAYMENT + "GetPayment", ppb.GetPaymentRequest(), BAD),
        ("get payment: 100 KB id", PAYMENT + "GetPayment", ppb.GetPaymentRequest(payment_id="p" * 100_000), BAD),
        ("refund payment: empty key", PAYMENT + "Refund", ppb.RefundRequest(payment_id=payment_id), BAD),
        ("refund payment: amount -5", PAYMENT + "Refund",
         ppb.RefundRequest(payment_id=payment_id, amount=-5, idempotency_key="raw-r1"), REFUND_AMOUNT),
        ("refund payment: amount int64 max", PAYMENT + "Refund",
         ppb.RefundRequest(payment_id=payment_id, amount=INT64_MAX, idempotency_key="raw-r2"), REFUND_AMOUNT),
        ("cancel payment: empty id", PAYMENT + "CancelPayment", ppb.CancelPaymentRequest(), BAD),
        ("confirm payment: empty id", PAYMENT + "ConfirmPayment", ppb.ConfirmPaymentRequest(), BAD),
    ]  # fmt: skip
    return cases


def _counts(stack: Stack) -> dict[str, int]:
    counts = {}
    for db, tables in (
        ("orders.db", ("orders", "order_events", "idempotency_keys")),
        ("payments.db", ("payments", "refunds")),
    ):
        with sqlite3.connect(f"file:{stack.workdir / db}?mode=ro", uri=True) as conn:
            for table in tables:
                counts[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    return counts


def _identity(data: bytes) -> bytes:
    return data


async def _call(channel: grpc.aio.Channel, method: str, request: bytes | Message) -> grpc.StatusCode:
    payload = request if isinstance(request, bytes) else request.SerializeToString()
    try:
        if method.endswith("WatchOrder"):
            call = channel.unary_stream(method, request_serializer=_identity, response_deserializer=_identity)
            async for _ in call(payload, timeout=10):
                pass
        else:
            await channel.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)(
                payload, timeout=10
            )
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def _serving(target: str) -> bool:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def test_raw_grpc_callers_are_refused_and_change_nothing(bad_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=bad_stack.url, headers=bad_stack.headers, timeout=30) as http:
        body = {"customer_id": "cus_raw", "currency": "EUR", "items": [{"sku": "S", "quantity": 1, "unit_price": 900}],
                "payment_method": "pm_card_visa"}  # fmt: skip
        paid = (await http.post("/v1/orders", json=body)).json()
    before = _counts(bad_stack)
    # No client-side limit: the servers' own limits are what is tested.
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    seen: Counter[str] = Counter()
    wrong: list[str] = []
    cases = _cases(paid["payment"]["id"])
    async with (
        grpc.aio.insecure_channel(bad_stack.order_target, options=options) as orders,
        grpc.aio.insecure_channel(bad_stack.payment_target, options=options) as payments,
    ):
        for name, method, request, accepted in cases:
            code = await _call(orders if method.startswith(ORDER) else payments, method, request)
            seen[code.name] += 1
            if code not in accepted:
                wrong.append(f"{name}: {code.name}, expected {' or '.join(c.name for c in accepted)}")
    after = _counts(bad_stack)
    up = {name: await _serving(target) for name, target in
          (("order_service", bad_stack.order_target), ("payment_service", bad_stack.payment_target))}  # fmt: skip
    record(
        "badinput-report",
        "raw gRPC",
        {
            "cases": len(cases),
            "codes": dict(seen),
            "wrong": wrong,
            "rows_before": before,
            "rows_after": after,
            "serving_after": up,
        },
    )
    assert not wrong, "\n".join(wrong)
    assert after == before, "a refused call changed the databases"
    assert all(up.values()), up


@pytest.mark.parametrize("target", ["order", "payment"])
async def test_a_flood_of_oversized_messages_leaves_the_service_up(bad_stack: Stack, target: str) -> None:
    """Fifty 5 MiB messages at once: each refused, the service answers the next normal call."""
    address = bad_stack.order_target if target == "order" else bad_stack.payment_target
    method = ORDER + "GetOrder" if target == "order" else PAYMENT + "GetPayment"
    big = opb.GetOrderRequest(order_id="o" * (5 * 1024 * 1024))
    options = [("grpc.max_send_message_length", -1)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        codes = await asyncio.gather(*(_call(channel, method, big) for _ in range(50)))
    assert set(codes) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert await _serving(address)
