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
from order_service.event_service import EventServicer
from order_service.events import Feed
from order_service.orders import Orders
from order_service.payments import PaymentClient
from order_service.reconciler import Reconciler
from order_service.servicer import OrderServicer
from order_service.settings import OrderSettings
from order_service.store import OrderReads
from order_service.webhooks.endpoints import Endpoints
from order_service.webhooks.service import WebhookServicer
from order_service.webhooks.worker import DeliveryWorker
from shop.order.v1 import events_pb2, events_pb2_grpc, order_pb2, order_pb2_grpc

SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
# The events feed and webhooks (docs/webhooks.md), served beside OrderService.
EVENT_SERVICE_NAMES = [
    events_pb2.DESCRIPTOR.services_by_name[name].full_name for name in ("EventService", "WebhookService")
]
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
    # Sends webhooks (order_service/webhooks/worker.py); started beside the reconciler.
    deliveries: DeliveryWorker

    async def close(self) -> None:
        await self.health_port.stop()
        await self.reconciler.stop()
        await self.deliveries.stop()
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
    changes = (
        PostgresChanges(opened.dsn, OrderReads(db).versions) if isinstance(opened, PostgresDatabase) else LocalChanges()
    )
    await changes.start()
    tls = settings.grpc_tls
    payments = PaymentClient(settings.payment_service_target, tls)
    orders = Orders(db, payments, changes)
    servicer = OrderServicer(orders, settings.order_payment_deadline_s)
    event_servicer = EventServicer(Feed(db), changes)
    endpoints = Endpoints(db, settings.webhook_allow_private_networks, settings.webhook_secret_overlap_s)
    webhook_servicer = WebhookServicer(endpoints)

    def register(s: grpc.aio.Server) -> None:
        order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, s)
        events_pb2_grpc.add_EventServiceServicer_to_server(event_servicer, s)
        events_pb2_grpc.add_WebhookServiceServicer_to_server(webhook_servicer, s)

    server, health_servicer, port = create_grpc_server(
        [SERVICE_NAME, *EVENT_SERVICE_NAMES],
        register,
        settings.order_service_host,
        settings.order_service_port,
        tls=tls,
        interceptors=authz.interceptors(settings.caller_policy, tls is not None),
    )
    reconciler = Reconciler(orders, settings.order_reconcile_interval_s, settings.order_payment_deadline_s)
    health_port = HealthPort.open(health_servicer, settings.order_service_host, settings.order_health_port)
    worker = DeliveryWorker(db, settings)
    return OrderServer(server, health_servicer, port, reconciler, payments, db, changes, health_port, worker)
