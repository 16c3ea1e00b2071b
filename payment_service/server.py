"""The payment service's gRPC server, built by one factory for `python -m` and for tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1._async import HealthServicer

from common import authz
from common.db import Database, open_database
from common.grpc_server import create_grpc_server
from common.health_port import HealthPort
from common.migrations import History, upgrade
from common.observed_db import observe
from payment_service.processor import Processor
from payment_service.servicer import PaymentServicer
from payment_service.settings import PaymentSettings
from shop.payment.v1 import payment_pb2, payment_pb2_grpc

SERVICE_NAME = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name
HISTORY = History(
    service="payment_service",
    directory=Path(__file__).parent / "migrations",
    version_table="payment_schema_version",
    marker_table="payments",
)


@dataclass
class PaymentServer:
    server: grpc.aio.Server
    health: HealthServicer
    port: int
    db: Database
    # The plaintext health-only port (PAYMENT_HEALTH_PORT), for probes without a certificate.
    health_port: HealthPort

    async def close(self) -> None:
        await self.health_port.stop()
        await self.db.close()


async def migrate(settings: PaymentSettings) -> str:
    return await upgrade(HISTORY, settings.payment_database_url)


async def create_server(settings: PaymentSettings) -> PaymentServer:
    await migrate(settings)
    db = observe(open_database(settings.payment_database_url, pool_size=settings.payment_database_pool_size))
    await db.start()
    tls = settings.grpc_tls
    servicer = PaymentServicer(db, Processor(settings.payment_processor_latency_ms, settings.payment_action_timeout_s))
    server, health_servicer, port = create_grpc_server(
        [SERVICE_NAME],
        lambda s: payment_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, s),
        settings.payment_service_host,
        settings.payment_service_port,
        tls=tls,
        interceptors=authz.interceptors(settings.caller_policy, tls is not None),
    )
    health_port = HealthPort.open(health_servicer, settings.payment_service_host, settings.payment_health_port)
    return PaymentServer(server, health_servicer, port, db, health_port)
