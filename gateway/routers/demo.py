"""The demo page's three changes, made here for a demo account (docs/security.md#the-demo-routes):
the page's browser holds no API key.

    POST /demo/orders                 same body and answer as POST /v1/orders
    POST /demo/orders/{id}/cancel     same as POST /v1/orders/{id}/cancel, with ?client_secret=
    POST /demo/orders/{id}/refund     same as POST /v1/orders/{id}/refund, with ?client_secret=

Mounted only when GATEWAY_DEMO_ACCOUNT names the account (`make run` and compose set it), never
in OpenAPI. Creating acts for that account; cancel and refund act for it too, but only on an
order whose client secret the request carries (the one the page created), so a visitor can
change their own demo orders and nobody else's. Limited per client address like every request
without a key (gateway/auth.py). The page then follows the order with its client secret, as any
browser would; an API key of the demo account would see these orders like its own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from common.caller import CallerScope
from common.input_limits import CLIENT_SECRET_PATTERN
from gateway.auth import CHALLENGE
from gateway.deps import BackendsDep, IdempotencyKey, ResourceId, SettingsDep
from gateway.errors import ApiError
from gateway.routers import orders
from gateway.schemas import CancelCreate, OrderCreate, RefundCreate
from gateway.settings import GatewaySettings
from shop.order.v1 import order_pb2

router = APIRouter(prefix="/demo/orders", tags=["demo"], include_in_schema=False)

ClientSecret = Annotated[str | None, Query(pattern=CLIENT_SECRET_PATTERN)]


def _demo(settings: GatewaySettings) -> CallerScope:
    assert settings.gateway_demo_account is not None  # the router is mounted only then
    return CallerScope(account_id=settings.gateway_demo_account)


class DemoChange:
    """What a change to a demo order (cancel, refund) is called with, besides its body."""

    def __init__(
        self,
        order_id: ResourceId,
        backends: BackendsDep,
        settings: SettingsDep,
        idempotency_key: IdempotencyKey,
        client_secret: ClientSecret = None,
    ) -> None:
        self.order_id = order_id
        self.backends = backends
        self.settings = settings
        self.idempotency_key = idempotency_key
        self.client_secret = client_secret

    async def scope(self) -> CallerScope:
        """The demo account's scope, for an order whose `client_secret` the request carries: 404
        otherwise (the same answer as for an unknown order)."""
        if self.client_secret is None:
            raise ApiError(401, "the order's client_secret is required", code="UNAUTHENTICATED", headers=CHALLENGE)
        message = order_pb2.GetOrderRequest(order_id=self.order_id)
        reader = CallerScope(client_secret=self.client_secret)
        await self.backends.call("GetOrder", self.backends.orders.GetOrder, message, reader)
        return _demo(self.settings)


@router.post("", status_code=201)
async def create_demo_order(
    body: OrderCreate, backends: BackendsDep, settings: SettingsDep, idempotency_key: IdempotencyKey
) -> Response:
    return await orders.create(body, backends, settings, idempotency_key, _demo(settings))


@router.post("/{order_id}/cancel")
async def cancel_demo_order(change: Annotated[DemoChange, Depends()], body: CancelCreate | None = None) -> Response:
    scope = await change.scope()
    return await orders.cancel(change.order_id, change.backends, change.settings, change.idempotency_key, scope)


@router.post("/{order_id}/refund")
async def refund_demo_order(change: Annotated[DemoChange, Depends()], body: RefundCreate | None = None) -> Response:
    scope = await change.scope()
    return await orders.refund(change.order_id, body, change.backends, change.settings, change.idempotency_key, scope)
