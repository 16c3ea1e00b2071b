"""`python -m order_service [serve|migrate]` (see common/service.py)."""

from __future__ import annotations

import logging

from common.grpc_server import run_until_signalled
from common.service import service_main
from common.service_metrics import serve_metrics
from order_service.server import SERVICE_NAME, create_server, migrate
from order_service.settings import OrderSettings


async def serve(settings: OrderSettings) -> None:
    service = await create_server(settings)
    metrics = serve_metrics(settings.order_service_host, settings.order_metrics_port, "ORDER_METRICS_PORT")
    logging.getLogger(__name__).info("listening", extra={"port": service.port, "metrics_port": metrics})
    # Finish what a crash or an outage left open; it does not hold up the start, and it retries
    # while the payment service is still coming up.
    service.reconciler.start()
    service.deliveries.start()  # webhooks: every replica sends (order_service/webhooks/worker.py)
    await service.health_port.start()
    await run_until_signalled(
        service.server, service.health, [SERVICE_NAME], on_stop=service.close, on_draining=service.changes.close
    )


if __name__ == "__main__":
    service_main("order_service", OrderSettings, migrate, serve)
