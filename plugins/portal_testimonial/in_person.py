"""A testimonial consent withdrawn in person, recorded by staff. Only ever INSERTs.

Public: `withdraw_in_person` (the staff client page; an API could record the same way).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from portal import audit
from portal.audit import Actor, RequestMeta
from portal.models import Enrollment
from portal_testimonial import service
from portal_testimonial.choices import NO, is_consent
from portal_testimonial.models import TestimonialDecision
from portal_testimonial.service import Withdrawal


def withdraw_in_person(
    db: Session, enrollment: Enrollment, *, actor: Actor, meta: RequestMeta, now: datetime
) -> Withdrawal | None:
    """Add a withdrawal (source "staff") superseding the consent in force.

    Returns None when the client never decided; `recorded` is False when there is no "yes"
    in force to withdraw (already "no", or withdrawn by a concurrent request).
    """
    # Serialise with the client's own withdrawal link and other staff (see service).
    db.exec(
        select(Enrollment.id).where(col(Enrollment.id) == enrollment.id).with_for_update()
    ).first()
    latest = service.current(db, enrollment.id)
    if latest is None:
        return None
    if not is_consent(latest.choice):
        return Withdrawal(latest, recorded=False)
    row = TestimonialDecision(
        enrollment_id=enrollment.id,
        client_id=enrollment.client_id,
        created_at=now,
        choice=NO,
        placements=[],
        kind=service.WITHDRAWAL,
        source="staff",
        supersedes_id=latest.id,
    )
    db.add(row)
    audit.record(
        db,
        actor,
        "testimonial.withdrawn",
        "enrollment",
        enrollment.id,
        meta,
        decision_id=row.id,
        withdrawn_id=latest.id,
        via="in_person",
    )
    return Withdrawal(row, recorded=True)
