"""The order service's own metrics, beside the gRPC and database ones of common/service_metrics.py:
the reconciler's backlog and what it did (reconciler.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from order_service.domain import CHARGE_CHECK, EXPIRY_CHECK

RECONCILER_BACKLOG = Gauge(
    "order_reconciler_backlog",
    "Checks due and not yet claimed at the start of the last reconciler round "
    "(charges in doubt, ending confirmation windows, answers that may have been lost)",
)
RECONCILER_CHECKS = Counter(
    "order_reconciler_checks_total",
    "Checks the reconciler worked on: done, or to be retried (the payment service was unreachable)",
    ["check", "outcome"],
)


def check_kind(check: str) -> str:
    """The label of a check: `charge`, `expiry`, or `payment_change` (a confirm, cancel or refund
    whose answer may be lost; each has an id of its own, which would be a label per check)."""
    return check if check in (CHARGE_CHECK, EXPIRY_CHECK) else "payment_change"

# -- webhooks (order_service/webhooks/worker.py) --

WEBHOOK_ATTEMPTS = Counter(
    "order_webhook_attempts_total",
    "Webhook delivery attempts by what they came to: delivered (a 2xx), pending (failed, to be retried), "
    "failed (failed, and the last of the retry schedule), lost_claim (finished after the lease ran out)",
    ["outcome"],
)
