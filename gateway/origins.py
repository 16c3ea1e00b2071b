"""Which web pages may use the API from a browser (docs/security.md#browsers-on-other-sites-cors).

- CORS, for the origins of GATEWAY_CORS_ORIGINS only (none by default), on every `/v1/` route:
  Starlette's CORSMiddleware with the headers the contract names, never credentials, never `*`.
  Two departures from it, so that an origin not listed learns nothing: it gets no CORS header at
  all (Starlette sends it Access-Control-Expose-Headers, and its refused preflight the allowed
  methods and headers), and its preflight is a 403. A refused preflight is problem+json, as every
  error is.
- WebSocket handshakes: one whose `Origin` is neither the gateway's own (GATEWAY_PUBLIC_URL's)
  nor listed is refused with 403 — a page on another site could otherwise open a socket with
  whatever the browser holds for the gateway. Clients that send no `Origin` (curl, programs)
  are not browsers, and pass.

Added outside the guards and the authentication (gateway/app.py), so that their refusals —
401, 403, 429, 413, 415, 431 — reach a listed page with CORS headers (else the page's script
sees a network error instead of the answer), and a preflight, which never carries a key, is
answered before anything asks for one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import problem
from gateway.middleware.headers import request_headers

METHODS = ("GET", "HEAD", "POST")
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-None-Match",
    "Prefer",
    "Last-Event-ID",
    "X-Request-ID",
)
EXPOSED_HEADERS = (
    "ETag",
    "Idempotent-Replayed",
    "Original-Request",
    "Retry-After",
    "Preference-Applied",
    "X-Request-ID",
    "Location",
)
# How long a browser may keep a preflight's answer. Chromium caps it at 2 hours; 10 minutes
# lets a change of GATEWAY_CORS_ORIGINS reach the browsers soon.
MAX_AGE_S = 600
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NO_HEADERS = Headers()


def parse_origins(text: str) -> tuple[str, ...]:
    """GATEWAY_CORS_ORIGINS: `https://shop.example,http://localhost:3000` → the origins as a
    browser writes them (lower case, no default port). ValueError naming the bad entry."""
    origins: list[str] = []
    for number, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        try:
            origins.append(origin_of(entry, exact=True))
        except ValueError as exc:
            raise ValueError(f"entry {number} ({entry!r}): {exc}") from None
    return tuple(dict.fromkeys(origins))


def origin_of(url: str, *, exact: bool = False) -> str:
    """The origin of an http(s) URL, serialised as browsers send it in `Origin`. With `exact`,
    the text must be an origin and nothing more: no path, query, fragment or user."""
    if "*" in url:
        raise ValueError("a wildcard is not allowed: list each origin (https://shop.example)")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("the scheme must be http:// or https://")
    if exact and (parts.path or parts.query or parts.fragment or "@" in parts.netloc):
        raise ValueError("an origin is scheme://host[:port], with no path (https://shop.example)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number from 1 to 65535") from None
    host = parts.hostname
    if not host:
        raise ValueError("names no host")
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


class BrowserOrigins:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...], own_origin: str) -> None:
        self.app = app
        self.cors = _ListedOriginsOnly(app, origins) if origins else None
        self.socket_origins = frozenset({own_origin, *origins})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.cors is not None and scope["path"].startswith("/v1/"):
            await self.cors(scope, receive, send)
            return
        if scope["type"] == "websocket":
            origin = request_headers(scope).get(b"origin")
            if origin is not None and origin not in self.socket_origins:
                await _refuse_handshake(scope, receive, send, origin)
                return
        await self.app(scope, receive, send)


class _ListedOriginsOnly(CORSMiddleware):
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            allow_credentials=False,
            max_age=MAX_AGE_S,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        origin = request_headers["origin"]
        if not self.is_allowed_origin(origin):
            return problem(403, f"pages on {origin} may not call this API (it is not in GATEWAY_CORS_ORIGINS)")
        answer = super().preflight_response(request_headers)
        if answer.status_code == 200:
            return answer
        # A listed page asking for a method or header the API does not take: the CORS headers
        # stay, so that the browser's console says which ones it does.
        cors = {k: v for k, v in answer.headers.items() if k.startswith("access-control-") or k == "vary"}
        detail = (
            f"the preflight asks for a method or header this API does not take; methods: {', '.join(METHODS)}; "
            f"headers: {', '.join(ALLOWED_HEADERS)}"
        )
        return problem(400, detail, headers=cors)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        if not self.is_allowed_origin(request_headers.get("origin", "")):
            request_headers = _NO_HEADERS  # as if no Origin came: only `Vary: Origin` is added
        await super().send(message, send, request_headers)


async def _refuse_handshake(scope: Scope, receive: Receive, send: Send, origin: str) -> None:
    """403 in place of the handshake (the ASGI denial response, which uvicorn supports), else a
    close before accepting, which servers answer with 403 too."""
    await receive()  # websocket.connect
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    detail = f"WebSockets from pages on {origin} are not allowed (GATEWAY_PUBLIC_URL, GATEWAY_CORS_ORIGINS)"
    await problem(403, detail)(scope, receive, send)
