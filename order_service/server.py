"""The order service's gRPC server, built by one factory for `python -m` and for tests."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1._async import HealthServicer

from common.db import Database
from common.grpc_server import create_grpc_server
from order_service.orders import Orders
from order_service.payments import PaymentClient
from order_service.reconciler import Reconciler
from order_service.servicer import OrderServicer
from order_service.settings import OrderSettings
from order_service.store import OrderStore
from order_service.watch import OrderBus
from shop.order.v1 import order_pb2, order_pb2_grpc

SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name


@dataclass
class OrderServer:
    server: grpc.aio.Server
    health: HealthServicer
    port: int
    reconciler: Reconciler
    payments: PaymentClient
    db: Database
    bus: OrderBus

    async def close(self) -> None:
        await self.reconciler.stop()
        await self.payments.close()
        await self.db.close()


async def create_server(settings: OrderSettings) -> OrderServer:
    db = Database(settings.order_database_url)
    store = OrderStore(db)
    await store.start()
    payments = PaymentClient(settings.payment_service_target)
    bus = OrderBus()
    orders = Orders(store, payments, bus)
    servicer = OrderServicer(orders, settings.order_payment_deadline_s)
    server, health_servicer, port = create_grpc_server(
        [SERVICE_NAME],
        lambda s: order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, s),
        settings.order_service_host,
        settings.order_service_port,
    )
    reconciler = Reconciler(orders, settings.order_reconcile_interval_s, settings.order_payment_deadline_s)
    return OrderServer(server, health_servicer, port, reconciler, payments, db, bus)
