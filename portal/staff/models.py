"""Staff accounts, their server-side sessions, and failed sign-ins (for throttling)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from portal.db import UTCDateTime, new_id, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    THERAPIST = "therapist"
    FRONT_DESK = "front_desk"


ROLE_LABELS = {
    Role.ADMIN: "Practice admin",
    Role.THERAPIST: "Therapist",
    Role.FRONT_DESK: "Front desk",
}


class StaffAccount(SQLModel, table=True):
    __tablename__ = "staff_account"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=120)
    role: Role = Field(sa_type=String(20))
    password_hash: str = Field(max_length=200)
    password_changed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    totp_secret: str | None = Field(default=None, max_length=64)
    # The last time step whose code was accepted: a code works once.
    totp_last_step: int | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    disabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class StaffSession(SQLModel, table=True):
    """The cookie holds a random key; this row (by the key's hash) is the session."""

    __tablename__ = "staff_session"

    key_hash: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(foreign_key="staff_account.id", index=True, max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    ended_reason: str | None = Field(default=None, max_length=40)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)


class LoginFailure(SQLModel, table=True):
    """A failed sign-in. The address typed is kept only as a hash."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
    email_hash: str = Field(max_length=64, index=True)
    ip: str = Field(max_length=64, index=True)
