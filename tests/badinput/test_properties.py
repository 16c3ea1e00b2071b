"""Property-based tests (hypothesis) of the rules that refuse bad input, and of the money.

The same limits (docs/rest-api.md#input-limits) are enforced twice: by the gateway's pydantic models
for REST callers, and by the order service's `validate_create` for every gRPC caller. Here both see
the same generated orders — valid, at the limits, just past them, and with odd strings — and must
agree: the gateway accepts exactly what the order service accepts, apart from the order total,
which only the order service can check (it is a sum, not a field). Neither may fail any other
way than with its validation error. No test here is timed (`deadline=None`)."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from common.errors import InvalidArgument
from common.input_limits import (
    CURRENCIES,
    IDEMPOTENCY_KEY_RE,
    MAX_ITEMS,
    MAX_ORDER_AMOUNT,
    MAX_QUANTITY,
    MAX_UNIT_PRICE,
    MIN_ORDER_AMOUNT,
)
from common.payment_methods import PAYMENT_METHODS
from gateway.schemas import OrderCreate, RefundCreate
from order_service.domain import order_amount, validate_create
from order_service.servicer import decode_page_token, encode_page_token
from shop.order.v1 import order_pb2 as pb

INT64_MAX = 2**63 - 1
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ID_CHARS = "abcXYZ019_.:-"
# Identifiers: mostly valid, at the length limits, and with the characters that trip regexes
# (a final newline, spaces, non-ASCII, separators that are not allowed).
identifiers = st.one_of(
    st.text(alphabet=_ID_CHARS, min_size=1, max_size=64),
    st.text(alphabet=_ID_CHARS, min_size=63, max_size=66),
    st.text(alphabet=_ID_CHARS, min_size=1, max_size=8).map(lambda s: s + "\n"),
    st.text(max_size=70),
    st.sampled_from(["", " ", "cus 1", "cus/1", "ord_é", "a\x00b", "\n", "x" * 64, "x" * 65]),
)
quantities = st.one_of(st.integers(0, MAX_QUANTITY + 1), st.integers(-(2**63), INT64_MAX))
prices = st.one_of(st.integers(-1, MAX_UNIT_PRICE + 1), st.integers(-(2**63), INT64_MAX))
items = st.fixed_dictionaries({"sku": identifiers, "quantity": quantities, "unit_price": prices})
orders = st.fixed_dictionaries(
    {
        "customer_id": identifiers,
        "currency": st.one_of(st.sampled_from(sorted(CURRENCIES)), st.sampled_from(["eur", "EURO", "XXX", ""])),
        "items": st.one_of(
            st.lists(items, min_size=1, max_size=3),
            st.lists(items, min_size=MAX_ITEMS - 1, max_size=MAX_ITEMS + 1),
            st.just([]),
        ),
        "payment_method": st.one_of(st.sampled_from(sorted(PAYMENT_METHODS)), st.text(max_size=12)),
    }
)


def _proto(body: dict[str, Any]) -> pb.CreateOrderRequest:
    return pb.CreateOrderRequest(
        customer_id=body["customer_id"],
        currency=body["currency"],
        items=[pb.LineItem(**item) for item in body["items"]],
        payment_method=body["payment_method"],
    )


def _only_the_total_is_wrong(body: dict[str, Any]) -> bool:
    total = sum(item["quantity"] * item["unit_price"] for item in body["items"])
    return not MIN_ORDER_AMOUNT <= total <= MAX_ORDER_AMOUNT


@PROPERTY
@given(orders)
def test_gateway_and_order_service_accept_the_same_orders(body: dict[str, Any]) -> None:
    try:
        OrderCreate.model_validate(body)
        gateway_accepts = True
    except ValidationError:
        gateway_accepts = False
    refusal: InvalidArgument | None = None
    try:
        amount = validate_create(_proto(body))
    except InvalidArgument as refused:
        refusal = refused
    service_accepts = refusal is None
    if refusal is not None:
        assert refusal.violations, "a refusal names the fields at fault"
    if service_accepts:
        assert gateway_accepts, f"the order service accepts what the gateway refuses: {body!r}"
        assert MIN_ORDER_AMOUNT <= amount <= MAX_ORDER_AMOUNT
    elif gateway_accepts:
        assert _only_the_total_is_wrong(body), f"the gateway accepts what the order service refuses: {body!r}"


@PROPERTY
@given(orders)
def test_the_gateway_refuses_json_it_cannot_fully_check(body: dict[str, Any]) -> None:
    """Through JSON too (strict mode): never another exception than a validation error."""
    import orjson

    try:
        parsed = OrderCreate.model_validate_json(orjson.dumps(body))
    except ValidationError:
        return
    for item in parsed.items:
        assert 1 <= item.quantity <= MAX_QUANTITY
        assert 0 <= item.unit_price <= MAX_UNIT_PRICE


@PROPERTY
@given(
    st.lists(
        st.tuples(st.integers(1, MAX_QUANTITY), st.integers(0, MAX_UNIT_PRICE)),
        min_size=1,
        max_size=MAX_ITEMS,
    )
)
def test_money_never_overflows_int64(lines: list[tuple[int, int]]) -> None:
    """Every order that passes the per-line limits has an amount that fits the wire's int64, and
    is either accepted with exactly that amount or refused for its total — never an overflow."""
    line_items = [pb.LineItem(sku=f"S{n}", quantity=q, unit_price=p) for n, (q, p) in enumerate(lines)]
    amount = order_amount(line_items)
    assert amount == sum(q * p for q, p in lines)
    assert amount <= MAX_ITEMS * MAX_QUANTITY * MAX_UNIT_PRICE < INT64_MAX
    request = pb.CreateOrderRequest(customer_id="c", currency="EUR", items=line_items, payment_method="pm_card_visa")
    if MIN_ORDER_AMOUNT <= amount <= MAX_ORDER_AMOUNT:
        assert validate_create(request) == amount
        # ...and it survives the wire in every message that carries it.
        assert pb.Order(amount=amount).SerializeToString()
    else:
        with pytest.raises(InvalidArgument):
            validate_create(request)


def test_the_largest_order_times_the_largest_quantity() -> None:
    """The issue's corner: the most a request can carry, item by item, still fits int64 by far."""
    worst = [pb.LineItem(sku=f"S{n}", quantity=MAX_QUANTITY, unit_price=MAX_UNIT_PRICE) for n in range(MAX_ITEMS)]
    assert order_amount(worst) == 10**12
    beyond = [pb.LineItem(sku="S", quantity=INT64_MAX, unit_price=INT64_MAX)]
    with pytest.raises(InvalidArgument):  # the product (about 2^126) is refused, not stored
        validate_create(pb.CreateOrderRequest(customer_id="c", currency="EUR", items=beyond, payment_method="pm_x"))


@PROPERTY
@given(st.one_of(st.none(), st.integers(-(2**64), 2**64), st.floats(), st.booleans(), st.text(max_size=5)))
def test_refund_amount(amount: object) -> None:
    # Only an integer in range is an amount; null is refused (only a missing amount means
    # "the rest", so that an unset variable sent as null does not refund everything).
    try:
        refund = RefundCreate.model_validate({"amount": amount})
    except ValidationError:
        assert type(amount) is not int or not 1 <= amount <= MAX_ORDER_AMOUNT
        return
    assert amount == refund.amount
    assert type(amount) is int
    assert 1 <= amount <= MAX_ORDER_AMOUNT
    assert RefundCreate.model_validate({}).amount is None


@PROPERTY
@given(st.text(max_size=300))
def test_idempotency_keys_are_visible_ascii(key: str) -> None:
    expected = 1 <= len(key) <= 255 and all(0x21 <= ord(c) <= 0x7E for c in key)
    assert bool(IDEMPOTENCY_KEY_RE.match(key)) == expected


@PROPERTY
@given(st.text(max_size=80))
def test_page_tokens_round_trip_and_refuse_anything_else(text: str) -> None:
    order_id = "ord_" + "".join(c for c in text if c.isalnum() and c.isascii())[:26]
    assert decode_page_token(encode_page_token(order_id)) == order_id
    # Anything else is either a token of some order id, or INVALID_ARGUMENT — never a crash.
    for token in (text, base64.urlsafe_b64encode(text.encode()).decode()):
        with contextlib.suppress(InvalidArgument):
            assert decode_page_token(token).startswith("ord_")
