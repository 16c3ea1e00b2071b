"""Orders, their event log, idempotency keys and the checks the reconciler makes.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from common.migrations import CLUSTERED

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("payment_method", sa.String(64), nullable=False),
        sa.Column("payment_id", sa.String(40), unique=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("doc", sa.LargeBinary, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        **CLUSTERED,
    )
    op.create_index("ix_orders_customer", "orders", ["customer_id", "id"])
    op.create_index("ix_orders_status", "orders", ["status", "id"])
    op.create_table(
        "order_events",
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("doc", sa.LargeBinary, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "version"),
        **CLUSTERED,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(120), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(40)),
        sa.Column("locked_until_us", sa.BigInteger),
        sa.Column("response_code", sa.Integer),
        sa.Column("response", sa.LargeBinary),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("scope", "key"),
        **CLUSTERED,
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_us"])
    op.create_table(
        "order_checks",
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("check_id", sa.String(64), nullable=False),
        sa.Column("due_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "check_id"),
        **CLUSTERED,
    )
    op.create_index("ix_order_checks_due", "order_checks", ["due_us"])


def downgrade() -> None:
    for table in ("order_checks", "idempotency_keys", "order_events", "orders"):
        op.drop_table(table)
