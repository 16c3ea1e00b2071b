"""The audit's rules on books made up here: each rule the fault runs rely on finds what it is for
(a fault run whose books are clean cannot show that)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from tests.fault.ledger import Ledger, OrderRow, PaymentRow, audit

TOLD = {"key-1": "ord_1"}


def books() -> Ledger:
    """One paid order of 1000, partly refunded (300), its client told about it: all rules kept."""
    return Ledger(
        orders={"ord_1": OrderRow("ord_1", "partially_refunded", "pay_1", 3, amount=1000, amount_refunded=300)},
        payments={"pay_1": PaymentRow("pay_1", "ord_1", "ord_1:charge", "partially_refunded", 1000, 300)},
        create_keys={"key-1": "ord_1"},
        events={"ord_1": [1, 2, 3]},
        refunded={"pay_1": 300},
        refund_counts={"pay_1": 1},
    )


def test_clean_books_keep_every_rule() -> None:
    result = audit(books(), TOLD, exempt=["ord_1"])
    assert result.problems == []


def over_refunded(ledger: Ledger) -> None:
    """The payment service refunded more than it charged (and says so)."""
    ledger.refunded["pay_1"] = 1200
    ledger.payments["pay_1"] = replace(ledger.payments["pay_1"], amount_refunded=1200)


def missed_refund(ledger: Ledger) -> None:
    """The order missed a refund its payment has."""
    ledger.orders["ord_1"] = replace(ledger.orders["ord_1"], amount_refunded=200)


def stale_status(ledger: Ledger) -> None:
    """The order says paid; its payment was refunded meanwhile."""
    ledger.orders["ord_1"] = replace(ledger.orders["ord_1"], status="paid")


def lost_answer(ledger: Ledger) -> None:
    """A refund whose answer was lost, never finished by a reconciler."""
    ledger.checks.append(("ord_1", "chk_1"))


def other_order(ledger: Ledger) -> None:
    """The client was told one order, the service keeps another under its key."""
    ledger.create_keys["key-1"] = "ord_2"


def gap(ledger: Ledger) -> None:
    """A version missing from the event log."""
    ledger.events["ord_1"] = [1, 3]


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (over_refunded, "1200 refunded of a charge of 1000"),
        (missed_refund, "its payment pay_1 is"),
        (stale_status, "its payment pay_1 is"),
        (lost_answer, "check chk_1 is still waiting"),
        (other_order, "the service keeps ord_2"),
        (gap, "event log versions [1, 3]"),
    ],
)
def test_each_rule_finds_what_it_is_for(change: Callable[[Ledger], None], found: str) -> None:
    ledger = books()
    change(ledger)
    problems = audit(ledger, TOLD, exempt=["ord_1"]).problems
    assert any(found in p for p in problems), problems


def test_a_confirmation_window_is_not_a_check_in_doubt() -> None:
    ledger = books()
    ledger.checks.append(("ord_1", "expiry"))
    assert ledger.settled
    assert audit(ledger, TOLD, exempt=["ord_1"]).problems == []
