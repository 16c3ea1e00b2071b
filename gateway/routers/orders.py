"""/v1/orders: create (the 14-step flow), read, list, cancel, refund.

Every call acts for the caller that gateway/auth.py found (an account's API key, or — for a
read — one order's client secret): the order service answers only within it, so another
account's order is 404 like one that does not exist. The three changes are also what the demo
routes (routers/demo.py) do for the demo account.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from common.caller import CallerScope
from common.input_limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from gateway.auth import authenticated
from gateway.backends import Backends
from gateway.convert import create_order_request, order_json
from gateway.deps import BackendsDep, IdempotencyKey, ResourceId, SettingsDep
from gateway.push import longpoll
from gateway.push.deps import HubDep
from gateway.responses import JSONResponse, etag, order_response
from gateway.schemas import (
    CHANGE_PROBLEMS,
    ORDER_STATUSES,
    PROBLEMS,
    CancelCreate,
    OrderCreate,
    OrderList,
    OrderPublic,
    OrderStatus,
    RefundCreate,
)
from gateway.settings import GatewaySettings
from shop.order.v1 import order_pb2

router = APIRouter(prefix="/v1/orders", tags=["orders"])

_STATUS_NUMBERS = {name: number for number, name in ORDER_STATUSES.items()}


@router.post("", status_code=201, response_model=OrderPublic, responses=CHANGE_PROBLEMS)
async def create_order(
    body: OrderCreate, request: Request, backends: BackendsDep, settings: SettingsDep, idempotency_key: IdempotencyKey
) -> Response:
    """Create an order and charge it: gateway → order service → payment service, and back.
    The answer carries the order's `client_secret`: give it to the customer's browser, which may
    then read and follow this one order and confirm its payment without an API key."""
    return await create(body, backends, settings, idempotency_key, authenticated(request).scope)


@router.get("/{order_id}", response_model=OrderPublic, responses={304: {"description": "Not modified"}, **PROBLEMS})
async def get_order(
    order_id: ResourceId,
    request: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    hub: HubDep,
    prefer: Annotated[str | None, Header(description="`wait=N` (1-60) with If-None-Match: long polling.")] = None,
) -> Response:
    """Read an order. With `If-None-Match: "<version>"` and no change since: 304 (short polling).
    Add `Prefer: wait=N` to hold the answer until the order changes (200) or N seconds pass
    (304): long polling."""
    scope = authenticated(request).scope
    message = order_pb2.GetOrderRequest(order_id=order_id)
    order, _ = await backends.call("GetOrder", backends.orders.GetOrder, message, scope)
    if_none_match = request.headers.get("if-none-match")
    wait = longpoll.requested_wait(prefer) if if_none_match else None
    if wait is not None and if_none_match is not None:
        longpoll.check_not_ahead(longpoll.resume_version(if_none_match), order.version)
    if not longpoll.etag_matches(if_none_match, etag(order.version)):
        response = order_response(order, settings.gateway_public_url)
        response.headers.update(longpoll.applied(wait) if wait else {})
        return response
    if wait is None:
        return Response(status_code=304, headers={"ETag": etag(order.version)})
    return await longpoll.hold(hub, order_id, order.version, wait, scope)


@router.get("", response_model=OrderList, responses=PROBLEMS)
async def list_orders(
    request: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    status: OrderStatus | None = None,  # type: ignore[valid-type]
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The caller's orders (its account's, whichever of its keys made them), newest first. Pass
    `next_page_token` back as `page_token` for the next page."""
    message = order_pb2.ListOrdersRequest(
        customer_id=customer_id or "",
        status=_STATUS_NUMBERS[status] if status else order_pb2.ORDER_STATUS_UNSPECIFIED,
        page_size=page_size,
        page_token=page_token or "",
    )
    scope = authenticated(request).scope
    page, _ = await backends.call("ListOrders", backends.orders.ListOrders, message, scope)
    document: OrderList = {
        "orders": [order_json(order, settings.gateway_public_url) for order in page.orders],
        "next_page_token": page.next_page_token,
    }
    return JSONResponse(document)


@router.post("/{order_id}/cancel", response_model=OrderPublic, responses=CHANGE_PROBLEMS)
async def cancel_order(
    order_id: ResourceId,
    request: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
    body: CancelCreate | None = None,
) -> Response:
    """Cancel an order whose payment has not succeeded."""
    return await cancel(order_id, backends, settings, idempotency_key, authenticated(request).scope)


@router.post("/{order_id}/refund", response_model=OrderPublic, responses=CHANGE_PROBLEMS)
async def refund_order(
    order_id: ResourceId,
    request: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
    body: RefundCreate | None = None,
) -> Response:
    """Refund `amount`, or everything that is left when the body is `{}`."""
    return await refund(order_id, body, backends, settings, idempotency_key, authenticated(request).scope)


# The three changes, for whichever scope the route acts for (an API key's account, the demo's).


async def create(
    body: OrderCreate, backends: Backends, settings: GatewaySettings, idempotency_key: str | None, scope: CallerScope
) -> Response:
    stub = backends.order_writes(idempotency_key)
    message = create_order_request(body)
    order, replayed = await backends.call("CreateOrder", stub.CreateOrder, message, scope, idempotency_key)
    return order_response(order, settings.gateway_public_url, created=True, replayed=replayed)


async def cancel(
    order_id: str, backends: Backends, settings: GatewaySettings, idempotency_key: str | None, scope: CallerScope
) -> Response:
    message = order_pb2.CancelOrderRequest(order_id=order_id)
    stub = backends.orders
    order, replayed = await backends.call("CancelOrder", stub.CancelOrder, message, scope, idempotency_key)
    return order_response(order, settings.gateway_public_url, replayed=replayed)


async def refund(
    order_id: str,
    body: RefundCreate | None,
    backends: Backends,
    settings: GatewaySettings,
    idempotency_key: str | None,
    scope: CallerScope,
) -> Response:
    message = order_pb2.RefundOrderRequest(order_id=order_id)
    if body is not None and body.amount is not None:
        message.amount = body.amount
    stub = backends.order_writes(idempotency_key)
    order, replayed = await backends.call("RefundOrder", stub.RefundOrder, message, scope, idempotency_key)
    return order_response(order, settings.gateway_public_url, replayed=replayed)
