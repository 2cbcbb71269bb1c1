"""Change log for incremental sync; the EHR's record number on clients

Revision ID: host_0007
Revises: host_0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "host_0007"
down_revision: str | None = "host_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_change",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tables", sa.String(length=400), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_client_change_position", "client_change", ["txid", "seq"])
    op.create_index("ix_client_change_changed_at", "client_change", ["changed_at"])
    op.create_index("ix_client_change_client_id", "client_change", ["client_id"])
    # Clients from before the log: one change each, so a sync from the start sees them all,
    # stamped now (not at creation) so a time-based query ("changed since ...") errs inclusive.
    op.execute(
        "INSERT INTO client_change (txid, client_id, changed_at, tables) "
        "SELECT 0, id, CURRENT_TIMESTAMP, 'client' FROM client"
    )
    with op.batch_alter_table("client") as batch:
        batch.add_column(sa.Column("mrn", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_client_mrn", ["mrn"])


def downgrade() -> None:
    with op.batch_alter_table("client") as batch:
        batch.drop_constraint("uq_client_mrn", type_="unique")
        batch.drop_column("mrn")
    op.drop_table("client_change")
