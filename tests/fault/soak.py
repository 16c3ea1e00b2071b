"""Item 6 of the fault suite, run by hand (it is a benchmark, not a CI test): steady load for a
while, no errors, and the resident memory of each process flat after the warm-up.

    .venv/bin/python -m tests.fault.soak                     # 2 minutes, the quick look
    .venv/bin/python -m tests.fault.soak --minutes 10        # the issue's figure

The three services run as processes (tests/harness.py). The load is paced (`--rate` orders per
second from `--clients` good clients, each order with its own Idempotency-Key), with reads,
lists and a few SSE watchers of orders that change (confirmations of QR payments, refunds)
beside it. Every `--sample-s` the RSS of each process is read from /proc. Also held for the
whole run: one idle gRPC channel to each service, which must stay READY — keepalive pings every
30 s that the servers accept, not a GOAWAY "too_many_pings" after 90 s.

Figures go to test-artifacts/soak-report.json: requests and errors, latency percentiles,
RSS at the end of the warm-up and at the end, growth in MiB and per minute (least squares over
the samples after the warm-up). Exit status 1 when there were errors or a channel dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpc_client import open_channel
from tests.artifacts import ARTIFACTS, record
from tests.harness import Stack


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return 60 * cov / var if var else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Soak:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.errors: list[str] = []
        self.latencies: list[float] = []
        self.requests = 0
        self.stop = asyncio.Event()
        self.samples: dict[str, list[tuple[float, float]]] = {name: [] for name in stack.services}
        self.channel_states: dict[str, list[str]] = {}
        self.rng = random.Random(6)

    async def _post(self, http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response | None:
        started = time.perf_counter()
        self.requests += 1
        try:
            reply = await http.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        except httpx.HTTPError as exc:
            self.errors.append(f"POST {path}: {type(exc).__name__}")
            return None
        self.latencies.append(time.perf_counter() - started)
        if reply.status_code >= 400:
            self.errors.append(f"POST {path}: {reply.status_code} {reply.text[:200]}")
            return None
        return reply

    async def client(self, number: int) -> None:
        interval = self.args.clients / self.args.rate
        async with httpx.AsyncClient(base_url=self.stack.url, headers=self.stack.headers, timeout=30) as http:
            next_at = time.monotonic() + self.rng.uniform(0, interval)
            while not self.stop.is_set():
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                method = self.rng.choice(["pm_card_visa"] * 6 + ["pm_card_chargeDeclined", "pm_wallet_qr"])
                body = {
                    "customer_id": f"cus_soak_{number}",
                    "currency": "EUR",
                    "items": [{"sku": "SOAK", "quantity": 1, "unit_price": self.rng.randint(100, 9999)}],
                    "payment_method": method,
                }
                reply = await self._post(http, "/v1/orders", body)
                if reply is None:
                    continue
                order = reply.json()
                if order["status"] == "requires_action":
                    await self._post(http, f"/v1/payments/{order['payment']['id']}/confirm", {})
                elif order["status"] == "paid" and self.rng.random() < 0.2:
                    await self._post(http, f"/v1/orders/{order['id']}/refund", {"amount": 1})
                self.requests += 2
                for path in (f"/v1/orders/{order['id']}", f"/v1/orders?customer_id=cus_soak_{number}&page_size=5"):
                    try:
                        got = await http.get(path)
                        if got.status_code != 200:
                            self.errors.append(f"GET {path}: {got.status_code}")
                    except httpx.HTTPError as exc:
                        self.errors.append(f"GET {path}: {type(exc).__name__}")

    async def watcher(self) -> None:
        """Follows one QR-payment order after another over SSE until each is paid."""
        timeout = httpx.Timeout(30, read=None)
        async with httpx.AsyncClient(base_url=self.stack.url, headers=self.stack.headers, timeout=timeout) as http:
            while not self.stop.is_set():
                body = {"customer_id": "cus_soak_watch", "currency": "EUR", "payment_method": "pm_wallet_qr",
                        "items": [{"sku": "W", "quantity": 1, "unit_price": 100}]}  # fmt: skip
                reply = await self._post(http, "/v1/orders", body)
                if reply is None:
                    continue
                order = reply.json()
                confirm = asyncio.create_task(self._confirm_later(http, order["payment"]["id"]))
                try:
                    async with http.stream("GET", f"/v1/orders/{order['id']}/events") as events:
                        async for line in events.aiter_lines():
                            if line.startswith("data:") and json.loads(line[5:])["order"]["status"] == "paid":
                                break
                except httpx.HTTPError as exc:
                    self.errors.append(f"SSE: {type(exc).__name__}")
                await confirm

    async def _confirm_later(self, http: httpx.AsyncClient, payment_id: str) -> None:
        await asyncio.sleep(0.5)
        await self._post(http, f"/v1/payments/{payment_id}/confirm", {})

    async def sampler(self, started: float) -> None:
        while not self.stop.is_set():
            for name, service in self.stack.services.items():
                assert service.proc is not None
                self.samples[name].append((time.monotonic() - started, rss_mib(service.proc.pid)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.args.sample_s)

    async def idle_channel(self, name: str, target: str) -> None:
        """An idle channel with the clients' keepalive options; records its state changes."""
        channel = open_channel(target)
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        state = channel.get_state()
        states = self.channel_states[name] = [state.name]
        while not self.stop.is_set():
            change = asyncio.create_task(channel.wait_for_state_change(state))
            stopped = asyncio.create_task(self.stop.wait())
            await asyncio.wait({change, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if change.done():
                state = channel.get_state()
                states.append(state.name)
            else:
                change.cancel()
        await channel.close(None)

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        tasks = [asyncio.create_task(self.client(n)) for n in range(self.args.clients)]
        tasks += [asyncio.create_task(self.watcher()) for _ in range(self.args.watchers)]
        tasks.append(asyncio.create_task(self.sampler(started)))
        tasks.append(asyncio.create_task(self.idle_channel("order_service", self.stack.order_target)))
        tasks.append(asyncio.create_task(self.idle_channel("payment_service", self.stack.payment_target)))
        await asyncio.sleep(self.args.minutes * 60)
        self.stop.set()
        await asyncio.gather(*tasks)
        return self.figures(time.monotonic() - started)

    def figures(self, duration: float) -> dict[str, Any]:
        warm_up = self.args.minutes * 60 * self.args.warm_up
        memory: dict[str, Any] = {}
        for name, samples in self.samples.items():
            steady = [(t, m) for t, m in samples if t >= warm_up]
            if not steady:
                continue
            memory[name] = {
                "rss_start_mib": round(samples[0][1], 1),
                "rss_after_warm_up_mib": round(steady[0][1], 1),
                "rss_end_mib": round(steady[-1][1], 1),
                "growth_after_warm_up_mib": round(steady[-1][1] - steady[0][1], 1),
                "slope_mib_per_min": round(slope_per_minute(steady), 3),
            }
        dropped = {name: states for name, states in self.channel_states.items() if states != ["READY"]}
        return {
            "minutes": self.args.minutes,
            "duration_s": round(duration, 1),
            "rate_orders_per_s": self.args.rate,
            "clients": self.args.clients,
            "sse_watchers": self.args.watchers,
            "warm_up_s": round(warm_up, 1),
            "requests": self.requests,
            "errors": len(self.errors),
            "first_errors": self.errors[:10],
            "post_p50_ms": round(percentile(self.latencies, 0.5) * 1000, 2),
            "post_p99_ms": round(percentile(self.latencies, 0.99) * 1000, 2),
            "memory": memory,
            "idle_channel_states": self.channel_states,
            "idle_channels_dropped": dropped,
        }


async def main(args: argparse.Namespace) -> int:
    # The databases and the services' logs stay there, for a look at whatever went wrong.
    workdir = ARTIFACTS / "soak"
    shutil.rmtree(workdir, ignore_errors=True)
    stack = Stack(workdir)
    try:
        stack.start()
        figures = await Soak(stack, args).run()
    finally:
        stack.stop()
    record("soak-report", f"{args.minutes:g} min", {**figures, "logs": str(workdir)})
    return 1 if figures["errors"] or figures["idle_channels_dropped"] else 0


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second, all clients together")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--watchers", type=int, default=4)
    parser.add_argument("--warm-up", type=float, default=0.2, help="the share of the run left out of the growth")
    parser.add_argument("--sample-s", type=float, default=5.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(_arguments(sys.argv[1:]))))
