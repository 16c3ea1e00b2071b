"""`python -m payment_service`: read the settings, serve until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging

from common.grpc_server import run_until_signalled
from common.logs import configure_logging
from common.settings import load_settings
from payment_service.server import SERVICE_NAME, create_server
from payment_service.settings import PaymentSettings


async def main() -> None:
    settings = load_settings(PaymentSettings)
    configure_logging("payment_service", settings.log_level, settings.log_format)
    server, health_servicer, port, db = await create_server(settings)
    logging.getLogger(__name__).info("listening", extra={"port": port})
    await run_until_signalled(server, health_servicer, [SERVICE_NAME], on_stop=db.close)


if __name__ == "__main__":
    asyncio.run(main())
