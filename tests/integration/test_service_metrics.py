"""Metrics (docs/operations.md#metrics): each gRPC service serves Prometheus text on its own port
(the harness gives each a free one) — calls by method and code, latency histograms, calls in flight,
database transaction time, open watch streams, and the order service's reconciler backlog and
actions. Each test reads the figures before and after what it does, so that other tests' traffic on
the shared stack cannot make it pass or fail."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Stack
from tests.integration.helpers import create_order, order_body

ORDER = "shop.order.v1.OrderService"
PAYMENT = "shop.payment.v1.PaymentService"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient(timeout=5) as http:
        reply = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def rpc(service: str, method: str, **more: str) -> dict[str, str]:
    return {"grpc_service": service, "grpc_method": method, **more}


async def until(port: int, check: Callable[[Samples], bool], what: str, timeout: float = 20) -> Samples:
    """Scrape until `check` holds (gauges follow asynchronous work: a stream closing, a round)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await scrape(port)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"never saw {what}"
        await asyncio.sleep(0.05)


async def test_order_service_counts_times_and_tracks_its_calls(client: httpx.AsyncClient, stack: Stack) -> None:
    port = stack.order_metrics_port
    before = await scrape(port)
    await create_order(client)
    await create_order(client, "pm_card_chargeDeclined")  # a declined card is an answer: OK
    missing = await client.get("/v1/orders/ord_00000000000000000000000000")
    assert missing.status_code == 404
    after = await scrape(port)

    handled = "grpc_server_handled_total"
    assert (
        value(after, handled, **rpc(ORDER, "CreateOrder", grpc_code="OK"))
        - value(before, handled, **rpc(ORDER, "CreateOrder", grpc_code="OK"))
        == 2
    )
    assert (
        value(after, handled, **rpc(ORDER, "GetOrder", grpc_code="NOT_FOUND"))
        - value(before, handled, **rpc(ORDER, "GetOrder", grpc_code="NOT_FOUND"))
        == 1
    )
    latency = rpc(ORDER, "CreateOrder")
    count = "grpc_server_handling_seconds_count"
    assert value(after, count, **latency) - value(before, count, **latency) == 2
    assert value(after, "grpc_server_handling_seconds_sum", **latency) > value(
        before, "grpc_server_handling_seconds_sum", **latency
    )
    # Every observation fell in some bucket, and the largest bucket holds them all.
    assert value(after, "grpc_server_handling_seconds_bucket", **latency, le="+Inf") == value(after, count, **latency)
    assert value(after, "grpc_server_calls_in_flight", **latency) == 0
    # Each order: one transaction to store it, one to record its payment.
    for operation in ("OrderStore.add_pending", "OrderStore.record"):
        labels = {"kind": "write", "operation": operation}
        name = "db_transaction_duration_seconds_count"
        assert value(after, name, **labels) - value(before, name, **labels) == 2, operation


async def test_payment_service_counts_its_calls(client: httpx.AsyncClient, stack: Stack) -> None:
    port = stack.payment_metrics_port
    before = await scrape(port)
    await create_order(client)
    missing = await client.get("/v1/payments/pay_00000000000000000000000000")
    assert missing.status_code == 404
    after = await scrape(port)
    for labels, grown in (
        (rpc(PAYMENT, "Charge", grpc_code="OK"), 1),
        (rpc(PAYMENT, "GetPayment", grpc_code="NOT_FOUND"), 1),
    ):
        assert (
            value(after, "grpc_server_handled_total", **labels) - value(before, "grpc_server_handled_total", **labels)
            == grown
        ), labels
    charge = rpc(PAYMENT, "Charge")
    assert value(after, "grpc_server_handling_seconds_count", **charge) > value(
        before, "grpc_server_handling_seconds_count", **charge
    )
    writes = {"kind": "write", "operation": "Payments.insert"}
    assert value(after, "db_transaction_duration_seconds_count", **writes) > value(
        before, "db_transaction_duration_seconds_count", **writes
    )


async def test_open_watch_streams_are_counted(client: httpx.AsyncClient, stack: Stack) -> None:
    port = stack.order_metrics_port
    streams = rpc(ORDER, "WatchOrder")
    # The stack is shared: a stream of an earlier test's watchers may still be closing. Counting
    # from a moment when none is open, one more is this test's.
    before = 0
    await until(port, lambda s: value(s, "grpc_server_streams_open", **streams) == before, "no stream open")
    order = await create_order(client, "pm_card_authenticationRequired")
    async with websockets.connect(
        f"ws://127.0.0.1:{stack.gateway_port}/v1/orders/{order['id']}/ws", additional_headers=stack.headers
    ) as socket:
        assert '"order.updated"' in await socket.recv()  # the gateway's stream is open: it got a version
        during = await scrape(port)
        assert value(during, "grpc_server_streams_open", **streams) == before + 1
        # A stream is not a call in flight, nor a sample of the latency histogram.
        assert value(during, "grpc_server_calls_in_flight", **streams) == 0
        assert value(during, "grpc_server_handling_seconds_count", **streams) == 0
    # The last watcher left: the gateway closes its stream, the order service sees it end.
    await until(port, lambda s: value(s, "grpc_server_streams_open", **streams) == before, "the stream closed")


async def test_the_reconciler_backlog_and_actions(fresh_stack: Stack) -> None:
    # Rounds every 1.5 s: longer than the 1 s after which a failed charge is due again, so that
    # while the payment service is down every round starts with the check due (a steady backlog).
    fresh_stack.order.env["ORDER_RECONCILE_INTERVAL_S"] = "1.5"
    fresh_stack.start()
    port = fresh_stack.order_metrics_port
    backlog = "order_reconciler_backlog"
    checks = "order_reconciler_checks_total"
    assert value(await scrape(port), backlog) == 0

    fresh_stack.payment.stop()
    async with fresh_stack.client() as http:
        reply = await http.post("/v1/orders", json=order_body())
    assert reply.status_code == 503  # stored, not charged: a charge check is left for the reconciler
    down = await until(
        port,
        lambda s: value(s, backlog) == 1 and value(s, checks, check="charge", outcome="retry") >= 1,
        "the charge check due and retried",
    )
    assert value(down, checks, check="charge", outcome="done") == 0

    fresh_stack.payment.start()
    fresh_stack.wait_serving(fresh_stack.payment_target)
    up = await until(
        port,
        lambda s: value(s, checks, check="charge", outcome="done") == 1 and value(s, backlog) == 0,
        "the charge finished and the backlog empty",
    )
    charged = await scrape(fresh_stack.payment_metrics_port)
    assert value(charged, "grpc_server_handled_total", **rpc(PAYMENT, "Charge", grpc_code="OK")) == 1
    assert value(up, checks, check="charge", outcome="retry") >= 1


async def test_a_metrics_port_of_zero_serves_nothing(fresh_stack: Stack) -> None:
    fresh_stack.order.env["ORDER_METRICS_PORT"] = "0"
    fresh_stack.start()
    try:
        await scrape(fresh_stack.order_metrics_port)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("the order service served metrics with ORDER_METRICS_PORT=0")
    assert '"metrics_port":null' in fresh_stack.order.log()


def test_a_metrics_port_in_use_stops_the_service_with_one_line(fresh_stack: Stack) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        fresh_stack.payment.env["PAYMENT_METRICS_PORT"] = str(taken.getsockname()[1])
        fresh_stack.payment.start()
        assert fresh_stack.payment.proc is not None
        assert fresh_stack.payment.proc.wait(timeout=60) == 1
    last = fresh_stack.payment.log().strip().splitlines()[-1]
    assert last.startswith("cannot serve metrics on 127.0.0.1:"), last
    assert "(PAYMENT_METRICS_PORT)" in last
