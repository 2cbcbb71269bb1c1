"""Tamper-evident audit log: a hash chain over audit_event, its head row

Revision ID: host_0010
Revises: host_0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The hash is the app's own definition: a chain backfilled any other way would not verify.
from portal.audit_chain import GENESIS, HEAD_ID, hash_of
from portal.db import UTCDateTime

revision: str = "host_0010"
down_revision: str | None = "host_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(
            sa.Column("prev_hash", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=False, server_default=""))
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(head, [{"id": HEAD_ID, "hash": _backfill(op.get_bind())}])


def _backfill(conn: sa.Connection) -> str:
    """Chain the existing events in id order, in batches; returns the last hash."""
    events = sa.table(
        "audit_event",
        sa.column("id", sa.Integer()),
        sa.column("at", UTCDateTime()),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("subject_type", sa.String()),
        sa.column("subject_id", sa.String()),
        sa.column("enrollment_id", sa.String()),
        sa.column("ip", sa.String()),
        sa.column("user_agent", sa.String()),
        sa.column("detail", sa.JSON()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    store = (
        sa.update(events)
        .where(events.c.id == sa.bindparam("row_id"))
        .values(prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new_hash"))
    )
    prev, after = GENESIS, 0
    while True:
        query = sa.select(events).where(events.c.id > after).order_by(events.c.id).limit(BATCH)
        rows = conn.execute(query).all()
        if not rows:
            return prev
        links = []
        for row in rows:
            digest = hash_of(row, prev)
            links.append({"row_id": row.id, "new_prev": prev, "new_hash": digest})
            prev = digest
        conn.execute(store, links)
        after = rows[-1].id


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
