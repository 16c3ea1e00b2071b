"""`python -m gateway`: read the settings, serve HTTP with uvicorn until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from common.logs import configure_logging
from common.settings import load_settings
from common.tracing import configure_tracing
from gateway.app import create_app
from gateway.settings import GatewaySettings

# Protocol-level WebSocket pings, so that a peer that vanished without a close is noticed and its
# watcher freed: a ping every 20 s, the socket closed when no pong came within 20 s.
WS_PING_INTERVAL_S = 20.0
WS_PING_TIMEOUT_S = 20.0
# An idle keep-alive connection is kept this long: longer than clients and load balancers keep
# theirs (httpx 5 s, browsers and cloud load balancers up to 60 s), so that it is the client that
# ends an idle connection. A server that ends it first can do so just as the client sends the
# next request on it, which the client sees as a reset (uvicorn's default, 5 s, equals httpx's).
KEEP_ALIVE_S = 75


def main(app_factory: Callable[[GatewaySettings], FastAPI] = create_app) -> None:
    """Serve the application `app_factory` makes (the benchmark passes one with a route of its
    own: bench/bare_gateway.py)."""
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level, settings.log_format)
    configure_tracing("gateway")
    logging.getLogger(__name__).info("gateway at %s", settings.gateway_public_url)
    uvicorn.run(
        app_factory(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_S,
        ws_ping_interval=WS_PING_INTERVAL_S,
        ws_ping_timeout=WS_PING_TIMEOUT_S,
        # Order frames are small JSON documents: compressing them saves little, and each
        # connection's deflate context is memory kept for as long as a browser watches.
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
