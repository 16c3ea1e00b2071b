"""Item 3 of the fault suite: SIGTERM each service under load.

- the gRPC health check says NOT_SERVING first (a Health.Watch stream opened before the signal
  sees it before any client sees an error);
- calls in flight finish: every order whose call had reached the stopping service before the
  signal was answered 201 on that attempt (payments: the charge had started, by the payment's
  `created_at`; orders and the gateway: the order was created, by the time in its ULID id);
- new calls get 503 — no 500, no 504, no hang — and only from the signal until the service is
  back: clients see nothing but 201 before the signal and after the recovery;
- the process exits by itself, 0 (the gateway: by the re-raised signal), within the grace period;
- and the books and the watched order hold as after a SIGKILL.

The payment service answers after PAYMENT_PROCESSOR_LATENCY_MS, so that calls really are in
flight when the signal comes.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from contextlib import suppress
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ulid import ULID

from common.grpc_server import SHUTDOWN_GRACE_S
from tests.artifacts import record
from tests.fault.scenario import DOWN_S, SHORT_LOAD_S, Scenario
from tests.fault.webhooks import with_webhooks
from tests.harness import Stack

LATENCY_MS = 300


@dataclass
class HealthWatch:
    """The statuses a `grpc.health.v1.Health/Watch` stream reported, with when they came."""

    target: str
    seen: list[tuple[float, str]] = field(default_factory=list)
    ended_at: float | None = None
    # Set at the first status: the stream is open (the signal must come after that).
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            with suppress(grpc.aio.AioRpcError):
                async for reply in stub.Watch(health_pb2.HealthCheckRequest(service="")):
                    name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                    self.seen.append((time.monotonic(), name))
                    self.opened.set()
                    if name == "NOT_SERVING":
                        # Told; hang up, as a load balancer would (an open Watch stream would
                        # otherwise hold the server's shutdown for its whole grace period).
                        break
        self.ended_at = time.monotonic()

    def first(self, status: str) -> float | None:
        return next((t for t, s in self.seen if s == status), None)


def _started_before(stack: Stack, victim: str, wall: float) -> set[str]:
    """Orders whose call had reached `victim` before the wall-clock time `wall`."""
    if victim == "payment_service":
        with sqlite3.connect(f"file:{stack.workdir / 'payments.db'}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT order_id, created_us FROM payments").fetchall()
        # created_us: microseconds since the epoch (UTC), as every time the services store.
        return {order_id for order_id, created_us in rows if created_us / 1_000_000 < wall}
    with sqlite3.connect(f"file:{stack.workdir / 'orders.db'}?mode=ro", uri=True) as db:
        ids = [row[0] for row in db.execute("SELECT id FROM orders")]
    return {order_id for order_id in ids if ULID.from_str(order_id.removeprefix("ord_")).timestamp < wall}


def _log_times(log: str, message: str) -> list[str]:
    """The `ts` of every JSON log line with this message (ISO 8601, so they sort as strings)."""
    times = []
    for line in log.splitlines():
        with suppress(ValueError):
            entry = json.loads(line)
            if entry.get("msg") == message:
                times.append(str(entry["ts"]))
    return sorted(times)


@pytest.mark.parametrize("victim", ["payment_service", "order_service", "gateway"])
async def test_sigterm_under_load(fresh_stack: Stack, victim: str) -> None:
    fresh_stack.service_env["payment_service"] = {"PAYMENT_PROCESSOR_LATENCY_MS": str(LATENCY_MS)}
    fresh_stack.__post_init__()
    with_webhooks(fresh_stack)
    fresh_stack.start()
    service = fresh_stack.services[victim]
    health = None
    if victim != "gateway":
        target = fresh_stack.payment_target if victim == "payment_service" else fresh_stack.order_target
        health = HealthWatch(target)
        health_task = asyncio.create_task(health.run())
    async with Scenario(fresh_stack, f"sigterm {victim}") as run:
        await run.warm_up()
        await run.until(SHORT_LOAD_S / 3)
        assert service.proc is not None
        if health is not None:  # "a Watch stream opened before the signal": make sure it is open
            await asyncio.wait_for(health.opened.wait(), timeout=30)
        run.mark_fault()
        signalled_wall = time.time()
        service.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(service.proc.wait, SHUTDOWN_GRACE_S + 10)
        drained_s = time.monotonic() - (run.fault_at or 0)
        await asyncio.sleep(DOWN_S / 2)
        await run.restart(victim)
        await run.until(SHORT_LOAD_S)
        in_flight = _started_before(fresh_stack, victim, signalled_wall)

    figures: dict[str, object] = {"drain_s": round(drained_s, 3), "exit_code": code, "in_flight": len(in_flight)}
    problems: list[str] = []
    if code not in ((0, -signal.SIGTERM) if victim == "gateway" else (0,)):
        problems.append(f"{victim} exited with {code}")
    if drained_s > SHUTDOWN_GRACE_S + 2:
        problems.append(f"{victim} took {drained_s:.1f} s to stop, the grace period is {SHUTDOWN_GRACE_S} s")

    # Calls in flight finished: the attempt that carried each of those orders was answered 201.
    load = run.load
    by_order = {r.order_id: r for r in load.results.values() if r.order_id}
    cut = [oid for oid in in_flight if oid in by_order and by_order[oid].outcomes != [201]]
    figures["in_flight_cut_off"] = len(cut)
    problems += [f"order {oid} was in flight at SIGTERM; its client saw {by_order[oid].outcomes}" for oid in cut[:10]]

    # New calls: 503 (the gateway: a refused connection), from the signal on, and nothing else.
    allowed = {201, 503} | ({"ConnectError", "RemoteProtocolError", "ReadError"} if victim == "gateway" else set())
    odd = {str(a.outcome) for a in load.attempts} - {str(x) for x in allowed}
    if odd:
        problems.append(f"clients saw {sorted(odd)}")
    fault_at = run.fault_at or 0
    early = [a for a in load.attempts if a.outcome != 201 and a.ended < fault_at]
    if early:
        problems.append(f"{len(early)} errors before the signal")

    if health is not None:
        await asyncio.wait_for(health_task, timeout=30)
        figures["health_seen"] = [s for _, s in health.seen]
        not_serving = health.first("NOT_SERVING")
        if not_serving is None:
            problems.append(f"the health check never said NOT_SERVING: {health.seen}")
        else:
            figures["not_serving_after_signal_s"] = round(not_serving - fault_at, 3)
        # The order, from the services' own clocks (this process's event loop, busy with 32
        # clients, may read two sockets in either order): the victim logs once it is NOT_SERVING,
        # the gateway logs every 503 it answers.
        draining = _log_times(service.log(), "health NOT_SERVING; draining calls in flight")
        refused = _log_times(fresh_stack.gateway.log(), "backend error")
        if not draining:
            problems.append(f"{victim} did not log that it was draining")
        elif refused and refused[0] < draining[0]:
            problems.append(
                f"the gateway answered 503 at {refused[0]}, before {victim} was NOT_SERVING ({draining[0]})"
            )
    record("fault-report", f"sigterm {victim} (drain)", {**figures, "problems": problems})
    assert not problems, "\n".join(problems)
