"""The books, read straight from both services' databases after a fault — the SQLite files of
one stack (`read_ledger`) or the PostgreSQL databases of a cluster of replicas
(`read_postgres_ledger`), with the same queries — and the rules they must obey whatever crashed
when:

- every order ends `paid` or `payment_failed` (nothing left `pending_payment`), and no check of an
  answer that may have been lost is left for the reconciler (`order_checks`);
- payments and orders match one to one: a paid order has exactly one succeeded payment and a
  failed order one failed payment, each pointing at the other; no payment without its order,
  no order with two payments; every order agrees with its payment (status, amount, refunded);
- refunds add up to what the payment says was refunded, and never to more than the charge;
- exactly one order per client `Idempotency-Key`, and it is the one the client was told about;
- the event log of every order holds versions 1..n without a gap and ends at the order's version;
- every event of the webhook account (`account_events`) was delivered to its endpoint or failed
  after its whole retry schedule, each order's versions in order (tests/fault/deliveries.py).

Reading the databases (not the API) means a bug in the API cannot hide a bug in the books.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from shop.order.v1 import order_pb2
from tests.harness import ACCOUNT, OTHER_ACCOUNT

FINISHED = frozenset({"paid", "payment_failed"})
_PAYMENT_FOR_ORDER = {"paid": "succeeded", "payment_failed": "failed"}
# The payment's status each order status goes with (an order without a payment: none).
AGREEING = {
    "paid": "succeeded",
    "payment_failed": "failed",
    "requires_action": "requires_action",
    "canceled": "canceled",
    "partially_refunded": "partially_refunded",
    "refunded": "refunded",
}
# A check that stands for the end of a confirmation window, not for a lost answer.
EXPIRY_CHECK = "expiry"

# The same statements on both engines.
ORDERS = "SELECT id, status, payment_id, version, doc FROM orders"
# The loads' keys are their accounts' (docs/security.md#accounts-and-ownership: an idempotency key
# is scoped to its account): the main load's, and OTHER_ACCOUNT's, the one with the webhook endpoint
# (tests/fault/webhooks.py).
_SCOPES = f"'{ACCOUNT}/CreateOrder', '{OTHER_ACCOUNT}/CreateOrder'"
CREATE_KEYS = f"SELECT key, order_id FROM idempotency_keys WHERE scope IN ({_SCOPES})"
EVENTS = "SELECT order_id, version FROM order_events ORDER BY order_id, version"
ACCOUNT_EVENTS = f"SELECT order_id, version FROM account_events WHERE account_id = '{OTHER_ACCOUNT}' ORDER BY seq"
CHECKS = "SELECT order_id, check_id FROM order_checks ORDER BY order_id, check_id"
PAYMENTS = "SELECT id, order_id, idempotency_key, status, amount, amount_refunded FROM payments"
REFUNDS = "SELECT payment_id, SUM(amount), COUNT(*) FROM refunds GROUP BY payment_id"
ORDER_STATEMENTS = (ORDERS, CREATE_KEYS, EVENTS, CHECKS, ACCOUNT_EVENTS)
PAYMENT_STATEMENTS = (PAYMENTS, REFUNDS)


@dataclass(frozen=True)
class OrderRow:
    id: str
    status: str
    payment_id: str | None
    version: int
    # From the stored document (the `Order` message): what the order says it was charged and refunded.
    amount: int = 0
    amount_refunded: int = 0


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
    # Checks left for the reconciler: (order id, check id).
    checks: list[tuple[str, str]] = field(default_factory=list)
    # The events of the webhook account (its feed's, its endpoint's): each order's versions.
    account_events: dict[str, list[int]] = field(default_factory=dict)

    @property
    def pending(self) -> list[str]:
        return [o.id for o in self.orders.values() if o.status == "pending_payment"]

    @property
    def in_doubt(self) -> list[tuple[str, str]]:
        """Checks of an answer that may have been lost, still waiting for a reconciler."""
        return [(order_id, check) for order_id, check in self.checks if check != EXPIRY_CHECK]

    @property
    def settled(self) -> bool:
        return not self.pending and not self.in_doubt


def _ledger(
    orders: Iterable[Sequence[Any]],
    keys: Iterable[Sequence[Any]],
    events: Iterable[Sequence[Any]],
    checks: Iterable[Sequence[Any]],
    account_events: Iterable[Sequence[Any]],
    payments: Iterable[Sequence[Any]],
    refunds: Iterable[Sequence[Any]],
) -> Ledger:
    """The ledger from the statements' rows, whichever engine they came from."""
    found: dict[str, OrderRow] = {}
    for order_id, status, payment_id, version, doc in orders:
        document = order_pb2.Order.FromString(bytes(doc))
        found[order_id] = OrderRow(order_id, status, payment_id, version, document.amount, document.amount_refunded)
    sums = [tuple(row) for row in refunds]
    return Ledger(
        orders=found,
        payments={row[0]: PaymentRow(*row) for row in payments},
        create_keys={key: order_id for key, order_id in keys},
        events=_versions(events),
        refunded={payment_id: int(total) for payment_id, total, _ in sums},
        refund_counts={payment_id: int(n) for payment_id, _, n in sums},
        checks=[(order_id, check) for order_id, check in checks],
        account_events=_versions(account_events),
    )


def _versions(events: Iterable[Sequence[Any]]) -> dict[str, list[int]]:
    """(order id, version) rows as each order's versions, in the rows' order."""
    found: dict[str, list[int]] = defaultdict(list)
    for order_id, version in events:
        found[order_id].append(version)
    return dict(found)


def _connect(path: Path) -> sqlite3.Connection:
    # Read-only: the services may still be running (WAL lets readers in beside the writer).
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def read_ledger(workdir: Path) -> Ledger:
    """The books of one stack, from its SQLite files."""
    with _connect(workdir / "orders.db") as db:
        order_rows = [db.execute(statement).fetchall() for statement in ORDER_STATEMENTS]
    with _connect(workdir / "payments.db") as db:
        payment_rows = [db.execute(statement).fetchall() for statement in PAYMENT_STATEMENTS]
    return _ledger(*order_rows, *payment_rows)


async def _snapshot(url: str, *statements: str) -> list[list[asyncpg.Record]]:
    """Every statement's rows from one snapshot of the database (the replicas may still write)."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return [list(await conn.fetch(statement)) for statement in statements]
    finally:
        await conn.close()


async def read_postgres_ledger(order_database_url: str, payment_database_url: str) -> Ledger:
    """The books of a cluster of replicas, from its two PostgreSQL databases."""
    order_rows = await _snapshot(order_database_url, *ORDER_STATEMENTS)
    payment_rows = await _snapshot(payment_database_url, *PAYMENT_STATEMENTS)
    return _ledger(*order_rows, *payment_rows)


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
    over_refunded: int = 0
    disagreeing: int = 0
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
            "over_refunded": self.over_refunded,
            "disagreeing_with_payment": self.disagreeing,
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
        if ledger.refunded.get(payment.id, 0) > payment.amount:
            problem(f"payment {payment.id}: {ledger.refunded[payment.id]} refunded of a charge of {payment.amount}")
            result.over_refunded += 1
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
        # Every order (the watched one too) agrees with the payment it points at.
        paid_with = ledger.payments.get(order.payment_id or "")
        if paid_with is not None and (
            AGREEING.get(order.status) != paid_with.status
            or (order.amount, order.amount_refunded) != (paid_with.amount, paid_with.amount_refunded)
        ):
            says = (order.status, order.amount, order.amount_refunded)
            problem(f"order {order.id} is {says} (status, amount, refunded); its payment {paid_with.id} is "
                    f"{(paid_with.status, paid_with.amount, paid_with.amount_refunded)}")  # fmt: skip
            result.disagreeing += 1

    # Nothing left in doubt once the reconciler has had its time.
    for order_id, check in ledger.in_doubt:
        problem(f"order {order_id}: check {check} is still waiting for a reconciler")

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
