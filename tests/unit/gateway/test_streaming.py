"""The thin dispatch of long-lived streams (gateway/streaming.py): what a stream handed over holds
and when the pipeline's end-of-stream work runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from starlette.types import Receive, Scope, Send

from gateway.streaming import dispatch, serve_stream, when_stream_ends
from tests.unit.gateway.asgi import Exchange, http_scope


@dataclass
class Recorder:
    events: list[str] = field(default_factory=list)

    async def run(self, receive: Receive, send: Send) -> None:
        self.events.append("stream")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def abandon(self) -> None:
        self.events.append("abandoned")


def pipeline(stream: Recorder, *, fail_after: bool = False):  # type: ignore[no-untyped-def]
    """A middleware (which logs when the request ends, as RequestContext does) around an endpoint
    that sends its head and hands the stream over."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        scope["shop.left_behind"] = object()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await serve_stream(scope, receive, send, stream)
        stream.events.append("endpoint returned")

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await endpoint(scope, receive, send)
            if fail_after:
                raise RuntimeError("after the hand-over")
        finally:
            if not when_stream_ends(scope, lambda: stream.events.append("logged")):
                stream.events.append("logged at once")

    return middleware


async def test_the_stream_runs_after_the_pipeline_has_returned_and_the_log_after_the_stream() -> None:
    stream, exchange, scope = Recorder(), Exchange(), http_scope("GET", "/v1/orders/ord_1/events")
    await dispatch(pipeline(stream), scope, exchange.receive, exchange.send)
    assert stream.events == ["endpoint returned", "stream", "logged"]
    assert [m["type"] for m in exchange.sent] == ["http.response.start", "http.response.body"]
    assert "shop.left_behind" not in scope  # the pipeline's leftovers are not kept for the stream
    assert scope["path"] == "/v1/orders/ord_1/events"


async def test_without_the_dispatch_the_stream_runs_in_place() -> None:
    stream, exchange = Recorder(), Exchange()
    await pipeline(stream)(http_scope(), exchange.receive, exchange.send)
    assert stream.events == ["stream", "endpoint returned", "logged at once"]


async def test_a_stream_the_pipeline_fails_after_is_abandoned_and_still_logged() -> None:
    stream, exchange = Recorder(), Exchange()
    with pytest.raises(RuntimeError):
        await dispatch(pipeline(stream, fail_after=True), http_scope(), exchange.receive, exchange.send)
    assert stream.events == ["endpoint returned", "abandoned", "logged"]
