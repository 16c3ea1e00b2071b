"""/v1/orders: create (the 14-step flow), read, list, cancel, refund.

Every call acts for the caller that gateway/auth.py found (an account's API key, or — for a
read — one order's client secret): the order service answers only within it, so another
account's order is 404 like one that does not exist. The three changes are also what the demo
routes (routers/demo.py) do for the demo account.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from common.caller import CallerScope
from common.input_limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from gateway.auth import authenticated
from gateway.convert import order_json
from gateway.deps import BackendsDep, IdempotencyKey, JSONResponse, ResourceId, SettingsDep, call
from gateway.push import longpoll
from gateway.push.deps import HubDep
from gateway.schemas import CancelCreate, OrderCreate, OrderList, OrderPublic, OrderStatus, Problem, RefundCreate
from shop.order.v1 import order_pb2

router = APIRouter(prefix="/v1/orders", tags=["orders"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (400, 401, 403, 404, 409, 429, 503, 504)
}


def etag(version: int) -> str:
    return f'"{version}"'


def order_response(
    order: order_pb2.Order, settings: SettingsDep, *, status: int = 200, replayed: bool = False
) -> JSONResponse:
    headers = {"ETag": etag(order.version)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(order_json(order, settings.gateway_public_url), status_code=status, headers=headers)


@router.post("", status_code=201, response_model=OrderPublic, responses={**ERRORS, 422: ERRORS[400]})
async def create_order(
    body: OrderCreate, http: Request, backends: BackendsDep, settings: SettingsDep, idempotency_key: IdempotencyKey
) -> Response:
    """Create an order and charge it: gateway → order service → payment service, and back.
    The answer carries the order's `client_secret`: give it to the customer's browser, which may
    then read and follow this one order and confirm its payment without an API key."""
    return await create(body, backends, settings, idempotency_key, authenticated(http).scope)


async def create(
    body: OrderCreate, backends: BackendsDep, settings: SettingsDep, idempotency_key: str | None, scope: CallerScope
) -> Response:
    request = order_pb2.CreateOrderRequest(
        customer_id=body.customer_id,
        currency=body.currency,
        items=[order_pb2.LineItem(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price) for i in body.items],
        payment_method=body.payment_method,
    )
    stub = backends.order_writes(idempotency_key)
    order, replayed = await call("CreateOrder", stub.CreateOrder, request, settings, scope, idempotency_key)
    response = order_response(order, settings, status=201, replayed=replayed)
    response.headers["Location"] = f"/v1/orders/{order.id}"
    return response


@router.get("/{order_id}", response_model=OrderPublic, responses={304: {"description": "Not modified"}, **ERRORS})
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
    caller = authenticated(request)
    request_ = order_pb2.GetOrderRequest(order_id=order_id)
    order, _ = await call("GetOrder", backends.orders.GetOrder, request_, settings, caller.scope)
    if_none_match = request.headers.get("if-none-match")
    wait = longpoll.requested_wait(prefer) if if_none_match else None
    if wait is not None and if_none_match is not None:
        longpoll.check_not_ahead(longpoll.resume_version(if_none_match), order.version)
    if not longpoll.etag_matches(if_none_match, etag(order.version)):
        response = order_response(order, settings)
        response.headers.update(longpoll.applied(wait) if wait else {})
        return response
    if wait is None:
        return Response(status_code=304, headers={"ETag": etag(order.version)})
    return await longpoll.hold(hub, order_id, order.version, wait, caller.scope)


@router.get("", response_model=OrderList, responses=ERRORS)
async def list_orders(
    backends: BackendsDep,
    settings: SettingsDep,
    http: Request,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    status: OrderStatus | None = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The caller's orders (its account's, whichever of its keys made them), newest first. Pass
    `next_page_token` back as `page_token` for the next page."""
    wanted = order_pb2.OrderStatus.Value(f"ORDER_STATUS_{status.upper()}") if status else None
    request = order_pb2.ListOrdersRequest(
        customer_id=customer_id or "",
        status=wanted or order_pb2.ORDER_STATUS_UNSPECIFIED,
        page_size=page_size,
        page_token=page_token or "",
    )
    reply, _ = await call("ListOrders", backends.orders.ListOrders, request, settings, authenticated(http).scope)
    return JSONResponse(
        {
            "orders": [order_json(o, settings.gateway_public_url) for o in reply.orders],
            "next_page_token": reply.next_page_token,
        }
    )


@router.post("/{order_id}/cancel", response_model=OrderPublic, responses={**ERRORS, 422: ERRORS[400]})
async def cancel_order(
    order_id: ResourceId,
    backends: BackendsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
    http: Request,
    body: CancelCreate | None = None,
) -> Response:
    """Cancel an order whose payment has not succeeded."""
    return await cancel(order_id, backends, settings, idempotency_key, authenticated(http).scope)


async def cancel(
    order_id: str, backends: BackendsDep, settings: SettingsDep, idempotency_key: str | None, scope: CallerScope
) -> Response:
    request = order_pb2.CancelOrderRequest(order_id=order_id)
    stub = backends.orders
    order, replayed = await call("CancelOrder", stub.CancelOrder, request, settings, scope, idempotency_key)
    return order_response(order, settings, replayed=replayed)


@router.post("/{order_id}/refund", response_model=OrderPublic, responses={**ERRORS, 422: ERRORS[400]})
async def refund_order(
    order_id: ResourceId,
    backends: BackendsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
    http: Request,
    body: RefundCreate | None = None,
) -> Response:
    """Refund `amount`, or everything that is left when the body is `{}`."""
    return await refund(order_id, body, backends, settings, idempotency_key, authenticated(http).scope)


async def refund(
    order_id: str,
    body: RefundCreate | None,
    backends: BackendsDep,
    settings: SettingsDep,
    idempotency_key: str | None,
    scope: CallerScope,
) -> Response:
    request = order_pb2.RefundOrderRequest(order_id=order_id)
    if body is not None and body.amount is not None:
        request.amount = body.amount
    stub = backends.order_writes(idempotency_key)
    order, replayed = await call("RefundOrder", stub.RefundOrder, request, settings, scope, idempotency_key)
    return order_response(order, settings, replayed=replayed)
