"""The policy discussed in session: a therapist's record, added, never changed.

Public: `record` and `for_enrollment` (the client page, the API).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Enrollment
from portal.staff.models import StaffAccount
from portal_policy.models import PolicyVersion
from portal_signature.models import PolicyDiscussion


@dataclass(frozen=True)
class Discussion:
    row: PolicyDiscussion
    staff_name: str


def record(
    db: Session,
    enrollment: Enrollment,
    policy: PolicyVersion,
    *,
    staff_id: str,
    discussed_on: date,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> tuple[PolicyDiscussion, bool]:
    """Add the record; returns it and whether it is new. The same therapist recording the
    same version on the same day again (a double click, a reload) adds nothing."""
    db.exec(
        select(Enrollment.id).where(col(Enrollment.id) == enrollment.id).with_for_update()
    ).first()
    same = db.exec(
        select(PolicyDiscussion)
        .where(col(PolicyDiscussion.enrollment_id) == enrollment.id)
        .where(col(PolicyDiscussion.policy_version_id) == policy.id)
        .where(col(PolicyDiscussion.staff_account_id) == staff_id)
        .where(col(PolicyDiscussion.discussed_on) == discussed_on)
    ).first()
    if same is not None:
        return same, False
    row = PolicyDiscussion(
        enrollment_id=enrollment.id,
        policy_version_id=policy.id,
        policy_version=policy.version,
        staff_account_id=staff_id,
        discussed_on=discussed_on,
        recorded_at=now,
    )
    db.add(row)
    audit.record(
        db,
        actor,
        "policy.discussed_in_session",
        "enrollment",
        enrollment.id,
        meta,
        discussion_id=row.id,
        policy_version=policy.version,
        discussed_on=discussed_on.isoformat(),
    )
    return row, True


def for_enrollment(db: Session, enrollment_id: str) -> list[Discussion]:
    """Newest first, with the therapist's name."""
    rows = db.exec(
        select(PolicyDiscussion, StaffAccount.name)
        .join(StaffAccount, col(StaffAccount.id) == col(PolicyDiscussion.staff_account_id))
        .where(col(PolicyDiscussion.enrollment_id) == enrollment_id)
        .order_by(
            col(PolicyDiscussion.discussed_on).desc(), col(PolicyDiscussion.recorded_at).desc()
        )
    ).all()
    return [Discussion(row, name) for row, name in rows]
