"""`python -m gateway`: read the settings, serve HTTP with uvicorn until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging

import uvicorn

from common.logs import configure_logging
from common.settings import load_settings
from common.tracing import configure_tracing
from gateway.app import create_app
from gateway.settings import GatewaySettings

# Protocol-level WebSocket pings, so that a peer that vanished without a close is noticed and its
# watcher freed: a ping every 20 s, the socket closed when no pong came within 20 s.
WS_PING_INTERVAL_S = 20.0
WS_PING_TIMEOUT_S = 20.0


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level, settings.log_format)
    configure_tracing("gateway")
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
        ws_ping_interval=WS_PING_INTERVAL_S,
        ws_ping_timeout=WS_PING_TIMEOUT_S,
        # Order frames are 1-2 KB of JSON: compressing them saves little and a deflate context
        # costs ~40 KiB per browser watcher.
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
