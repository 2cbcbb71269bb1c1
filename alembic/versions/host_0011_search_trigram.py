"""Trigram indexes for the board's live search on PostgreSQL (lower(full_name), lower(email))

The board matches `lower(column) LIKE '%term%'`. A B-tree cannot serve a pattern with a leading
wildcard, so a term that matches few clients scanned the whole table; pg_trgm's GIN indexes
answer such patterns directly. SQLite has no equivalent index type: nothing to do there (its
scan of 100,000 rows stays well inside the board's budget, see docs/benchmarks.md).

Revision ID: host_0011
Revises: host_0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "host_0011"
down_revision: str | None = "host_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        "CREATE INDEX ix_client_full_name_trgm ON client USING gin (lower(full_name) gin_trgm_ops)"
    )
    op.execute("CREATE INDEX ix_client_email_trgm ON client USING gin (lower(email) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_client_email_trgm")
    op.execute("DROP INDEX IF EXISTS ix_client_full_name_trgm")
