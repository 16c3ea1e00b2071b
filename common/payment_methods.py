"""The test payment methods of docs/rest-api.md#test-payment-methods and what each one does.

Public contract, so shared: the payment service acts on it, the order service refuses an
unknown method before it writes anything, and the gateway lists the methods in OpenAPI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"


@dataclass(frozen=True)
class Decline:
    """What the acquirer says of a declined charge, as the payment then carries it."""

    failure_code: str
    decline_code: str
    failure_message: str


@dataclass(frozen=True)
class Behaviour:
    outcome: Outcome
    decline: Decline | None = None  # with DECLINED


PAYMENT_METHODS: dict[str, Behaviour] = {
    "pm_card_visa": Behaviour(Outcome.SUCCEEDED),
    "pm_card_mastercard": Behaviour(Outcome.SUCCEEDED),
    "pm_card_chargeDeclined": Behaviour(
        Outcome.DECLINED, Decline("card_declined", "generic_decline", "Your card was declined.")
    ),
    "pm_card_chargeDeclinedInsufficientFunds": Behaviour(
        Outcome.DECLINED, Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
    ),
    "pm_card_chargeDeclinedExpiredCard": Behaviour(
        Outcome.DECLINED, Decline("expired_card", "expired_card", "Your card has expired.")
    ),
    "pm_card_authenticationRequired": Behaviour(Outcome.REQUIRES_ACTION),
    "pm_wallet_qr": Behaviour(Outcome.REQUIRES_ACTION),
}
