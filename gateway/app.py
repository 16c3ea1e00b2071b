"""The gateway application: routers, error handlers, middleware, and the gRPC channels that
live as long as the application (opened in the lifespan, shared by all requests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.responses import Response

from common import tracing
from gateway import docs, errors, openapi
from gateway.auth import Authentication
from gateway.backends import Backends
from gateway.head import HeadAsGet
from gateway.middleware import BodyGuard, BodyTooLarge, HeaderGuard, RequestContext
from gateway.push import Hub
from gateway.push.feed import FeedStreams
from gateway.routers import demo, demo_webhooks, events, health, orders, pages, payments, push, qr, webhooks
from gateway.settings import GatewaySettings
from gateway.tracing import TraceRequests


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backends = Backends.open(
            settings.order_service_target, settings.payment_service_target, settings.grpc_tls
        )
        app.state.hub = Hub(app.state.backends.orders, settings.gateway_public_url, settings.gateway_deadline_s)
        app.state.hub.start()
        app.state.feed_streams = FeedStreams()  # the events feed's SSE streams (docs/webhooks.md)
        app.state.feed_streams.start()
        try:
            yield
        finally:
            app.state.feed_streams.close()
            await app.state.hub.close()
            await app.state.backends.close()
            tracing.flush()

    app = FastAPI(
        title="Shop gateway",
        version="1.0.0",
        summary="REST in front of two gRPC services (orders, payments), with four ways to follow an order.",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry hooks stay off: they ask the OTel API for its providers on
        # every request even when nothing is configured, and once tracing is on they record the
        # query string (where `client_secret` travels) and last as long as an SSE stream.
        # gateway/tracing.py makes the HTTP spans instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # `/v1/orders/` is 404, as any unknown path: a redirect would point at whatever Host
        # the client sent, and a POST that follows it may be sent again.
        redirect_slashes=False,
        # Served by gateway/docs.py from local files: FastAPI's pages load them from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    openapi.install(app)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
        return errors.problem(413, "the request body is over 64 KiB")

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
    if settings.gateway_bench_routes:
        # Only for `make bench`: the bare endpoint that POST /v1/orders is measured against.
        from gateway.routers import bench

        app.include_router(bench.router)
    # Added innermost first: the request id must exist before anything can fail; who is calling
    # is settled before the body is looked at (nobody without a key learns from a 413); HEAD is
    # routed as GET only after the guards have seen the request as it came.
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyGuard)
    app.add_middleware(
        Authentication,
        keys=settings.gateway_api_keys,
        rate=settings.gateway_rate_limit,
        failure_rate=settings.gateway_auth_failure_limit,
    )
    app.add_middleware(HeaderGuard)
    app.add_middleware(RequestContext)
    if (tracer := tracing.tracer()) is not None:
        # Outside RequestContext, so that the span is current in the access log line too.
        app.add_middleware(TraceRequests, tracer=tracer)
    return app
