"""Each client's request for confidential communications, as a dated, append-only history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import UTCDateTime, new_id, utcnow


class ContactPreference(SQLModel, table=True):
    """One statement of how the practice may reach the client. Never updated: a change is a
    new row with the next ``revision`` that points at the row it supersedes."""

    __tablename__ = "contact_preference"
    # One row per revision: two writers racing from the same latest row cannot both win.
    __table_args__ = (
        UniqueConstraint("enrollment_id", "revision", name="uq_contact_preference_revision"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    client_id: str = Field(foreign_key="client.id", index=True, max_length=32)
    revision: int  # 1, 2, 3... per enrollment; the highest is current
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    # ContactChoices.as_json(): numbers, kinds, voicemail rules, email, ranks.
    choices: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Set only when an email channel was chosen with the security warning ticked.
    email_warning_accepted_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    email_warning_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    supersedes_id: str | None = Field(
        default=None, foreign_key="contact_preference.id", max_length=32
    )
    source: str = Field(default="client", sa_type=String(20))
