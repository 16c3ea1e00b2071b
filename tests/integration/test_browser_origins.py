"""Browsers on other sites (docs/security.md#browsers-on-other-sites-cors), against the real services: CORS
for the origins of GATEWAY_CORS_ORIGINS on every /v1 route — preflights without a key, the
headers exposed, errors and SSE included — nothing for an origin not listed, and the Origin
check of WebSocket handshakes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.conftest import client_of
from tests.harness import Stack, bearer, new_key
from tests.integration.helpers import assert_problem, create_order, order_body
from tests.integration.push_clients import ws_message, ws_url

SHOP = "https://shop.example"
LOCAL_DEV = "http://localhost:3000"
STRANGER = "https://evil.example"


def _names(header: str) -> list[str]:
    return [name.strip() for name in header.split(",")]


# The contract's lists (docs/security.md): what a page may send, what it may read.
ALLOWED_HEADERS = _names(
    "Authorization, Content-Type, Idempotency-Key, If-None-Match, Prefer, Last-Event-ID, X-Request-ID"
)
EXPOSED_HEADERS = _names(
    "ETag, Idempotent-Replayed, Original-Request, Retry-After, Preference-Applied, X-Request-ID, Location"
)
# The failed authentications that tests make on purpose come from their own loopback address,
# so that this address's budget (3/hour: a burst of 6) is not spent for the other tests.
GUESSER = "127.0.0.2"


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        # Written as people write them: spaces, an upper-case host, the default port.
        "GATEWAY_CORS_ORIGINS": f"{SHOP}, HTTP://LOCALHOST:3000,https://shop.example:443",
        "GATEWAY_AUTH_FAILURE_LIMIT": "3/hour",
    }
    with Stack(tmp_path_factory.mktemp("origins"), env=env) as stack:
        yield stack


http = client_of("listed")


def _cors_headers(reply: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in reply.headers.items() if name.startswith("access-control-")}


def _listed_answer(reply: httpx.Response, origin: str) -> None:
    """What every actual answer to a listed origin carries."""
    assert reply.headers["access-control-allow-origin"] == origin
    assert _names(reply.headers["access-control-expose-headers"]) == EXPOSED_HEADERS
    assert "access-control-allow-credentials" not in reply.headers
    assert "origin" in reply.headers["vary"].lower()


def _preflight(method: str, *headers: str, origin: str = SHOP) -> dict[str, str]:
    preflight = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        preflight["Access-Control-Request-Headers"] = ",".join(h.lower() for h in headers)
    return preflight


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/orders"),
        ("GET", "/v1/orders/ord_1"),
        ("GET", "/v1/orders/ord_1/events"),
        ("POST", "/v1/payments/pay_1/confirm"),
        ("POST", "/v1/orders/ord_1/refund"),
    ],
)
async def test_a_preflight_from_a_listed_origin_needs_no_key(listed: Stack, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=listed.url, timeout=10) as browser:  # no Authorization
        reply = await browser.options(path, headers=_preflight(method, *ALLOWED_HEADERS))
    assert reply.status_code == 200, reply.text
    assert reply.headers["access-control-allow-origin"] == SHOP
    assert {"GET", "POST"} <= {m.strip() for m in reply.headers["access-control-allow-methods"].split(",")}
    allowed = {h.strip().lower() for h in reply.headers["access-control-allow-headers"].split(",")}
    assert {h.lower() for h in ALLOWED_HEADERS} <= allowed
    assert int(reply.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in reply.headers
    assert "*" not in "".join(_cors_headers(reply).values())


async def test_origins_are_listed_as_browsers_write_them(listed: Stack) -> None:
    async with httpx.AsyncClient(base_url=listed.url, timeout=10) as browser:
        reply = await browser.options("/v1/orders", headers=_preflight("POST", origin=LOCAL_DEV))
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == LOCAL_DEV


@pytest.mark.parametrize("origin", [STRANGER, "https://shop.example.evil.example", "http://shop.example", "null"])
async def test_a_preflight_from_an_origin_not_listed_is_403_without_cors_headers(listed: Stack, origin: str) -> None:
    async with httpx.AsyncClient(base_url=listed.url, timeout=10) as browser:
        reply = await browser.options("/v1/orders", headers=_preflight("POST", "Authorization", origin=origin))
    assert_problem(reply, 403, "PERMISSION_DENIED")
    assert _cors_headers(reply) == {}


async def test_a_preflight_for_a_header_the_api_does_not_take_is_400(listed: Stack) -> None:
    async with httpx.AsyncClient(base_url=listed.url, timeout=10) as browser:
        reply = await browser.options("/v1/orders", headers=_preflight("POST", "Authorization", "X-Debug"))
        assert_problem(reply, 400, "INVALID_ARGUMENT")
        reply = await browser.options("/v1/orders", headers=_preflight("DELETE"))
        assert_problem(reply, 400, "INVALID_ARGUMENT")


async def test_answers_to_a_listed_origin_expose_the_api_headers(http: httpx.AsyncClient) -> None:
    created = await http.post("/v1/orders", json=order_body(), headers={"Origin": SHOP, "Idempotency-Key": new_key()})
    assert created.status_code == 201
    _listed_answer(created, SHOP)
    read = await http.get(f"/v1/orders/{created.json()['id']}", headers={"Origin": LOCAL_DEV})
    assert read.status_code == 200
    assert read.headers["etag"]
    _listed_answer(read, LOCAL_DEV)


async def test_answers_to_an_origin_not_listed_carry_no_cors_header(http: httpx.AsyncClient) -> None:
    reply = await http.get("/v1/orders", params={"page_size": 1}, headers={"Origin": STRANGER})
    assert reply.status_code == 200  # a program may send any Origin: only a browser enforces CORS
    assert _cors_headers(reply) == {}
    assert "origin" in reply.headers["vary"].lower()  # a cache must not hand it to a listed page


async def test_without_an_origin_nothing_changes(http: httpx.AsyncClient) -> None:
    reply = await http.get("/v1/orders", params={"page_size": 1})
    assert reply.status_code == 200
    assert _cors_headers(reply) == {}


async def test_routes_outside_v1_are_not_opened(http: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/metrics", "/openapi.json"):
        reply = await http.get(path, headers={"Origin": SHOP})
        assert _cors_headers(reply) == {}, path


async def test_the_gateways_own_refusals_reach_a_listed_page_with_cors_headers(listed: Stack) -> None:
    """401, 413, 415, 431, 404 and 405: answered by the gateway's middleware or routes, each with
    the headers that let the page's script read it."""
    plain_text = {**listed.headers, "Content-Type": "text/plain"}
    async with httpx.AsyncClient(base_url=listed.url, timeout=10, headers={"Origin": SHOP}) as browser:
        answers = {
            401: await browser.get("/v1/orders"),
            413: await browser.post("/v1/orders", headers=listed.headers, content=b"x" * 70_000),
            415: await browser.post("/v1/orders", headers=plain_text, content=b"{}"),
            431: await browser.get("/v1/orders", headers={**listed.headers, "X-Filler": "y" * 17_000}),
            404: await browser.get("/v1/orders/ord_does_not_exist", headers=listed.headers),
            405: await browser.delete("/v1/orders", headers=listed.headers),
        }
    for status, reply in answers.items():
        assert_problem(reply, status)
        _listed_answer(reply, SHOP)
    assert answers[401].headers["www-authenticate"].startswith("Bearer")


async def test_a_429_reaches_a_listed_page_with_cors_headers_and_retry_after(listed: Stack) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=GUESSER)
    async with httpx.AsyncClient(base_url=listed.url, timeout=10, transport=transport) as guesser:
        wrong = {**bearer(new_key()), "Origin": SHOP}
        answers = [await guesser.get("/v1/orders", headers=wrong) for _ in range(7)]
    assert [a.status_code for a in answers] == [401] * 6 + [429]  # 3/hour: a burst of 6 failures
    assert_problem(answers[-1], 429, "RESOURCE_EXHAUSTED")
    _listed_answer(answers[-1], SHOP)
    assert "Retry-After" in answers[-1].headers["access-control-expose-headers"]
    assert int(answers[-1].headers["retry-after"]) >= 1


async def test_an_event_stream_followed_with_its_client_secret_carries_cors_headers(
    listed: Stack, http: httpx.AsyncClient
) -> None:
    order = await create_order(http, "pm_wallet_qr")
    async with httpx.AsyncClient(base_url=listed.url, timeout=10) as browser:
        params = {"client_secret": order["client_secret"]}
        headers = {"Origin": SHOP, "Last-Event-ID": "0"}  # replays from version 1
        async with browser.stream("GET", f"/v1/orders/{order['id']}/events", params=params, headers=headers) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            _listed_answer(stream, SHOP)
            lines = stream.aiter_lines()
            async for line in lines:
                if line.startswith("data: "):
                    assert json.loads(line.removeprefix("data: "))["version"] == 1
                    break


# -- WebSocket handshakes ---------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["own", SHOP, LOCAL_DEV, None])
async def test_a_websocket_from_the_gateways_own_or_a_listed_origin_or_none_is_accepted(
    listed: Stack, http: httpx.AsyncClient, origin: str | None
) -> None:
    order = await create_order(http, "pm_wallet_qr")
    sent = Origin(listed.url) if origin == "own" else Origin(origin) if origin else None
    url = ws_url(listed, order["id"], after_version=0) + f"&client_secret={order['client_secret']}"
    async with connect(url, origin=sent, open_timeout=10, close_timeout=2) as socket:
        assert (await ws_message(socket))["version"] == 1


@pytest.mark.parametrize("origin", [STRANGER, "http://127.0.0.1:1", "https://shop.example:8443"])
async def test_a_websocket_from_another_origin_is_refused_with_403(
    listed: Stack, http: httpx.AsyncClient, origin: str
) -> None:
    order = await create_order(http, "pm_wallet_qr")
    url = ws_url(listed, order["id"]) + f"?client_secret={order['client_secret']}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=Origin(origin), open_timeout=10):
            pass
    assert refused.value.response.status_code == 403
    problem = json.loads(refused.value.response.body or b"{}")
    assert problem["code"] == "PERMISSION_DENIED"


async def test_without_cors_origins_a_websocket_is_only_for_the_gateways_own_pages(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    """The shared stack lists no origin: its own pages (the demo page) and programs get in."""
    order = await create_order(client, "pm_wallet_qr")
    url = ws_url(stack, order["id"], after_version=0)
    async with connect(url, origin=Origin(stack.url), additional_headers=stack.headers, open_timeout=10) as socket:
        assert (await ws_message(socket))["version"] == 1
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=Origin(SHOP), additional_headers=stack.headers, open_timeout=10):
            pass
    assert refused.value.response.status_code == 403
