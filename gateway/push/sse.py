"""Server-Sent Events for one order (docs/push-channels.md#server-sent-events), as a lean ASGI app.

    retry: 2000

    id: 3
    event: order.updated
    data: {"type":"order.updated","version":3,"order":{…}}

    : keep-alive

Why not sse-starlette, which we used first: it runs an anyio task group with four tasks for
every open stream, and a stream answered through FastAPI's routing keeps its per-request state
alive for as long as it is open; an idle watcher must stay small (bench/README.md has the
figures). Here a stream is the request's own task, which sends, plus one small task that waits
for the client to leave; once its head is sent, the pipeline's layers let go of it
(gateway/streaming.py), and its keep-alives come from one clock for all streams
(push/heartbeat.py).
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from common.caller import CallerScope
from gateway.auth import caller_of
from gateway.deps import RESOURCE_ID_PATTERN
from gateway.errors import ApiError
from gateway.push.deps import order_id_of
from gateway.push.heartbeat import Heartbeat
from gateway.push.hub import Hub, OrderNotFound, PushUnavailable, ResumeAhead
from gateway.push.subscription import KeepAlive, Subscription
from gateway.streaming import serve_stream

# How long a browser's EventSource waits before it reconnects (sending Last-Event-ID).
RETRY_MS = 2000
_RETRY = b"retry: %d\n\n" % RETRY_MS
_KEEP_ALIVE = b": keep-alive\n\n"
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    # Tells nginx and similar proxies not to buffer the stream.
    (b"x-accel-buffering", b"no"),
]


def last_event_id(value: str | None) -> int | None:
    """The version in a Last-Event-ID header (0 replays the whole history); None — the current
    state, then each change — when there is none."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 18:
        raise ApiError(
            400,
            "the Last-Event-ID header is invalid",
            errors=[{"field": "Last-Event-ID", "message": "must be an order version (an integer ≥ 0)"}],
        )
    return int(value)


class EventStream:
    """The answer to GET /v1/orders/{id}/events for one order: 200 and the stream, 204 when
    nothing more will come, 404 / 503 problem+json; `ApiError` for a bad Last-Event-ID."""

    def __init__(self, hub: Hub, order_id: str, last_event_id_header: str | None, scope: CallerScope) -> None:
        self.hub = hub
        self.order_id = order_id
        self.scope = scope
        self.after_version = last_event_id(last_event_id_header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            subscription = await self.hub.subscribe(
                self.order_id, self.after_version, self.scope, channel="sse", replay=True
            )
        except OrderNotFound:
            raise ApiError(404, f"order {self.order_id} not found") from None
        except PushUnavailable:
            raise ApiError(503, "the order service is unavailable; try again shortly") from None
        except ResumeAhead as ahead:
            raise ApiError(
                400,
                f"Last-Event-ID {self.after_version} is ahead of the order (at version {ahead.current})",
                errors=[{"field": "Last-Event-ID", "message": f"must be ≤ {ahead.current}"}],
            ) from None
        if subscription.finished or scope["method"] == "HEAD":
            try:
                if subscription.finished:
                    # At or past the final version: 204 tells an EventSource to stop reconnecting.
                    await Response(status_code=204)(scope, receive, send)
                else:
                    await Response(headers=dict((k.decode(), v.decode()) for k, v in _HEADERS))(scope, receive, send)
            finally:
                subscription.close()
            return
        stream = _Live(subscription, self.hub.heartbeat)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await _body(send, _RETRY)
        except BaseException:
            stream.abandon()
            raise
        # The head has gone through the pipeline; the stream itself is served by the thin
        # dispatch (gateway/streaming.py).
        await serve_stream(scope, receive, send, stream)


class _Live:
    """An open stream: the subscription's versions as events, a keep-alive at each beat of the
    process's heartbeat (push/heartbeat.py), until the subscription ends or the client leaves."""

    __slots__ = ("heartbeat", "subscription")

    def __init__(self, subscription: Subscription, heartbeat: Heartbeat) -> None:
        self.subscription = subscription
        self.heartbeat = heartbeat

    async def run(self, receive: Receive, send: Send) -> None:
        subscription = self.subscription
        listener = asyncio.create_task(_close_on_disconnect(receive, subscription))
        slot = self.heartbeat.join(subscription)
        try:
            while (event := await subscription.next_event()) is not None:
                # An update is encoded once by the hub, whoever receives it.
                await _body(send, _KEEP_ALIVE if isinstance(event, KeepAlive) else event.sse)
            # The final status sent, the client dropped for being slow or gone, or shutdown.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.heartbeat.leave(subscription, slot)
            listener.cancel()
            subscription.close()

    def abandon(self) -> None:
        self.subscription.close()


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _close_on_disconnect(receive: Receive, subscription: Subscription) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    subscription.close()


class OrderEvents:
    """GET /v1/orders/{order_id}/events as a plain ASGI endpoint (a Starlette `Route`).
    `path` is its template, which it puts in the scope as `route` for the access log and the
    metrics (FastAPI does that only for its own routes)."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        order_id = order_id_of(scope)
        if order_id is None:
            raise ApiError(
                400,
                "the request is invalid",
                errors=[{"field": "order_id", "message": f"must match {RESOURCE_ID_PATTERN}"}],
            )
        caller = caller_of(scope)
        if caller is None:  # gateway/auth.py lets nothing else through; refuse rather than assume
            raise ApiError(401, "no API key", code="UNAUTHENTICATED")
        app = scope["app"]
        last_event = Headers(scope=scope).get("last-event-id")
        stream = EventStream(app.state.hub, order_id, last_event, caller.scope)
        await stream(scope, receive, send)
