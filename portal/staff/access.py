"""Who may do what on the staff side, and finding the signed-in staff member."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.requests import Request

from portal.db import transaction, utcnow
from portal.models import Practice
from portal.settings import Settings
from portal.staff import sessions
from portal.staff.models import Role, StaffAccount


class Permission(StrEnum):
    VIEW_CLIENTS = "view_clients"
    INVITE = "invite"
    COUNTERSIGN = "countersign"
    RECORD_IN_SESSION = "record_in_session"
    RECORD_PAPER = "record_paper"
    EXPORT = "export"
    EDIT_POLICY = "edit_policy"
    MANAGE_STAFF = "manage_staff"
    VIEW_MAIL = "view_mail"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.THERAPIST: frozenset(
        {
            Permission.VIEW_CLIENTS,
            Permission.INVITE,
            Permission.COUNTERSIGN,
            Permission.RECORD_IN_SESSION,
            Permission.RECORD_PAPER,
            Permission.EXPORT,
        }
    ),
    Role.FRONT_DESK: frozenset(
        {
            Permission.VIEW_CLIENTS,
            Permission.INVITE,
            Permission.RECORD_PAPER,
            Permission.EXPORT,
        }
    ),
}


def can(account: StaffAccount, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(Role(account.role), frozenset())


class NotSignedIn(Exception):
    """No live staff session: the app answers with the sign-in page."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this: the app answers 403."""


class SecondFactorRequired(Exception):
    """The practice requires a second factor and this account has none yet."""


def current_staff(engine: Engine, settings: Settings, request: Request) -> StaffAccount | None:
    """The signed-in staff member. Read first; only when the session must be touched or has
    ended is it looked up again in a transaction that writes (so an ended session's reason is
    stored even when the page then refuses)."""
    key, now = request.cookies.get(sessions.COOKIE), utcnow()
    try:
        with transaction(engine, read_only=True) as db:
            return _signed_in(db, request, key, now, settings.staff_idle_minutes, False)
    except sessions.NeedsWrite:
        with transaction(engine) as db:
            return _signed_in(db, request, key, now, settings.staff_idle_minutes, True)


def _signed_in(
    db: Session, request: Request, key: str | None, now: datetime, idle: int, may_write: bool
) -> StaffAccount | None:
    active = sessions.lookup(db, key, now, idle, may_write=may_write)
    if active is None:
        return None
    practice = db.get(Practice, 1)
    request.state.staff_needs_totp = bool(
        practice and practice.require_staff_totp and not active.account.totp_secret
    )
    return active.account


def require(
    engine: Engine, settings: Settings, request: Request, permission: Permission
) -> StaffAccount:
    """The signed-in staff member allowed `permission`; raises NotSignedIn, Forbidden or
    SecondFactorRequired, which the app turns into the right page."""
    account = current_staff(engine, settings, request)
    if account is None:
        raise NotSignedIn
    if request.state.staff_needs_totp:
        raise SecondFactorRequired
    if not can(account, permission):
        raise Forbidden
    return account
