"""/v1/events: the caller's account's events feed (docs/webhooks.md), paged or as Server-Sent Events.
Read-only keys may read both."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from common.documents import event_json
from common.input_limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from gateway.auth import authenticated
from gateway.deps import BackendsDep, SettingsDep
from gateway.event_schemas import EventList
from gateway.push.feed import FeedStream, FeedStreams
from gateway.responses import JSONResponse
from gateway.schemas import PROBLEMS
from shop.order.v1 import events_pb2

router = APIRouter(prefix="/v1/events", tags=["events"])

Cursor = Annotated[str | None, Query(max_length=100, description="A `next_cursor` (or an event's SSE `id`).")]


@router.get("", response_model=EventList, responses=PROBLEMS)
async def list_events(
    http: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    after: Cursor = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Response:
    """The account's events — every new version of each of its orders — **oldest first**, after
    the cursor `after` (without it: from the account's first event). Follow `next_cursor` to see
    every event exactly once, each order's versions in ascending order; an empty page has a
    `next_cursor` too, to poll with later. The cursor is opaque."""
    request = events_pb2.ListEventsRequest(after=after or "", page_size=page_size)
    reply, _ = await backends.call("ListEvents", backends.events.ListEvents, request, authenticated(http).scope)
    public_url = settings.gateway_public_url
    return JSONResponse({"events": [event_json(e, public_url) for e in reply.events], "next_cursor": reply.next_cursor})


@router.get(
    "/stream",
    response_class=Response,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`retry: 2000`, then one event per new event of the account, `: keep-alive` comments",
        },
        **PROBLEMS,
    },
)
async def stream_events(
    http: Request,
    backends: BackendsDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str,
        Header(
            description="Resume after this cursor (an event's `id:`); without it, new events only.",
            json_schema_extra={"maxLength": 100},
        ),
    ] = "",
) -> Response:
    """The same feed as Server-Sent Events:

        id: <cursor>
        event: order.updated
        data: {"id": "evt_…", "type": "order.updated", "created_at": "…", "data": {"version": 3, "order": {…}}}

    Without `Last-Event-ID` the stream starts with new events only; with it, every event after
    that cursor comes first. A `: keep-alive` comment every SSE_HEARTBEAT_S."""
    streams: FeedStreams = http.app.state.feed_streams
    return FeedStream(
        backends.events,
        authenticated(http).scope,
        last_event_id.strip() or None,
        settings.gateway_public_url,
        settings.sse_heartbeat_s,
        streams,
    )
