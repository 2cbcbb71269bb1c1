"""Host tables: practice, clients, enrollments, links, sessions, audit, outbox

Revision ID: host_0001
Revises: None
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "host_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("host",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject_type", sa.String(length=50), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_event_action"), "audit_event", ["action"], unique=False)
    op.create_index(op.f("ix_audit_event_subject_id"), "audit_event", ["subject_id"], unique=False)
    op.create_table(
        "client",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_client_email"), "client", ["email"], unique=False)
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=50), nullable=False),
        sa.Column("to_addr", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("attachment_name", sa.String(length=200), nullable=True),
        sa.Column("attachment", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index(
        op.f("ix_outbox_message_next_attempt_at"),
        "outbox_message",
        ["next_attempt_at"],
        unique=False,
    )
    op.create_index(op.f("ix_outbox_message_status"), "outbox_message", ["status"], unique=False)
    op.create_table(
        "practice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=60), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("website", sa.String(length=300), nullable=False),
        sa.Column("licensing_board", sa.String(length=300), nullable=False),
        sa.Column("crisis_line", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "enrollment",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resume_nonce", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_enrollment_client_id"), "enrollment", ["client_id"], unique=False)
    op.create_index(op.f("ix_enrollment_status"), "enrollment", ["status"], unique=False)
    op.create_table(
        "client_session",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollment.id"],
        ),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index(
        op.f("ix_client_session_enrollment_id"), "client_session", ["enrollment_id"], unique=False
    )
    op.create_table(
        "form_submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.String(length=64), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollment.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("form_id", name="uq_form_submission_form_id"),
    )
    op.create_index(
        op.f("ix_form_submission_enrollment_id"), "form_submission", ["enrollment_id"], unique=False
    )
    op.create_table(
        "invitation",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollment.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_invitation_enrollment_id"), "invitation", ["enrollment_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_invitation_enrollment_id"), table_name="invitation")
    op.drop_table("invitation")
    op.drop_index(op.f("ix_form_submission_enrollment_id"), table_name="form_submission")
    op.drop_table("form_submission")
    op.drop_index(op.f("ix_client_session_enrollment_id"), table_name="client_session")
    op.drop_table("client_session")
    op.drop_index(op.f("ix_enrollment_status"), table_name="enrollment")
    op.drop_index(op.f("ix_enrollment_client_id"), table_name="enrollment")
    op.drop_table("enrollment")
    op.drop_table("practice")
    op.drop_index(op.f("ix_outbox_message_status"), table_name="outbox_message")
    op.drop_index(op.f("ix_outbox_message_next_attempt_at"), table_name="outbox_message")
    op.drop_table("outbox_message")
    op.drop_index(op.f("ix_client_email"), table_name="client")
    op.drop_table("client")
    op.drop_index(op.f("ix_audit_event_subject_id"), table_name="audit_event")
    op.drop_index(op.f("ix_audit_event_action"), table_name="audit_event")
    op.drop_table("audit_event")
