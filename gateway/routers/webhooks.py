"""/v1/webhook_endpoints: the caller's webhook endpoints and their delivery logs (docs/webhooks.md).

Read-only (`rk_`) keys may read them; creating, deleting and rotating a secret need a secret key
(gateway/auth.py answers 403 to any other method of an `rk_` key). Another account's endpoint
is 404. The signing secret is in the answers of create and rotate only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from common.input_limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from common.timestamps import rfc3339
from gateway.auth import authenticated
from gateway.deps import BackendsDep, IdempotencyKey, ResourceId, SettingsDep
from gateway.event_schemas import (
    WebhookDeliveryList,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointPublic,
    WebhookEndpointWithSecret,
)
from gateway.responses import JSONResponse
from gateway.schemas import PROBLEMS
from shop.order.v1 import events_pb2 as pb

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhooks"])

_ENDPOINT_STATUS = {pb.WEBHOOK_ENDPOINT_STATUS_ENABLED: "enabled", pb.WEBHOOK_ENDPOINT_STATUS_DELETED: "deleted"}
_DELIVERY_STATUS = {
    pb.WEBHOOK_DELIVERY_STATUS_PENDING: "pending",
    pb.WEBHOOK_DELIVERY_STATUS_SUCCEEDED: "succeeded",
    pb.WEBHOOK_DELIVERY_STATUS_FAILED: "failed",
}


def endpoint_json(endpoint: pb.WebhookEndpoint) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "enabled_events": list(endpoint.enabled_events),
        "description": endpoint.description,
        "status": _ENDPOINT_STATUS.get(endpoint.status, "enabled"),
        "created_at": rfc3339(endpoint.created_at),
    }
    if endpoint.secret:
        document["secret"] = endpoint.secret
    return document


def delivery_json(delivery: pb.WebhookDelivery) -> dict[str, Any]:
    return {
        "event_id": delivery.event_id,
        "order_id": delivery.order_id,
        "version": delivery.version,
        "status": _DELIVERY_STATUS.get(delivery.status, "pending"),
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code if delivery.HasField("last_status_code") else None,
        "last_error": delivery.last_error if delivery.HasField("last_error") else None,
        "next_attempt_at": rfc3339(delivery.next_attempt_at) if delivery.HasField("next_attempt_at") else None,
        "created_at": rfc3339(delivery.created_at),
        "updated_at": rfc3339(delivery.updated_at),
    }


def _endpoint_response(endpoint: pb.WebhookEndpoint, *, status: int = 200, replayed: bool = False) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(endpoint_json(endpoint), status_code=status, headers=headers)


@router.post("", status_code=201, response_model=WebhookEndpointWithSecret, responses={**PROBLEMS, 422: PROBLEMS[400]})
async def create_endpoint(
    body: WebhookEndpointCreate,
    http: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> Response:
    """Register a URL to POST the account's events to, signed as Standard Webhooks does. The
    answer carries the endpoint's signing `secret`, shown this once. A URL that may not be
    called is 400, saying why."""
    request = pb.CreateWebhookEndpointRequest(
        url=body.url, enabled_events=body.enabled_events, description=body.description
    )
    stub = backends.keyed_webhooks if idempotency_key else backends.webhooks
    scope = authenticated(http).scope
    endpoint, replayed = await backends.call(
        "CreateWebhookEndpoint", stub.CreateWebhookEndpoint, request, scope, idempotency_key
    )
    response = _endpoint_response(endpoint, status=201, replayed=replayed)
    response.headers["Location"] = f"/v1/webhook_endpoints/{endpoint.id}"
    return response


@router.get("", response_model=WebhookEndpointList, responses=PROBLEMS)
async def list_endpoints(http: Request, backends: BackendsDep, settings: SettingsDep) -> Response:
    """The account's endpoints (not the deleted ones), oldest first, without their secrets."""
    request = pb.ListWebhookEndpointsRequest()
    stub = backends.webhooks
    scope = authenticated(http).scope
    reply, _ = await backends.call("ListWebhookEndpoints", stub.ListWebhookEndpoints, request, scope)
    return JSONResponse({"webhook_endpoints": [endpoint_json(e) for e in reply.endpoints]})


@router.get("/{endpoint_id}", response_model=WebhookEndpointPublic, responses=PROBLEMS)
async def get_endpoint(
    endpoint_id: ResourceId, http: Request, backends: BackendsDep, settings: SettingsDep
) -> Response:
    """One endpoint, without its secret (a deleted one too, `status: "deleted"`)."""
    request = pb.GetWebhookEndpointRequest(endpoint_id=endpoint_id)
    stub = backends.webhooks
    scope = authenticated(http).scope
    endpoint, _ = await backends.call("GetWebhookEndpoint", stub.GetWebhookEndpoint, request, scope)
    return _endpoint_response(endpoint)


@router.delete("/{endpoint_id}", response_model=WebhookEndpointPublic, responses=PROBLEMS)
async def delete_endpoint(
    endpoint_id: ResourceId, http: Request, backends: BackendsDep, settings: SettingsDep
) -> Response:
    """Stop the deliveries to this endpoint: those still pending end `failed`. The answer is the
    endpoint, `status: "deleted"`; deleting it again answers the same."""
    request = pb.DeleteWebhookEndpointRequest(endpoint_id=endpoint_id)
    stub = backends.webhooks
    scope = authenticated(http).scope
    endpoint, _ = await backends.call("DeleteWebhookEndpoint", stub.DeleteWebhookEndpoint, request, scope)
    return _endpoint_response(endpoint)


@router.post(
    "/{endpoint_id}/rotate_secret", response_model=WebhookEndpointWithSecret, responses={**PROBLEMS, 422: PROBLEMS[400]}
)
async def rotate_secret(
    endpoint_id: ResourceId,
    http: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> Response:
    """A new signing secret, in the answer. Deliveries carry a signature by each secret while the
    old one overlaps (WEBHOOK_SECRET_OVERLAP_S, a day by default), so receivers can switch."""
    request = pb.RotateWebhookSecretRequest(endpoint_id=endpoint_id)
    stub = backends.keyed_webhooks if idempotency_key else backends.webhooks
    scope = authenticated(http).scope
    endpoint, replayed = await backends.call(
        "RotateWebhookSecret", stub.RotateWebhookSecret, request, scope, idempotency_key
    )
    return _endpoint_response(endpoint, replayed=replayed)


@router.get("/{endpoint_id}/deliveries", response_model=WebhookDeliveryList, responses=PROBLEMS)
async def list_deliveries(
    endpoint_id: ResourceId,
    http: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    page_token: Annotated[str | None, Query(max_length=100)] = None,
    order_id: Annotated[str | None, Query(max_length=64, description="Only this order's events.")] = None,
) -> Response:
    """The endpoint's delivery log, newest first: one delivery per event, with its attempts."""
    request = pb.ListWebhookDeliveriesRequest(
        endpoint_id=endpoint_id, page_size=page_size, page_token=page_token or "", order_id=order_id or ""
    )
    stub = backends.webhooks
    scope = authenticated(http).scope
    reply, _ = await backends.call("ListWebhookDeliveries", stub.ListWebhookDeliveries, request, scope)
    return JSONResponse(
        {"deliveries": [delivery_json(d) for d in reply.deliveries], "next_page_token": reply.next_page_token}
    )
