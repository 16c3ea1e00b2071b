"""The gateway application: its request pipeline (gateway/pipeline.py), routers, error handlers,
and the gRPC channels that live as long as the application (opened in the lifespan, shared by
all requests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from common import tracing
from common.loop_lag import monitor_loop_lag
from gateway import errors, openapi, pipeline, streaming
from gateway.backends import Backends
from gateway.push import Hub
from gateway.push.feed import FeedStreams
from gateway.ratelimit import open_storage
from gateway.routers import demo, demo_webhooks, docs, events, health, orders, pages, payments, push, qr, webhooks
from gateway.settings import GatewaySettings


class Gateway(FastAPI):
    """FastAPI with the thin dispatch of long-lived streams in front (gateway/streaming.py)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await streaming.dispatch(super().__call__, scope, receive, send)


def create_app(settings: GatewaySettings) -> FastAPI:
    rates = open_storage(settings.gateway_rate_limit_storage)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backends = Backends.open(
            settings.order_service_target,
            settings.payment_service_target,
            settings.gateway_deadline_s,
            settings.grpc_tls,
        )
        app.state.hub = Hub(
            app.state.backends.orders,
            settings.gateway_public_url,
            settings.gateway_deadline_s,
            settings.sse_heartbeat_s,
        )
        app.state.hub.start()
        app.state.feed_streams = FeedStreams()  # the events feed's SSE streams (docs/webhooks.md)
        app.state.feed_streams.start()
        lag = monitor_loop_lag()
        try:
            yield
        finally:
            lag.cancel()
            app.state.feed_streams.close()
            await app.state.hub.close()
            await app.state.backends.close()
            await rates.close()
            tracing.flush()

    app = Gateway(
        title="Shop gateway",
        version="1.0.0",
        summary="REST in front of two gRPC services (orders, payments), with four ways to follow an order.",
        lifespan=lifespan,
        middleware=pipeline.middleware(settings, rates),
        # FastAPI's own OpenTelemetry hooks stay off: they ask the OTel API for its providers on
        # every request even when nothing is configured, and once tracing is on they record the
        # query string (where `client_secret` travels) and last as long as an SSE stream.
        # gateway/middleware/tracing.py makes the HTTP spans instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # `/v1/orders/` is 404, as any unknown path: a redirect would point at whatever Host
        # the client sent, and a POST that follows it may be sent again.
        redirect_slashes=False,
        # Served by gateway/routers/docs.py from local files: FastAPI's pages load them from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    openapi.install(app)

    app.include_router(orders.router)
    app.include_router(payments.router)
    app.include_router(push.router)
    app.include_router(events.router)  # the fifth way (docs/webhooks.md): events feed and webhooks
    app.include_router(webhooks.router)
    app.include_router(qr.router)
    app.include_router(pages.router)
    app.include_router(health.router)
    app.include_router(docs.router)
    if settings.gateway_demo_account is not None:
        app.include_router(demo.router)
        app.include_router(demo_webhooks.router)  # the demo page's webhook receiver (the fifth way)
    return app
