"""The gateway's SERVER span for each HTTP request and WebSocket, as plain ASGI middleware.

Installed only when tracing is on, outermost (gateway/pipeline.py), so that the span is current in
every log line of the request, the access log's included, and in the gRPC calls it makes (whose
interceptor carries it on as `traceparent`). The client's W3C `traceparent` (and `tracestate`)
is honoured: the span is its child, and the order and payment services' spans follow.

Our own rather than opentelemetry-instrumentation-asgi/-fastapi: those add a span for every
`send` and `receive` — one per SSE event and per WebSocket frame of a watch that may stay open
for an hour (opentelemetry-python-contrib#505) — where a push stream here gets one span for its
set-up: it ends when a `text/event-stream` answer starts or a WebSocket is accepted (or closed
before that). Every other answer's span ends with its last byte; a held long-poll GET is a
request like any other and its span covers the wait.

Recorded: method, route template, path, status, request id. Not recorded: the query string
(`?client_secret=` travels there) and every header but the trace's own (Authorization does).
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.middleware.headers import request_headers

# Probes and scrapers: a span every few seconds, about nothing.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class TraceRequests:
    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in request_headers(scope).trace.items()}
        parent = propagate.extract(carrier)
        method = scope.get("method", "WS")
        span = self.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"], "url.scheme": scope["scheme"]},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        ended = False

        def finish(status: int | None) -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            if status is not None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR, str(status)))
            span.end()

        status: int | None = None

        async def traced_send(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                _request_id(span, message)
                if _is_event_stream(message):
                    finish(status)  # the set-up of an SSE stream is done; the stream is not a span
            elif kind == "websocket.accept":
                finish(101)
            elif kind == "websocket.close" and not ended:
                status = 403  # refused before the handshake completed (as middleware/context.py counts it)
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False):
                finish(status)

        try:
            await self.app(scope, receive, traced_send)
        except BaseException as exc:
            if not ended:  # the type only: an exception's message may quote what it was given
                span.set_attribute("error.type", type(exc).__name__)
                status = status or 500
            raise
        finally:
            finish(status)
            otel_context.detach(token)


def _request_id(span: Span, message: Message) -> None:
    for key, value in message.get("headers", ()):
        if key == b"x-request-id":
            span.set_attribute("request_id", value.decode("latin-1"))
            return


def _is_event_stream(message: Message) -> bool:
    return any(
        key == b"content-type" and value.startswith(b"text/event-stream") for key, value in message.get("headers", ())
    )
