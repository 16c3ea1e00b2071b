"""`python -m gateway`: read the settings, serve HTTP with uvicorn until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging

import uvicorn

from common.logs import configure_logging
from common.settings import load_settings
from gateway.app import create_app
from gateway.settings import GatewaySettings


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level, settings.log_format)
    logging.getLogger(__name__).info("gateway at %s", settings.gateway_public_url)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
