"""Item 4 of the fault suite: a payment service slower than the deadline.

The gateway's deadline is 1 s and the simulated acquirer takes 1.5 s: every charge that a client
waits for runs out of time, the client gets 504 and retries with the same key. Only the order
service's reconciler, whose own deadline (ORDER_PAYMENT_DEADLINE_S, 5 s) is long enough, can
finish the orders — and it must finish every one, with one payment each, whatever the retries
did in between. The watched order goes through it too."""

from __future__ import annotations

from tests.fault.scenario import SHORT_LOAD_S, Scenario
from tests.fault.webhooks import with_webhooks
from tests.harness import Stack

DEADLINE_S = 1
LATENCY_MS = 1500


async def test_slow_payment_service(fresh_stack: Stack) -> None:
    fresh_stack.env["GATEWAY_DEADLINE_S"] = str(DEADLINE_S)
    fresh_stack.service_env["payment_service"] = {"PAYMENT_PROCESSOR_LATENCY_MS": str(LATENCY_MS)}
    fresh_stack.__post_init__()
    with_webhooks(fresh_stack)
    fresh_stack.start()
    # Fewer clients: each order waits for a reconciler round (1.5 s per charge); 8 keep it busy.
    async with Scenario(fresh_stack, "slow payment_service", clients=8) as run:
        run.mark_fault()
        await run.warm_up(orders=5)
        await run.until(SHORT_LOAD_S / 3)
    outcomes = {str(a.outcome) for a in run.load.attempts}
    assert "504" in outcomes, f"no deadline ran out: {outcomes}"
    assert outcomes <= {"201", "504", "409", "503"}, outcomes
