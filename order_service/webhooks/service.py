"""WebhookService: webhook endpoints and their delivery logs over gRPC (docs/webhooks.md)."""

from __future__ import annotations

import base64
import binascii

from common.db import Row
from common.errors import REPLAYED_KEY, InvalidArgument
from common.input_limits import IDEMPOTENCY_KEY_RE, check_identifier
from common.timestamps import timestamp_us
from order_service.event_service import Context, account_of, page_size
from order_service.events import event_id
from order_service.webhooks import deliveries
from order_service.webhooks.endpoints import Endpoints
from shop.order.v1 import events_pb2 as pb
from shop.order.v1 import events_pb2_grpc

_STATUS = {
    deliveries.PENDING: pb.WEBHOOK_DELIVERY_STATUS_PENDING,
    deliveries.SUCCEEDED: pb.WEBHOOK_DELIVERY_STATUS_SUCCEEDED,
    deliveries.FAILED: pb.WEBHOOK_DELIVERY_STATUS_FAILED,
}


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"d1:{seq}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii") if len(token) <= 40 else ""
    except (binascii.Error, ValueError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "d1" or not number.isdigit() or len(number) > 18:
        raise InvalidArgument("invalid page token", violations=[("page_token", "is not a token this API gave")])
    return int(number)


def idempotency_key(context: Context) -> str | None:
    """The REST `Idempotency-Key` (gRPC metadata `idempotency-key`) of a create or a rotation."""
    for key, value in context.invocation_metadata() or ():
        if key == "idempotency-key":
            if not isinstance(value, str) or not IDEMPOTENCY_KEY_RE.match(value):
                raise InvalidArgument(
                    "invalid idempotency key",
                    violations=[("Idempotency-Key", "must be 1-255 visible ASCII characters")],
                )
            return value
    return None


def _answer(context: Context, answer: tuple[pb.WebhookEndpoint, bool]) -> pb.WebhookEndpoint:
    endpoint, replayed = answer
    if replayed:
        context.set_trailing_metadata(((REPLAYED_KEY, "true"),))
    return endpoint


def delivery_message(row: Row) -> pb.WebhookDelivery:
    delivery = pb.WebhookDelivery(
        event_id=event_id(row["order_id"], row["version"]),
        status=_STATUS[row["status"]],
        attempts=row["attempts"],
        order_id=row["order_id"],
        version=row["version"],
        created_at=timestamp_us(row["created_us"]),
        updated_at=timestamp_us(row["updated_us"]),
    )
    if row["last_status_code"] is not None:
        delivery.last_status_code = row["last_status_code"]
    if row["last_error"] is not None:
        delivery.last_error = row["last_error"]
    if row["status"] == deliveries.PENDING and row["next_attempt_us"] is not None:
        delivery.next_attempt_at.CopyFrom(timestamp_us(row["next_attempt_us"]))
    return delivery


class WebhookServicer(events_pb2_grpc.WebhookServiceServicer):
    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints

    async def CreateWebhookEndpoint(
        self, request: pb.CreateWebhookEndpointRequest, context: Context
    ) -> pb.WebhookEndpoint:
        account_id = account_of(context)
        return _answer(context, await self.endpoints.create(account_id, request, idempotency_key(context)))

    async def GetWebhookEndpoint(self, request: pb.GetWebhookEndpointRequest, context: Context) -> pb.WebhookEndpoint:
        account_id = account_of(context)
        check_identifier("endpoint_id", request.endpoint_id)
        return await self.endpoints.get(account_id, request.endpoint_id)

    async def ListWebhookEndpoints(
        self, request: pb.ListWebhookEndpointsRequest, context: Context
    ) -> pb.ListWebhookEndpointsResponse:
        return pb.ListWebhookEndpointsResponse(endpoints=await self.endpoints.list(account_of(context)))

    async def DeleteWebhookEndpoint(
        self, request: pb.DeleteWebhookEndpointRequest, context: Context
    ) -> pb.WebhookEndpoint:
        account_id = account_of(context)
        check_identifier("endpoint_id", request.endpoint_id)
        return await self.endpoints.delete(account_id, request.endpoint_id)

    async def RotateWebhookSecret(self, request: pb.RotateWebhookSecretRequest, context: Context) -> pb.WebhookEndpoint:
        account_id = account_of(context)
        check_identifier("endpoint_id", request.endpoint_id)
        return _answer(context, await self.endpoints.rotate(account_id, request, idempotency_key(context)))

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Context
    ) -> pb.ListWebhookDeliveriesResponse:
        account_id = account_of(context)
        check_identifier("endpoint_id", request.endpoint_id)
        size = page_size(request.page_size)
        before = _decode_token(request.page_token) if request.page_token else None
        if request.order_id:
            check_identifier("order_id", request.order_id)
        await self.endpoints.exists(account_id, request.endpoint_id)
        rows = await deliveries.log_page(
            self.endpoints.db, request.endpoint_id, size + 1, before, request.order_id or None
        )
        page = rows[:size]
        token = _encode_token(page[-1]["seq"]) if len(rows) > size else ""
        return pb.ListWebhookDeliveriesResponse(deliveries=[delivery_message(r) for r in page], next_page_token=token)
