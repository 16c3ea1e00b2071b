"""The order service's gRPC server, built by one factory for `python -m` and for tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1._async import HealthServicer

from common import authz
from common.db import Database, open_database
from common.db.postgres import PostgresDatabase
from common.grpc_server import create_grpc_server
from common.health_port import HealthPort
from common.migrations import History, upgrade
from common.observed_db import observe
from order_service.changes import LocalChanges, PostgresChanges
from order_service.idempotency import Idempotency
from order_service.orders import Orders
from order_service.payment_client import PaymentClient
from order_service.reconciler import Reconciler
from order_service.servicer import OrderServicer
from order_service.settings import OrderSettings
from order_service.store import OrderStore
from shop.order.v1 import order_pb2, order_pb2_grpc

SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
HISTORY = History(
    service="order_service",
    directory=Path(__file__).parent / "migrations",
    version_table="order_schema_version",
    marker_table="orders",
)


@dataclass
class OrderServer:
    server: grpc.aio.Server
    health: HealthServicer
    port: int
    reconciler: Reconciler
    payments: PaymentClient
    db: Database
    changes: LocalChanges
    # The plaintext health-only port (ORDER_HEALTH_PORT), for probes without a certificate.
    health_port: HealthPort

    async def close(self) -> None:
        await self.health_port.stop()
        await self.reconciler.stop()
        self.changes.close()
        await self.payments.close()
        await self.db.close()


async def migrate(settings: OrderSettings) -> str:
    return await upgrade(HISTORY, settings.order_database_url)


async def create_server(settings: OrderSettings) -> OrderServer:
    await migrate(settings)
    opened = open_database(settings.order_database_url, pool_size=settings.order_database_pool_size)
    await opened.start()
    db = observe(opened)  # timed, and traced inside a trace
    # SQLite is one process: its watchers are woken in-process. PostgreSQL may have many replicas.
    changes: LocalChanges = LocalChanges()
    store = OrderStore(db, changes)
    if isinstance(opened, PostgresDatabase):
        changes = store.changes = PostgresChanges(opened.dsn, store.versions)
    await changes.start()
    tls = settings.grpc_tls
    payments = PaymentClient(settings.payment_service_target, tls)
    orders = Orders(store, payments)
    servicer = OrderServicer(orders, Idempotency(db), settings.order_payment_deadline_s)
    server, health_servicer, port = create_grpc_server(
        [SERVICE_NAME],
        lambda s: order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, s),
        settings.order_service_host,
        settings.order_service_port,
        tls=tls,
        interceptors=authz.interceptors(settings.caller_policy, tls is not None),
    )
    reconciler = Reconciler(orders, settings.order_reconcile_interval_s, settings.order_payment_deadline_s)
    health_port = HealthPort.open(health_servicer, settings.order_service_host, settings.order_health_port)
    return OrderServer(server, health_servicer, port, reconciler, payments, db, changes, health_port)
