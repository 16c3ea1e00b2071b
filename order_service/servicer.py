"""OrderService: the gRPC surface of the order service. Reads what the wire carries (request,
metadata, deadline), hands it to the flows in orders.py, and sends back their answer."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import grpc

from common.caller import CallerScope, caller_scope
from common.errors import REPLAYED_KEY, InvalidArgument
from common.input_limits import (
    DEFAULT_PAGE_SIZE,
    IDEMPOTENCY_KEY_RE,
    IDEMPOTENCY_KEY_RULE,
    MAX_PAGE_SIZE,
    check_identifier,
)
from order_service.domain import status_name
from order_service.orders import Orders
from order_service.watch import watch_order
from shop.order.v1 import order_pb2 as pb
from shop.order.v1 import order_pb2_grpc
from shop.payment.v1 import payment_pb2

Context = grpc.aio.ServicerContext[Any, Any]

REPLAYED = ((REPLAYED_KEY, "true"),)


def _idempotency_key(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "idempotency-key":
            if not isinstance(value, str) or not IDEMPOTENCY_KEY_RE.match(value):
                raise InvalidArgument(
                    "invalid idempotency key",
                    violations=[("Idempotency-Key", IDEMPOTENCY_KEY_RULE)],
                )
            return value
    return None


def _scope(context: Context) -> CallerScope:
    """Whom the call acts for (common/caller.py): an account, a client secret, or nobody (internal)."""
    return caller_scope(context.invocation_metadata())


def _encode_token(order_id: str) -> str:
    return base64.urlsafe_b64encode(order_id.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        order_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text given to b64decode
        order_id = ""
    if not order_id.startswith("ord_"):
        raise InvalidArgument("invalid page token", violations=[("page_token", "is not a token this API gave")])
    return order_id


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, orders: Orders, default_deadline_s: float) -> None:
        self.orders = orders
        self.default_deadline_s = default_deadline_s

    def _timeout(self, context: Context) -> float:
        """What is left of the caller's deadline, passed on to the payment service."""
        remaining = context.time_remaining()
        return self.default_deadline_s if remaining is None else max(remaining, 0.001)

    @staticmethod
    def _answer(context: Context, replayed: bool) -> None:
        if replayed:
            context.set_trailing_metadata(REPLAYED)

    async def CreateOrder(self, request: pb.CreateOrderRequest, context: Context) -> pb.Order:
        key = _idempotency_key(context)
        order, replayed = await self.orders.create(request, key, self._timeout(context), _scope(context))
        self._answer(context, replayed)
        return order

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.Order:
        check_identifier("order_id", request.order_id)
        return await self.orders.get(request.order_id, _scope(context))

    async def ListOrders(self, request: pb.ListOrdersRequest, context: Context) -> pb.ListOrdersResponse:
        scope = _scope(context)
        scope.require_account("list orders")
        size = request.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidArgument(
                "invalid page size", violations=[("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")]
            )
        if request.status and request.status not in pb.OrderStatus.values():
            raise InvalidArgument("invalid status", violations=[("status", "unknown order status")])
        if request.customer_id:
            check_identifier("customer_id", request.customer_id)
        before = _decode_token(request.page_token) if request.page_token else None
        status = status_name(request.status) if request.status else ""
        found = await self.orders.reads.page(scope.account_id, request.customer_id, status, size + 1, before)
        page = found[:size]
        token = _encode_token(page[-1].id) if len(found) > size else ""
        return pb.ListOrdersResponse(orders=page, next_page_token=token)

    async def CancelOrder(self, request: pb.CancelOrderRequest, context: Context) -> pb.Order:
        check_identifier("order_id", request.order_id)
        key = _idempotency_key(context)
        order, replayed = await self.orders.cancel(request, key, self._timeout(context), _scope(context))
        self._answer(context, replayed)
        return order

    async def RefundOrder(self, request: pb.RefundOrderRequest, context: Context) -> pb.Order:
        check_identifier("order_id", request.order_id)
        key = _idempotency_key(context)
        order, replayed = await self.orders.refund(request, key, self._timeout(context), _scope(context))
        self._answer(context, replayed)
        return order

    async def ConfirmPayment(self, request: pb.ConfirmPaymentRequest, context: Context) -> payment_pb2.Payment:
        check_identifier("payment_id", request.payment_id)
        key = _idempotency_key(context)
        payment, replayed = await self.orders.confirm(request, key, self._timeout(context), _scope(context))
        self._answer(context, replayed)
        return payment

    async def WatchOrder(self, request: pb.WatchOrderRequest, context: Context) -> AsyncIterator[pb.OrderEvent]:
        check_identifier("order_id", request.order_id)
        after = request.after_version if request.HasField("after_version") else None
        if after is not None and after < 0:
            raise InvalidArgument("invalid version", violations=[("after_version", "must be ≥ 0")])
        scope = _scope(context)
        async for event in watch_order(self.orders.reads, self.orders.changes, request.order_id, after, scope):
            yield event
