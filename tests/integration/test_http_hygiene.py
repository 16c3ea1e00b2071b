"""HTTP as RFC 9110 has it, beyond the routes themselves: HEAD wherever GET answers, a 405 that
says what is allowed, no redirect for a trailing slash, headers and content codings the gateway
will not take; and the request id rule, the same at the gateway and at the services."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid

import grpc
import httpx
import pytest

from shop.order.v1 import order_pb2, order_pb2_grpc
from tests.harness import Stack
from tests.integration.helpers import assert_problem, create_order, order_body

# What each path allows, then the methods tried on it that it does not.
ALLOWED = {
    "/v1/orders": ("GET, HEAD, POST", "DELETE", "PUT"),
    "/v1/orders/ord_x": ("GET, HEAD", "POST"),
    "/v1/orders/ord_x/cancel": ("POST", "GET"),
    "/v1/orders/ord_x/refund": ("POST", "HEAD"),
    "/v1/payments/pay_x": ("GET, HEAD", "PATCH"),
    "/v1/orders/ord_x/events": ("GET, HEAD", "POST"),
    "/healthz": ("GET, HEAD", "POST"),
    "/docs": ("GET, HEAD", "DELETE"),
}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [(method, path, allowed) for path, (allowed, *refused) in ALLOWED.items() for method in refused],
)
async def test_405_names_every_allowed_method(client: httpx.AsyncClient, method: str, path: str, allowed: str) -> None:
    reply = await client.request(method, path)
    assert reply.status_code == 405
    assert reply.headers["allow"] == allowed
    if method != "HEAD":
        body = assert_problem(reply, 405, "UNIMPLEMENTED")
        assert allowed in body["detail"]


async def test_head_answers_as_get_without_a_body(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    for path in (
        f"/v1/orders/{order['id']}",
        f"/v1/orders?customer_id={order['customer_id']}",
        f"/v1/payments/{order['payment']['id']}",
        f"/v1/payments/{order['payment']['id']}/qr.svg",
        "/healthz",
        "/openapi.json",
        "/docs",
        "/",
    ):
        get, head = await client.get(path), await client.head(path)
        assert get.status_code == head.status_code == 200, path
        assert head.content == b"", path
        for header in ("content-type", "content-length", "etag"):
            assert head.headers.get(header) == get.headers.get(header), (path, header)


async def test_head_of_an_unknown_order_is_404(client: httpx.AsyncClient) -> None:
    reply = await client.head("/v1/orders/ord_01JD0000000000000000000000")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.content == b""


async def test_head_of_an_event_stream_ends_after_its_headers(client: httpx.AsyncClient) -> None:
    order = await create_order(client)  # paid: its GET stream would stay open for a refund
    # A stream that went on would end in a read timeout (its first keep-alive comes after 15 s).
    reply = await client.head(f"/v1/orders/{order['id']}/events", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.content == b""


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/orders/"), ("POST", "/v1/orders/"), ("GET", "/healthz/")])
async def test_a_trailing_slash_is_not_found_not_redirected(client: httpx.AsyncClient, method: str, path: str) -> None:
    reply = await client.request(method, path, headers={"Host": "elsewhere.example"})
    assert_problem(reply, 404, "NOT_FOUND")
    assert "location" not in reply.headers


async def test_headers_over_16_kib_are_431(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz", headers={"X-Filler": "a" * 8_000})).status_code == 200
    reply = await client.get("/healthz", headers={"X-Filler": "a" * 17_000})
    assert_problem(reply, 431, "RESOURCE_EXHAUSTED")
    reply = await client.post("/v1/orders", json=order_body(), headers={f"X-Filler-{i}": "a" * 1000 for i in range(17)})
    assert_problem(reply, 431)


@pytest.mark.parametrize("coding", ["gzip", "br", "identity, gzip"])
async def test_a_compressed_body_is_415_and_creates_nothing(client: httpx.AsyncClient, coding: str) -> None:
    body = order_body()
    plain = json.dumps(body).encode()
    for content in (plain, gzip.compress(plain)):
        reply = await client.post(
            "/v1/orders",
            content=content,
            headers={"Content-Type": "application/json", "Content-Encoding": coding},
        )
        problem = assert_problem(reply, 415, "INVALID_ARGUMENT")
        assert "Content-Encoding" in problem["detail"]
        assert reply.headers["accept-encoding"] == "identity"
    listed = await client.get("/v1/orders", params={"customer_id": body["customer_id"]})
    assert listed.json()["orders"] == []


async def test_identity_coding_is_taken(client: httpx.AsyncClient) -> None:
    reply = await client.post("/v1/orders", json=order_body(), headers={"Content-Encoding": "identity"})
    assert reply.status_code == 201, reply.text


@pytest.mark.parametrize("given", ["has a space", "x" * 129, "tab\there"])
async def test_a_malformed_request_id_is_replaced_at_the_gateway(client: httpx.AsyncClient, given: str) -> None:
    reply = await client.get("/healthz", headers={"X-Request-ID": given})
    assert reply.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("given", ["has a space", "x" * 129, '{"level": "error"}'])
async def test_the_order_service_checks_the_request_id_as_the_gateway_does(stack: Stack, given: str) -> None:
    """A direct gRPC caller's `x-request-id` goes into the log only when the gateway would have
    kept it too; a well-formed one is kept (so the check can fail)."""
    marker = uuid.uuid4().hex
    bad, good = f"{given}-{marker}", f"ok-{marker}"
    async with grpc.aio.insecure_channel(stack.order_target) as channel:
        orders = order_pb2_grpc.OrderServiceStub(channel)
        for request_id in (bad, good):
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await orders.GetOrder(
                    order_pb2.GetOrderRequest(order_id=f"ord_{marker}"),
                    metadata=(("x-request-id", request_id),),
                    timeout=5,
                )
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # The calls' log lines come in order: once the second is there, so is the first.
    logged = await _log_lines(stack, marker, until=good)
    assert {entry.get("request_id") for entry in logged if entry.get("rpc")} == {good}


async def _log_lines(stack: Stack, marker: str, until: str, timeout: float = 5) -> list[dict[str, object]]:
    """The order service's log lines that mention `marker`, once one of them carries `until`
    (the service writes a call's line as the call ends, maybe just after its answer left)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        lines = [json.loads(line) for line in stack.order.log().splitlines() if marker in line]
        if any(entry.get("request_id") == until for entry in lines):
            return lines
        assert asyncio.get_running_loop().time() < deadline, f"no log line with request_id {until}"
        await asyncio.sleep(0.02)


async def test_an_idle_connection_outlives_a_clients_keep_alive(stack: Stack) -> None:
    """The gateway keeps an idle connection longer than httpx (5 s) keeps its own: a client that
    sends its next request on a connection idle for its whole keep-alive finds it open — the
    gateway never ends it at the moment the client reuses it (gateway/__main__.py, KEEP_ALIVE_S)."""
    idle_s = httpx.Limits().keepalive_expiry
    assert idle_s is not None
    connected: list[str] = []

    async def trace(event: str, _info: object) -> None:
        if event == "connection.connect_tcp.complete":
            connected.append(event)

    async with httpx.AsyncClient(base_url=stack.url, limits=httpx.Limits(keepalive_expiry=None)) as client:
        first = await client.get("/healthz", extensions={"trace": trace})
        await asyncio.sleep(idle_s + 1)  # the idle time is what is tested
        second = await client.get("/healthz", extensions={"trace": trace})
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(connected) == 1, "the gateway had closed the idle connection"
