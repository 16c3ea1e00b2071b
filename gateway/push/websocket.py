"""WebSocket for one order (docs/push-channels.md#websocket), as a lean ASGI app.

    server → client   {"type": "order.updated", "version": 3, "order": {…}}   (text frames)
    client → server   {"type": "ping"}  →  {"type": "pong"};  anything else: close 1003

Closes: 1000 after a final status, 4404 for an unknown order, 1008 for an invalid id or
`after_version` (or one ahead of the order), 1013 when the client fell too far behind or the
order service cannot be reached (reconnect with `after_version`), 1001 when the gateway stops,
1011 when the order service refuses the watch. Every close comes after the handshake, so that a
browser's WebSocket sees its code and reason. Dead peers are noticed by the server's protocol-level pings
(uvicorn sends one every 20 s and closes a connection that does not answer within 20 s).

Like the SSE endpoint (see sse.py), this is a plain ASGI app rather than a FastAPI route, to keep
an idle watcher small: the connection's own task sends, one small task receives; once the socket
is accepted and subscribed, the pipeline's layers let go of it (gateway/streaming.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import Receive, Scope, Send

from gateway.auth import CLOSE_NOT_FOUND, caller_of
from gateway.push.deps import order_id_of
from gateway.push.hub import OrderNotFound, PushUnavailable, ResumeAhead
from gateway.push.subscription import End, Subscription
from gateway.streaming import serve_stream

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN_LATER = 1013
_CLOSE: dict[End, tuple[int, str]] = {
    End.FINAL: (CLOSE_NORMAL, "the order reached a final status"),
    End.SLOW: (CLOSE_TRY_AGAIN_LATER, "too far behind; reconnect with after_version"),
    End.SHUTDOWN: (1001, "the gateway is stopping; reconnect with after_version"),
    End.FAILED: (1011, "the order service refused the watch"),
}
_PONG = '{"type":"pong"}'
_MAX_VERSION = 2**62


class _Socket:
    """Sends that stop quietly once the socket is closed, by either side."""

    __slots__ = ("_send", "closed")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.closed = False

    async def text(self, text: str) -> None:
        if not self.closed:
            await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


class BadResumePoint(ValueError):
    pass


def after_version_of(query_string: bytes) -> int | None:
    """`?after_version=<v>` (0 replays the whole history); None when absent (the current state).
    BadResumePoint when it is not an integer in 0..2^62."""
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("after_version")
    if values is None:
        return None
    value = values[-1].strip()
    if not value.isdigit() or int(value) > _MAX_VERSION:
        raise BadResumePoint("after_version must be an integer ≥ 0")
    return int(value)


class OrderSocket:
    """WS /v1/orders/{order_id}/ws as a plain ASGI endpoint (a Starlette `WebSocketRoute`);
    `path` is its template, for the access log and the metrics (see sse.OrderEvents)."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        socket = _Socket(send)
        caller = caller_of(scope)
        if caller is None:  # gateway/auth.py refuses the handshake first; refuse rather than assume
            await socket.close(CLOSE_POLICY, "no API key")
            return
        order_id = order_id_of(scope)
        try:
            after_version = after_version_of(scope["query_string"])
        except BadResumePoint as exc:
            await socket.close(CLOSE_POLICY, str(exc))
            return
        if order_id is None:
            await socket.close(CLOSE_POLICY, "invalid order id")
            return
        try:
            try:
                subscription = await scope["app"].state.hub.subscribe(
                    order_id, after_version, caller.scope, channel="websocket", replay=True
                )
            except OrderNotFound:
                await socket.close(CLOSE_NOT_FOUND, "order not found")
                return
            except PushUnavailable:
                await socket.close(CLOSE_TRY_AGAIN_LATER, "the order service is unavailable; try again shortly")
                return
            except ResumeAhead as ahead:
                await socket.close(CLOSE_POLICY, f"after_version is ahead of the order (at version {ahead.current})")
                return
            # Accepted and subscribed: the rest is served by the thin dispatch (gateway/streaming.py).
            await serve_stream(scope, receive, send, _Live(subscription))
        except OSError:
            pass  # the client went away (uvicorn's ClientDisconnected)


class _Live:
    __slots__ = ("subscription",)

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription

    async def run(self, receive: Receive, send: Send) -> None:
        with contextlib.suppress(OSError):  # the client went away
            await _serve(_Socket(send), self.subscription, receive)

    def abandon(self) -> None:
        self.subscription.close()


async def _serve(socket: _Socket, subscription: Subscription, receive: Receive) -> None:
    receiver = asyncio.create_task(_receive(socket, subscription, receive))
    try:
        while (update := await subscription.get()) is not None:
            await socket.text(update.ws)  # encoded once by the hub, whoever receives it
        if subscription.end in _CLOSE:
            await socket.close(*_CLOSE[subscription.end])
    finally:
        subscription.close()
        receiver.cancel()


async def _receive(socket: _Socket, subscription: Subscription, receive: Receive) -> None:
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                socket.closed = True
                return
            if _is_ping(message.get("text")):
                await socket.text(_PONG)
                continue
            await socket.close(CLOSE_UNSUPPORTED, 'only {"type": "ping"} may be sent')
            return
    except OSError:
        socket.closed = True
    finally:
        subscription.close()


def _is_ping(text: str | None) -> bool:
    if text is None:
        return False
    try:
        message: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"
