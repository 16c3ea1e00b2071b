"""A stand-in for the order service's WatchOrder, for the hub's unit tests: each call is a
stream the test feeds (`push`), breaks (`fail`) or ends (`end`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from shop.order.v1 import order_pb2

S = order_pb2.OrderStatus


def order(
    version: int, status: order_pb2.OrderStatus.ValueType = S.ORDER_STATUS_REQUIRES_ACTION, order_id: str = "ord_1"
) -> order_pb2.Order:
    return order_pb2.Order(id=order_id, customer_id="cus_1", status=status, currency="EUR", amount=100, version=version)


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), code.name, debug_error_string=None)


class FakeCall:
    def __init__(self, request: order_pb2.WatchOrderRequest, kwargs: dict[str, Any]) -> None:
        self.request = request
        self.kwargs = kwargs
        self.cancelled = False
        self._items: asyncio.Queue[order_pb2.OrderEvent | Exception | None] = asyncio.Queue()

    def push(self, *orders: order_pb2.Order) -> None:
        for item in orders:
            self._items.put_nowait(order_pb2.OrderEvent(type="order.updated", version=item.version, order=item))

    def fail(self, code: grpc.StatusCode) -> None:
        self._items.put_nowait(rpc_error(code))

    def end(self) -> None:
        self._items.put_nowait(None)

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    def __aiter__(self) -> AsyncIterator[order_pb2.OrderEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[order_pb2.OrderEvent]:
        while (item := await self._items.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item


class FakeOrders:
    """Has the methods of OrderServiceAsyncStub that the hub uses."""

    def __init__(self) -> None:
        self.calls: list[FakeCall] = []
        self.opened = asyncio.Event()
        self.current: order_pb2.Order | None = None  # what GetOrder answers

    async def GetOrder(self, request: order_pb2.GetOrderRequest, **kwargs: Any) -> order_pb2.Order:
        if self.current is None:
            raise rpc_error(grpc.StatusCode.NOT_FOUND)
        return self.current

    def WatchOrder(self, request: order_pb2.WatchOrderRequest, **kwargs: Any) -> FakeCall:
        call = FakeCall(request, kwargs)
        self.calls.append(call)
        self.opened.set()
        return call

    async def next_call(self, count: int) -> FakeCall:
        """Until the `count`-th call has been made; returns it."""
        async with asyncio.timeout(5):
            while len(self.calls) < count:
                self.opened.clear()
                await self.opened.wait()
        return self.calls[count - 1]
