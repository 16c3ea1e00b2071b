"""Accounts (docs/security.md#accounts-and-ownership): the account each payment is for, and its
order's client secret (for the confirmation URL, and to let the phone page read the payment).

Payments made before this revision belong to no account (NULL): only internal calls see them.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("payments", sa.Column("account_id", sa.String(64)))
    op.add_column("payments", sa.Column("client_secret", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("payments", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_column("client_secret")
        batch.drop_column("account_id")
