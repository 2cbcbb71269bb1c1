"""Server-side sessions for clients: the cookie holds a random key, the database its hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from portal.models import ClientSession

COOKIE = "portal_client"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def reference(key: str) -> str:
    """A short, non-secret reference to a session, for evidence records."""
    return _hash(key)[:16]


def start(db: Session, enrollment_id: str, now: datetime, hours: int) -> str:
    key = secrets.token_urlsafe(32)
    db.add(
        ClientSession(
            key_hash=_hash(key),
            enrollment_id=enrollment_id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return key


def lookup(db: Session, key: str | None, now: datetime) -> ClientSession | None:
    if not key or len(key) > 100:
        return None
    row = db.get(ClientSession, _hash(key))
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    return row


def end(db: Session, key: str | None, now: datetime) -> None:
    if key:
        db.execute(
            update(ClientSession)
            .where(col(ClientSession.key_hash) == _hash(key))
            .values(ended_at=now)
        )
