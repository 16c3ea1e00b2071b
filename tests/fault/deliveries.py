"""The webhook part of the fault ledger (docs/webhooks.md#delivery): after a fault run, every
event of the account the endpoint subscribes to was delivered or is `failed` after its whole retry
schedule — none missing, none left pending — and each order's versions reached the endpoint in
order.

What it is checked against: the account's events as the order database numbered them
(`account_events`), the endpoint's delivery log as the REST API shows it, and what the receiver
got, in the order it got it (with the status it answered, and whether the Standard Webhooks
library accepted the signature). At least once: a `webhook-id` received twice is counted, not a
fault. The rules:

- every event has exactly one delivery in the log, and the log has none for an event that does
  not exist;
- a delivery is `succeeded` — and then the receiver accepted (2xx) a request with its
  `webhook-id` — or `failed` after 1 + len(WEBHOOK_RETRY_SCHEDULE_S) attempts; never `pending`;
- every request the receiver got carries a valid signature, an event that exists, and that
  event's id as its `webhook-id`;
- per order, version v+1 first came after version v had been accepted by the receiver (v
  succeeded), or after v's first request (v failed): v+1 is not sent before v was delivered or
  finally failed. (The receiver records a request before it answers it, and the sender hears
  the answer before it releases the next version, so the receiver's order is evidence enough.)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SUCCEEDED, FAILED, PENDING = "succeeded", "failed", "pending"


def event_id(order_id: str, version: int) -> str:
    """docs/webhooks.md#events: an event's id is made from its order and version."""
    return f"evt_{order_id.removeprefix('ord_')}_{version}"


@dataclass(frozen=True)
class Delivery:
    """One row of the endpoint's delivery log."""

    order_id: str
    version: int
    status: str
    attempts: int


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    order_id: str
    version: int
    answered: int  # the status the receiver answered
    verified: bool  # the Standard Webhooks library accepted its signature
    webhook_id: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.answered < 300


@dataclass
class DeliveryBooks:
    attempts: int  # what a delivery may take: the first attempt and one per retry of the schedule
    log: list[Delivery] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)  # in the order they came


def audit_deliveries(events: Mapping[str, Sequence[int]], books: DeliveryBooks) -> tuple[list[str], dict[str, Any]]:
    """The problems (empty: every rule kept) and the figures of the run's webhooks. `events`:
    the account's events, as each order's versions."""
    problems: list[str] = []
    expected = {(order_id, v) for order_id, versions in events.items() for v in versions}
    logged: dict[tuple[str, int], list[Delivery]] = defaultdict(list)
    for delivery in books.log:
        logged[(delivery.order_id, delivery.version)].append(delivery)
    accepted = {(r.order_id, r.version) for r in books.received if r.accepted}

    for key in sorted(expected):
        found = logged.get(key, [])
        name = event_id(*key)
        if not found:
            problems.append(f"{name}: no delivery in the log")
            continue
        if len(found) > 1:
            problems.append(f"{name}: {len(found)} deliveries in the log")
        for delivery in found:
            if delivery.attempts > books.attempts:
                problems.append(f"{name}: {delivery.attempts} attempts, the schedule gives {books.attempts}")
            if delivery.status == SUCCEEDED and key not in accepted:
                problems.append(f"{name}: the log says succeeded, the receiver never accepted it")
            elif delivery.status == FAILED and delivery.attempts < books.attempts:
                problems.append(f"{name}: failed after {delivery.attempts} attempts, before its schedule ended")
            elif delivery.status not in (SUCCEEDED, FAILED):
                problems.append(f"{name}: still {delivery.status} after {delivery.attempts} attempts")
    for key in sorted(set(logged) - expected):
        problems.append(f"{event_id(*key)}: a delivery of an event that does not exist")

    for received in books.received:
        name = event_id(received.order_id, received.version)
        if not received.verified:
            problems.append(f"{name}: a request whose signature failed")
        elif received.webhook_id != name:
            problems.append(f"{name}: received with webhook-id {received.webhook_id!r}")
    for key in sorted({(r.order_id, r.version) for r in books.received} - expected):
        problems.append(f"{event_id(*key)}: received, but no such event exists")
    problems += _out_of_order(books, logged)

    statuses = Counter(d.status for d in books.log)
    copies = Counter((r.order_id, r.version) for r in books.received if r.accepted)
    figures = {
        "webhook_events": len(expected),
        "webhook_deliveries": dict(sorted(statuses.items())),
        "webhook_retried": sum(1 for d in books.log if d.attempts > 1),
        "webhook_requests": len(books.received),
        # At least once: events accepted again, which a receiver drops by `webhook-id`.
        "webhook_duplicates": sum(n - 1 for n in copies.values()),
    }
    return problems, figures


def _out_of_order(books: DeliveryBooks, logged: Mapping[tuple[str, int], list[Delivery]]) -> list[str]:
    """Per order: the first request of each version came after its previous version was
    delivered (accepted by the receiver) or, if that one finally failed, was sent."""
    first: dict[tuple[str, int], int] = {}
    first_accepted: dict[tuple[str, int], int] = {}
    for place, received in enumerate(books.received):
        key = (received.order_id, received.version)
        first.setdefault(key, place)
        if received.accepted:
            first_accepted.setdefault(key, place)
    problems = []
    for (order_id, version), place in sorted(first.items()):
        before = (order_id, version - 1)
        if version == 1 or before not in logged:
            continue  # the first version, or one the log does not have (reported above)
        succeeded = any(d.status == SUCCEEDED for d in logged[before])
        came = first_accepted.get(before) if succeeded else first.get(before)
        # None: never accepted (reported above), or failed without reaching the receiver.
        if came is not None and came > place:
            problems.append(
                f"order {order_id}: version {version} came before version {version - 1} was "
                f"{'delivered' if succeeded else 'sent'}"
            )
    return problems
