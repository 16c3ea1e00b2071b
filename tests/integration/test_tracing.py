"""Traces (docs/operations.md#traces): one `POST /v1/orders` is one trace with spans from the three
processes — the HTTP route, each RPC on both sides, each database transaction — under the client's
`traceparent`; the trace and span ids are in the log lines about the request; push streams get a
span for their set-up only; no secret reaches a span. The services export to the console
(their logs) with a short batch delay, and the tests wait for the spans they expect to be written."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import httpx
import pytest
import websockets

from tests.conftest import client_of
from tests.harness import Stack
from tests.integration.helpers import create_order, order_body
from tests.spans import Span, children, log_lines, of_trace, parse

T = TypeVar("T")
SERVICES = ("gateway", "order_service", "payment_service")


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "20"}
    with Stack(tmp_path_factory.mktemp("traced"), env=env) as running:
        yield running


http = client_of("traced")


def traceparent() -> tuple[str, str, str]:
    """A new W3C traceparent (sampled) and its trace id and parent span id."""
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


async def eventually(probe: Callable[[], T | None], what: str, timeout: float = 10) -> T:
    """Until `probe` finds what it looks for (the exporter writes its batch a moment after the
    span ends); fails with `what` when it never does."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}")
        await asyncio.sleep(0.02)


def spans_of(stack: Stack, trace_id: str) -> dict[str, list[Span]]:
    return {name: of_trace(parse(stack.services[name].log()), trace_id) for name in SERVICES}


def log_with(stack: Stack, name: str, request_id: str) -> str | None:
    text = stack.services[name].log()
    return text if f'"request_id":"{request_id}"' in text else None


def lines_in_span(stack: Stack, name: str, request_id: str, span_id: str) -> list[dict[str, Any]] | None:
    """The log lines of `name` about the request, once one of them is in the span `span_id`."""
    about = [line for line in log_lines(stack.services[name].log()) if line.get("request_id") == request_id]
    return about if any(line.get("span_id") == span_id for line in about) else None


def one(spans: list[Span], name: str, kind: str) -> Span:
    found = [s for s in spans if s.name == name and s.kind == kind]
    assert len(found) == 1, (name, kind, [(s.name, s.kind) for s in spans])
    return found[0]


def written(stack: Stack, trace_id: str, *wanted: tuple[str, str]) -> Callable[[], dict[str, list[Span]] | None]:
    """A probe: the trace's spans once each process has written its SERVER span named in
    `wanted` (service, name) — each exports on its own schedule."""

    def probe() -> dict[str, list[Span]] | None:
        spans = spans_of(stack, trace_id)
        done = all(any(s.kind == "SERVER" and s.name == name for s in spans[service]) for service, name in wanted)
        return spans if done else None

    return probe


ORDER_TRACE = (
    ("gateway", "POST /v1/orders"),
    ("order_service", "shop.order.v1.OrderService/CreateOrder"),
    ("payment_service", "shop.payment.v1.PaymentService/Charge"),
)


async def test_one_order_is_one_trace_across_the_three_processes(http: httpx.AsyncClient, traced: Stack) -> None:
    header, trace_id, client_span = traceparent()
    key = f"key-{secrets.token_hex(8)}"
    reply = await http.post("/v1/orders", json=order_body(), headers={"traceparent": header, "Idempotency-Key": key})
    assert reply.status_code == 201, reply.text
    request_id = reply.headers["x-request-id"]
    spans = await eventually(written(traced, trace_id, *ORDER_TRACE), "a span of each process")
    gateway, orders, payments = spans["gateway"], spans["order_service"], spans["payment_service"]

    # The gateway: the route, under the client's span; the call to the order service under it.
    route = one(gateway, "POST /v1/orders", "SERVER")
    assert route.parent_id == client_span
    assert route.attributes["http.route"] == "/v1/orders"
    assert route.attributes["http.response.status_code"] == 201
    create_call = one(gateway, "shop.order.v1.OrderService/CreateOrder", "CLIENT")
    assert create_call.parent_id == route.span_id

    # The order service: the call's server side, its transactions, and its call to payments.
    create = one(orders, "shop.order.v1.OrderService/CreateOrder", "SERVER")
    assert create.parent_id == create_call.span_id
    assert create.attributes["rpc.grpc.status_code"] == 0
    order_transactions = [s for s in children(orders, create) if s.name.startswith(("write ", "read "))]
    names = [s.name for s in order_transactions]
    assert "write OrderStore.add_pending" in names, names
    assert "write OrderStore.record" in names, names
    assert names.index("write OrderStore.add_pending") < names.index("write OrderStore.record")
    charge_call = one(orders, "shop.payment.v1.PaymentService/Charge", "CLIENT")
    assert charge_call.parent_id == create.span_id

    # The payment service: Charge's server side, and its transactions.
    charge = one(payments, "shop.payment.v1.PaymentService/Charge", "SERVER")
    assert charge.parent_id == charge_call.span_id
    assert any(s.name.startswith("write ") for s in children(payments, charge))

    # Nested in time as in the tree: each server span within its client span.
    for outer, inner in ((route, create_call), (create_call, create), (create, charge_call), (charge_call, charge)):
        assert outer.start <= inner.start, (outer.name, inner.name)
        assert inner.end <= outer.end, (outer.name, inner.name)

    # Every log line about the request carries the trace, and the span of its process. Each
    # process writes its line as the call ends, maybe after its span was exported: wait for it.
    server_span = {"gateway": route, "order_service": create, "payment_service": charge}
    for name in SERVICES:
        about = await eventually(
            partial(lines_in_span, traced, name, request_id, server_span[name].span_id),
            f"a log line of {name} about the request in its span",
        )
        for line in about:
            assert line.get("trace_id") == trace_id, (name, line)

    # The idempotency key travels in gRPC metadata, never into a span.
    for name in SERVICES:
        exported = [line for line in traced.services[name].log().splitlines() if line.startswith('{"name"')]
        assert exported, name
        assert not [line for line in exported if key in line], name


async def test_without_traceparent_the_trace_starts_at_the_gateway(http: httpx.AsyncClient, traced: Stack) -> None:
    reply = await http.post("/v1/orders", json=order_body())
    assert reply.status_code == 201
    request_id = reply.headers["x-request-id"]

    def route() -> Span | None:
        found = [
            s
            for s in parse(traced.gateway.log())
            if s.kind == "SERVER" and s.attributes.get("request_id") == request_id
        ]
        return found[0] if found else None

    root = await eventually(route, "the gateway's span")
    assert root.parent_id is None
    charge = await eventually(
        lambda: next((s for s in spans_of(traced, root.trace_id)["payment_service"] if s.kind == "SERVER"), None),
        "the payment service's span in the same trace",
    )
    assert charge.name == "shop.payment.v1.PaymentService/Charge"


async def test_a_refused_call_is_an_error_of_the_caller_only(http: httpx.AsyncClient, traced: Stack) -> None:
    header, trace_id, _ = traceparent()
    reply = await http.get("/v1/orders/ord_00000000000000000000000000", headers={"traceparent": header})
    assert reply.status_code == 404
    wanted = (("gateway", "GET /v1/orders/{order_id}"), ("order_service", "shop.order.v1.OrderService/GetOrder"))
    spans = await eventually(written(traced, trace_id, *wanted), "the spans of both sides")
    call = one(spans["gateway"], "shop.order.v1.OrderService/GetOrder", "CLIENT")
    assert call.status == "ERROR"
    assert call.attributes["rpc.grpc.status_code"] == 5
    # NOT_FOUND is an answer: the server did its job, and so did the route (a 4xx is not a 5xx).
    served = one(spans["order_service"], "shop.order.v1.OrderService/GetOrder", "SERVER")
    assert served.status == "UNSET"
    assert served.attributes["rpc.grpc.status_code"] == 5
    assert one(spans["gateway"], "GET /v1/orders/{order_id}", "SERVER").status == "UNSET"


async def test_push_streams_get_one_span_for_their_set_up(http: httpx.AsyncClient, traced: Stack) -> None:
    order = await create_order(http, "pm_card_authenticationRequired")  # stays requires_action: streams stay open
    sse_header, sse_trace, _ = traceparent()
    async with http.stream("GET", f"/v1/orders/{order['id']}/events", headers={"traceparent": sse_header}) as events:
        assert events.status_code == 200
        async for line in events.aiter_lines():
            if line.startswith("data:"):
                break  # the current version arrived: the stream is set up, and stays open
        ws_header, ws_trace, _ = traceparent()
        async with websockets.connect(
            f"ws://127.0.0.1:{traced.gateway_port}/v1/orders/{order['id']}/ws",
            additional_headers={"traceparent": ws_header, **traced.headers},
        ) as socket:
            assert '"order.updated"' in await socket.recv()
            # While both streams are still open, their spans are written already.
            sse = await eventually(
                lambda: next(iter(of_trace(parse(traced.gateway.log()), sse_trace)), None), "the SSE span"
            )
            ws = await eventually(
                lambda: next((s for s in of_trace(parse(traced.gateway.log()), ws_trace) if s.kind == "SERVER"), None),
                "the WebSocket span",
            )
    assert sse.name == "GET /v1/orders/{order_id}/events"
    assert sse.attributes["http.response.status_code"] == 200
    assert ws.name == "WS /v1/orders/{order_id}/ws"
    assert ws.attributes["http.response.status_code"] == 101
    # The gateway's shared WatchOrder stream is not a request's: its set-up is a trace of its own
    # at the order service, ended with its first message although the stream stayed open (and
    # exported on the order service's own schedule).
    watches = await eventually(
        lambda: [s for s in parse(traced.order.log()) if s.name == "shop.order.v1.OrderService/WatchOrder"] or None,
        "the order service's WatchOrder span",
    )
    assert all(s.attributes["rpc.span_covers"] == "stream set-up" for s in watches)


async def test_no_span_for_probes_and_no_secret_in_spans(http: httpx.AsyncClient, traced: Stack) -> None:
    header, trace_id, _ = traceparent()
    assert (await http.get("/readyz", headers={"traceparent": header})).status_code == 200
    secret = f"cs_{secrets.token_hex(12)}"
    probe_header, probe_trace, _ = traceparent()
    reply = await http.get(
        "/v1/orders/ord_00000000000000000000000000",
        params={"client_secret": secret},
        headers={"traceparent": probe_header},
    )
    assert reply.status_code == 404
    spans = await eventually(written(traced, probe_trace, ("gateway", "GET /v1/orders/{order_id}")), "the route's span")
    assert "url.query" not in one(spans["gateway"], "GET /v1/orders/{order_id}", "SERVER").attributes
    for name in SERVICES:
        log = traced.services[name].log()
        assert secret not in log, name
        assert not of_trace(parse(log), trace_id), name  # /readyz and the health checks it makes
        assert not [s for s in parse(log) if s.name.startswith("grpc.health")], name


async def test_with_tracing_off_nothing_is_recorded(stack: Stack) -> None:
    header, _trace_id, _ = traceparent()
    async with stack.client() as client:
        reply = await client.post("/v1/orders", json=order_body(), headers={"traceparent": header})
    assert reply.status_code == 201
    request_id = reply.headers["x-request-id"]
    for name in SERVICES:
        # The access log line is written just after the answer has gone.
        log = await eventually(partial(log_with, stack, name, request_id), f"the request's log line in {name}")
        assert not parse(log), name
        assert '"trace_id"' not in log, name
