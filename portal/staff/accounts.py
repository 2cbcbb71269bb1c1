"""Creating and changing staff accounts. Each change is an audit event."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Practice
from portal.staff import passwords, sessions, totp
from portal.staff.models import Role, StaffAccount, StaffSession
from portal.validation import clean_email, clean_name


class AccountError(ValueError):
    """A request about an account that cannot be carried out; the message says why."""

    def __init__(self, message: str, field: str = "__all__") -> None:
        super().__init__(message)
        self.field = field


def by_email(db: Session, email: str) -> StaffAccount | None:
    return db.exec(
        select(StaffAccount).where(col(StaffAccount.email) == email.strip().lower())
    ).first()


def create(
    db: Session,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> StaffAccount:
    address, problem = clean_email(email)
    if problem:
        raise AccountError(problem, "email")
    clean, problem = clean_name(name or address.split("@")[0], label="name")
    if problem:
        raise AccountError(problem, "name")
    if role not in {r.value for r in Role}:
        raise AccountError(f"Role must be one of: {', '.join(r.value for r in Role)}.", "role")
    if by_email(db, address) is not None:
        raise AccountError("There is already a staff account with that email address.", "email")
    problem = passwords.problem(password, email=address, name=clean)
    if problem:
        raise AccountError(problem, "password")
    account = StaffAccount(
        email=address.lower(),
        name=clean,
        role=Role(role),
        password_hash=passwords.hash_password(password),
        password_changed_at=now,
        created_at=now,
    )
    db.add(account)
    audit.record(db, actor, "staff.created", "staff_account", account.id, meta, role=role)
    return account


def change_password(
    db: Session,
    account: StaffAccount,
    *,
    current: str,
    new: str,
    meta: RequestMeta,
    now: datetime,
) -> None:
    if not passwords.verify(account.password_hash, current):
        raise AccountError("Your current password is not right.", "current_password")
    problem = passwords.problem(new, email=account.email, name=account.name)
    if problem:
        raise AccountError(problem, "new_password")
    account.password_hash = passwords.hash_password(new)
    account.password_changed_at = now
    db.add(account)
    # Every session, this one included, ends: the caller signs the person in again.
    sessions.end_all(db, account.id, now, "password_changed")
    audit.record(
        db, Actor("staff", account.id), "staff.password_changed", "staff_account", account.id, meta
    )


def set_disabled(
    db: Session,
    account: StaffAccount,
    disabled: bool,
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> None:
    if disabled and actor.id == account.id:
        raise AccountError("You can't disable your own account.")
    account.disabled_at = now if disabled else None
    db.add(account)
    if disabled:
        sessions.end_all(db, account.id, now, "account_disabled")
    action = "staff.disabled" if disabled else "staff.enabled"
    audit.record(db, actor, action, "staff_account", account.id, meta)


def enable_totp(
    db: Session,
    account: StaffAccount,
    secret: str,
    code: str,
    *,
    meta: RequestMeta,
    now: datetime,
) -> None:
    step = totp.matching_step(secret, code, now, None)
    if step is None:
        raise AccountError(
            "That code isn't right. Check your phone's clock and try the newest code.", "code"
        )
    account.totp_secret = secret
    account.totp_last_step = step
    db.add(account)
    audit.record(
        db, Actor("staff", account.id), "staff.totp_enabled", "staff_account", account.id, meta
    )


def accept_code(db: Session, account: StaffAccount, code: str, now: datetime) -> bool:
    """Check a sign-in code and burn its time step, so it cannot be replayed."""
    if not account.totp_secret:
        return False
    step = totp.matching_step(account.totp_secret, code, now, account.totp_last_step)
    if step is None:
        return False
    account.totp_last_step = step
    db.add(account)
    return True


def all_accounts(db: Session) -> list[StaffAccount]:
    """Every account, active ones first, then by name."""
    return list(
        db.exec(
            select(StaffAccount).order_by(
                col(StaffAccount.disabled_at).is_not(None),
                func.lower(col(StaffAccount.name)),
                col(StaffAccount.id),
            )
        )
    )


def last_sign_ins(db: Session) -> dict[str, datetime]:
    """When each account last signed in (its newest session), by account id."""
    rows = db.exec(
        select(StaffSession.account_id, func.max(StaffSession.created_at)).group_by(
            col(StaffSession.account_id)
        )
    ).all()
    return {account_id: _aware(at) for account_id, at in rows if at is not None}


def _aware(value: datetime) -> datetime:
    # In case a driver hands back MAX() of a column as stored (naive UTC on SQLite).
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def ensure_an_admin_remains(
    db: Session, account: StaffAccount, *, new_role: str | None = None, disabling: bool = False
) -> None:
    """Refuse a change that would leave the practice without an active admin."""
    if account.role != Role.ADMIN or not account.active:
        return
    if not disabling and (new_role is None or new_role == Role.ADMIN):
        return
    # Locking the admins' rows makes two admins demoting each other at once queue up
    # (PostgreSQL); SQLite's write lock taken at BEGIN already serialises writers.
    admins = db.exec(
        select(StaffAccount.id)
        .where(col(StaffAccount.role) == Role.ADMIN)
        .where(col(StaffAccount.disabled_at).is_(None))
        .with_for_update()
    ).all()
    if [i for i in admins if i != account.id]:
        return
    raise AccountError(
        f"{account.name} is the only active admin. Make someone else an admin first, so the "
        "practice is never left without one."
    )


def set_role(
    db: Session,
    account: StaffAccount,
    role: str,
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> bool:
    """Change an account's role; returns False when it already had that role."""
    if role not in {r.value for r in Role}:
        raise AccountError(f"Role must be one of: {', '.join(r.value for r in Role)}.", "role")
    if role == account.role:
        return False
    ensure_an_admin_remains(db, account, new_role=role)
    before = account.role
    account.role = Role(role)
    db.add(account)
    audit.record(
        db,
        actor,
        "staff.role_changed",
        "staff_account",
        account.id,
        meta,
        role_before=str(before),
        role=role,
    )
    return True


def set_require_totp(
    db: Session, practice: Practice, required: bool, *, actor: Actor, meta: RequestMeta
) -> None:
    """Require (or stop requiring) a second sign-in step for every staff account."""
    practice.require_staff_totp = required
    db.add(practice)
    action = "practice.staff_totp_required" if required else "practice.staff_totp_optional"
    audit.record(db, actor, action, "practice", str(practice.id), meta)
