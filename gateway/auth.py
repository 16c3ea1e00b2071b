"""Who is calling (docs/security.md#api-keys): API keys on every `/v1/…` request, client secrets for
the one order a browser follows, rate limits, and failed authentications counted per client address.

One ASGI middleware decides before any route runs — before the body is read, so that nobody
without a key learns anything from a 400, 413 or 415 — and leaves its answer in the scope
(`caller_of`), where the routes, the SSE and WebSocket endpoints and the push hub find it:

- `Authorization: Bearer <key>`, or HTTP Basic with the key as user name (`curl -u sk_…:`):
  an API key of GATEWAY_API_KEYS. An `rk_` key may only read: any other method is 403. Each key
  has its own rate (GATEWAY_RATE_LIMIT); an unknown or malformed key is 401 and counts as a
  failed authentication of the client's address;
- no Authorization, on the routes a browser uses for one order — reading it, its SSE stream,
  its WebSocket, its payment and QR code (`?client_secret=`), and confirming its payment (the
  secret in the body): the client secret is the credential. The services check it (a wrong one
  is 404, and counts as a failed authentication); the rate is the client address's;
- anything else under /v1 without a key: 401. Health, metrics, docs, the pages and the static
  files need no key; `/pay/{id}` and the demo routes are limited per client address.

A client address whose failed authentications exceed GATEWAY_AUTH_FAILURE_LIMIT gets 429 for
every request but one with a valid API key (so that a shop's own servers are not locked out by
a neighbour behind the same address). The address is the one uvicorn reports: X-Forwarded-For
counts only from a proxy in FORWARDED_ALLOW_IPS (uvicorn's setting, 127.0.0.1 by default).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

import orjson
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.caller import CallerScope
from common.input_limits import CLIENT_SECRET_RE
from gateway.api_keys import KeyRing
from gateway.errors import ApiError, problem
from gateway.middleware.body import MAX_BODY_BYTES, replay
from gateway.middleware.headers import request_headers
from gateway.ratelimit import Rate, RateStorage, retry_after

CALLER = "shop.caller"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="shop"'}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The routes a client secret opens (GET, and the WebSocket), and the one it may POST to.
_SECRET_READS = re.compile(r"^/v1/(orders/[^/]+(/events|/ws)?|payments/[^/]+(/qr\.svg)?)\Z")
_SECRET_CONFIRM = re.compile(r"^/v1/payments/[^/]+/confirm\Z")
# The WebSocket close code of an order that is not found (gateway/push/websocket.py).
CLOSE_NOT_FOUND = 4404


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: whom it acts for (an account, or one order's client secret),
    and whether it may only read."""

    scope: CallerScope
    read_only: bool


def caller_of(scope: Scope) -> Caller | None:
    """The caller the middleware found (for a keyless confirmation, from the client secret in
    its body); None only where no credential is needed."""
    return scope.get(CALLER)


def key_from_header(value: str) -> str | None:
    """The key of `Bearer <key>` or of `Basic base64(<key>:<anything>)`; None if malformed."""
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def client_secret_of(query_string: bytes) -> str | None:
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("client_secret")
    return values[-1] if values else None


class Authentication:
    def __init__(self, app: ASGIApp, keys: KeyRing, rate: Rate, failure_rate: Rate, storage: RateStorage) -> None:
        self.app = app
        self.keys = keys
        self.per_key = storage.limiter(rate, "key")
        self.per_address = storage.limiter(rate, "address")
        self.failures = storage.limiter(failure_rate, "failures")
        # One Caller per key, made here: nothing to build on the request path.
        self._callers = {k.key_id: Caller(CallerScope(account_id=k.account_id), k.read_only) for k in keys.keys}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/v1/"):
            await self._api(scope, receive, send)
        elif path.startswith(("/demo/", "/pay/")):
            has_secret = client_secret_of(scope["query_string"]) is not None
            await self._anonymous(scope, receive, send, has_credential=has_secret)
        else:
            await self.app(scope, receive, send)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = request_headers(scope).get(b"authorization")
        if authorization is None:
            await self._without_key(scope, receive, send)
            return
        key = key_from_header(authorization)
        api_key = self.keys.lookup(key) if key is not None else None
        if api_key is None:
            wait = await self.failures.hit(_address(scope))
            if wait:
                await _refuse(scope, receive, send, _too_many(wait, "failed authentications from this address"))
            else:
                await _refuse(scope, receive, send, _unauthenticated("the API key is not valid"))
            return
        wait = await self.per_key.hit(api_key.key_id)
        if wait:
            await _refuse(scope, receive, send, _too_many(wait, "requests with this API key"))
            return
        if api_key.read_only and scope.get("method", "GET") not in _SAFE_METHODS:
            detail = "this API key may only read (rk_…); changes need a secret key (sk_…)"
            await _refuse(scope, receive, send, ApiError(403, detail, code="PERMISSION_DENIED"))
            return
        scope[CALLER] = self._callers[api_key.key_id]
        await self.app(scope, receive, send)

    async def _without_key(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        method = scope.get("method", "GET")
        secret = client_secret_of(scope["query_string"])
        confirm = method == "POST" and _SECRET_CONFIRM.match(path) is not None
        reads = method in _SAFE_METHODS and _SECRET_READS.match(path) is not None
        if confirm and secret is None:
            # The phone page sends the secret in the body: read it here (a confirmation body is
            # a few bytes), so that without a credential the answer is 401 whatever the body is.
            secret, receive = await _secret_in_body(receive)
        if not ((confirm or reads) and secret is not None):
            detail = "no API key: send `Authorization: Bearer <key>` (or HTTP Basic with the key as user name)"
            await _refuse(scope, receive, send, _unauthenticated(detail))
            return
        if not CLIENT_SECRET_RE.match(secret):
            # Malformed is wrong: answered as a wrong secret is, and counted like one.
            await self._anonymous(scope, receive, send, has_credential=True, refuse_with=_wrong_secret())
            return
        scope[CALLER] = Caller(CallerScope(client_secret=secret), read_only=not confirm)
        await self._anonymous(scope, receive, send, has_credential=True)

    async def _anonymous(
        self, scope: Scope, receive: Receive, send: Send, *, has_credential: bool, refuse_with: ApiError | None = None
    ) -> None:
        """A request without an API key: the client address's rate; a 404 (or a WebSocket closed
        4404) for a request that presented a client secret is a failed authentication."""
        address = _address(scope)
        blocked = await self.failures.blocked_for(address) if has_credential else 0.0
        if blocked:
            await _refuse(scope, receive, send, _too_many(blocked, "failed authentications from this address"))
            return
        wait = await self.per_address.hit(address)
        if wait:
            await _refuse(scope, receive, send, _too_many(wait, "requests from this address"))
            return
        if refuse_with is not None:
            await self.failures.hit(address)
            await _refuse(scope, receive, send, refuse_with)
            return
        if not has_credential:
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if (kind.endswith("http.response.start") and message["status"] == 404) or (
                kind == "websocket.close" and message.get("code") == CLOSE_NOT_FOUND
            ):
                await self.failures.hit(address)
            await send(message)

        await self.app(scope, receive, counting_send)


async def _secret_in_body(receive: Receive) -> tuple[str | None, Receive]:
    """The `client_secret` of a JSON body (None when there is none), and a `receive` that gives
    the body again to the route. At most MAX_BODY bytes are read; past that there is no secret."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES or not message.get("more_body", False):
            break
    body = b"".join(chunks)
    try:
        document = orjson.loads(body) if size <= MAX_BODY_BYTES else None
    except orjson.JSONDecodeError:
        document = None
    secret = document.get("client_secret") if isinstance(document, dict) else None
    return (secret if isinstance(secret, str) else None), replay(body, receive)


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _unauthenticated(detail: str) -> ApiError:
    return ApiError(401, detail, code="UNAUTHENTICATED", headers=CHALLENGE)


def _wrong_secret() -> ApiError:
    return ApiError(404, "not found (or the client secret does not match)", code="NOT_FOUND")


def _too_many(wait_s: float, what: str) -> ApiError:
    return ApiError(
        429, f"too many {what}; retry later", code="RESOURCE_EXHAUSTED", headers={"Retry-After": retry_after(wait_s)}
    )


async def _refuse(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
    """Answer before any route: a problem+json response; on a WebSocket, the same response in
    place of the handshake (the ASGI denial response, which uvicorn supports), else a close."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
    await problem(error.status, error.detail, code=error.code, headers=error.headers)(scope, receive, send)


# -- for the routes --------------------------------------------------------------------------


def authenticated(request: Request) -> Caller:
    """The caller the middleware let through. A plain function rather than a FastAPI
    dependency: the middleware has decided already, and FastAPI would solve a dependency on
    every request only to read the scope (the schemes are documented by gateway/openapi.py,
    from FastAPI's own security classes)."""
    caller = caller_of(request.scope)
    if caller is None:  # the middleware lets nothing else through; refuse rather than assume
        raise _unauthenticated("no API key")
    return caller


def accepts_client_secret(method: str, path: str) -> bool:
    """Whether a client secret opens `method path` (an OpenAPI path template works too)."""
    if method.upper() == "POST":
        return _SECRET_CONFIRM.match(path) is not None
    return method.upper() in _SAFE_METHODS and _SECRET_READS.match(path) is not None
