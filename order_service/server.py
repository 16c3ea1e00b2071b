"""The order service, built: where `python -m order_service` starts (and tests, with a port of
0). Its parts, from the wire in: the servicer (servicer.py) → the flows (orders.py) → the store
(store.py) and the payment client (payment_client.py); beside them, the reconciler
(reconciler.py) and the change notifications that wake watchers (changes.py)."""

from __future__ import annotations

from functools import partial

from common.db.postgres import PostgresDatabase
from common.migrations import History
from common.service import Service, build_service, open_service_database, service_main
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
    return build_service(
        settings,
        db,
        [SERVICE_NAME],
        partial(order_pb2_grpc.add_OrderServiceServicer_to_server, servicer),
        # Finish what a crash or an outage left open; it does not hold up the start, and it
        # retries while the payment service is still coming up.
        on_start=[reconciler.start],
        on_draining=[store.changes.close],
        on_close=[reconciler.stop, payments.close],
    )


def main() -> None:
    service_main("order_service", OrderSettings, HISTORY, create_server)
