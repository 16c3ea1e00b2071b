"""OrderService: the gRPC surface of the order service. Reads what the wire carries (request,
metadata, deadline), refuses what is malformed, hands the rest to the flows in orders.py — those
that change something once per idempotency key (idempotency.py) — and sends back their answer."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from common.caller import Call, caller_scope
from common.errors import REPLAYED_KEY, InvalidArgument
from common.input_limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, check_identifier
from common.order_status import status_name
from order_service.idempotency import Flow, Idempotency, Resume
from order_service.orders import Orders
from shop.order.v1 import order_pb2 as pb
from shop.order.v1 import order_pb2_grpc
from shop.payment.v1 import payment_pb2

Context = grpc.aio.ServicerContext[Any, Any]
M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)

REPLAYED = ((REPLAYED_KEY, "true"),)


def encode_page_token(order_id: str) -> str:
    return base64.urlsafe_b64encode(order_id.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    try:
        order_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text given to b64decode
        order_id = ""
    if not order_id.startswith("ord_"):
        raise InvalidArgument("invalid page token", violations=[("page_token", "is not a token this API gave")])
    return order_id


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, orders: Orders, idempotency: Idempotency, default_deadline_s: float) -> None:
        self.orders = orders
        self.idempotency = idempotency
        # For a caller that set no deadline: how long the payment service may take.
        self.default_deadline_s = default_deadline_s

    async def CreateOrder(self, request: pb.CreateOrderRequest, context: Context) -> pb.Order:
        # A retry whose first attempt stored the order finishes that order: one order, one charge.
        resume = self.orders.finish_create
        return await self._once(context, "CreateOrder", request, pb.Order, self.orders.create, resume)

    async def CancelOrder(self, request: pb.CancelOrderRequest, context: Context) -> pb.Order:
        check_identifier("order_id", request.order_id)
        return await self._once(context, f"CancelOrder:{request.order_id}", request, pb.Order, self.orders.cancel)

    async def RefundOrder(self, request: pb.RefundOrderRequest, context: Context) -> pb.Order:
        check_identifier("order_id", request.order_id)
        return await self._once(context, f"RefundOrder:{request.order_id}", request, pb.Order, self.orders.refund)

    async def ConfirmPayment(self, request: pb.ConfirmPaymentRequest, context: Context) -> payment_pb2.Payment:
        check_identifier("payment_id", request.payment_id)
        method = f"ConfirmPayment:{request.payment_id}"
        return await self._once(context, method, request, payment_pb2.Payment, self.orders.confirm)

    async def _once(
        self, context: Context, method: str, request: R, answer: type[M], flow: Flow[R, M],
        resume: Resume[M] | None = None,
    ) -> M:  # fmt: skip
        """Run a flow once per idempotency key; a repeat is answered as the first request was,
        marked as replayed."""
        call = Call.of(context, self.default_deadline_s)
        response, replayed = await self.idempotency.run(method, call, request, answer, flow, resume)
        if replayed:
            context.set_trailing_metadata(REPLAYED)
        return response

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.Order:
        check_identifier("order_id", request.order_id)
        return await self.orders.get(request.order_id, caller_scope(context.invocation_metadata()))

    async def ListOrders(self, request: pb.ListOrdersRequest, context: Context) -> pb.ListOrdersResponse:
        caller = caller_scope(context.invocation_metadata())
        size = request.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidArgument(
                "invalid page size", violations=[("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")]
            )
        if request.status and request.status not in pb.OrderStatus.values():
            raise InvalidArgument("invalid status", violations=[("status", "unknown order status")])
        if request.customer_id:
            check_identifier("customer_id", request.customer_id)
        before = decode_page_token(request.page_token) if request.page_token else None
        status = status_name(request.status) if request.status else ""
        # One more than the page: whether there is a next page.
        found = await self.orders.page(caller, request.customer_id, status, size + 1, before)
        page = found[:size]
        token = encode_page_token(page[-1].id) if len(found) > size else ""
        return pb.ListOrdersResponse(orders=page, next_page_token=token)

    async def WatchOrder(self, request: pb.WatchOrderRequest, context: Context) -> AsyncIterator[pb.OrderEvent]:
        check_identifier("order_id", request.order_id)
        after = request.after_version if request.HasField("after_version") else None
        if after is not None and after < 0:
            raise InvalidArgument("invalid version", violations=[("after_version", "must be ≥ 0")])
        async for event in self.orders.watch(request.order_id, after, caller_scope(context.invocation_metadata())):
            yield event
