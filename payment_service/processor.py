"""The simulated card processor: what the acquirer would answer for each test payment method."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from common.payment_methods import PAYMENT_METHODS, Outcome


@dataclass(frozen=True)
class Decision:
    status: str
    failure_code: str | None = None
    decline_code: str | None = None
    failure_message: str | None = None
    action_expires_us: int | None = None


class Processor:
    def __init__(self, latency_ms: float, action_timeout_s: float) -> None:
        self.latency_s = latency_ms / 1000
        self.action_timeout_us = round(action_timeout_s * 1_000_000)

    async def authorize(self, payment_method: str, now_us: int, idempotency_key: str) -> Decision:
        """One round trip to the (simulated) acquirer. The method is known: callers check it.

        The charge's idempotency key goes with it, as acquirers take one (Stripe's and Adyen's
        APIs do): if this replica dies after the acquirer's answer and before the payment is
        stored, the retry — on any replica — asks again with the same key and is answered the
        same authorization, not a second one. (The simulation's answer depends only on the
        method, so it keeps that promise trivially.)"""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        behaviour = PAYMENT_METHODS[payment_method]
        if behaviour.outcome is Outcome.SUCCEEDED:
            return Decision("succeeded")
        if behaviour.decline is not None:
            return Decision("failed", **vars(behaviour.decline))
        return Decision("requires_action", action_expires_us=now_us + self.action_timeout_us)
