"""The books, read straight from both services' SQLite databases after a fault, and the rules
they must obey whatever crashed when:

- every order ends `paid` or `payment_failed` (nothing left `pending_payment`);
- payments and orders match one to one: a paid order has exactly one succeeded payment and a
  failed order one failed payment, each pointing at the other; no payment without its order,
  no order with two payments;
- exactly one order per client `Idempotency-Key`, and it is the one the client was told about;
- the event log of every order holds versions 1..n without a gap and ends at the order's version.

Reading the files (not the API) means a bug in the API cannot hide a bug in the books.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

FINISHED = frozenset({"paid", "payment_failed"})
_PAYMENT_FOR_ORDER = {"paid": "succeeded", "payment_failed": "failed"}


@dataclass(frozen=True)
class OrderRow:
    id: str
    status: str
    payment_id: str | None
    version: int


@dataclass(frozen=True)
class PaymentRow:
    id: str
    order_id: str
    key: str
    status: str
    amount: int
    amount_refunded: int


@dataclass
class Ledger:
    orders: dict[str, OrderRow]
    payments: dict[str, PaymentRow]
    # The order service's REST idempotency keys of CreateOrder: client key → order id.
    create_keys: dict[str, str | None]
    # Versions in each order's event log, in order.
    events: dict[str, list[int]]
    # Sum and number of refunds per payment, from the payment service's refunds table.
    refunded: dict[str, int]
    refund_counts: dict[str, int]

    @property
    def pending(self) -> list[str]:
        return [o.id for o in self.orders.values() if o.status == "pending_payment"]


def _connect(path: Path) -> sqlite3.Connection:
    # Read-only: the services may still be running (WAL lets readers in beside the writer).
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def read_ledger(workdir: Path) -> Ledger:
    with _connect(workdir / "orders.db") as db:
        orders = {
            row[0]: OrderRow(row[0], row[1], row[2], row[3])
            for row in db.execute("SELECT id, status, payment_id, version FROM orders")
        }
        keys = dict(db.execute("SELECT key, order_id FROM idempotency_keys WHERE scope = 'CreateOrder'").fetchall())
        events: dict[str, list[int]] = defaultdict(list)
        for order_id, version in db.execute("SELECT order_id, version FROM order_events ORDER BY order_id, version"):
            events[order_id].append(version)
    with _connect(workdir / "payments.db") as db:
        payments = {
            row[0]: PaymentRow(*row)
            for row in db.execute("SELECT id, order_id, idempotency_key, status, amount, amount_refunded FROM payments")
        }
        sums = db.execute("SELECT payment_id, SUM(amount), COUNT(*) FROM refunds GROUP BY payment_id").fetchall()
    return Ledger(orders, payments, keys, dict(events), {p: s for p, s, _ in sums}, {p: n for p, _, n in sums})


@dataclass
class Audit:
    """What the books say, and every rule they break (empty `problems`: all kept)."""

    orders: int = 0
    paid: int = 0
    failed: int = 0
    other: int = 0
    payments: int = 0
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, int]:
        return {
            "orders_in_db": self.orders,
            "paid": self.paid,
            "failed": self.failed,
            "other_status": self.other,
            "payments": self.payments,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "problems": len(self.problems),
        }


def audit(
    ledger: Ledger,
    told: Mapping[str, str | None],
    *,
    exempt: Iterable[str] = (),
) -> Audit:
    """Check the rules. `told` maps each client key to the order id its client was finally
    answered with (None: it never got an answer). `exempt` orders are not the load's (a watched
    order that is refunded) and only the payment rules apply to them."""
    exempt = set(exempt)
    result = Audit(orders=len(ledger.orders), payments=len(ledger.payments))
    problem = result.problems.append

    statuses = Counter(o.status for o in ledger.orders.values() if o.id not in exempt)
    result.paid, result.failed = statuses["paid"], statuses["payment_failed"]
    result.other = sum(n for s, n in statuses.items() if s not in FINISHED)
    for order in ledger.orders.values():
        if order.id not in exempt and order.status not in FINISHED:
            problem(f"order {order.id} ended {order.status}")

    # Payments ↔ orders, one to one.
    by_order: dict[str, list[PaymentRow]] = defaultdict(list)
    for payment in ledger.payments.values():
        by_order[payment.order_id].append(payment)
        if payment.order_id not in ledger.orders:
            problem(f"payment {payment.id} has no order ({payment.order_id})")
            result.lost += 1
        if payment.key != f"{payment.order_id}:charge":
            problem(f"payment {payment.id} was charged with key {payment.key!r}")
        if ledger.refunded.get(payment.id, 0) != payment.amount_refunded:
            problem(f"payment {payment.id}: refunds add up to {ledger.refunded.get(payment.id, 0)}, "
                    f"the payment says {payment.amount_refunded}")  # fmt: skip
    for order_id, found in by_order.items():
        if len(found) > 1:
            problem(f"order {order_id} has {len(found)} payments")
            result.duplicated += len(found) - 1
    for order in ledger.orders.values():
        found = by_order.get(order.id, [])
        expected = _PAYMENT_FOR_ORDER.get(order.status)
        if expected is not None and order.id not in exempt:
            if len(found) != 1 or found[0].status != expected or order.payment_id != found[0].id:
                problem(f"order {order.id} is {order.status} but its payments are {found}")
        elif order.payment_id is not None and order.payment_id not in ledger.payments:
            problem(f"order {order.id} points at a payment that does not exist ({order.payment_id})")

    # Exactly one order per client key, the one the client was told about.
    answered: Counter[str] = Counter()
    for key, told_id in told.items():
        stored = ledger.create_keys.get(key)
        if told_id is None:
            problem(f"key {key}: the client never got an answer")
            result.lost += 1
            continue
        answered[told_id] += 1
        if told_id not in ledger.orders:
            problem(f"key {key}: the client was told about order {told_id}, which is not stored")
            result.lost += 1
        if stored != told_id:
            problem(f"key {key}: the client was told {told_id}, the service keeps {stored}")
    for order_id, n in answered.items():
        if n > 1:
            problem(f"order {order_id} was the answer to {n} different keys")
            result.duplicated += n - 1
    orphans = set(ledger.orders) - set(answered) - exempt
    for order_id in sorted(orphans):
        # An order no client key leads to: a retry that created a second order, or a lost answer.
        problem(f"order {order_id} belongs to no client key")
    result.duplicated += len(orphans)

    # The event log: versions 1..n, ending at the order's current version.
    for order in ledger.orders.values():
        versions = ledger.events.get(order.id, [])
        if versions != list(range(1, order.version + 1)):
            problem(f"order {order.id} (version {order.version}) has event log versions {versions[:20]}…")
    return result
