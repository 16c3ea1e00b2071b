"""`python -m payment_service [serve|migrate]` (see common/service.py)."""

from __future__ import annotations

import logging

from common.grpc_server import run_until_signalled
from common.service import service_main
from common.service_metrics import serve_metrics
from payment_service.server import SERVICE_NAME, create_server, migrate
from payment_service.settings import PaymentSettings


async def serve(settings: PaymentSettings) -> None:
    service = await create_server(settings)
    metrics = serve_metrics(settings.payment_service_host, settings.payment_metrics_port, "PAYMENT_METRICS_PORT")
    logging.getLogger(__name__).info("listening", extra={"port": service.port, "metrics_port": metrics})
    await service.health_port.start()
    await run_until_signalled(
        service.server, service.health, [SERVICE_NAME], on_stop=service.close, database=service.db
    )


if __name__ == "__main__":
    service_main("payment_service", PaymentSettings, migrate, serve)
