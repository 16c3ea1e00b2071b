"""The order service, built: where `python -m order_service` starts (and tests, with a port of
0). Its parts, from the wire in: the servicer (servicer.py) → the flows (orders.py) → the store
(store.py) and the payment client (payment_client.py); beside them, the reconciler
(reconciler.py) and the change notifications that wake watchers (changes.py)."""

from __future__ import annotations

import grpc

from common.db.postgres import PostgresDatabase
from common.migrations import History
from common.service import Service, build_service, open_service_database, service_main
from order_service.changes import LocalChanges, PostgresChanges
from order_service.event_service import EventServicer
from order_service.events import Feed
from order_service.idempotency import Idempotency
from order_service.orders import Orders
from order_service.payment_client import PaymentClient
from order_service.reconciler import Reconciler
from order_service.servicer import OrderServicer
from order_service.settings import OrderSettings
from order_service.store import OrderStore
from order_service.webhooks.endpoints import Endpoints
from order_service.webhooks.service import WebhookServicer
from order_service.webhooks.worker import DeliveryWorker
from shop.order.v1 import events_pb2, events_pb2_grpc, order_pb2, order_pb2_grpc

SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
# The events feed and webhooks (docs/webhooks.md), served beside OrderService.
EVENT_SERVICE_NAMES = [
    events_pb2.DESCRIPTOR.services_by_name[name].full_name for name in ("EventService", "WebhookService")
]
HISTORY = History.of_service("order_service", marker_table="orders")


async def create_server(settings: OrderSettings) -> Service:
    db = await open_service_database(HISTORY, settings)
    store = OrderStore(db, LocalChanges())
    if isinstance(db.inner, PostgresDatabase):
        # Many replicas may share the database: each hears the others' commits.
        store.changes = PostgresChanges(db.inner.hosts.connect, store.versions)
    await store.changes.start()
    payments = PaymentClient(settings.payment_service_target, settings.grpc_tls)
    orders = Orders(store, payments)
    servicer = OrderServicer(orders, Idempotency(db), settings.payment_deadline_s)
    reconciler = Reconciler(orders, settings.reconcile_interval_s, settings.payment_deadline_s)
    event_servicer = EventServicer(Feed(db), store.changes)
    endpoints = Endpoints(db, settings.webhook_allow_private_networks, settings.webhook_secret_overlap_s)
    webhook_servicer = WebhookServicer(endpoints)
    deliveries = DeliveryWorker(db, settings)  # every replica sends (order_service/webhooks/worker.py)

    def register(server: grpc.aio.Server) -> None:
        order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)
        events_pb2_grpc.add_EventServiceServicer_to_server(event_servicer, server)
        events_pb2_grpc.add_WebhookServiceServicer_to_server(webhook_servicer, server)

    return build_service(
        settings,
        db,
        [SERVICE_NAME, *EVENT_SERVICE_NAMES],
        register,
        # Finish what a crash or an outage left open, and send what is due; neither holds up the
        # start, and both retry while the payment service or a receiver is still coming up.
        on_start=[reconciler.start, deliveries.start],
        on_draining=[store.changes.close],
        on_close=[reconciler.stop, deliveries.stop, payments.close],
    )


def main() -> None:
    service_main("order_service", OrderSettings, HISTORY, create_server)
