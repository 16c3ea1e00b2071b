"""The thin dispatch of long-lived streams (an order's SSE stream and WebSocket).

A stream's set-up is a request like any other: it goes through the whole pipeline
(gateway/pipeline.py) — the request id, CORS and the WebSocket's Origin, the header limit,
authentication and the rate limits, the trace's span — and FastAPI's routing and error
handling, down to the endpoint, which subscribes to the hub and sends the answer's head (or
accepts the WebSocket). What follows can last an hour: served from the bottom of that pipeline,
every layer's coroutine frame, the closures it wrapped around `send` and what FastAPI keeps in
the scope would stay alive, for every idle watcher, while none of them has anything left to do.

So the endpoint hands the rest of the stream over (`serve_stream`) and returns; the pipeline
unwinds, and the outermost layer (`dispatch`, in front of FastAPI: gateway/app.py) serves the
stream with the server's own `send` and `receive`.

The price: a middleware sees none of a handed-over stream's messages after its head. None of
ours needs them (each looks at the start of the answer only: the request id header, CORS, the
status for the access log and the metrics, the span, which ends there, the 404 or close 4404
that counts as a failed authentication — that one comes before a stream is handed over). A
middleware with work to do when the stream ends asks for it with `when_stream_ends` (the access
log line, written with the stream's whole duration).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

_KEY = "shop.stream"
# What a stream may still read of its scope: the ASGI keys, and the route (for the access log).
_KEPT = frozenset(
    {
        "type",
        "asgi",
        "http_version",
        "method",
        "scheme",
        "path",
        "raw_path",
        "root_path",
        "query_string",
        "headers",
        "client",
        "server",
        "subprotocols",
        "state",
        "extensions",
        "route",
    }
)


class Stream(Protocol):
    async def run(self, receive: Receive, send: Send) -> None:
        """Serve the stream to its end (its head has been sent)."""

    def abandon(self) -> None:
        """Release what the stream holds: it will not run (the pipeline failed after it was
        handed over)."""


@dataclass(slots=True)
class _Handoff:
    stream: Stream | None = None
    at_end: list[Callable[[], None]] = field(default_factory=list)


async def serve_stream(scope: Scope, receive: Receive, send: Send, stream: Stream) -> None:
    """Have `stream` served once the pipeline has returned; where no `dispatch` is in front (an
    app assembled otherwise, as some unit tests do), here and now."""
    handoff: _Handoff | None = scope.get(_KEY)
    if handoff is None or handoff.stream is not None:
        await stream.run(receive, send)
    else:
        handoff.stream = stream


def when_stream_ends(scope: Scope, callback: Callable[[], None]) -> bool:
    """If a stream was handed over, call `callback` when it ends and say True; else False (the
    request is over)."""
    handoff: _Handoff | None = scope.get(_KEY)
    if handoff is None or handoff.stream is None:
        return False
    handoff.at_end.append(callback)
    return True


async def dispatch(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """`app` (the pipeline and FastAPI), then the stream it handed over, if any."""
    if scope["type"] not in ("http", "websocket"):
        await app(scope, receive, send)
        return
    handoff = scope[_KEY] = _Handoff()
    try:
        try:
            await app(scope, receive, send)
        except BaseException:
            if handoff.stream is not None:
                handoff.stream.abandon()
            raise
        if handoff.stream is None:
            return
        _trim(scope)
        await handoff.stream.run(receive, send)
    finally:
        for callback in handoff.at_end:
            callback()


def _trim(scope: Scope) -> None:
    """Drop what the pipeline and FastAPI left in the scope (their exit stacks, the header
    reading, the path parameters): the server keeps the scope as long as the connection. A
    dict does not shrink when keys are deleted, hence the copy back."""
    kept = {key: value for key, value in scope.items() if key in _KEPT}
    scope.clear()
    scope.update(kept)
