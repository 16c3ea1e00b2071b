"""The payment service, built: where `python -m payment_service` starts (and tests, and the hop
benchmark, with a port of 0). Its parts, from the wire in: the servicer (servicer.py) → the
payments' transactions (payments.py) → the store (store.py) and the simulated card processor
(processor.py)."""

from __future__ import annotations

from functools import partial

from common.migrations import History
from common.service import Service, build_service, open_service_database, service_main
from payment_service.payments import Payments
from payment_service.processor import Processor
from payment_service.servicer import PaymentServicer
from payment_service.settings import PaymentSettings
from shop.payment.v1 import payment_pb2, payment_pb2_grpc

SERVICE_NAME = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name
HISTORY = History.of_service("payment_service", marker_table="payments")


async def open_payments(settings: PaymentSettings) -> Payments:
    """The payment service's work on its database (migrated and open), with its processor."""
    db = await open_service_database(HISTORY, settings)
    return Payments(db, Processor(settings.processor_latency_ms, settings.action_timeout_s))


async def create_server(settings: PaymentSettings) -> Service:
    payments = await open_payments(settings)
    register = partial(payment_pb2_grpc.add_PaymentServiceServicer_to_server, PaymentServicer(payments))
    return build_service(settings, payments.db, [SERVICE_NAME], register)


def main() -> None:
    service_main("payment_service", PaymentSettings, HISTORY, create_server)
