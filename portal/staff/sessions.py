"""Server-side staff sessions: logout, a password change and a disabled account end them at
once; an idle timeout and an absolute one bound them."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from portal.audit import RequestMeta
from portal.staff.models import StaffAccount, StaffSession

COOKIE = "portal_staff"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start(
    db: Session, account: StaffAccount, meta: RequestMeta, now: datetime, absolute_hours: int
) -> str:
    key = secrets.token_urlsafe(32)
    db.add(
        StaffSession(
            key_hash=_hash(key),
            account_id=account.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=absolute_hours),
            ip=meta.ip[:64],
            user_agent=meta.user_agent[:300],
        )
    )
    return key


@dataclass(frozen=True)
class ActiveSession:
    row: StaffSession
    account: StaffAccount


class NeedsWrite(Exception):
    """`lookup(..., may_write=False)` found the session must be touched or ended: look it up
    again in a transaction that may write."""


def lookup(
    db: Session, key: str | None, now: datetime, idle_minutes: int, *, may_write: bool = True
) -> ActiveSession | None:
    """The live session for `key`, touching its last-seen time; None when it has ended.

    With `may_write=False` (a read-only transaction) it raises NeedsWrite instead of writing:
    most requests write nothing, and on SQLite a read takes no write lock."""
    if not key or len(key) > 100:
        return None
    row = db.get(StaffSession, _hash(key))
    if row is None or row.ended_at is not None:
        return None
    account = db.get(StaffAccount, row.account_id)
    reason = None
    if account is None or not account.active:
        reason = "account_disabled"
    elif row.expires_at <= now:
        reason = "absolute_timeout"
    elif row.last_seen_at + timedelta(minutes=idle_minutes) <= now:
        reason = "idle_timeout"
    elif account.password_changed_at > row.created_at:
        reason = "password_changed"
    # Touch at most once a minute: no write on every request.
    stale = now - row.last_seen_at > timedelta(minutes=1)
    if (reason is not None or account is None or stale) and not may_write:
        raise NeedsWrite
    if reason is not None or account is None:
        row.ended_at, row.ended_reason = now, reason
        db.add(row)
        return None
    if stale:
        row.last_seen_at = now
        db.add(row)
    return ActiveSession(row, account)


def end(db: Session, key: str | None, now: datetime, reason: str = "logout") -> None:
    if key:
        db.execute(
            update(StaffSession)
            .where(col(StaffSession.key_hash) == _hash(key))
            .where(col(StaffSession.ended_at).is_(None))
            .values(ended_at=now, ended_reason=reason)
        )


def end_all(db: Session, account_id: str, now: datetime, reason: str) -> None:
    db.execute(
        update(StaffSession)
        .where(col(StaffSession.account_id) == account_id)
        .where(col(StaffSession.ended_at).is_(None))
        .values(ended_at=now, ended_reason=reason)
    )
