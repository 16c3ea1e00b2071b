"""The events feed and webhooks (docs/webhooks.md): each account's events numbered in commit order,
webhook endpoints, and one delivery row per event and endpoint.

Existing events of orders that belong to an account are numbered here, each order's versions
in ascending order, so that a feed read from the start holds the history from before this
revision too; orders without an account (made before accounts) have no feed.

Revision ID: 0003
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

_CLUSTERED: dict[str, Any] = {"sqlite_with_rowid": False}

# Oldest first across the account; within an order, by version even if the clock went back
# between two versions (the sort key is the newest time seen so far in the order's history).
_NUMBER_EXISTING = """
INSERT INTO account_events (account_id, seq, order_id, version)
SELECT account_id,
       row_number() OVER (PARTITION BY account_id ORDER BY sort_us, order_id, version),
       order_id, version
FROM (
    SELECT o.account_id, e.order_id, e.version,
           max(e.created_us) OVER (PARTITION BY e.order_id ORDER BY e.version
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sort_us
    FROM order_events e JOIN orders o ON o.id = e.order_id
    WHERE o.account_id IS NOT NULL
) AS numbered
"""
_HEADS_OF_EXISTING = """
INSERT INTO event_heads (account_id, seq)
SELECT account_id, max(seq) FROM account_events GROUP BY account_id
"""


def upgrade() -> None:
    op.create_table(
        "event_heads",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        **_CLUSTERED,
    )
    op.create_table(
        "account_events",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "seq"),
        **_CLUSTERED,
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("enabled_events", sa.String(1000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("old_secret", sa.String(100)),
        sa.Column("old_secret_until_us", sa.BigInteger),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        **_CLUSTERED,
    )
    op.create_index("ix_webhook_endpoints_account", "webhook_endpoints", ["account_id", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger),
        sa.Column("claim", sa.String(40)),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.String(500)),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("endpoint_id", "order_id", "version", name="uq_webhook_deliveries_lane"),
    )
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "seq"])
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_us"])
    op.execute(_NUMBER_EXISTING)
    op.execute(_HEADS_OF_EXISTING)


def downgrade() -> None:
    for table in ("webhook_deliveries", "webhook_endpoints", "account_events", "event_heads"):
        op.drop_table(table)
