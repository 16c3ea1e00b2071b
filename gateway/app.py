"""The gateway application: routers, error handlers, middleware, and the gRPC channels that
live as long as the application (opened in the lifespan, shared by all requests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.responses import Response

from gateway import errors, openapi
from gateway.auth import Authentication
from gateway.backends import Backends
from gateway.middleware import BodyGuard, BodyTooLarge, RequestContext
from gateway.push import Hub
from gateway.routers import demo, health, orders, pages, payments, push, qr
from gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backends = Backends.open(
            settings.order_service_target, settings.payment_service_target, settings.grpc_tls
        )
        app.state.hub = Hub(app.state.backends.orders, settings.gateway_public_url, settings.gateway_deadline_s)
        app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.close()
            await app.state.backends.close()

    app = FastAPI(
        title="Shop gateway",
        version="1.0.0",
        summary="REST in front of two gRPC services (orders, payments), with four ways to follow an order.",
        lifespan=lifespan,
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
    app.include_router(qr.router)
    app.include_router(pages.router)
    app.include_router(health.router)
    if settings.gateway_demo_account is not None:
        app.include_router(demo.router)
    if settings.gateway_bench_routes:
        # Only for `make bench`: the bare endpoint that POST /v1/orders is measured against.
        from gateway.routers import bench

        app.include_router(bench.router)
    # Added innermost first: the request id must exist before anything can fail, and who is
    # calling is settled before the body is looked at (nobody without a key learns from a 413).
    app.add_middleware(BodyGuard)
    app.add_middleware(
        Authentication,
        keys=settings.gateway_api_keys,
        rate=settings.gateway_rate_limit,
        failure_rate=settings.gateway_auth_failure_limit,
    )
    app.add_middleware(RequestContext)
    return app
