"""The demo page's fifth way (docs/webhooks.md): a webhook receiver inside the demo, so that the page
shows each webhook arriving beside the four channels.

    POST /demo/webhooks/endpoint                      make sure the demo account has an endpoint
                                                      aimed at the receiver below: {"enabled", "reason"}
    POST /demo/webhooks/receive                       the receiver: verifies the signature, keeps the event
    GET  /demo/orders/{id}/webhooks?client_secret=    what the receiver got for that order

The receiver plays a shop's own server, so what it got lives in this process's memory (the last
MAX_ORDERS orders), as it would in that server: with several gateways each has its own. It knows
the endpoint's secret because it made the endpoint (or rotated its secret, after a restart).
Mounted with the other demo routes (GATEWAY_DEMO_ACCOUNT); never in OpenAPI. Where webhooks may
not call the gateway — compose and Kubernetes refuse private addresses — the endpoint is refused
and the page says why.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Annotated, Any

import grpc
import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from common.caller import CallerScope
from common.errors import field_violations, rich_status
from common.input_limits import CLIENT_SECRET_PATTERN
from common.timestamps import rfc3339, timestamp_us
from common.webhook_signatures import verify
from gateway.deps import BackendsDep, ResourceId, SettingsDep
from gateway.responses import JSONResponse
from shop.order.v1 import events_pb2, order_pb2

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

RECEIVE_PATH = "/demo/webhooks/receive"
MAX_ORDERS = 200


class DemoReceiver:
    def __init__(self) -> None:
        self.secret: str | None = None
        self.by_order: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def keep(self, event: dict[str, Any], verified: bool) -> None:
        order_id = event["data"]["order"]["id"]
        arrivals = self.by_order.setdefault(order_id, [])
        self.by_order.move_to_end(order_id)
        received_at = rfc3339(timestamp_us(time.time_ns() // 1000))
        arrivals.append({"received_at": received_at, "verified": verified, "event": event})
        while len(self.by_order) > MAX_ORDERS:
            self.by_order.popitem(last=False)


def _receiver(request: Request) -> DemoReceiver:
    state = request.app.state
    if not hasattr(state, "demo_receiver"):
        state.demo_receiver = DemoReceiver()
    return state.demo_receiver  # type: ignore[no-any-return]


def _demo(settings: SettingsDep) -> CallerScope:
    assert settings.gateway_demo_account is not None  # the router is mounted only then
    return CallerScope(account_id=settings.gateway_demo_account)


@router.post("/webhooks/endpoint")
async def ensure_endpoint(request: Request, backends: BackendsDep, settings: SettingsDep) -> Response:
    receiver, scope = _receiver(request), _demo(settings)
    url = settings.gateway_public_url + RECEIVE_PATH
    stub = backends.webhooks
    listed, _ = await backends.call("ListWebhookEndpoints", stub.ListWebhookEndpoints, _LIST, scope)
    found = next((e for e in listed.endpoints if e.url == url), None)
    try:
        if found is None:
            create = events_pb2.CreateWebhookEndpointRequest(url=url, description="the demo page's receiver")
            endpoint, _ = await backends.call("CreateWebhookEndpoint", stub.CreateWebhookEndpoint, create, scope)
            receiver.secret = endpoint.secret
        elif receiver.secret is None:  # made by an earlier run of this gateway: its secret is gone
            rotate = events_pb2.RotateWebhookSecretRequest(endpoint_id=found.id)
            endpoint, _ = await backends.call("RotateWebhookSecret", stub.RotateWebhookSecret, rotate, scope)
            receiver.secret = endpoint.secret
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        reasons = [message for _, message in field_violations(rich_status(exc))] or ["the URL is refused"]
        return JSONResponse({"enabled": False, "reason": f"webhooks cannot reach this demo here: {reasons[0]}"})
    return JSONResponse({"enabled": True, "reason": None})


_LIST = events_pb2.ListWebhookEndpointsRequest()


@router.post(RECEIVE_PATH.removeprefix("/demo"), status_code=204)
async def receive(request: Request) -> Response:
    receiver = _receiver(request)
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    verified = receiver.secret is not None and verify(receiver.secret, headers, body)
    try:
        event = orjson.loads(body)
        receiver.keep(event, verified)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return Response(status_code=400)
    return Response(status_code=204)


@router.get("/orders/{order_id}/webhooks")
async def received(
    order_id: ResourceId,
    request: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    client_secret: Annotated[str, Query(pattern=CLIENT_SECRET_PATTERN)],
) -> Response:
    """What the receiver got for the order; 404 unless `client_secret` is the order's."""
    get = order_pb2.GetOrderRequest(order_id=order_id)
    await backends.call("GetOrder", backends.orders.GetOrder, get, CallerScope(client_secret=client_secret))
    return JSONResponse({"webhooks": _receiver(request).by_order.get(order_id, [])})
