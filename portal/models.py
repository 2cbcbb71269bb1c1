"""The host's tables: the practice, clients, their onboarding runs, links and sessions.

Consent records themselves belong to the step plugins; the host only knows who is onboarding.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String, UniqueConstraint, func, text
from sqlmodel import Field, SQLModel

from portal.db import UTCDateTime, new_id, utcnow


def utc_column(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Practice(SQLModel, table=True):
    """The practice's public details, filled into the policy and the mail (one row)."""

    id: int = Field(default=1, primary_key=True)
    name: str = Field(max_length=200)
    phone: str = Field(default="", max_length=60)
    email: str = Field(default="", max_length=254)
    website: str = Field(default="", max_length=300)
    licensing_board: str = Field(default="", max_length=300)
    crisis_line: str = Field(default="", max_length=200)
    # The admin can require a second factor (TOTP) for every staff account.
    require_staff_totp: bool = False
    updated_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


class Client(SQLModel, table=True):
    # The board sorts by name, case-insensitively; its live search (`lower(x) LIKE '%q%'`) is
    # served on PostgreSQL by trigram indexes (migration host_0011; not created on SQLite).
    __table_args__ = (
        Index("ix_client_full_name_lower", func.lower(text("full_name"))),
        Index(
            "ix_client_full_name_trgm",
            func.lower(text("full_name")).label("full_name_lower"),
            postgresql_using="gin",
            postgresql_ops={"full_name_lower": "gin_trgm_ops"},
        ),
        Index(
            "ix_client_email_trgm",
            func.lower(text("email")).label("email_lower"),
            postgresql_using="gin",
            postgresql_ops={"email_lower": "gin_trgm_ops"},
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    full_name: str = Field(max_length=200)
    email: str = Field(max_length=254, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    # The EHR's own identifier for this client (medical record number), set by staff or the API.
    mrn: str | None = Field(default=None, max_length=64, unique=True)


class EnrollmentStatus(StrEnum):
    INVITED = "invited"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    CANCELLED = "cancelled"


class Enrollment(SQLModel, table=True):
    """One run of the onboarding journey for a client."""

    # The board's default order (newest invitation first) and its keyset cursor.
    __table_args__ = (Index("ix_enrollment_created_at_id", "created_at", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    client_id: str = Field(foreign_key="client.id", index=True, max_length=32)
    # The therapist seeing the client (set when inviting), for the board's filter.
    therapist_id: str | None = Field(
        default=None, foreign_key="staff_account.id", index=True, max_length=32
    )
    status: EnrollmentStatus = Field(
        default=EnrollmentStatus.INVITED, sa_type=String(20), index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    started_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    completed_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # Rotated when a new resume link is sent, so older resume links stop working.
    resume_nonce: str = Field(default_factory=new_id, max_length=32)


class Invitation(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())
    used_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    cancelled_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class ClientSession(SQLModel, table=True):
    """Server-side record of a client's browser session; the cookie holds only a random key."""

    __tablename__ = "client_session"

    key_hash: str = Field(primary_key=True, max_length=64)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())
    ended_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class FormSubmission(SQLModel, table=True):
    """Each rendered form carries a one-time id; storing it makes a replayed form count once."""

    __tablename__ = "form_submission"
    __table_args__ = (UniqueConstraint("form_id", name="uq_form_submission_form_id"),)

    id: int | None = Field(default=None, primary_key=True)
    form_id: str = Field(max_length=64)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    step: str = Field(max_length=50)
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())
