"""`python -m bench.bare_gateway`: the gateway's own application (gateway.app.create_app, the same
settings from the same environment, served as `python -m gateway` serves it) with one more route,
`POST /v1/bench/orders`, that `make bench` measures `POST /v1/orders` against.

The bare route does what `POST /v1/orders` does in this process — the same middleware (under
/v1: the same key check and rate limiter), the same strict body model, the same converter, the
same response with its status and headers — but the order it answers is built in memory
(bench.payloads.paid_order): no gRPC hop, no database. So the ratio of the two throughputs is
the price of the two hops, the durable writes and the services' own work.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from bench.payloads import paid_order
from gateway import __main__ as gateway_main
from gateway.app import create_app
from gateway.convert import create_order_request
from gateway.deps import SettingsDep
from gateway.responses import order_response
from gateway.schemas import OrderCreate
from gateway.settings import GatewaySettings

BARE = "/v1/bench/orders"

router = APIRouter(include_in_schema=False)


@router.post(BARE, status_code=201)
async def bare_create_order(body: OrderCreate, settings: SettingsDep) -> Response:
    order = paid_order(create_order_request(body))
    return order_response(order, settings.gateway_public_url, created=True)


def bench_app(settings: GatewaySettings) -> FastAPI:
    """The product's application, with the bare route beside its own."""
    app = create_app(settings)
    app.include_router(router)
    return app


if __name__ == "__main__":
    gateway_main.main(bench_app)
