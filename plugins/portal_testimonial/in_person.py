"""A testimonial consent withdrawn in person, recorded by staff. Only ever INSERTs.

Public: `withdraw_in_person` (the staff client page; an API could record the same way).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from portal.audit import Actor, RequestMeta
from portal.models import Enrollment
from portal_testimonial import service
from portal_testimonial.service import Withdrawal


def withdraw_in_person(
    db: Session, enrollment: Enrollment, *, actor: Actor, meta: RequestMeta, now: datetime
) -> Withdrawal | None:
    """Add a withdrawal (source "staff") superseding the consent in force.

    Returns None when the client never decided; `recorded` is False when there is no "yes"
    in force to withdraw (already "no", or withdrawn by a concurrent request).
    """
    return service.record_withdrawal(
        db, enrollment.id, source="staff", actor=actor, via="in_person", meta=meta, now=now
    )
