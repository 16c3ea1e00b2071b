"""`python -m bench.hop_client …`: the load of the hop benchmark, from its own process.

N workers share one client — for `Charge` the order service's own `PaymentClient`, for the 100
items one gRPC channel (`common.grpc_client.open_channel`, as the gateway opens its own), one
httpx.AsyncClient, or one aiohttp.ClientSession — and each sends the next call as soon as the
last one is answered (a closed loop). After a warm-up, consecutive windows are measured back to
back; the JSON result on stdout has one entry per window.

Clients are written as a team would write them: httpx with its `json=` and `.json()` (the
standard library's json), aiohttp as the tuned baseline with orjson on both ways.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import orjson

from bench.payloads import charge_fields, create_order_fields, create_order_request
from bench.procs import cpu_seconds
from bench.stats import Run
from common.grpc_client import open_channel
from gateway.backends import ORDER_RETRYABLE
from order_service.payment_client import PaymentClient
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2

Call = Callable[[], Awaitable[None]]
TIMEOUT_S = 10.0
PATHS = {"small": "/v1/charges", "large": "/v1/orders"}


class CallFailed(Exception):
    pass


def _keys() -> Callable[[], str]:
    counter = itertools.count()
    prefix = f"bench-{os.getpid()}-"
    return lambda: prefix + str(next(counter))


async def _grpc(target: str, payload: str, concurrency: int) -> tuple[Call, Callable[[], Awaitable[None]]]:
    if payload == "small":
        # The order service's own client of the payment service, as it charges an order.
        payments = PaymentClient(target)
        key = _keys()

        async def charge() -> None:
            fields = charge_fields(key())
            order = order_pb2.Order(id=fields["order_id"], amount=fields["amount"], currency=fields["currency"])
            reply = await payments.charge(order, fields["payment_method"], TIMEOUT_S)
            if reply.status != payment_pb2.PAYMENT_STATUS_SUCCEEDED:
                raise CallFailed(reply.status)

        return charge, payments.close
    channel = open_channel(target, ORDER_RETRYABLE)
    orders = order_pb2_grpc.OrderServiceStub(channel)
    request = create_order_request()

    async def create() -> None:
        reply = await orders.CreateOrder(request, timeout=TIMEOUT_S)
        if reply.status != order_pb2.ORDER_STATUS_PAID:
            raise CallFailed(reply.status)

    return create, lambda: channel.close(None)


async def _httpx(url: str, payload: str, concurrency: int) -> tuple[Call, Callable[[], Awaitable[None]]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(base_url=url, limits=limits, timeout=TIMEOUT_S)
    path, key, large = PATHS[payload], _keys(), create_order_fields()

    async def post() -> None:
        response = await client.post(path, json=charge_fields(key()) if payload == "small" else large)
        if response.status_code not in (200, 201) or response.json()["status"] not in ("succeeded", "paid"):
            raise CallFailed(response.status_code)

    return post, client.aclose


async def _aiohttp(url: str, payload: str, concurrency: int) -> tuple[Call, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        base_url=url,
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
    )
    path, key, large = PATHS[payload], _keys(), orjson.dumps(create_order_fields())
    headers = {"Content-Type": "application/json"}

    async def post() -> None:
        body = orjson.dumps(charge_fields(key())) if payload == "small" else large
        async with session.post(path, data=body, headers=headers) as response:
            document = orjson.loads(await response.read())
            if response.status not in (200, 201) or document["status"] not in ("succeeded", "paid"):
                raise CallFailed(response.status)

    return post, session.close


CLIENTS = {"grpc": _grpc, "httpx": _httpx, "aiohttp": _aiohttp}


async def measure(
    transport: str,
    target: str,
    payload: str,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    runs: int,
    server_pid: int | None = None,
) -> list[dict[str, Any]]:
    """One entry per window: throughput, latency, and the CPU time each call cost the client
    process and (given its pid) the server process — a figure that other load on the machine
    disturbs far less than throughput."""
    call, close = await CLIENTS[transport](target, payload, concurrency)
    window: list[float] = []
    errors = 0
    stop = False

    async def worker() -> None:
        nonlocal errors
        while not stop:
            started = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
                await asyncio.sleep(0.01)
                continue
            window.append(time.perf_counter() - started)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    results: list[dict[str, Any]] = []
    try:
        await asyncio.sleep(warmup_s)
        for _ in range(runs):
            window, errors = [], 0
            started, client_cpu = time.perf_counter(), time.process_time()
            server_cpu = cpu_seconds(server_pid) if server_pid else 0.0
            await asyncio.sleep(duration_s)
            elapsed, calls = time.perf_counter() - started, max(len(window), 1)
            row = Run.from_latencies(window, elapsed, errors).to_json()
            row["client_cpu_us"] = round((time.process_time() - client_cpu) / calls * 1e6, 2)
            if server_pid:
                row["server_cpu_us"] = round((cpu_seconds(server_pid) - server_cpu) / calls * 1e6, 2)
            results.append(row)
    finally:
        stop = True
        await asyncio.wait(workers, timeout=TIMEOUT_S)
        await close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hop_client")
    parser.add_argument("transport", choices=sorted(CLIENTS))
    parser.add_argument("target", help="host:port for grpc, a base URL for httpx and aiohttp")
    parser.add_argument("--payload", choices=["small", "large"], default="small")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server-pid", type=int, help="also report the server's CPU time per call")
    args = parser.parse_args()
    runs = asyncio.run(
        measure(
            args.transport,
            args.target,
            args.payload,
            args.concurrency,
            args.warmup,
            args.duration,
            args.runs,
            args.server_pid,
        )
    )
    sys.stdout.write(orjson.dumps(runs).decode() + "\n")


if __name__ == "__main__":
    main()
