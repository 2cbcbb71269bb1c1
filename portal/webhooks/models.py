"""A webhook endpoint: where to POST, the shared secret, and how far in the change log it got."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, String
from sqlmodel import Field, SQLModel

from portal.changes import Position
from portal.db import UTCDateTime, new_id, utcnow

NAME_MAX = 80
URL_MAX = 2000


class WebhookEndpoint(SQLModel, table=True):
    """Disabled, never deleted: its audit trail and its cursor stay explainable."""

    __tablename__ = "webhook_endpoint"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=NAME_MAX, unique=True)
    url: str = Field(sa_column=Column(String(URL_MAX), nullable=False))
    # Stored in clear: signing needs it (a shared secret, like the SMTP password).
    secret: str = Field(max_length=100)
    # After a rotation the old secret also signs for a while, so the receiver can switch over.
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    created_by: str = Field(max_length=100)
    disabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))

    # Everything up to here in the change log has been delivered (a 2xx came back).
    cursor_txid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    cursor_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # The end of a batch that failed: its retry carries exactly the same changes and event id.
    batch_txid: int | None = Field(default=None, sa_column=Column(BigInteger))
    batch_seq: int | None = Field(default=None, sa_column=Column(BigInteger))

    attempts: int = 0  # consecutive failures
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    # A worker's lease: the app and `portal mail-worker` never deliver the same endpoint at once.
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_success_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    failing_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = Field(default=None, max_length=500)

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    @property
    def cursor(self) -> Position:
        return Position(self.cursor_txid, self.cursor_seq)

    @property
    def pending_batch_end(self) -> Position | None:
        if self.batch_txid is None or self.batch_seq is None:
            return None
        return Position(self.batch_txid, self.batch_seq)
