from __future__ import annotations

import base64

import orjson
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from common.caller import CallerScope
from gateway.api_keys import parse_keys
from gateway.auth import Authentication, Caller, caller_of, client_secret_of, key_from_header
from gateway.ratelimit import MemoryStorage, Rate
from tests.unit.gateway.asgi import Echo, http_scope, run, websocket_scope

KEY = "sk_test_0123456789abcdefghij"


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (f"Bearer {KEY}", KEY),
        (f"bearer   {KEY} ", KEY),
        (basic(f"{KEY}:"), KEY),  # curl -u "$KEY:"
        (basic(f"{KEY}:ignored"), KEY),
        (basic(KEY), KEY),
        ("Bearer", None),
        (basic(":password"), None),
        ("Basic not*base64", None),
        ("Basic " + base64.b64encode(b"\xff\xfe:").decode(), None),
        (f"Token {KEY}", None),
        (KEY, None),
    ],
)
def test_key_from_header(header: str, key: str | None) -> None:
    assert key_from_header(header) == key


@pytest.mark.parametrize(
    ("query", "secret"),
    [
        (b"", None),
        (b"client_secret=abc", "abc"),
        (b"a=1&client_secret=x&client_secret=y", "y"),
        (b"client_secret=", ""),
    ],
)
def test_client_secret_of(query: bytes, secret: str | None) -> None:
    assert client_secret_of(query) == secret


# -- the middleware ------------------------------------------------------------------------

ACCOUNT = "acct_shop"
READ_KEY = "rk_test_0123456789abcdefghij"
SECRET = "ord_1_secret_0123456789abcdef"
KEYS = parse_keys(f"{ACCOUNT}:{KEY},{ACCOUNT}:{READ_KEY}")


def authentication(app: ASGIApp, rate: str = "100/second", failures: str = "100/minute") -> Authentication:
    """The middleware as gateway/pipeline.py builds it, around `app`."""
    return Authentication(
        app, keys=KEYS, rate=Rate.parse(rate), failure_rate=Rate.parse(failures), storage=MemoryStorage()
    )


def bearer(key: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {key}")


async def test_no_key_is_401_with_a_challenge() -> None:
    inner = Echo()
    exchange = await run(authentication(inner), http_scope(path="/v1/orders"))
    assert exchange.status == 401
    assert exchange.headers["www-authenticate"] == 'Bearer realm="shop"'
    assert exchange.json()["code"] == "UNAUTHENTICATED"
    assert not inner.called


@pytest.mark.parametrize(("key", "read_only"), [(KEY, False), (READ_KEY, True)])
async def test_a_key_lets_its_account_through(key: str, read_only: bool) -> None:
    inner = Echo()
    exchange = await run(authentication(inner), http_scope(path="/v1/orders", headers=[bearer(key)]))
    assert exchange.status == 200
    assert inner.scope is not None
    assert caller_of(inner.scope) == Caller(CallerScope(account_id=ACCOUNT), read_only)


async def test_a_read_only_key_may_not_change_anything() -> None:
    exchange = await run(authentication(Echo()), http_scope("POST", "/v1/orders", [bearer(READ_KEY)]))
    assert exchange.status == 403


async def test_a_keys_rate_then_429_with_retry_after() -> None:
    middleware = authentication(Echo(), rate="1/minute")  # a burst of 2
    statuses = [(await run(middleware, http_scope(path="/v1/orders", headers=[bearer(KEY)]))).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    exchange = await run(middleware, http_scope(path="/v1/orders", headers=[bearer(KEY)]))
    assert int(exchange.headers["retry-after"]) >= 1


async def test_failed_authentications_lock_the_address_out_but_not_a_valid_key() -> None:
    middleware = authentication(Echo(), failures="1/minute")  # a burst of 2
    wrong = http_scope(path="/v1/orders", headers=[bearer("sk_test_wrong_0123456789abcdef")])
    statuses = [(await run(middleware, dict(wrong))).status for _ in range(3)]
    assert statuses == [401, 401, 429]
    secret = http_scope(path="/v1/orders/ord_1", query=f"client_secret={SECRET}".encode())
    assert (await run(middleware, secret)).status == 429
    assert (await run(middleware, http_scope(path="/v1/orders", headers=[bearer(KEY)]))).status == 200


async def test_a_client_secret_opens_reading_its_order() -> None:
    inner = Echo()
    scope = http_scope(path="/v1/orders/ord_1/events", query=f"client_secret={SECRET}".encode())
    assert (await run(authentication(inner), scope)).status == 200
    assert inner.scope is not None
    assert caller_of(inner.scope) == Caller(CallerScope(client_secret=SECRET), read_only=True)


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/orders"), ("POST", "/v1/orders/ord_1/cancel")])
async def test_a_client_secret_opens_nothing_else(method: str, path: str) -> None:
    scope = http_scope(method, path, query=f"client_secret={SECRET}".encode())
    assert (await run(authentication(Echo()), scope)).status == 401


async def test_a_malformed_secret_is_answered_as_a_wrong_one() -> None:
    scope = http_scope(path="/v1/orders/ord_1", query=b"client_secret=short")
    exchange = await run(authentication(Echo()), scope)
    assert exchange.status == 404


async def test_a_404_to_a_secret_counts_as_a_failed_authentication() -> None:
    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = authentication(not_found, failures="1/minute")
    secret = http_scope(path="/v1/orders/ord_1", query=f"client_secret={SECRET}".encode())
    statuses = [(await run(middleware, dict(secret))).status for _ in range(3)]
    assert statuses == [404, 404, 429]


async def test_the_confirmation_takes_the_secret_from_its_body_and_the_route_gets_the_body() -> None:
    inner = Echo()
    body = orjson.dumps({"approve": True, "client_secret": SECRET})
    scope = http_scope("POST", "/v1/payments/pay_1/confirm", [("Content-Type", "application/json")])
    assert (await run(authentication(inner), scope, body[:10], body[10:])).status == 200
    assert inner.body == body
    assert inner.scope is not None
    assert caller_of(inner.scope) == Caller(CallerScope(client_secret=SECRET), read_only=False)


async def test_a_confirmation_without_any_credential_is_401() -> None:
    scope = http_scope("POST", "/v1/payments/pay_1/confirm", [("Content-Type", "application/json")])
    assert (await run(authentication(Echo()), scope, b'{"approve": true}')).status == 401


async def test_what_needs_no_key_passes_without_a_caller() -> None:
    inner = Echo()
    assert (await run(authentication(inner), http_scope(path="/healthz"))).status == 200
    assert inner.scope is not None
    assert caller_of(inner.scope) is None


async def test_a_websocket_is_refused_in_place_of_its_handshake_or_closed() -> None:
    scope = websocket_scope(path="/v1/orders/ord_1/ws")
    denied = await run(authentication(Echo()), scope | {"extensions": {"websocket.http.response": {}}})
    assert denied.sent[0]["type"] == "websocket.http.response.start"
    assert denied.status == 401
    closed = await run(authentication(Echo()), websocket_scope(path="/v1/orders/ord_1/ws"))
    assert closed.sent == [{"type": "websocket.close", "code": 1008}]
