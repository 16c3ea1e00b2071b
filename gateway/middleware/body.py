"""What a request body must be before any route reads it (POST, PUT and PATCH):

- each of Content-Type and Idempotency-Key sent once at most (400: which one would count?);
- at most 64 KiB (413), whether its Content-Length says so or its chunks add up to it;
- JSON (415), and not compressed (415 with `Accept-Encoding: identity`): bodies are parsed as
  they come, so a body labelled gzip would be read as if it were plain JSON.

Why not FastAPI's own `max_body_size`: it sits outside every middleware of the application, so
its 413 would come before authentication (gateway/pipeline.py says why that order matters), and
it answers in plain text.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import problem
from gateway.middleware.headers import request_headers

MAX_BODY_BYTES = 64 * 1024
TOO_LARGE = f"the request body is over {MAX_BODY_BYTES // 1024} KiB"
_JSON_TYPE_RE = re.compile(r"^application/([a-z0-9.+-]+\+)?json\s*(;.*)?$", re.IGNORECASE)
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# RFC 9110 §15.5.16: the 415 for a content coding names the ones accepted.
_IDENTITY = {"Accept-Encoding": "identity"}


class BodyGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        refusal, chunked = _refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
        elif chunked:
            await self._buffered(scope, receive, send)
        else:
            await self.app(scope, _counted(receive), send)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A chunked body (its size unknown in advance) is read here, at most 64 KiB and a byte,
        so that one too large is answered 413 before the route starts."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was complete: nobody to answer
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                await problem(413, TOO_LARGE)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(bytes(body), receive), send)


def _refusal(scope: Scope) -> tuple[Response | None, bool]:
    """The answer to a body that breaks a rule (None if it breaks none), and whether it is chunked."""
    headers = request_headers(scope)
    if (name := headers.repeated) is not None:
        field = name.decode().title()
        detail = f"the request has more than one {field} header"
        return problem(400, detail, errors=[{"field": field, "message": "must be sent once"}]), False
    length = headers.get(b"content-length")
    chunked = (headers.get(b"transfer-encoding") or "").lower() == "chunked"
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return problem(413, TOO_LARGE), chunked
    has_body = chunked or (length is not None and int(length) > 0)
    content_type = headers.get(b"content-type")
    if has_body and not (content_type and _JSON_TYPE_RE.match(content_type)):
        return problem(415, "the request body must be application/json"), chunked
    if has_body and any(coding not in (b"", b"identity") for coding in headers.content_encodings):
        return problem(415, "the request body must not be compressed (Content-Encoding)", headers=_IDENTITY), chunked
    return None, chunked


def _counted(receive: Receive) -> Receive:
    """`receive`, refusing a body that grows past the limit all the same (a server that let more
    through than its Content-Length said): a 413 that FastAPI passes on as it does any
    HTTPException raised while it reads a body."""
    received = 0

    async def counted_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise HTTPException(413, TOO_LARGE)
        return message

    return counted_receive


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` (read already) as one message, then what `receive` gives."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
