"""Security (docs/security.md#security) from outside: API keys, read-only keys, two accounts, client
secrets on every channel, and what needs no key. (Rate limits, the refusal to start and leaks:
test_rate_limits.py and test_secrets_never_leak.py; mTLS: tests/mtls.)"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.harness import Stack, bearer
from tests.integration.helpers import assert_problem, create_order, order_body
from tests.integration.push_clients import sse, ws_closed, ws_message, ws_url

# Every /v1 route, with a body where it takes one; {order} and {payment} are filled in.
ROUTES = [
    ("POST", "/v1/orders", order_body()),
    ("GET", "/v1/orders", None),
    ("GET", "/v1/orders/{order}", None),
    ("POST", "/v1/orders/{order}/cancel", {}),
    ("POST", "/v1/orders/{order}/refund", {}),
    ("GET", "/v1/orders/{order}/events", None),
    ("GET", "/v1/payments/{payment}", None),
    ("POST", "/v1/payments/{payment}/confirm", {}),
    ("GET", "/v1/payments/{payment}/qr.svg", None),
    ("GET", "/v1/nothing-here", None),
]


def _path(template: str, order: dict[str, Any]) -> str:
    return template.format(order=order["id"], payment=order["payment"]["id"])


@pytest.fixture
async def anonymous(stack: Stack) -> Any:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        yield http


@pytest.fixture
async def other(stack: Stack) -> Any:
    """A client of the other account."""
    async with httpx.AsyncClient(base_url=stack.url, headers=bearer(stack.keys.other), timeout=10) as http:
        yield http


@pytest.fixture
async def reader(stack: Stack) -> Any:
    """A client with the read-only key of the test account."""
    async with httpx.AsyncClient(base_url=stack.url, headers=bearer(stack.keys.read_only), timeout=10) as http:
        yield http


async def test_every_v1_route_without_a_key_is_401_with_a_bearer_challenge(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    order = await create_order(client, "pm_wallet_qr")
    for method, template, body in ROUTES:
        reply = await anonymous.request(method, _path(template, order), json=body)
        problem = assert_problem(reply, 401, "UNAUTHENTICATED")
        assert reply.headers["www-authenticate"].startswith("Bearer"), template
        assert "key" in problem["detail"]
    # Refused before the body is looked at: a malformed or huge body without a key is still 401.
    assert (
        await anonymous.post("/v1/orders", content=b"{not json", headers={"content-type": "application/json"})
    ).status_code == 401
    assert (
        await anonymous.post("/v1/orders", content=b"x" * 100_000, headers={"content-type": "text/plain"})
    ).status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer sk_test_this_key_is_not_configured_000",
        "Bearer",
        "Token sk_test_this_key_is_not_configured_000",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b":password-only").decode(),
        "sk_test_this_key_is_not_configured_000",
    ],
)
async def test_an_unknown_or_malformed_key_is_401(anonymous: httpx.AsyncClient, authorization: str) -> None:
    reply = await anonymous.get("/v1/orders", headers={"Authorization": authorization})
    problem = assert_problem(reply, 401, "UNAUTHENTICATED")
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert "not_configured" not in reply.text  # the key presented is not echoed
    assert problem["detail"] == "the API key is not valid"


async def test_bearer_and_basic_with_the_key_as_user_name_both_work(stack: Stack, anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/v1/orders", headers=bearer(stack.keys.secret))).status_code == 200
    assert (
        await anonymous.get("/v1/orders", headers={"Authorization": f"bearer {stack.keys.secret}"})
    ).status_code == 200
    # What `curl -u "$KEY:"` sends; a password, if any, is not looked at.
    for password in ("", "anything"):
        reply = await anonymous.get("/v1/orders", auth=(stack.keys.secret, password))
        assert reply.status_code == 200, reply.text


async def test_what_needs_no_key(anonymous: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/", "/static/app.js"):
        assert (await anonymous.get(path)).status_code == 200, path


async def test_openapi_documents_the_key_schemes(anonymous: httpx.AsyncClient) -> None:
    document = (await anonymous.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "http", "scheme": "bearer", "description": schemes["ApiKey"]["description"]}
    assert schemes["ApiKeyAsUser"]["scheme"] == "basic"
    for path, methods in document["paths"].items():
        if path.startswith("/v1/"):
            for method, operation in methods.items():
                assert {"ApiKey": []} in operation["security"], (method, path)
    # The client secret is the alternative for a browser, on the routes it opens.
    assert schemes["ClientSecret"] == {
        "type": "apiKey", "in": "query", "name": "client_secret", "description": schemes["ClientSecret"]["description"]
    }  # fmt: skip
    get_order = document["paths"]["/v1/orders/{order_id}"]["get"]
    assert {"ClientSecret": []} in get_order["security"]
    assert {"ClientSecret": []} not in document["paths"]["/v1/orders"]["get"]["security"]
    assert "401" in get_order["responses"]
    assert "429" in get_order["responses"]


async def test_a_read_only_key_reads_and_follows_but_cannot_change_anything(
    client: httpx.AsyncClient, reader: httpx.AsyncClient, stack: Stack
) -> None:
    order = await create_order(client, "pm_wallet_qr")
    assert (await reader.get(f"/v1/orders/{order['id']}")).json()["id"] == order["id"]
    assert order["id"] in [
        o["id"] for o in (await reader.get("/v1/orders", params={"page_size": 100})).json()["orders"]
    ]
    assert (await reader.get(f"/v1/payments/{order['payment']['id']}")).status_code == 200
    async with sse(reader, order["id"]) as stream:
        assert (await stream.event()) is not None
    async with connect(ws_url(stack, order["id"]), additional_headers=bearer(stack.keys.read_only)) as socket:
        assert (await ws_message(socket))["order"]["id"] == order["id"]
    for method, template, body in ROUTES:
        if method == "POST":
            reply = await reader.post(_path(template, order), json=body)
            problem = assert_problem(reply, 403, "PERMISSION_DENIED")
            assert "rk_" in problem["detail"]
    assert (await client.get(f"/v1/orders/{order['id']}")).json()["status"] == "requires_action"  # untouched


async def test_another_accounts_ids_are_404_on_every_route_and_channel(
    client: httpx.AsyncClient, other: httpx.AsyncClient, stack: Stack
) -> None:
    order = await create_order(client, "pm_wallet_qr")
    for method, template, body in ROUTES[2:-1]:
        reply = await other.request(method, _path(template, order), json=body)
        problem = assert_problem(reply, 404, "NOT_FOUND")
        assert "not found" in problem["detail"]
    held = await other.get(
        f"/v1/orders/{order['id']}", headers={"If-None-Match": f'"{order["version"]}"', "Prefer": "wait=5"}
    )
    assert_problem(held, 404, "NOT_FOUND")
    async with connect(ws_url(stack, order["id"]), additional_headers=bearer(stack.keys.other)) as socket:
        code, messages = await ws_closed(socket)
    assert (code, messages) == (4404, [])
    # The same answer as for an id that does not exist at all.
    unknown = await other.get("/v1/orders/ord_00000000000000000000000000")
    assert unknown.json()["detail"] == "order ord_00000000000000000000000000 not found"
    mine = await client.get(f"/v1/orders/{order['id']}")
    assert mine.json()["status"] == "requires_action"  # nothing the other account did changed it


async def test_each_account_lists_only_its_own_orders(client: httpx.AsyncClient, other: httpx.AsyncClient) -> None:
    customer = f"cus_{uuid.uuid4().hex[:10]}"
    mine = await create_order(client, customer_id=customer)
    theirs = await create_order(other, customer_id=customer)
    listed_by_me = (await client.get("/v1/orders", params={"customer_id": customer})).json()["orders"]
    listed_by_them = (await other.get("/v1/orders", params={"customer_id": customer})).json()["orders"]
    assert [o["id"] for o in listed_by_me] == [mine["id"]]
    assert [o["id"] for o in listed_by_them] == [theirs["id"]]
    everything = (await other.get("/v1/orders", params={"page_size": 100})).json()["orders"]
    assert mine["id"] not in [o["id"] for o in everything]


async def test_idempotency_keys_are_each_accounts_own(client: httpx.AsyncClient, other: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    body = order_body()
    mine = await client.post("/v1/orders", json=body, headers=key)
    theirs = await other.post("/v1/orders", json=body, headers=key)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    again = await other.post("/v1/orders", json=body, headers=key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == theirs.json()["id"]


async def test_the_client_secret_is_the_orders_own_and_is_long_and_random(client: httpx.AsyncClient) -> None:
    first, second = await create_order(client), await create_order(client)
    for order in (first, second):
        secret = order["client_secret"]
        assert secret.startswith(f"{order['id']}_secret_")
        assert len(secret.removeprefix(f"{order['id']}_secret_")) >= 32  # 192 bits, URL-safe base64
    assert first["client_secret"] != second["client_secret"]
    assert (await client.get(f"/v1/orders/{first['id']}")).json()["client_secret"] == first["client_secret"]


async def test_a_client_secret_reads_and_follows_its_order_on_all_four_channels_and_confirms_it(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, stack: Stack
) -> None:
    order = await create_order(client, "pm_wallet_qr")
    secret = {"client_secret": order["client_secret"]}
    path = f"/v1/orders/{order['id']}"
    # Short polling: the order, then 304 while nothing changes.
    read = await anonymous.get(path, params=secret)
    assert read.status_code == 200
    assert read.json() == (await client.get(path)).json()
    etag = read.headers["etag"]
    assert (await anonymous.get(path, params=secret, headers={"If-None-Match": etag})).status_code == 304
    # The payment and its QR code.
    assert (await anonymous.get(f"/v1/payments/{order['payment']['id']}", params=secret)).status_code == 200
    assert (await anonymous.get(f"/v1/payments/{order['payment']['id']}/qr.svg", params=secret)).status_code == 200
    # Long polling, SSE and WebSocket, all waiting for the confirmation.
    long_poll = anonymous.get(path, params=secret, headers={"If-None-Match": etag, "Prefer": "wait=30"})
    socket = await connect(ws_url(stack, order["id"]) + f"?client_secret={order['client_secret']}")
    async with anonymous.stream("GET", f"{path}/events", params=secret) as events:
        assert events.status_code == 200
        assert (await ws_message(socket))["version"] == order["version"]
        held = asyncio.create_task(long_poll)
        confirm = await anonymous.post(
            f"/v1/payments/{order['payment']['id']}/confirm", json={"client_secret": order["client_secret"]}
        )
        assert confirm.status_code == 200, confirm.text
        assert confirm.json()["status"] == "succeeded"
        answered = await asyncio.wait_for(held, 10)
        assert answered.status_code == 200
        assert answered.json()["status"] == "paid"
        assert (await ws_message(socket))["order"]["status"] == "paid"
        text = ""
        async for chunk in events.aiter_text():
            text += chunk
            if '"status":"paid"' in text:
                break
    await socket.close()


async def test_a_wrong_client_secret_is_404_everywhere(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, stack: Stack
) -> None:
    order, another = await create_order(client, "pm_wallet_qr"), await create_order(client, "pm_wallet_qr")
    for wrong in (another["client_secret"], order["client_secret"][:-4] + "AAAA", "short"):
        params = {"client_secret": wrong}
        for template in ("/v1/orders/{order}", "/v1/orders/{order}/events", "/v1/payments/{payment}",
                         "/v1/payments/{payment}/qr.svg"):  # fmt: skip
            assert_problem(await anonymous.get(_path(template, order), params=params), 404, "NOT_FOUND")
        confirm = await anonymous.post(f"/v1/payments/{order['payment']['id']}/confirm", json={"client_secret": wrong})
        assert confirm.status_code in (400, 404)  # "short" does not even look like a secret: 400
        page = await anonymous.get(f"/pay/{order['payment']['id']}", params=params)
        assert page.status_code == 404
        assert "Payment not found" in page.text
        url = ws_url(stack, order["id"]) + f"?client_secret={wrong}"
        if wrong == "short":  # not even the form of a secret: refused in place of the handshake
            with pytest.raises(InvalidStatus) as refused:
                await connect(url)
            assert refused.value.response.status_code == 404
            continue
        async with connect(url) as socket:
            code, messages = await ws_closed(socket)
        assert (code, messages) == (4404, [])
    assert (await client.get(f"/v1/orders/{order['id']}")).json()["status"] == "requires_action"


async def test_a_client_secret_opens_nothing_else(client: httpx.AsyncClient, anonymous: httpx.AsyncClient) -> None:
    order = await create_order(client, "pm_wallet_qr")
    params = {"client_secret": order["client_secret"]}
    for method, template, body in (
        ("GET", "/v1/orders", None),
        ("POST", "/v1/orders", order_body()),
        ("POST", "/v1/orders/{order}/cancel", {}),
        ("POST", "/v1/orders/{order}/refund", {}),
    ):
        reply = await anonymous.request(method, _path(template, order), params=params, json=body)
        assert_problem(reply, 401, "UNAUTHENTICATED")
    assert (await anonymous.post(f"/v1/payments/{order['payment']['id']}/confirm", json={})).status_code == 401


async def test_the_demo_routes_act_for_the_demo_account_and_only_on_the_callers_own_order(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    created = await anonymous.post("/demo/orders", json=order_body("pm_wallet_qr"))
    assert created.status_code == 201, created.text
    demo = created.json()
    assert demo["client_secret"]
    # Not the test account's: its key does not see it.
    assert_problem(await client.get(f"/v1/orders/{demo['id']}"), 404, "NOT_FOUND")
    mine = await create_order(client, "pm_wallet_qr")
    # Cancel needs the order's secret, and reaches only demo orders.
    assert (await anonymous.post(f"/demo/orders/{demo['id']}/cancel", json={})).status_code == 401
    wrong = {"client_secret": mine["client_secret"]}
    assert_problem(await anonymous.post(f"/demo/orders/{demo['id']}/cancel", params=wrong, json={}), 404)
    assert_problem(await anonymous.post(f"/demo/orders/{mine['id']}/cancel", params=wrong, json={}), 404)
    canceled = await anonymous.post(
        f"/demo/orders/{demo['id']}/cancel", params={"client_secret": demo["client_secret"]}, json={}
    )
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert (await client.get(f"/v1/orders/{mine['id']}")).json()["status"] == "requires_action"
    assert "/demo/orders" not in (await anonymous.get("/openapi.json")).json()["paths"]
