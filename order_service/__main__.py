"""`python -m order_service`: read the settings, serve until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging

from common.grpc_server import run_until_signalled
from common.logs import configure_logging
from common.settings import load_settings
from order_service.server import SERVICE_NAME, create_server
from order_service.settings import OrderSettings


async def main() -> None:
    settings = load_settings(OrderSettings)
    configure_logging("order_service", settings.log_level, settings.log_format)
    service = await create_server(settings)
    logging.getLogger(__name__).info("listening", extra={"port": service.port})
    # Finish what an earlier run left behind; it does not block start-up, and it retries
    # while the payment service is still coming up.
    service.reconciler.start()
    await run_until_signalled(
        service.server, service.health, [SERVICE_NAME], on_stop=service.close, on_draining=service.bus.close
    )


if __name__ == "__main__":
    asyncio.run(main())
