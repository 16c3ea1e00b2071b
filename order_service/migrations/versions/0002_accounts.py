"""Accounts (docs/security.md#accounts-and-ownership): the account that created each order, indexes
for listing one account's orders, and room in an idempotency key's scope for the account it belongs
to.

Orders made before this revision belong to no account (NULL): only internal calls see them.
Their client secret lives in the order document (`doc`), which needs no column.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

from common.migrations import CLUSTERED

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("orders", sa.Column("account_id", sa.String(64)))
    op.create_index("ix_orders_account", "orders", ["account_id", "id"])
    op.create_index("ix_orders_account_customer", "orders", ["account_id", "customer_id", "id"])
    op.create_index("ix_orders_account_status", "orders", ["account_id", "status", "id"])
    # "<account>/" + "ConfirmPayment:<id>" can be 65 + 79 characters. (On SQLite the table is
    # copied, its rows and index included, still WITHOUT ROWID as 0001 made it; PostgreSQL
    # widens the column in place.)
    with op.batch_alter_table("idempotency_keys", table_kwargs=CLUSTERED) as batch:
        batch.alter_column("scope", existing_type=sa.String(120), type_=sa.String(200), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", table_kwargs=CLUSTERED) as batch:
        batch.alter_column("scope", existing_type=sa.String(200), type_=sa.String(120), existing_nullable=False)
    for index in ("ix_orders_account_status", "ix_orders_account_customer", "ix_orders_account"):
        op.drop_index(index, "orders")
    with op.batch_alter_table("orders", table_kwargs=CLUSTERED) as batch:
        batch.drop_column("account_id")
