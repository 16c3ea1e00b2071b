"""SIGKILL a service while customers confirm QR-code payments (the phone's Approve button, which
does not retry): a confirmation the payment service committed but whose answer was lost must not
leave its order in `requires_action` — where the reconciler's expiry would only find it when the
confirmation window ends (PAYMENT_ACTION_TIMEOUT_S, 15 minutes). After the restart every order
must agree with its payment: paid ↔ succeeded, requires_action ↔ requires_action."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import httpx
import pytest

from tests.artifacts import record
from tests.harness import Stack

ORDERS = 60
AGREE = {("paid", "succeeded"), ("requires_action", "requires_action"), ("payment_failed", "failed")}


def _disagreeing(stack: Stack) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{stack.workdir / 'orders.db'}?mode=ro", uri=True) as db:
        orders = dict(db.execute("SELECT payment_id, status FROM orders WHERE payment_id IS NOT NULL").fetchall())
    with sqlite3.connect(f"file:{stack.workdir / 'payments.db'}?mode=ro", uri=True) as db:
        payments = dict(db.execute("SELECT id, status FROM payments").fetchall())
    return [(pid, status, payments[pid]) for pid, status in orders.items() if (status, payments[pid]) not in AGREE]


def _succeeded(stack: Stack) -> int:
    with sqlite3.connect(f"file:{stack.workdir / 'payments.db'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM payments WHERE status = 'succeeded'").fetchone()[0])


@pytest.mark.parametrize("victim", ["order_service", "payment_service"])
async def test_sigkill_while_customers_confirm(fresh_stack: Stack, victim: str) -> None:
    fresh_stack.start()
    service = fresh_stack.services[victim]
    async with httpx.AsyncClient(base_url=fresh_stack.url, headers=fresh_stack.headers, timeout=30) as http:
        body = {"customer_id": "cus_qr", "currency": "EUR", "payment_method": "pm_wallet_qr",
                "items": [{"sku": "QR", "quantity": 1, "unit_price": 2500}]}  # fmt: skip
        orders = [(await http.post("/v1/orders", json=body)).json() for _ in range(ORDERS)]
        assert {o["status"] for o in orders} == {"requires_action"}

        async def approve(payment_id: str) -> int | str:
            try:
                return (await http.post(f"/v1/payments/{payment_id}/confirm", json={})).status_code
            except httpx.HTTPError as exc:
                return type(exc).__name__

        confirms = [asyncio.create_task(approve(o["payment"]["id"])) for o in orders]
        # Kill as soon as the payment service has committed the first approval: the others are
        # on their way, some of them between the payment service's commit and the order's.
        for _ in range(5000):
            if _succeeded(fresh_stack) or all(c.done() for c in confirms):
                break
            await asyncio.sleep(0.002)
        service.kill()
        answers = await asyncio.gather(*confirms)
        lost = len(_disagreeing(fresh_stack))
        service.start()
        restarted = time.monotonic()
        await asyncio.to_thread(fresh_stack.wait_ready, 60)
        left = _disagreeing(fresh_stack)
        for _ in range(150):  # 30 s; the reconciler runs every second
            if not left:
                break
            await asyncio.sleep(0.2)
            left = _disagreeing(fresh_stack)
    figures = {
        "orders": ORDERS,
        "confirm_answers": {str(a): answers.count(a) for a in sorted(set(answers), key=str)},
        "payments_succeeded": _succeeded(fresh_stack),
        "disagreeing_after_the_kill": lost,
        "disagreeing_at_the_end": len(left),
        "agreed_after_restart_s": round(time.monotonic() - restarted, 2),
    }
    record("fault-report", f"sigkill {victim} during confirmations", figures)
    assert not left, f"orders that disagree with their payment: {left[:5]}"
