"""Items 1 and 2 of the fault suite: SIGKILL a service in the middle of the load, bring it back
after DOWN_S, and check the books — every order paid or payment_failed, payments and paid orders
one to one, no payment without an order, no order with two payments, exactly one order per
client key — and that the watched order's watchers saw every version through it."""

from __future__ import annotations

import asyncio

import pytest

from tests.fault.scenario import DOWN_S, LOAD_S, Scenario
from tests.fault.webhooks import with_webhooks
from tests.harness import Stack


@pytest.mark.parametrize("victim", ["payment_service", "order_service"])
async def test_sigkill_under_load(fresh_stack: Stack, victim: str) -> None:
    with_webhooks(fresh_stack)
    fresh_stack.start()
    async with Scenario(fresh_stack, f"sigkill {victim}") as run:
        await run.warm_up()
        await run.until(LOAD_S / 3)
        run.mark_fault()
        fresh_stack.services[victim].kill()
        await asyncio.sleep(DOWN_S)
        await run.restart(victim)
        await run.until(LOAD_S)
