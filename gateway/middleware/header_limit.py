"""The limit on a request's headers: over 16 KiB in all (names and values), 431.

Its own layer, inside BrowserOrigins, so that a page on a listed origin can read the refusal;
the headers are read once for the whole pipeline (middleware/headers.py), so it costs no walk.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import problem
from gateway.middleware.headers import request_headers

# Names and values together. Browsers and curl send well under 2 KiB; uvicorn's httptools
# parser sets no limit of its own.
MAX_HEADER_BYTES = 16 * 1024


class HeaderLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and request_headers(scope).size > MAX_HEADER_BYTES:
            detail = f"the request's headers are over {MAX_HEADER_BYTES} bytes in all"
            await problem(431, detail)(scope, receive, send)
            return
        await self.app(scope, receive, send)
