"""The audit's rules on books made up here — the databases' and the webhook endpoint's: each rule
the fault runs rely on finds what it is for (a fault run whose books are clean cannot show that)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from tests.fault.deliveries import Delivery, DeliveryBooks, Received, audit_deliveries, event_id
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


# The webhook rules (tests/fault/deliveries.py): the account's events, the log, what came.
EVENTS = {"ord_1": [1, 2, 3]}


def delivered() -> DeliveryBooks:
    """Versions 1 and 3 delivered (1 twice: at least once), 2 refused at every attempt: all kept."""
    books = DeliveryBooks(attempts=3)
    books.log = [Delivery("ord_1", 1, "succeeded", 2), Delivery("ord_1", 2, "failed", 3),
                 Delivery("ord_1", 3, "succeeded", 1)]  # fmt: skip
    for version, answered in [(1, 204), (1, 204), (2, 503), (2, 503), (2, 503), (3, 204)]:
        books.received.append(Received("ord_1", version, answered, True, event_id("ord_1", version)))
    return books


def test_every_event_delivered_or_failed_keeps_the_webhook_rules() -> None:
    problems, figures = audit_deliveries(EVENTS, delivered())
    assert problems == []
    assert figures["webhook_duplicates"] == 1
    assert figures["webhook_deliveries"] == {"failed": 1, "succeeded": 2}


def missing(books: DeliveryBooks) -> None:
    """An event the endpoint never got a delivery of."""
    books.log.pop()
    books.received.pop()


def left_pending(books: DeliveryBooks) -> None:
    books.log[2] = replace(books.log[2], status="pending")


def failed_early(books: DeliveryBooks) -> None:
    """Given up before the schedule's last retry."""
    books.log[1] = replace(books.log[1], attempts=2)


def never_came(books: DeliveryBooks) -> None:
    """The log says delivered; the receiver never accepted it."""
    books.received.pop()


def forged(books: DeliveryBooks) -> None:
    books.received[0] = replace(books.received[0], verified=False)


def overtaken(books: DeliveryBooks) -> None:
    """Version 3 sent before version 2 (which failed in the end) was."""
    books.received.insert(2, books.received.pop())


def phantom(books: DeliveryBooks) -> None:
    """A delivery (and a request) of a version the order never had."""
    books.log.append(Delivery("ord_1", 4, "succeeded", 1))
    books.received.append(Received("ord_1", 4, 204, True, event_id("ord_1", 4)))


def renamed(books: DeliveryBooks) -> None:
    """A retry under another webhook-id: the receiver could not drop it as a duplicate."""
    books.received[1] = replace(books.received[1], webhook_id="evt_other")


def sent_twice(books: DeliveryBooks) -> None:
    """Two deliveries queued for one event."""
    books.log.append(books.log[0])


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (missing, "evt_1_3: no delivery in the log"),
        (left_pending, "evt_1_3: still pending"),
        (failed_early, "evt_1_2: failed after 2 attempts"),
        (never_came, "evt_1_3: the log says succeeded, the receiver never accepted it"),
        (forged, "evt_1_1: a request whose signature failed"),
        (overtaken, "order ord_1: version 3 came before version 2 was sent"),
        (sent_twice, "evt_1_1: 2 deliveries in the log"),
        (phantom, "evt_1_4: a delivery of an event that does not exist"),
        (phantom, "evt_1_4: received, but no such event exists"),
        (renamed, "evt_1_1: received with webhook-id 'evt_other'"),
    ],
)
def test_each_webhook_rule_finds_what_it_is_for(change: Callable[[DeliveryBooks], None], found: str) -> None:
    books = delivered()
    change(books)
    problems, _ = audit_deliveries(EVENTS, books)
    assert any(found in p for p in problems), problems


def test_a_version_sent_before_the_previous_was_accepted_is_out_of_order() -> None:
    books = delivered()
    # Version 2 first came between the refused and the accepted request of version 1.
    books.received[0] = replace(books.received[0], answered=503)
    books.received.insert(1, books.received.pop(2))
    problems, _ = audit_deliveries(EVENTS, books)
    assert problems == ["order ord_1: version 2 came before version 1 was delivered"]
