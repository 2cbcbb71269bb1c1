"""Recording and reading contact preferences. Other plugins (signature, staff board, API) read
through ``current_choices`` and ``allows_email``; nothing outside this module writes the table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Enrollment
from portal_contact.choices import ContactChoices
from portal_contact.models import ContactPreference


class ConcurrentChange(Exception):
    """Another submission recorded a preference for this enrollment at the same moment."""


def latest(
    db: Session, enrollment_id: str, as_of: datetime | None = None
) -> ContactPreference | None:
    """The current (highest-revision) row for the enrollment, or None; or the one current at
    `as_of`."""
    query = (
        select(ContactPreference)
        .where(ContactPreference.enrollment_id == enrollment_id)
        .order_by(col(ContactPreference.revision).desc())
    )
    if as_of is not None:
        query = query.where(col(ContactPreference.created_at) <= as_of)
    return db.exec(query).first()


def current_choices(
    db: Session, enrollment_id: str, as_of: datetime | None = None
) -> ContactChoices | None:
    """What the client asks for (now, or at `as_of`), or None if they had not said yet."""
    row = latest(db, enrollment_id, as_of)
    # Stored rows were written from validated choices; a malformed one is a bug worth raising.
    return None if row is None else ContactChoices.from_json(row.choices)


def allows_email(db: Session, enrollment_id: str) -> str | None:
    """The email address the client allowed (after accepting the warning), or None."""
    row = latest(db, enrollment_id)
    if row is None or row.email_warning_accepted_at is None:
        return None
    choices = ContactChoices.from_json(row.choices)
    return None if choices.email is None else choices.email.address


def history(db: Session, enrollment_id: str) -> list[ContactPreference]:
    """Every recorded preference for the enrollment, newest first."""
    query = (
        select(ContactPreference)
        .where(ContactPreference.enrollment_id == enrollment_id)
        .order_by(col(ContactPreference.revision).desc())
    )
    return list(db.exec(query))


def record(
    db: Session,
    enrollment: Enrollment,
    choices: ContactChoices,
    warning_text: str,
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
    source: str = "client",
) -> ContactPreference:
    """Append a preference superseding the current one, with its audit event.

    ``warning_text`` is the email warning as shown; it is kept only when an email channel was
    chosen (which ``ContactChoices`` allows only with the warning accepted). Raises
    ConcurrentChange when another writer took the next revision first; the caller's
    transaction is still usable.
    """
    previous = latest(db, enrollment.id)
    email_chosen = choices.email is not None
    row = ContactPreference(
        enrollment_id=enrollment.id,
        client_id=enrollment.client_id,
        revision=1 if previous is None else previous.revision + 1,
        created_at=now,
        choices=choices.as_json(),
        email_warning_accepted_at=now if email_chosen else None,
        email_warning_text=warning_text if email_chosen else None,
        supersedes_id=None if previous is None else previous.id,
        source=source[:20],
    )
    try:
        with db.begin_nested():
            db.add(row)
            db.flush()
    except IntegrityError as exc:
        raise ConcurrentChange from exc
    # Counts and flags only: numbers and addresses stay out of the audit trail.
    audit.record(
        db,
        actor,
        "contact_preferences.recorded",
        "contact_preference",
        row.id,
        meta,
        enrollment_id=enrollment.id,
        revision=row.revision,
        supersedes_id=row.supersedes_id,
        phones=len(choices.phones),
        emails=int(email_chosen),
        email_warning_accepted=email_chosen,
        source=row.source,
    )
    return row


def is_unchanged(db: Session, enrollment_id: str, choices: ContactChoices) -> bool:
    """True when ``choices`` say exactly what the current row says (nothing new to record)."""
    row = latest(db, enrollment_id)
    return row is not None and row.choices == choices.as_json()
