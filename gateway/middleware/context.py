"""Every request's context: its id, its line in the access log, its metrics.

The request id is the client's `X-Request-ID` when it sent a usable one, else a new one; it is
returned on every answer and kept in the logging context, and so in every log line of the
request and in the gRPC metadata of every call it makes (common/logs.py).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.logs import adopt_request_id, request_id_var
from gateway.metrics import HTTP_LATENCY, HTTP_REQUESTS
from gateway.middleware.headers import request_headers
from gateway.streaming import when_stream_ends

log = logging.getLogger("gateway.access")

# Asked every few seconds by every orchestrator (compose, Kubernetes, `make run` while it waits):
# a line each at INFO buried the requests. /metrics counts them either way; the gRPC services
# log their health checks at DEBUG too.
_PROBES = frozenset({"/healthz", "/readyz"})


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        request_id = adopt_request_id(headers.get(b"x-request-id"))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "websocket.accept":
                status = 101
            elif message["type"] == "websocket.close" and status == 500:
                status = 403  # refused before the handshake completed
            if message["type"] == "websocket.http.response.start":
                status = message["status"]  # refused in place of the handshake (gateway/auth.py)
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                HTTP_LATENCY.labels(scope.get("method", "WS"), _route(scope)).observe(time.perf_counter() - started)
            await send(message)

        def done() -> None:
            template = _route(scope)
            method = scope.get("method", "WS")
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            log.log(
                logging.DEBUG if template in _PROBES else logging.INFO,
                "request",
                extra={
                    "method": method,
                    "route": template,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # A stream handed over to the thin dispatch is logged when it ends, with its whole
            # duration, as the others are; the request id stays in the context until then.
            if not when_stream_ends(scope, done):
                done()
                request_id_var.reset(token)


def _route(scope: Scope) -> str:
    """The path template of the route that answered (what metrics and the log group by)."""
    return getattr(scope.get("route"), "path", "unmatched")
