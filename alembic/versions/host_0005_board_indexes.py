"""Indexes for the consent board's orders (newest invitation first; by name)

Revision ID: host_0005
Revises: host_0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "host_0005"
down_revision: str | None = "host_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_enrollment_created_at_id", "enrollment", ["created_at", "id"])
    op.create_index("ix_client_full_name_lower", "client", [sa.text("lower(full_name)")])


def downgrade() -> None:
    op.drop_index("ix_client_full_name_lower", table_name="client")
    op.drop_index("ix_enrollment_created_at_id", table_name="enrollment")
