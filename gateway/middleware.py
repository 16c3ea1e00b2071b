"""ASGI middleware (plain ASGI, so that streaming answers pass straight through):

- RequestContext: adopts or makes `X-Request-ID`, returns it on every answer, keeps it in the
  logging context (and so in the gRPC metadata of every call), logs and counts each request;
- HeaderGuard: refuses a request whose headers are over 16 KiB in all (431);
- BodyGuard: refuses a body over 64 KiB (413), a body that is not JSON or that is compressed
  (415), and a request with two Content-Type or two Idempotency-Key headers (400: which one
  would count?) before any route reads it.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.logs import adopt_request_id, request_id_var
from gateway.errors import problem
from gateway.metrics import HTTP_LATENCY, HTTP_REQUESTS
from gateway.schemas import FieldError

log = logging.getLogger("gateway.access")

MAX_BODY_BYTES = 64 * 1024
# Names and values together. Browsers and curl send well under 2 KiB; uvicorn's httptools
# parser sets no limit of its own (8 MB of headers were taken).
MAX_HEADER_BYTES = 16 * 1024
_JSON_TYPE_RE = re.compile(r"^application/([a-z0-9.+-]+\+)?json\s*(;.*)?$", re.IGNORECASE)


# Asked every few seconds by every orchestrator (compose, Kubernetes, `make run` while it waits):
# a line each at INFO buried the requests. /metrics counts them either way; the gRPC services
# log their health checks at DEBUG too.
_PROBES = frozenset({"/healthz", "/readyz"})


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = adopt_request_id(header(scope, b"x-request-id"))
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
                route = scope.get("route")
                template = getattr(route, "path", "unmatched")
                HTTP_LATENCY.labels(scope.get("method", "WS"), template).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
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
            request_id_var.reset(token)


class HeaderGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or sum(len(k) + len(v) for k, v in scope["headers"]) <= MAX_HEADER_BYTES:
            await self.app(scope, receive, send)
            return
        await problem(431, f"the request's headers are over {MAX_HEADER_BYTES} bytes in all")(scope, receive, send)


def _encoded(scope: Scope) -> bool:
    """Whether the body says it is compressed: the gateway reads bodies as they come, so a body
    labelled gzip would be parsed as if it were plain JSON."""
    codings = (c.strip().lower() for k, v in scope["headers"] if k == b"content-encoding" for c in v.split(b","))
    return any(c not in (b"", b"identity") for c in codings)


# Headers that may appear once in a POST: the first and the last could disagree.
_SINGLE_HEADERS = (b"content-type", b"idempotency-key")


_IDENTITY = {"Accept-Encoding": "identity"}


class BodyTooLarge(Exception):
    pass


class BodyGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        for name in _SINGLE_HEADERS:
            if sum(1 for key, _ in scope["headers"] if key == name) > 1:
                field = name.decode().title()
                errors: list[FieldError] = [{"field": field, "message": "must be sent once"}]
                await problem(400, f"the request has more than one {field} header", errors=errors)(scope, receive, send)
                return
        length = header(scope, b"content-length")
        chunked = (header(scope, b"transfer-encoding") or "").lower() == "chunked"
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await problem(413, f"the request body is over {MAX_BODY_BYTES} bytes")(scope, receive, send)
            return
        has_body = chunked or (length is not None and int(length) > 0)
        content_type = header(scope, b"content-type")
        if has_body and not (content_type and _JSON_TYPE_RE.match(content_type)):
            await problem(415, "the request body must be application/json")(scope, receive, send)
            return
        if has_body and _encoded(scope):
            # RFC 9110 §15.5.16: the 415 for a content coding names the ones accepted.
            reply = problem(415, "the request body must not be compressed (Content-Encoding)", headers=_IDENTITY)
            await reply(scope, receive, send)
            return
        if chunked:
            await self._buffered(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge
            return message

        await self.app(scope, counted_receive, send)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A chunked body (its size unknown in advance) is read here, at most 64 KiB and a byte,
        so that one too large is answered 413: raised from inside a route, FastAPI's body parser
        turned it into 400 "There was an error parsing the body"."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was complete: nobody to answer
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                await problem(413, f"the request body is over {MAX_BODY_BYTES} bytes")(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        pending: list[Message] = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)
