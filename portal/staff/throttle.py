"""Throttling repeated failed sign-ins, per address and per account.

A stranger must not be able to lock the real user out: the per-account limit does not apply to
a browser that has signed in to that account before (it carries a signed "known device"
cookie), and the per-address limit only hurts the address that fails.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from portal.staff.models import LoginFailure

WINDOW = timedelta(minutes=15)
PER_ADDRESS = 30
PER_ACCOUNT = 10


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: int = 0


def check(db: Session, *, email: str, ip: str, known_device: bool, now: datetime) -> Verdict:
    since = now - WINDOW
    by_ip = db.exec(
        select(func.count(), func.min(LoginFailure.at))
        .where(LoginFailure.ip == ip)
        .where(col(LoginFailure.at) > since)
    ).one()
    if by_ip[0] >= PER_ADDRESS:
        return Verdict(False, _retry_after(by_ip[1], now))
    if known_device:
        return Verdict(True)
    by_account = db.exec(
        select(func.count(), func.min(LoginFailure.at))
        .where(LoginFailure.email_hash == email_hash(email))
        .where(col(LoginFailure.at) > since)
    ).one()
    if by_account[0] >= PER_ACCOUNT:
        return Verdict(False, _retry_after(by_account[1], now))
    return Verdict(True)


def _retry_after(oldest: datetime | None, now: datetime) -> int:
    if oldest is None:
        return int(WINDOW.total_seconds())
    if oldest.tzinfo is None:  # SQLite's MIN() returns the stored naive UTC value
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return max(1, int((oldest + WINDOW - now).total_seconds()))


def record_failure(db: Session, *, email: str, ip: str, now: datetime) -> None:
    db.add(LoginFailure(at=now, email_hash=email_hash(email), ip=ip[:64]))
