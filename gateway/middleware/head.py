"""HEAD wherever GET answers (RFC 9110 §9.3.2): the same status and headers, no body.

FastAPI gives a route only the methods it declares, so `HEAD /v1/orders/{id}` was 405. Rather
than declaring HEAD on every GET route (and in OpenAPI), a HEAD request is routed as a GET.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # The same scope object, not a copy: the router records the route in it for the access
        # log. The method is HEAD again from the answer's start on, so that uvicorn (which reads
        # it then) sends no body and keeps the Content-Length of the GET.
        scope["method"] = "GET"
        ended = False

        async def headers_only(message: Message) -> None:
            nonlocal ended
            if ended:
                return
            if message["type"] == "http.response.start":
                scope["method"] = "HEAD"
                await send(message)
            elif message["type"] == "http.response.body":
                # The answer ends with its first body message, also for a stream (SSE) that
                # would otherwise stay open for a client that reads nothing.
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def gone_once_ended() -> Message:
            # Tells a streaming route that its client is gone, so that it stops.
            return {"type": "http.disconnect"} if ended else await receive()

        try:
            await self.app(scope, gone_once_ended, headers_only)
        finally:
            scope["method"] = "HEAD"
