"""Following an order as it changes (CONTRACT §5): Server-Sent Events and WebSocket.

Both are served from the hub (gateway/push): the order service sees one stream per order per
gateway process, however many browsers follow the order. Long polling lives in
`GET /v1/orders/{id}` (routers/orders.py), on the same hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, WebSocket
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from gateway.deps import ResourceId, SettingsDep
from gateway.errors import ApiError
from gateway.push import Hub, OrderNotFound, PushUnavailable, Subscription
from gateway.push.deps import HubDep
from gateway.push.subscription import End
from gateway.routers.orders import ERRORS

router = APIRouter(prefix="/v1/orders", tags=["push"])

# How long a browser's EventSource waits before it reconnects (with Last-Event-ID).
RETRY_MS = 2000
_RETRY = b"retry: %d\n\n" % RETRY_MS
_KEEP_ALIVE = ServerSentEvent(comment="keep-alive", sep="\n")
_PONG = '{"type":"pong"}'
_CLOSE: dict[End, tuple[int, str]] = {
    End.FINAL: (1000, "the order reached a final status"),
    End.SLOW: (1013, "too far behind; reconnect with after_version"),
    End.SHUTDOWN: (1001, "the gateway is stopping; reconnect with after_version"),
    End.FAILED: (1011, "the order service refused the watch"),
}
CLOSE_NOT_FOUND = 4404
CLOSE_UNAVAILABLE = 1013
CLOSE_UNSUPPORTED = 1003


async def _join(hub: Hub, order_id: str, after_version: int, channel: str) -> Subscription:
    try:
        return await hub.subscribe(order_id, after_version, channel=channel, replay=True)
    except OrderNotFound:
        raise ApiError(404, f"order {order_id} not found") from None
    except PushUnavailable:
        raise ApiError(503, "the order service is unavailable; try again shortly") from None


def _last_event_id(value: str | None) -> int:
    if value is None or not value.strip():
        return 0
    if not value.strip().isdigit() or len(value.strip()) > 18:
        raise ApiError(
            400,
            "the Last-Event-ID header is invalid",
            errors=[{"field": "Last-Event-ID", "message": "must be an order version (an integer ≥ 0)"}],
        )
    return int(value)


async def _event_stream(subscription: Subscription) -> AsyncIterator[bytes]:
    try:
        yield _RETRY
        while (update := await subscription.get()) is not None:
            yield update.sse  # encoded once by the hub, whoever receives it
    finally:
        subscription.close()


@router.get(
    "/{order_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "retry, then one `order.updated` event per version"},
        204: {"description": "Last-Event-ID is at or past the final version: nothing more will come"},
        **ERRORS,
    },
)
async def order_events(
    order_id: ResourceId,
    hub: HubDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | None, Header(description="Resume: every version after this one, then live.")
    ] = None,
) -> Response:
    """Server-Sent Events: `retry: 2000`, the current version (or every version after
    `Last-Event-ID`), then one event per change; `: keep-alive` every SSE_HEARTBEAT_S; the
    stream ends after a final status."""
    subscription = await _join(hub, order_id, _last_event_id(last_event_id), "sse")
    if subscription.finished:
        subscription.close()
        return Response(status_code=204)
    return EventSourceResponse(
        _event_stream(subscription),
        ping=settings.sse_heartbeat_s,
        ping_message_factory=lambda: _KEEP_ALIVE,
        sep="\n",
        # Also when the stream never starts (a HEAD request, a client gone at once).
        background=BackgroundTask(subscription.close),
    )


@router.websocket("/{order_id}/ws")
async def order_socket(
    websocket: WebSocket,
    order_id: ResourceId,
    hub: HubDep,
    after_version: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> None:
    """WebSocket: JSON text frames `{"type": "order.updated", "version": n, "order": {…}}`;
    the client may send `{"type": "ping"}` (answered `{"type": "pong"}`) and nothing else."""
    await websocket.accept()
    try:
        subscription = await hub.subscribe(order_id, after_version, channel="websocket", replay=True)
    except OrderNotFound:
        await websocket.close(CLOSE_NOT_FOUND, "order not found")
        return
    except PushUnavailable:
        await websocket.close(CLOSE_UNAVAILABLE, "the order service is unavailable; try again shortly")
        return
    receiver = asyncio.create_task(_receive(websocket, subscription))
    try:
        await _send(websocket, subscription)
    except WebSocketDisconnect:
        pass
    finally:
        subscription.close()
        receiver.cancel()


async def _send(websocket: WebSocket, subscription: Subscription) -> None:
    while (update := await subscription.get()) is not None:
        if websocket.application_state is not WebSocketState.CONNECTED:
            return
        await websocket.send_text(update.ws)
    if subscription.end in _CLOSE and websocket.application_state is WebSocketState.CONNECTED:
        code, reason = _CLOSE[subscription.end]
        await websocket.close(code, reason)


async def _receive(websocket: WebSocket, subscription: Subscription) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            subscription.close()
            return
        if _is_ping(message.get("text")):
            if websocket.application_state is WebSocketState.CONNECTED:
                await websocket.send_text(_PONG)
            continue
        subscription.close()
        if websocket.application_state is WebSocketState.CONNECTED:
            await websocket.close(CLOSE_UNSUPPORTED, 'only {"type": "ping"} may be sent')
        return


def _is_ping(text: str | None) -> bool:
    if text is None:
        return False
    try:
        message: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"
