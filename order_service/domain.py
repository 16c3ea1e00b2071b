"""The order rules: input limits, the amount, the state machine of docs/rest-api.md#order-statuses,
and how a payment's state moves its order."""

from __future__ import annotations

import logging

from common.errors import FailedPrecondition, InvalidArgument, OutOfRange
from common.input_limits import (
    CURRENCIES,
    CURRENCY_RULE,
    IDENTIFIER_RE,
    IDENTIFIER_RULE,
    MAX_ITEMS,
    MAX_ORDER_AMOUNT,
    MAX_QUANTITY,
    MAX_UNIT_PRICE,
    MIN_ORDER_AMOUNT,
    PAYMENT_METHOD_RULE,
)
from common.order_status import S, Status, status_name
from common.payment_methods import PAYMENT_METHODS
from common.timestamps import now_us, timestamp_us, us_of
from shop.order.v1 import order_pb2 as pb
from shop.payment.v1 import payment_pb2

log = logging.getLogger(__name__)

_TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.ORDER_STATUS_PENDING_PAYMENT: frozenset(
        {S.ORDER_STATUS_PAID, S.ORDER_STATUS_PAYMENT_FAILED, S.ORDER_STATUS_REQUIRES_ACTION, S.ORDER_STATUS_CANCELED}
    ),
    S.ORDER_STATUS_REQUIRES_ACTION: frozenset(
        {S.ORDER_STATUS_PAID, S.ORDER_STATUS_PAYMENT_FAILED, S.ORDER_STATUS_CANCELED}
    ),
    S.ORDER_STATUS_PAID: frozenset({S.ORDER_STATUS_PARTIALLY_REFUNDED, S.ORDER_STATUS_REFUNDED}),
    S.ORDER_STATUS_PARTIALLY_REFUNDED: frozenset({S.ORDER_STATUS_PARTIALLY_REFUNDED, S.ORDER_STATUS_REFUNDED}),
}

_FROM_PAYMENT: dict[payment_pb2.PaymentStatus.ValueType, Status] = {
    payment_pb2.PAYMENT_STATUS_PROCESSING: S.ORDER_STATUS_PENDING_PAYMENT,
    payment_pb2.PAYMENT_STATUS_REQUIRES_ACTION: S.ORDER_STATUS_REQUIRES_ACTION,
    payment_pb2.PAYMENT_STATUS_SUCCEEDED: S.ORDER_STATUS_PAID,
    payment_pb2.PAYMENT_STATUS_FAILED: S.ORDER_STATUS_PAYMENT_FAILED,
    payment_pb2.PAYMENT_STATUS_CANCELED: S.ORDER_STATUS_CANCELED,
    payment_pb2.PAYMENT_STATUS_PARTIALLY_REFUNDED: S.ORDER_STATUS_PARTIALLY_REFUNDED,
    payment_pb2.PAYMENT_STATUS_REFUNDED: S.ORDER_STATUS_REFUNDED,
}


def can_move(current: Status, new: Status) -> bool:
    return new in _TRANSITIONS.get(current, frozenset())


def status_for_payment(payment: payment_pb2.Payment) -> Status:
    return _FROM_PAYMENT[payment.status]


def order_amount(items: list[pb.LineItem]) -> int:
    # Python integers do not overflow; the limits keep the sum far inside int64 anyway
    # (100 items x 1,000 x 10,000,000 = 10^12).
    return sum(item.quantity * item.unit_price for item in items)


def validate_create(request: pb.CreateOrderRequest) -> int:
    """Check a CreateOrderRequest against the limits of docs/rest-api.md#input-limits; return its
    amount."""
    violations: list[tuple[str, str]] = []
    if not IDENTIFIER_RE.match(request.customer_id):
        violations.append(("customer_id", IDENTIFIER_RULE))
    if request.currency not in CURRENCIES:
        violations.append(("currency", CURRENCY_RULE))
    if request.payment_method not in PAYMENT_METHODS:
        violations.append(("payment_method", PAYMENT_METHOD_RULE))
    if not 1 <= len(request.items) <= MAX_ITEMS:
        violations.append(("items", f"must hold 1 to {MAX_ITEMS} items"))
    for index, item in enumerate(request.items[:MAX_ITEMS]):
        if not IDENTIFIER_RE.match(item.sku):
            violations.append((f"items.{index}.sku", IDENTIFIER_RULE))
        if not 1 <= item.quantity <= MAX_QUANTITY:
            violations.append((f"items.{index}.quantity", f"must be between 1 and {MAX_QUANTITY}"))
        if not 0 <= item.unit_price <= MAX_UNIT_PRICE:
            violations.append((f"items.{index}.unit_price", f"must be between 0 and {MAX_UNIT_PRICE}"))
    amount = order_amount(list(request.items))
    if not violations and not MIN_ORDER_AMOUNT <= amount <= MAX_ORDER_AMOUNT:
        violations.append(("items", f"the order total must be between {MIN_ORDER_AMOUNT} and {MAX_ORDER_AMOUNT}"))
    if violations:
        raise InvalidArgument("invalid order", violations=violations)
    return amount


def validate_refund(order: pb.Order, amount: int | None) -> None:
    """Only a paid order can be refunded, and no more than is left of it (None: all that is left)."""
    if order.status not in (S.ORDER_STATUS_PAID, S.ORDER_STATUS_PARTIALLY_REFUNDED):
        raise FailedPrecondition(f"order {order.id} is {status_name(order.status)}; only a paid order can be refunded")
    left = order.amount - order.amount_refunded
    if amount is not None and amount > left:
        raise OutOfRange(
            f"refund amount {amount} is above the {left} left to refund",
            violations=[("amount", f"must be ≤ {left}")],
        )


def apply_payment(order: pb.Order, payment: payment_pb2.Payment) -> bool:
    """Take the payment's state onto the order if it is newer; True if the order changed."""
    if order.HasField("payment") and payment.version <= order.payment.version:
        return False
    status = status_for_payment(payment)
    if status != order.status and not can_move(order.status, status):
        log.warning(
            "payment state does not fit the order",
            extra={"order_id": order.id, "order_status": status_name(order.status), "payment_status": payment.status},
        )
        return False
    order.status = status
    order.payment.CopyFrom(payment)
    order.amount_refunded = payment.amount_refunded
    order.version += 1
    order.updated_at.CopyFrom(timestamp_us(now_us()))
    return True


# The check that stands for a charge in flight, and the one for the end of a confirmation window
# (the reconciler's work, reconciler.py).
CHARGE_CHECK = "charge"
EXPIRY_CHECK = "expiry"
# An expiry check is never due sooner than this: a payment service whose clock is behind ours
# answers "not yet" — ask again a little later.
EXPIRY_RETRY_US = 1_000_000


def expiry_check(was: int, order: pb.Order) -> tuple[int | None, bool]:
    """The expiry check of an order that was `was` and is now `order`: when it falls due, while the
    payment waits for the customer (None: it does not); and whether a check left from when it did
    is to be settled."""
    if order.status != pb.ORDER_STATUS_REQUIRES_ACTION or not order.payment.HasField("next_action"):
        return None, was == pb.ORDER_STATUS_REQUIRES_ACTION
    return max(us_of(order.payment.next_action.expires_at), now_us() + EXPIRY_RETRY_US), False
