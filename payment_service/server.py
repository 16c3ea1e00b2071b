"""The payment service's gRPC server, built by one factory for `python -m` and for tests."""

from __future__ import annotations

import grpc
from grpc_health.v1._async import HealthServicer

from common.db import Database
from common.grpc_server import create_grpc_server
from payment_service.processor import Processor
from payment_service.servicer import PaymentServicer
from payment_service.settings import PaymentSettings
from payment_service.store import PaymentStore
from shop.payment.v1 import payment_pb2, payment_pb2_grpc

SERVICE_NAME = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name


async def create_server(settings: PaymentSettings) -> tuple[grpc.aio.Server, HealthServicer, int, Database]:
    db = Database(settings.payment_database_url)
    store = PaymentStore(db)
    await store.start()
    servicer = PaymentServicer(
        store, Processor(settings.payment_processor_latency_ms, settings.payment_action_timeout_s)
    )
    server, health_servicer, port = create_grpc_server(
        [SERVICE_NAME],
        lambda s: payment_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, s),
        settings.payment_service_host,
        settings.payment_service_port,
    )
    return server, health_servicer, port, db
