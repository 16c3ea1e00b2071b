"""Following an order as it changes (docs/push-channels.md#the-four-ways): Server-Sent Events and
WebSocket.

Both streams are served by plain ASGI endpoints from gateway/push (sse.py, websocket.py say
why: a small idle watcher), registered here ahead of the FastAPI route that documents the SSE
stream in OpenAPI; should that route ever be reached, it serves the same stream. Long polling
lives in `GET /v1/orders/{id}` (routers/orders.py), on the same hub.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from gateway.auth import authenticated
from gateway.deps import ResourceId
from gateway.push.deps import HubDep
from gateway.push.sse import EventStream, OrderEvents
from gateway.push.websocket import OrderSocket
from gateway.schemas import PROBLEMS

EVENTS_PATH = "/v1/orders/{order_id}/events"
SOCKET_PATH = "/v1/orders/{order_id}/ws"

router = APIRouter(tags=["push"])
router.routes.append(Route(EVENTS_PATH, OrderEvents(EVENTS_PATH), methods=["GET"], include_in_schema=False))
router.routes.append(WebSocketRoute(SOCKET_PATH, OrderSocket(SOCKET_PATH)))


class _Stream(Response):
    def __init__(self, stream: EventStream) -> None:
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream(scope, receive, send)


@router.get(
    EVENTS_PATH,
    response_class=Response,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`retry: 2000`, then one `order.updated` event per version, `: keep-alive` comments",
        },
        204: {"description": "Last-Event-ID is at or past the final version: nothing more will come"},
        **PROBLEMS,
    },
)
async def order_events(
    order_id: ResourceId,
    hub: HubDep,
    request: Request,
    last_event_id: Annotated[
        str,
        Header(
            description="Resume: every version after this one, then live.",
            # Documented for OpenAPI (a plain string: `str | None` documents a JSON null, which a
            # header cannot carry); sse.last_event_id() checks it and answers 400 otherwise.
            json_schema_extra={"pattern": "^[0-9]{0,18}$"},
        ),
    ] = "",
) -> Response:
    """Server-Sent Events: `retry: 2000`, the current version (or every version after
    `Last-Event-ID`), then one event per change:

        id: 3
        event: order.updated
        data: {"type": "order.updated", "version": 3, "order": {…}}

    A `: keep-alive` comment every SSE_HEARTBEAT_S. The stream ends after a final status; a
    reconnect with a Last-Event-ID at or past the final version gets 204.

    The WebSocket `WS /v1/orders/{order_id}/ws` (`?after_version=`) sends the same messages
    as JSON text frames; see docs/push-channels.md#websocket."""
    return _Stream(EventStream(hub, order_id, last_event_id, authenticated(request).scope))
