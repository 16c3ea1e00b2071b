"""GET /v1/events/stream: an account's events feed as Server-Sent Events (docs/webhooks.md).

    retry: 2000

    id: <cursor>
    event: order.updated
    data: {"id": "evt_…", "type": "order.updated", "created_at": …, "data": {"version": 3, "order": {…}}}

    : keep-alive

Unlike an order's stream (one per order, shared by every client of it in the hub), each feed
stream is its account's own gRPC `WatchEvents` stream: a merchant's server or two follow a feed,
not a thousand browsers. When the order service replica behind it stops, the stream is opened
again from the last cursor sent, so the client notices nothing; if that fails for a while the
response ends, and the client resumes with `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc
import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from common.caller import CallerScope as CallScope
from common.documents import event_json
from common.errors import field_violations, metadata_value, rich_status
from gateway.errors import ApiError
from gateway.push.shutdown import on_exit_signals
from gateway.push.sse import RETRY_MS
from shop.order.v1 import events_pb2, events_pb2_grpc

log = logging.getLogger(__name__)

CURSOR_KEY = "events-cursor"  # the initial metadata of WatchEvents (order_service/event_service.py)
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]
_KEEP_ALIVE = b": keep-alive\n\n"
# Re-opening the gRPC stream after the replica behind it went away: this often, this long at most.
_REOPEN_EVERY_S = 0.2
_REOPEN_FOR_S = 30.0
_QUEUE = 256


class FeedStreams:
    """This process's feed streams, all ended at once when it is asked to stop (as the hub ends
    the order streams: push/shutdown.py), so that a stop does not wait for them."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self._restore: Callable[[], None] = lambda: None

    def start(self) -> None:
        self._restore = on_exit_signals(self.stopping.set)

    def close(self) -> None:
        self.stopping.set()
        self._restore()


def _sse(event: events_pb2.Event, public_url: str) -> bytes:
    data = orjson.dumps(event_json(event, public_url))
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event.cursor.encode(), event.type.encode(), data)


class FeedStream(Response):
    """The answer: 200 and the stream; 400 for a Last-Event-ID that is not a cursor."""

    def __init__(
        self,
        stub: events_pb2_grpc.EventServiceAsyncStub,
        scope: CallScope,
        last_event_id: str | None,
        public_url: str,
        heartbeat_s: float,
        streams: FeedStreams,
    ) -> None:
        super().__init__()  # what FastAPI reads of a response (`background`, …); the body is sent below
        self.stub = stub
        self.call_scope = scope
        self.cursor = last_event_id
        self.public_url = public_url
        self.heartbeat_s = heartbeat_s
        self.streams = streams

    def _open(self) -> Any:
        request = events_pb2.WatchEventsRequest()
        if self.cursor is not None:
            request.after = self.cursor
        return self.stub.WatchEvents(request, metadata=self.call_scope.metadata() or None)

    async def _start(self) -> Any:
        """The gRPC stream, once the order service has accepted it (its starting cursor sent)."""
        call = self._open()
        try:
            cursor = metadata_value(await call.initial_metadata(), CURSOR_KEY)
            if cursor is None:  # refused before it started: reading gives its error
                async for _ in call:
                    pass
        except grpc.aio.AioRpcError as exc:
            call.cancel()
            if any(field == "after" for field, _ in field_violations(rich_status(exc))):
                raise ApiError(
                    400,
                    "the Last-Event-ID header is not a cursor of this feed",
                    errors=[{"field": "Last-Event-ID", "message": "is not a cursor this API gave"}],
                ) from None
            raise
        self.cursor = str(cursor)
        return call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = await self._start()
        # (A HEAD comes as a GET that hangs up after the first body: gateway/head.py.)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE)
        reader = asyncio.create_task(self._read(call, queue))
        listener = asyncio.create_task(_disconnected(receive))
        stopping = asyncio.create_task(self.streams.stopping.wait())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await _body(send, b"retry: %d\n\n" % RETRY_MS)
            while True:
                getting = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {getting, listener, stopping}, timeout=self.heartbeat_s, return_when=asyncio.FIRST_COMPLETED
                )
                if getting not in done:
                    getting.cancel()
                    if done:  # the client left, or the gateway is stopping
                        break
                    await _body(send, _KEEP_ALIVE)
                    continue
                chunk = getting.result()
                if chunk is None:
                    break
                await _body(send, chunk)
            if not listener.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            for task in (reader, listener, stopping):
                task.cancel()

    async def _read(self, call: Any, queue: asyncio.Queue[bytes | None]) -> None:
        """gRPC messages → SSE events in `queue`; None when the stream ends for good."""
        loop = asyncio.get_running_loop()
        try:
            while call is not None:
                try:
                    async for event in call:
                        await queue.put(_sse(event, self.public_url))
                        self.cursor = event.cursor
                    break  # the order service ended it without an error (it never does)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:
                        log.warning("events stream ended", extra={"grpc_code": exc.code().name})
                        break
                call = await self._reopen(loop.time() + _REOPEN_FOR_S)
        finally:
            if call is not None:
                call.cancel()
        await queue.put(None)

    async def _reopen(self, until: float) -> Any:
        """The stream again from the last cursor sent, on whichever replica answers; None if none
        does in time."""
        loop = asyncio.get_running_loop()
        while loop.time() < until and not self.streams.stopping.is_set():
            await asyncio.sleep(_REOPEN_EVERY_S)
            try:
                return await self._start()
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    return None
            except ApiError:
                return None
        return None


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
